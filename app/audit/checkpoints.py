"""Signed checkpoints of the audit chain, and the full verification behind `steward audit verify`.

The hash chain (service.py) shows an edited, deleted or reordered record, but not a cut-off tail: a chain that
simply ends earlier still verifies. A checkpoint signs (last seq, record count, last hash) with an Ed25519 key
kept outside the database and chains to the previous checkpoint's signature, so a truncated log no longer
reaches a signed hash, and a removed or altered checkpoint breaks the checkpoint chain. Each checkpoint is
also written to the service log, a second copy outside the database.
"""

import base64
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.repository import AuditRecordRepository
from app.audit.service import audit
from app.db.base import utc_now
from app.models import AuditCheckpoint, AuditRecord

log = logging.getLogger(__name__)


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A PEM public key, or the public half of a PEM private key."""
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        return load_signing_key(path).public_key()
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


def signed_statement(*, last_seq: int, record_count: int, last_hash: str, prev_signature: str) -> bytes:
    statement = {
        "last_seq": last_seq,
        "record_count": record_count,
        "last_hash": last_hash,
        "prev_signature": prev_signature,
    }
    return json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()


async def write_checkpoint(session: AsyncSession, signing_key: Ed25519PrivateKey) -> AuditCheckpoint | None:
    """Sign the current tail; None when nothing was appended since the last checkpoint."""
    repository = AuditRecordRepository(session)
    last = await repository.get_last()
    if last is None:
        return None
    previous = await _last_checkpoint(session)
    if previous is not None and previous.last_seq == last.seq:
        return None
    count = int((await session.execute(select(func.count()).select_from(AuditRecord))).scalar_one())
    prev_signature = previous.signature if previous else ""
    statement = signed_statement(
        last_seq=last.seq, record_count=count, last_hash=last.hash, prev_signature=prev_signature
    )
    signature = base64.b64encode(signing_key.sign(statement)).decode()
    checkpoint = AuditCheckpoint(
        last_seq=last.seq,
        record_count=count,
        last_hash=last.hash,
        created_at=utc_now(),
        key_id=key_id(signing_key.public_key()),
        prev_signature=prev_signature,
        signature=signature,
    )
    session.add(checkpoint)
    await session.flush()
    log.info("audit checkpoint seq=%s count=%s hash=%s signature=%s", last.seq, count, last.hash, signature)
    return checkpoint


async def _last_checkpoint(session: AsyncSession) -> AuditCheckpoint | None:
    result = await session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1))
    return result.scalar_one_or_none()


@dataclass
class AuditVerification:
    records: int = 0
    checkpoints: int = 0
    first_broken_seq: int | None = None
    unsigned_tail: int = 0  # records appended after the last checkpoint
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


async def verify_audit(session: AsyncSession, public_key: Ed25519PublicKey | None) -> AuditVerification:
    """Check the hash chain, then every checkpoint's signature and that the log still reaches each of them."""
    report = AuditVerification()
    chain = await audit.verify(session)
    report.records = chain.records
    report.first_broken_seq = chain.first_broken_seq
    if not chain.intact:
        report.problems.append(
            f"the hash chain breaks at record {chain.first_broken_seq}: a record was edited, deleted or reordered"
        )
    rows = (await session.execute(select(AuditRecord.seq, AuditRecord.hash))).all()
    hashes: dict[int, str] = {int(seq): str(digest) for seq, digest in rows}
    max_seq = max(hashes, default=0)
    checkpoints = (await session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.id))).scalars().all()
    report.checkpoints = len(checkpoints)
    if public_key is None:
        if checkpoints:
            report.problems.append("checkpoints exist but no verification key was given")
        return report
    expected_prev = ""
    for checkpoint in checkpoints:
        where = f"checkpoint #{checkpoint.id} (seq {checkpoint.last_seq})"
        statement = signed_statement(
            last_seq=checkpoint.last_seq,
            record_count=checkpoint.record_count,
            last_hash=checkpoint.last_hash,
            prev_signature=checkpoint.prev_signature,
        )
        try:
            public_key.verify(base64.b64decode(checkpoint.signature), statement)
        except (InvalidSignature, ValueError):
            report.problems.append(f"{where}: bad signature")
            continue
        if checkpoint.prev_signature != expected_prev:
            report.problems.append(f"{where}: does not follow the previous checkpoint (one was removed or altered)")
        expected_prev = checkpoint.signature
        if checkpoint.last_seq > max_seq:
            report.problems.append(f"{where}: the log ends at seq {max_seq}; its tail was truncated")
        elif hashes.get(checkpoint.last_seq) != checkpoint.last_hash:
            report.problems.append(f"{where}: the record it signed is missing or changed")
        elif sum(1 for seq in hashes if seq <= checkpoint.last_seq) != checkpoint.record_count:
            report.problems.append(f"{where}: the number of records up to it changed")
    last_signed = checkpoints[-1].last_seq if checkpoints else 0
    report.unsigned_tail = sum(1 for seq in hashes if seq > last_signed)
    return report
