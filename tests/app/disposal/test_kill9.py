"""kill -9 during execution: `steward execute` runs as a subprocess against the local tenant and a file store,
is killed with SIGKILL at random points (by seed), and restarted until it finishes.

Afterwards exactly the manifest's items are deleted (soft, then permanently for mail), nothing else changed,
every item has exactly one proof of disposal, no message was ever sent two DELETEs (the second would purge it
before its grace window), and the audit chain is intact.
"""

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from app.audit.checkpoints import verify_audit
from app.models import DisposalRecord, PlanStatus
from tests.app.disposal.test_executor import approved_plan, items_of, state_of, with_grace
from tests.app.plans.support import LiveDeletion, customer_by_profile, emulator_values, settings_environment

STEWARD = str(Path(sys.executable).with_name("steward"))
MAX_KILLS = 2
RUN_TIMEOUT_S = 90


def progress(database: Path, plan_id: str) -> int:
    """Units of work recorded so far: every item past `planned`, and once more when purged."""
    with sqlite3.connect(database, timeout=10) as connection:
        (started,) = connection.execute(
            "SELECT count(*) FROM plan_item WHERE plan_id = ? AND action = 'delete' AND state != 'planned'", (plan_id,)
        ).fetchone()
        (purged,) = connection.execute(
            "SELECT count(*) FROM plan_item WHERE plan_id = ? AND state = 'purged'", (plan_id,)
        ).fetchone()
    return int(started) + int(purged)


async def run_until(
    command: list[str], env: dict[str, str], database: Path, plan_id: str, *, kill_at: int | None, rng: random.Random
) -> int | None:
    """Run the executor; SIGKILL it soon after `kill_at` units of progress. Its exit code, or None if killed."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # noqa: ASYNC220
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        while process.poll() is None:
            assert time.monotonic() < deadline, "the executor did not finish in time"
            if kill_at is not None and progress(database, plan_id) >= kill_at:
                # Land anywhere: inside a Graph call, between the call and the commit, inside the commit.
                await asyncio.sleep(rng.uniform(0, 0.15))
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                return None
            await asyncio.sleep(0.01)
        return process.returncode
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        output = process.stderr.read().decode(errors="replace") if process.stderr else ""
        if process.returncode not in (0, -signal.SIGKILL):
            print(output)  # noqa: T201


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 22, 33])
async def test_kill_9_at_random_points_loses_nothing_and_repeats_nothing(
    deletion: LiveDeletion, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    tenant = deletion.tenant
    with_grace(deletion, 0)
    plan = await approved_plan(deletion, customer_by_profile(tenant, "silent"))
    items = await items_of(deletion, plan.id)
    doomed = [item for item in items if item.action == "delete"]
    before = {item.item_id: state_of(tenant, item) for item in items}
    with tenant.lock:
        untouched_messages = {
            (mailbox.user_id, mailbox.immutable_id(message))
            for mailbox in tenant.mail.mailboxes.values()
            for message in mailbox.messages()
        } - {(item.container_id, item.item_id) for item in doomed}
        untouched_files = {item_id for item_id, item in tenant.files.items.items() if item.alive} - {
            i.item_id for i in doomed
        }
    await deletion.control("PUT", "/profile", json={"latency_ms": 5, "jitter_ms": 5})
    await deletion.control("DELETE", "/requests")

    database = Path(deletion.store.url.split("///", 1)[1])
    policy = tmp_path / "policy.yaml"
    policy.write_text("disposal:\n  soft_delete_grace_days: 0\n", encoding="utf-8")
    values = emulator_values(deletion.live, deletion.store.url, policy_path=str(policy))
    env = {key: value for key, value in os.environ.items() if not key.startswith("STEWARD_")}
    env.update(settings_environment(values))
    env["STEWARD_LOG_LEVEL"] = "WARNING"
    command = [STEWARD, "execute", plan.id]

    total = 2 * len(doomed)
    kills = 0
    targets = sorted(rng.sample(range(0, total), k=min(MAX_KILLS, total)))
    for target in targets:
        if await run_until(command, env, database, plan.id, kill_at=target, rng=rng) is None:
            kills += 1
    assert await run_until(command, env, database, plan.id, kill_at=None, rng=rng) == 0
    assert kills >= 1

    after_items = {item.id: item for item in await items_of(deletion, plan.id)}
    async with deletion.store.sessionmaker() as session:
        records = (
            (await session.execute(select(DisposalRecord).where(DisposalRecord.plan_id == plan.id))).scalars().all()
        )
        from app.models import DeletionPlan

        final = await session.get(DeletionPlan, plan.id)
        assert final is not None
        assert final.status == PlanStatus.completed
        assert (await verify_audit(session, None)).intact
    assert sorted(record.plan_item_id for record in records) == sorted(item.id for item in doomed)
    assert {after_items[item.id].state for item in doomed} == {"purged"}
    for item in doomed:
        assert state_of(tenant, item) == ("gone" if item.kind == "message" else "recycle_bin"), item.item_id
    for item in items:
        if item.action == "exclude":
            assert state_of(tenant, item) == before[item.item_id]
    with tenant.lock:
        assert all(
            tenant.mail.mailboxes[user].resolve(message_id) is not None for user, message_id in untouched_messages
        )
        assert all(tenant.files.items[item_id].alive for item_id in untouched_files)
    message_deletes: dict[str, int] = {}
    for record in await deletion.requests(method="DELETE"):
        if "/messages/" in record["path"]:
            message_deletes[record["path"]] = message_deletes.get(record["path"], 0) + 1
    assert message_deletes
    assert max(message_deletes.values()) == 1
