"""`python -m bench [--quick]`: run the scenarios and write bench/results/latest.json.

The results file follows the benchmarks issue: {"machine", "profile", "scenarios": {NAME: {...}}}. Scenarios
already in the file from an earlier run are kept unless this run measured them again.
"""

import argparse
import asyncio
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from bench import sync_label
from bench.emulator import emulator_process
from emulator.seed import SeedConfig

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
# >= 20 mailboxes and >= 100k items (about 104k messages and 17k files), as the Graph connector issue asks.
FULL = SeedConfig(
    seed=3,
    customers=400,
    staff=20,
    threads_per_customer=30,
    messages_per_thread=8,
    internal_messages_per_mailbox=200,
    files_per_customer=20,
    internal_files_per_drive=50,
)
# A few thousand items: checks the harness end to end in about a minute.
QUICK = SeedConfig(
    seed=3,
    customers=24,
    staff=20,
    threads_per_customer=6,
    messages_per_thread=4,
    internal_messages_per_mailbox=20,
    files_per_customer=4,
    internal_files_per_drive=5,
)


def _machine() -> dict[str, Any]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count() or 1,
        "python": sys.version.split()[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small tenant, to check the harness")
    parser.add_argument("--profile", default="realistic", help="emulator profile preset (default: realistic)")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    print(f"starting the local tenant (profile {args.profile}) ...", flush=True)
    with emulator_process(config, profile=args.profile) as info:
        print(f"tenant: {info['messages']} messages, {info['files']} files; syncing through Steward, then naively ...")
        result = asyncio.run(sync_label.run(info))
        profile = info["profile"]
    result["tenant"] = {"messages": info["messages"], "files": info["files"], "quick": args.quick}
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    document = {
        "machine": _machine(),
        "profile": profile,
        "scenarios": {**previous.get("scenarios", {}), "sync_label": result},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(
        f"sync_label: {result['items']} items; Steward {result['steward_s']} s, naive {result['naive_s']} s "
        f"(x{result['ratio']}); ceiling {result['ceiling_s']} s ({result['ceiling_fraction']:.0%} reached); "
        f"{result['requests_per_1000_items']} requests per 1,000 items; peak RSS {result['peak_rss_mb']} MB; "
        f"unhandled 429: {result['unhandled_429']}"
    )
    print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
