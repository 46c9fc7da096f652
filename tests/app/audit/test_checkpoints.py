"""Signed checkpoints and `steward audit verify`: an edited, deleted, reordered or truncated record is found.

The tampering is done as an attacker with full database rights would: the append-only triggers are dropped
first, then rows are changed with plain SQL.
"""

import asyncio
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.audit.checkpoints import verify_audit, write_checkpoint
from app.audit.service import audit
from tests.app.plans.support import Store, migrated_store

STEWARD = str(Path(sys.executable).with_name("steward"))


@pytest.fixture
async def audit_store(tmp_path: Path) -> AsyncIterator[tuple[Store, Path]]:
    database = tmp_path / "audit.db"
    store, engine = await migrated_store(f"sqlite+aiosqlite:///{database}")
    try:
        yield store, database
    finally:
        await engine.dispose()


@pytest.fixture
def key(tmp_path: Path) -> tuple[Ed25519PrivateKey, Path]:
    private = Ed25519PrivateKey.generate()
    path = tmp_path / "audit-signing.pem"
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return private, path


async def fill(store: Store, private: Ed25519PrivateKey) -> None:
    """Records 1-3, a checkpoint, records 4-6, a checkpoint, records 7-8 (an unsigned tail)."""
    for batch in ((1, 2, 3), (4, 5, 6), (7, 8)):
        async with store.sessionmaker() as session, session.begin():
            for n in batch:
                await audit.append(session, actor="tester", action="test.event", subject=f"s{n}", payload={"n": n})
            if len(batch) == 3:
                assert await write_checkpoint(session, private) is not None
                assert await write_checkpoint(session, private) is None  # nothing new since


def tamper(database: Path, *statements: str) -> None:
    with sqlite3.connect(database) as connection:
        connection.execute("DROP TRIGGER audit_record_no_update")
        connection.execute("DROP TRIGGER audit_record_no_delete")
        connection.execute("DROP TRIGGER audit_checkpoint_no_update")
        connection.execute("DROP TRIGGER audit_checkpoint_no_delete")
        for statement in statements:
            connection.execute(statement)


async def verification(store: Store, private: Ed25519PrivateKey) -> list[str]:
    async with store.sessionmaker() as session:
        report = await verify_audit(session, private.public_key())
    return report.problems


async def test_an_intact_log_verifies(audit_store: tuple[Store, Path], key: tuple[Ed25519PrivateKey, Path]) -> None:
    store, _ = audit_store
    await fill(store, key[0])
    async with store.sessionmaker() as session:
        report = await verify_audit(session, key[0].public_key())
    assert (report.intact, report.records, report.checkpoints, report.unsigned_tail) == (True, 8, 2, 2)


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        (["UPDATE audit_record SET payload = '{\"n\": 99}' WHERE seq = 2"], "breaks at record 2"),
        (["DELETE FROM audit_record WHERE seq = 5"], "breaks at record 6"),
        (
            [
                "UPDATE audit_record SET seq = -2 WHERE seq = 2",
                "UPDATE audit_record SET seq = 2 WHERE seq = 3",
                "UPDATE audit_record SET seq = 3 WHERE seq = -2",
            ],
            "breaks at record 2",
        ),
        (["DELETE FROM audit_record WHERE seq >= 5"], "its tail was truncated"),
        (["DELETE FROM audit_checkpoint WHERE id = 1"], "does not follow the previous checkpoint"),
        (["UPDATE audit_checkpoint SET record_count = 2 WHERE id = 1"], "bad signature"),
    ],
    ids=["edited", "deleted", "reordered", "truncated", "checkpoint-removed", "checkpoint-edited"],
)
async def test_tampering_is_found(
    audit_store: tuple[Store, Path], key: tuple[Ed25519PrivateKey, Path], statements: list[str], expected: str
) -> None:
    store, database = audit_store
    await fill(store, key[0])

    tamper(database, *statements)

    problems = await verification(store, key[0])
    assert any(expected in problem for problem in problems), problems


async def verify_command(env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        STEWARD, "audit", "verify", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_audit_verify_command_exit_codes(
    audit_store: tuple[Store, Path], key: tuple[Ed25519PrivateKey, Path]
) -> None:
    store, database = audit_store
    await fill(store, key[0])
    env = {name: value for name, value in os.environ.items() if not name.startswith("STEWARD_")}
    env.update(
        {"STEWARD_ENV": "testing", "STEWARD_DATABASE_URL": store.url, "STEWARD_AUDIT_SIGNING_KEY_PATH": str(key[1])}
    )

    intact = await verify_command(env)
    tamper(database, "DELETE FROM audit_record WHERE seq >= 4")
    broken = await verify_command(env)

    assert intact[0] == 0, intact[1]
    assert "audit log intact" in intact[1]
    assert broken[0] == 1
    assert "truncated" in broken[1]
