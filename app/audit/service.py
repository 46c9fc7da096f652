"""Appending to and verifying the hash chain of the audit log."""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.repository import AuditRecordRepository
from app.db.base import utc_now
from app.models import AuditRecord

GENESIS_HASH = "0" * 64


def record_hash(
    *, seq: int, at: datetime, actor: str, action: str, subject: str, payload: dict[str, Any], prev_hash: str
) -> str:
    # Canonical JSON (sorted keys, no whitespace) so the hash survives a round trip through JSONB,
    # which does not keep key order.
    canonical = json.dumps(
        {
            "seq": seq,
            "at": at.isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "subject": subject,
            "payload": payload,
            "prev_hash": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainCheck:
    records: int
    first_broken_seq: int | None

    @property
    def intact(self) -> bool:
        return self.first_broken_seq is None


class AuditService:
    async def append(
        self,
        session: AsyncSession,
        *,
        actor: str,
        action: str,
        subject: str,
        payload: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """Chain a new record onto the log. A concurrent append from the same tail fails on commit."""
        repository = AuditRecordRepository(session)
        last = await repository.get_last()
        seq, prev_hash = (last.seq + 1, last.hash) if last else (1, GENESIS_HASH)
        at = utc_now()
        body = payload or {}
        record = AuditRecord(
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            subject=subject,
            payload=body,
            prev_hash=prev_hash,
            hash=record_hash(
                seq=seq, at=at, actor=actor, action=action, subject=subject, payload=body, prev_hash=prev_hash
            ),
        )
        return await repository.create(record, flush=True)

    async def verify(self, session: AsyncSession) -> ChainCheck:
        """Recompute every hash in order; report the first record whose content or link does not match."""
        expected_prev, expected_seq, count = GENESIS_HASH, 1, 0
        async for record in AuditRecordRepository(session).stream_in_order():
            count += 1
            recomputed = record_hash(
                seq=record.seq,
                at=record.at,
                actor=record.actor,
                action=record.action,
                subject=record.subject,
                payload=record.payload,
                prev_hash=record.prev_hash,
            )
            if record.seq != expected_seq or record.prev_hash != expected_prev or record.hash != recomputed:
                return ChainCheck(records=count, first_broken_seq=record.seq)
            expected_prev, expected_seq = record.hash, record.seq + 1
        return ChainCheck(records=count, first_broken_seq=None)


audit = AuditService()
