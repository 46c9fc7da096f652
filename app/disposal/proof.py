"""Proof of disposal: per item, who asked, who approved and when, the manifest hash, Graph's request-ids and the
outcome; never content. Exported as JSON or CSV for auditors and kept for the policy's retention period."""

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import DisposalRecord

FIELDS = (
    "plan_id",
    "tenant_id",
    "customer_ids",
    "kind",
    "container_id",
    "item_id",
    "name_hash",
    "size",
    "manifest_hash",
    "trigger",
    "requested_by",
    "requested_by_name",
    "approvers",
    "outcome",
    "detail",
    "soft_deleted_at",
    "soft_request_id",
    "purge_mode",
    "purge_due_at",
    "purged_at",
    "purge_request_id",
    "recorded_at",
    "retain_until",
)


async def records_for(session: AsyncSession, plan_id: str) -> list[DisposalRecord]:
    result = await session.execute(
        select(DisposalRecord).where(DisposalRecord.plan_id == plan_id).order_by(DisposalRecord.plan_item_id)
    )
    return list(result.scalars().all())


def record_row(record: DisposalRecord) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in FIELDS:
        value = getattr(record, name)
        row[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return row


def export_json(records: Sequence[DisposalRecord]) -> str:
    return json.dumps([record_row(record) for record in records], ensure_ascii=False, indent=2)


def export_csv(records: Sequence[DisposalRecord]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(FIELDS), lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = record_row(record)
        row["customer_ids"] = ";".join(row["customer_ids"])
        row["approvers"] = ";".join(f"{a.get('name')} <{a.get('subject')}> at {a.get('at')}" for a in row["approvers"])
        writer.writerow(row)
    return buffer.getvalue()
