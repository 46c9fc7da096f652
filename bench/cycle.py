"""Scenario "cycle": the product's own sync + classify + label cycle (jobs/sync.py run_sync_cycle), end to end.

What sync_label leaves out is here: the data map in a real store (SQLite, migrated), each new message's body and
each readable file read and scanned, and labels written (files through assignSensitivityLabel and its monitor,
mail through the msip_labels header and category, read back). It runs as the scheduler runs it, so its figures
are the product's throughput today, next to its own ceilings (ceiling.py). The tenant is kept small, because the
cycle walks its containers one after another.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from app.config import Settings
from app.customers.importing import parse_registry_file
from app.customers.service import customers_service
from app.db.engine import create_engine, create_sessionmaker
from app.db.migrate import upgrade_connection
from bench.steward import StewardClient
from bench.tenant import TenantInfo
from jobs.sync import SyncRuntime, run_sync_cycle

BENCH_HASH_KEY = "steward-benchmark-identifier-hash-key"


@dataclass(frozen=True)
class CycleRun:
    seconds: float
    second_seconds: float
    first_ended_at: float  # epoch seconds, to split the tenant's request log between the two cycles
    report: dict[str, Any]
    second_report: dict[str, Any]


async def run_cycles(info: TenantInfo) -> CycleRun:
    """A first cycle on an empty store, then a second one on the unchanged tenant."""
    with tempfile.TemporaryDirectory(prefix="steward-bench-cycle-") as directory:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(directory) / 'steward.db'}")
        try:
            async with engine.connect() as connection:
                await connection.run_sync(upgrade_connection)
            sessions = create_sessionmaker(engine)
            data = json.dumps(info.registry, ensure_ascii=False).encode()
            async with sessions() as session, session.begin():
                await customers_service.import_file(
                    session, parse_registry_file(data, filename="customers.json"), actor="bench"
                )
            steward = StewardClient(info)
            try:
                settings = Settings(
                    _env_file=None,
                    tenant_id=info.endpoints["tenant_id"],
                    client_id=info.endpoints["client_id"],
                    identifier_hash_key=SecretStr(BENCH_HASH_KEY),
                )
                runtime = await SyncRuntime.start(steward.graph, settings)
                started = time.perf_counter()
                first = await run_sync_cycle(sessions, steward.graph, runtime)
                seconds = time.perf_counter() - started
                first_ended_at = time.time()
                started = time.perf_counter()
                second = await run_sync_cycle(sessions, steward.graph, runtime)
                second_seconds = time.perf_counter() - started
            finally:
                await steward.aclose()
        finally:
            await engine.dispose()
    return CycleRun(seconds, second_seconds, first_ended_at, first.as_dict(), second.as_dict())


def cycle(info: TenantInfo) -> dict[str, Any]:
    """The scenario's figures: the first cycle against the profile's ceilings, and what the second one sent."""
    from bench.ceiling import ASSIGN_LABEL_LIMIT, ASSIGN_LABEL_WINDOW_S, throttle_ceiling
    from bench.sync_label import logged

    measured = logged(info, run_cycles)
    run: CycleRun = measured.run.result
    datamap, labels = run.report["datamap"], run.report["labels"]
    first_records = [r for r in measured.records if r.at <= run.first_ended_at]
    second_records = len(measured.records) - len(first_records)
    files_labeled = sum(1 for r in first_records if r.method == "POST" and r.path.endswith("assignSensitivityLabel"))
    label_bound = (-(-files_labeled // ASSIGN_LABEL_LIMIT) - 1) * ASSIGN_LABEL_WINDOW_S if files_labeled else 0.0
    ceiling_s = max(throttle_ceiling(info.profile, first_records), label_bound)
    items = datamap["created"]
    return {
        "items": items,
        "seconds": round(run.seconds, 2),
        "items_per_s": round(items / run.seconds, 1) if run.seconds else 0.0,
        "ceiling_s": round(ceiling_s, 2),
        "ceiling_fraction": round(ceiling_s / run.seconds, 3) if run.seconds else 0.0,
        "requests_per_1000_items": round(len(first_records) / items * 1000, 2) if items else 0.0,
        "content_read": datamap["content_read"],
        "labels_applied": labels["applied"],
        "labels_stopped": labels["stopped"],
        "parked": len(run.report["parked"]),
        "errors": len(run.report["errors"]),
        "peak_rss_mb": round(measured.run.peak_rss_mb, 1),
        "second_cycle_s": round(run.second_seconds, 2),
        "second_cycle_requests": second_records,
        "second_cycle_labels_applied": run.second_report["labels"]["applied"],
    }
