from typing import Any

import pytest
from sqlalchemy import delete, insert, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import GENESIS_HASH, audit, record_hash
from app.db.base import utc_now
from app.models import AuditRecord


async def _append_three(session: AsyncSession) -> list[AuditRecord]:
    return [
        await audit.append(session, actor="steward", action="label.assigned", subject="drive/item-1"),
        await audit.append(
            session,
            actor="approver@example.com",
            action="deletion.approved",
            subject="customer/c-7",
            payload={"reason": "service ended > 12 months", "items": 3, "nested": {"b": 1, "a": [1.5, "ư"]}},
        ),
        await audit.append(session, actor="steward", action="deletion.done", subject="customer/c-7"),
    ]


async def test_records_form_a_verifiable_chain(session: AsyncSession) -> None:
    first, second, third = await _append_three(session)
    assert (first.seq, second.seq, third.seq) == (1, 2, 3)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    # Reload from the database: the hash must survive the JSON/timestamp round trip on each backend.
    session.expunge_all()
    check = await audit.verify(session)
    assert check.intact
    assert check.records == 3


async def test_verify_reports_the_first_forged_record(session: AsyncSession) -> None:
    first, _, _ = await _append_three(session)
    at = utc_now()
    forged = {"seq": 4, "at": at, "actor": "intruder", "action": "deletion.done", "subject": "customer/c-9"}
    session.add(AuditRecord(**forged, payload={}, prev_hash=first.hash[::-1], hash="f" * 64))
    await session.flush()
    session.expunge_all()
    check = await audit.verify(session)
    assert not check.intact
    assert check.first_broken_seq == 4


async def test_the_chain_cannot_fork(session: AsyncSession) -> None:
    first, _, _ = await _append_three(session)
    # A second writer that read the same tail as the writer of `second` tries to link to `first` too.
    at = utc_now()
    fields: dict[str, Any] = {"seq": 4, "at": at, "actor": "steward", "action": "x", "subject": "y", "payload": {}}
    fork = insert(AuditRecord).values(**fields, prev_hash=first.hash, hash=record_hash(**fields, prev_hash=first.hash))
    with pytest.raises(IntegrityError, match="(?i)unique.*prev_hash"):
        async with session.begin_nested():
            await session.execute(fork)


@pytest.mark.parametrize(
    "statement",
    [
        update(AuditRecord).where(AuditRecord.seq == 2).values(actor="someone else"),
        delete(AuditRecord).where(AuditRecord.seq == 2),
    ],
    ids=["update", "delete"],
)
async def test_records_cannot_be_changed_or_removed(session: AsyncSession, statement: object) -> None:
    await _append_three(session)
    with pytest.raises(DBAPIError, match="append-only"):
        async with session.begin_nested():
            await session.execute(statement)  # type: ignore[call-overload]
    session.expunge_all()
    assert (await audit.verify(session)).records == 3
