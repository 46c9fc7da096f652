"""`python -m emulator serve`: run the local Microsoft 365 tenant until interrupted.

Builds the seeded tenant, writes the customer registry, the CA bundle and the daemon app's certificate into the
state directory (a temporary one, removed at exit, unless --state-dir is given), serves HTTPS on 127.0.0.1 and
prints how to reach it: readable lines, or with --json exactly one JSON object on one stdout line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from emulator.limits import PROFILES
from emulator.seed import SeedConfig, build_tenant, write_registry
from emulator.server import EmulatorServer

DEFAULT_SEED = SeedConfig()
READABLE_LINES = (
    ("authority", "authority"),
    ("Graph URL", "graph_url"),
    ("CA bundle", "ca_bundle"),
    ("tenant id", "tenant_id"),
    ("client id", "client_id"),
    ("client secret", "client_secret"),
    ("client certificate", "client_certificate"),
    ("web client id", "web_client_id"),
    ("web client secret", "web_client_secret"),
    ("control URL", "control_url"),
    ("registry", "registry_path"),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m emulator", description="Steward's local Microsoft 365 tenant.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the emulated tenant over HTTPS until interrupted")
    serve.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: any free port)")
    serve.add_argument("--seed", type=int, default=DEFAULT_SEED.seed, help="seed of the generated tenant")
    serve.add_argument("--customers", type=int, default=DEFAULT_SEED.customers, help="number of customers")
    serve.add_argument("--staff", type=int, default=DEFAULT_SEED.staff, help="number of staff mailboxes")
    serve.add_argument("--state-dir", type=Path, help="keep the CA, certificates and registry here")
    serve.add_argument("--profile", choices=sorted(PROFILES), default="fast", help="latency and limits preset")
    serve.add_argument("--json", action="store_true", help="print one JSON line instead of readable lines")
    return parser


def _serve(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65_535:
        sys.stderr.write("error: --port must be between 0 and 65535\n")
        return 2
    if args.customers < 0 or args.staff < 2:
        sys.stderr.write("error: --customers must be >= 0 and --staff >= 2\n")
        return 2
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    temporary = args.state_dir is None
    state_dir = Path(tempfile.mkdtemp(prefix="steward-emulator-")) if temporary else args.state_dir
    try:
        tenant = build_tenant(SeedConfig(seed=args.seed, customers=args.customers, staff=args.staff))
        registry = write_registry(tenant, state_dir)
        with EmulatorServer(tenant, port=args.port, state_dir=state_dir, profile=args.profile) as server:
            details = {**server.endpoints.as_dict(), "registry_path": str(registry["json"])}
            if args.json:
                sys.stdout.write(json.dumps(details) + "\n")
            else:
                width = max(len(label) for label, _ in READABLE_LINES) + 1
                lines = [f"Steward emulator ready (seed {args.seed}, profile {args.profile})"]
                lines += [f"  {label + ':':<{width}} {details[key]}" for label, key in READABLE_LINES]
                lines.append("Press Ctrl+C to stop.")
                sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
            # Wake up now and then: a signal handler only runs between bytecodes of the main thread.
            while not stop.wait(0.2):
                pass
    finally:
        if temporary:
            shutil.rmtree(state_dir, ignore_errors=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return 2
