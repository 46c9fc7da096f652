"""`python -m bench` (= `make bench`): measure Steward against the local tenant; write results/latest.json + a chart.

    python -m bench                                  # every scenario at the acceptance size (100k items)
    python -m bench --scenario sync_label --items 100000
    python -m bench --scenario scale --scale-sizes 10000,100000 --with-1m
    python -m bench --quick                          # a few thousand items: the harness end to end in minutes
    python -m bench --smoke --output /tmp/smoke.json # a few dozen items, "fast" profile: seconds (the test's mode)

The results file follows the benchmarks issue: {"machine", "profile", "scenarios": {NAME: {...}}}. Scenarios
not measured by this run keep their figures from the file's previous run. See bench/README.md.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import classifier, cycle, notify, scale, sync_label
from bench.isolated import run_isolated
from bench.results import RESULTS_DIR, chart, write
from bench.tenant import TINY, config_for_items, running_tenant
from emulator.limits import PROFILES
from emulator.seed import SeedConfig

SCENARIOS = ("sync_label", "incremental", "cycle", "classifier", "scale", "notify")
# The product cycle walks containers one after another: a small tenant keeps it to minutes.
CYCLE_ITEMS = 1_500
ONE_MILLION = 1_000_000


@dataclass(frozen=True)
class Plan:
    mode: str
    items: int
    profile: str
    naive_mailboxes: int | None  # None: the naive loop reads the whole tenant
    scale_sizes: list[int]
    scale_profile: str
    notify_seconds: float
    saturation_seconds: float
    tiny: bool = False

    def tenant(self, items: int | None = None) -> SeedConfig:
        return TINY if self.tiny else config_for_items(items or self.items)


def _plan(args: argparse.Namespace) -> Plan:
    if args.smoke:
        plan = Plan("smoke", 0, "fast", None, [0], "fast", 2.0, 1.0, tiny=True)
    elif args.quick:
        plan = Plan("quick", 3_000, args.profile, None, [1_000, 3_000], "fast", 10.0, 3.0)
    else:
        plan = Plan("full", 100_000, args.profile, 2, [10_000, 100_000], "fast", 60.0, 10.0)
    if args.items is not None:
        plan = replace(plan, items=args.items)
    if args.naive_mailboxes is not None:
        plan = replace(plan, naive_mailboxes=args.naive_mailboxes or None)
    if args.scale_sizes:
        plan = replace(plan, scale_sizes=args.scale_sizes)
    if args.with_1m and ONE_MILLION not in plan.scale_sizes:
        plan = replace(plan, scale_sizes=[*plan.scale_sizes, ONE_MILLION])
    if args.scale_profile:
        plan = replace(plan, scale_profile=args.scale_profile)
    return plan


def _sizes(value: str) -> list[int]:
    try:
        sizes = [int(size) for size in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated item counts, got {value!r}") from None
    if any(size <= 0 for size in sizes):
        raise argparse.ArgumentTypeError("item counts must be positive")
    return sizes


def _whole(value: str, *, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}")
    return number


def _positive(value: str) -> int:
    return _whole(value, minimum=1)


def _count(value: str) -> int:
    return _whole(value, minimum=0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="repeat to run several (default: all)")
    parser.add_argument("--items", type=_positive, help="tenant size for sync_label and incremental (messages + files)")
    parser.add_argument(
        "--profile", default="realistic", choices=sorted(PROFILES), help="emulator profile for sync_label and cycle"
    )
    parser.add_argument(
        "--naive-mailboxes",
        type=_count,
        help="mailboxes the naive loop reads before its time is extrapolated (0: the whole tenant; full mode: 2)",
    )
    parser.add_argument("--scale-sizes", type=_sizes, help="comma-separated item counts for the scale scenario")
    parser.add_argument("--with-1m", action="store_true", help="add the 1,000,000-item size to scale (long)")
    parser.add_argument(
        "--scale-profile", choices=sorted(PROFILES), help="emulator profile for the scale scenario (default fast)"
    )
    parser.add_argument("--quick", action="store_true", help="a few thousand items, short notify run")
    parser.add_argument("--smoke", action="store_true", help="a few dozen items, fast profile: checks the harness")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json", help="results file to update")
    parser.add_argument("--no-chart", action="store_true", help="do not draw the PNG chart")
    return parser


def _classifier(plan: Plan) -> dict[str, Any]:
    run = run_isolated(classifier.measure, plan.tenant()).result
    return {
        "items_per_s_per_core": round(run.items / run.cpu_s, 1) if run.cpu_s else 0.0,
        "with_text_items_per_s_per_core": round(run.text_items / run.text_cpu_s, 1) if run.text_cpu_s else 0.0,
        "items": run.items,
        "with_text_items": run.text_items,
    }


def _scale(plan: Plan) -> dict[str, Any]:
    if not plan.tiny:
        return scale.scale(plan.scale_sizes, profile=plan.scale_profile)
    figures = scale.measure(0, profile=plan.scale_profile, config=TINY)
    return {str(figures["items"]): figures}


def run(plan: Plan, selected: list[str], output: Path, *, draw: bool) -> dict[str, Any]:
    scenarios: dict[str, Any] = {}
    profile: dict[str, Any] | None = None
    started = time.perf_counter()
    if "sync_label" in selected or "incremental" in selected:
        config = plan.tenant()
        print(f"seeding the tenant ({plan.mode}; profile {plan.profile}) ...", flush=True)
        with running_tenant(config, profile=plan.profile) as info:
            profile = info.profile
            print(f"tenant: {info.messages:,} messages, {info.files:,} files, {info.mailboxes} mailboxes", flush=True)
            if "sync_label" in selected:
                figures, cursors = sync_label.sync_label(info, naive_mailboxes=plan.naive_mailboxes)
                scenarios["sync_label"] = {**figures, "mode": plan.mode}
            else:
                cursors = sync_label.full_sync(info).run.result.cursors
            if "incremental" in selected:
                scenarios["incremental"] = {**sync_label.incremental(info, cursors), "mode": plan.mode}
    if "cycle" in selected:
        print(f"cycle (jobs/sync.py; profile {plan.profile}) ...", flush=True)
        with running_tenant(plan.tenant(CYCLE_ITEMS), profile=plan.profile) as info:
            scenarios["cycle"] = {**cycle.cycle(info), "mode": plan.mode, "profile": plan.profile}
    if "classifier" in selected:
        print("classifier ...", flush=True)
        scenarios["classifier"] = {**_classifier(plan), "mode": plan.mode}
    if "scale" in selected:
        print("scale ...", flush=True)
        scenarios["scale"] = _scale(plan)
    if "notify" in selected:
        print("notify ...", flush=True)
        figures = notify.run(duration_s=plan.notify_seconds, saturation_s=plan.saturation_seconds)
        scenarios["notify"] = {**figures, "mode": plan.mode}
    document = write(output, profile=profile, scenarios=scenarios)
    if draw:
        chart(document, output.with_suffix(".png"))
    for name, figures in scenarios.items():
        print(f"{name}: {figures}", flush=True)
    print(f"written to {output} in {time.perf_counter() - started:.0f} s", flush=True)
    return document


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    plan = _plan(args)
    selected = args.scenario or list(SCENARIOS)
    run(plan, selected, args.output, draw=not args.no_chart)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
