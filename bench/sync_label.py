"""Scenarios "sync_label" and "incremental": Steward's sync versus a naive msgraph-sdk loop, on one tenant.

sync_label: a full sync of every mailbox folder and drive through Steward's Graph layer, each item classified as it
arrives (bench.steward), then the naive loop (bench.naive) on the same tenant, same profile, same run. Each client
runs in a fresh process, so its peak RSS is its own. Classification is from metadata (no body or file content is
read: `content_scanned`), and labels are not written: see `labels_applied` and `label_ceiling_s` in the result, and
bench/README.md for why a 100k-item label pass is bounded by Graph's limits, not by the client.

incremental: every container resumed from the deltaLink the full sync stored, on the unchanged tenant; the
emulator's request log counts what was sent (target: one request per cursor).
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.ceiling import label_ceiling, throttle_ceiling
from bench.isolated import Isolated, run_isolated
from bench.naive import NaiveRun, extrapolated_seconds, naive_sync
from bench.requestlog import Record, RequestLog
from bench.steward import IncrementalRun, SyncRun, steward_incremental, steward_sync
from bench.tenant import TenantInfo
from connectors.graph.paging import Cursor


@dataclass(frozen=True)
class Logged:
    """A client run and the Graph requests the tenant logged while it ran."""

    run: Isolated[Any]
    records: list[Record]


async def _clear(info: TenantInfo) -> None:
    log = RequestLog(info)
    try:
        await log.clear()
    finally:
        await log.aclose()


async def _records(info: TenantInfo) -> list[Record]:
    log = RequestLog(info)
    try:
        return await log.graph_requests()
    finally:
        await log.aclose()


def logged(info: TenantInfo, target: Any, *args: Any) -> Logged:
    asyncio.run(_clear(info))
    run = run_isolated(target, info, *args)
    return Logged(run, asyncio.run(_records(info)))


def full_sync(info: TenantInfo) -> Logged:
    """Steward's full sync; says so loudly when it did not see every item the tenant holds."""
    steward = logged(info, steward_sync)
    run: SyncRun = steward.run.result
    counts = run.counts
    if not complete(info, run):
        print(
            f"  WARNING: Steward's sync is incomplete: {counts.messages}/{info.messages} messages, "
            f"{counts.files}/{info.files} files, unhandled 429s {counts.unhandled_429}, parked {counts.parked}, "
            f"errors {counts.errors[:3]}",
            flush=True,
        )
    return steward


def complete(info: TenantInfo, run: SyncRun) -> bool:
    counts = run.counts
    return (counts.messages, counts.files) == (info.messages, info.files) and not counts.errors


def _per_1000(requests: int, items: int) -> float:
    return round(requests / items * 1000, 2) if items else 0.0


def sync_label(info: TenantInfo, *, naive_mailboxes: int | None) -> tuple[dict[str, Any], dict[str, Cursor]]:
    """The scenario's figures, and the cursors the incremental scenario resumes from."""
    steward = full_sync(info)
    run: SyncRun = steward.run.result
    print(f"  Steward: {run.items} items in {run.seconds:.1f} s, {len(steward.records)} requests", flush=True)

    naive = logged(info, naive_sync, naive_mailboxes)
    sample: NaiveRun = naive.run.result
    print(
        f"  naive: {sample.items} items ({sample.mailboxes} mailboxes, {sample.sites} sites) in "
        f"{sample.seconds:.1f} s, {len(naive.records)} requests",
        flush=True,
    )
    sampled = naive_mailboxes is not None and sample.mailboxes < info.mailboxes
    naive_s = extrapolated_seconds(sample, messages=info.messages, files=info.files) if sampled else sample.seconds

    profile = info.profile
    ceiling_s = throttle_ceiling(profile, steward.records)
    counts = run.counts
    statuses = Counter(record.status for record in steward.records)
    result = {
        "items": run.items,
        "complete": complete(info, run),
        "steward_s": round(run.seconds, 2),
        "naive_s": round(naive_s, 2),
        "ratio": round(naive_s / run.seconds, 2),
        "ceiling_s": round(ceiling_s, 2),
        "ceiling_fraction": round(ceiling_s / run.seconds, 3),
        "requests_per_1000_items": _per_1000(len(steward.records), run.items),
        "peak_rss_mb": round(steward.run.peak_rss_mb, 1),
        "unhandled_429": counts.unhandled_429,
        "messages": counts.messages,
        "files": counts.files,
        "mailboxes": info.mailboxes,
        "drives": info.drives,
        "requests": len(steward.records),
        "throttled_responses": statuses[429],
        "parked": counts.parked,
        "steward_cpu_s": round(steward.run.cpu_s, 1),
        "classified": run.items,
        "content_scanned": False,
        "customer_items": counts.customer_items,
        "labels_applied": False,
        "labels_due": counts.files_due + sum(counts.messages_due.values()),
        "label_ceiling_s": round(
            label_ceiling(profile, files_due=counts.files_due, messages_due=counts.messages_due), 1
        ),
        "naive_items": sample.items,
        "naive_mailboxes": sample.mailboxes,
        "naive_measured_s": round(sample.seconds, 2),
        "naive_extrapolated": sampled,
        "naive_requests_per_1000_items": _per_1000(len(naive.records), sample.items),
        "naive_peak_rss_mb": round(naive.run.peak_rss_mb, 1),
        "naive_unhandled_429": sample.unhandled_429,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    return result, run.cursors


def incremental(info: TenantInfo, cursors: dict[str, Cursor]) -> dict[str, Any]:
    second = logged(info, steward_incremental, cursors)
    run: IncrementalRun = second.run.result
    requests = len(second.records)
    return {
        "cursors": run.cursors,
        "requests": requests,
        "requests_per_cursor": round(requests / run.cursors, 3) if run.cursors else 0.0,
        "changes": run.changes,
        "seconds": round(run.seconds, 2),
        "unhandled_429": run.unhandled_429,
    }
