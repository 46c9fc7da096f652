"""Scenario "scale": the same full sync at growing tenant sizes: wall time, items/s and the client's peak RSS.

Each size gets a tenant of its own (seeded and served in a separate process) and a fresh client process, so the
peak RSS is the sync's alone. The profile is "fast" by default: this scenario asks whether Steward's own work
(parsing, classifying, bookkeeping) stays flat in memory and linear in time, which throttling would hide.
"""

from __future__ import annotations

from typing import Any

from bench.isolated import run_isolated
from bench.steward import SyncRun, steward_sync
from bench.sync_label import complete
from bench.tenant import config_for_items, running_tenant
from emulator.seed import SeedConfig


def measure(size: int, *, profile: str, config: SeedConfig | None = None) -> dict[str, Any]:
    config = config or config_for_items(size)
    with running_tenant(config, profile=profile) as info:
        isolated = run_isolated(steward_sync, info)
    run: SyncRun = isolated.result
    return {
        "items": run.items,
        "seconds": round(run.seconds, 2),
        "items_per_s": round(run.items / run.seconds, 1),
        "peak_rss_mb": round(isolated.peak_rss_mb, 1),
        "cpu_s": round(isolated.cpu_s, 1),
        "mailboxes": info.mailboxes,
        "drives": info.drives,
        "complete": complete(info, run),
        "profile": profile,
    }


def scale(sizes: list[int], *, profile: str, tiny: SeedConfig | None = None) -> dict[str, Any]:
    """{str(size): figures}; `tiny` replaces the sizing for the smoke test (a handful of items)."""
    results: dict[str, Any] = {}
    for size in sizes:
        print(f"  scale {size:,} items ...", flush=True)
        results[str(size)] = measure(size, profile=profile, config=tiny)
    return results
