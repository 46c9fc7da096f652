"""The outbox: written with the state change or not at all; relayed at least once, with backoff, never twice at once."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app.db.base import utc_now
from app.models import AuditRecord, DeletionPlan, OutboxMessage, TriggerKind
from app.notifications.relay import MAX_ATTEMPTS, Relay, backoff
from app.plans.context import DeletionContext
from app.plans.service import PlanRequest, Requester, build_plan, exclude_item, plan_items
from app.teams.sender import Posted, TeamsError
from tests.app.plans.conftest import REQUESTER, Clock
from tests.app.plans.support import Store, mapped

PERSON = Requester(REQUESTER, "Privacy Officer")


class RecordingSender:
    mode = "bot"

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.posts: list[dict[str, Any]] = []
        self.updates: list[tuple[str, dict[str, Any]]] = []

    async def post(self, card: dict[str, Any]) -> Posted:
        if self.failures:
            self.failures -= 1
            raise TeamsError("connector answered 503")
        self.posts.append(card)
        return Posted("19:channel@thread.tacv2", f"activity-{len(self.posts)}")

    async def update(self, conversation_id: str, activity_id: str, card: dict[str, Any]) -> None:
        self.updates.append((activity_id, card))

    async def reply(self, conversation_id: str, activity_id: str | None, text: str) -> None:
        return None

    async def aclose(self) -> None:
        return None


async def new_plan(store: Store, ctx: DeletionContext) -> DeletionPlan:
    async with store.sessionmaker() as session, session.begin():
        return await build_plan(
            session, ctx, PlanRequest(TriggerKind.company_decision, ("C1",), PERSON, reason="done"), dry_run=False
        )


async def outbox(store: Store) -> list[OutboxMessage]:
    async with store.sessionmaker() as session:
        return list((await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars().all())


@pytest.fixture
def ctx(make_context: Callable[..., DeletionContext]) -> DeletionContext:
    return make_context(items=[mapped("f1", "C1"), mapped("f2", "C1")])


async def test_no_plan_no_card_when_the_transaction_rolls_back(store: Store, ctx: DeletionContext) -> None:
    async def crash_before_commit() -> None:
        async with store.sessionmaker() as session, session.begin():
            await build_plan(
                session, ctx, PlanRequest(TriggerKind.company_decision, ("C1",), PERSON, reason="x"), dry_run=False
            )
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        await crash_before_commit()

    assert await outbox(store) == []
    async with store.sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(DeletionPlan))).scalar_one() == 0


async def test_relay_retries_with_backoff_then_delivers_once(store: Store, ctx: DeletionContext, clock: Clock) -> None:
    plan = await new_plan(store, ctx)
    clock.now = utc_now()  # the outbox row is due from its creation on
    sender = RecordingSender(failures=2)
    relay = Relay(store.sessionmaker, ctx.settings, cards=sender, mailer=None, clock=clock)

    first = await relay.run_once()
    too_early = await relay.run_once()
    clock.now += backoff(1)
    second = await relay.run_once()
    clock.now += backoff(2)
    third = await relay.run_once()
    fourth = await relay.run_once()

    assert (len(first.retried), too_early.sent + too_early.retried, len(second.retried), len(third.sent)) == (
        1,
        [],
        1,
        1,
    )
    assert fourth.sent == []
    (message,) = await outbox(store)
    assert (message.status, message.attempts, message.result["activity_id"]) == ("sent", 2, "activity-1")
    assert len(sender.posts) == 1
    async with store.sessionmaker() as session:
        current = await session.get(DeletionPlan, plan.id)
        assert current is not None
        assert current.card_activity_id == "activity-1"


async def test_relay_gives_up_after_the_last_attempt_and_audits_it(
    store: Store, ctx: DeletionContext, clock: Clock
) -> None:
    await new_plan(store, ctx)
    clock.now = utc_now()
    relay = Relay(store.sessionmaker, ctx.settings, cards=RecordingSender(failures=100), mailer=None, clock=clock)

    for _ in range(MAX_ATTEMPTS):
        await relay.run_once()
        clock.now += timedelta(hours=2)

    (message,) = await outbox(store)
    assert (message.status, message.attempts) == ("failed", MAX_ATTEMPTS)
    async with store.sessionmaker() as session:
        actions = (await session.execute(select(AuditRecord.action))).scalars().all()
    assert "outbox.failed" in actions


async def test_a_new_manifest_version_updates_the_live_card_instead_of_posting_a_second(
    store: Store, ctx: DeletionContext
) -> None:
    plan = await new_plan(store, ctx)
    sender = RecordingSender()
    relay = Relay(store.sessionmaker, ctx.settings, cards=sender, mailer=None)
    await relay.run_once()
    async with store.sessionmaker() as session, session.begin():
        current = await session.get(DeletionPlan, plan.id)
        assert current is not None
        item = (await plan_items(session, plan.id))[0]
        await exclude_item(session, ctx, current, item.id, reason="kept by request", by=PERSON)

    await relay.run_once()

    assert len(sender.posts) == 1
    assert [activity for activity, _ in sender.updates] == ["activity-1"]


async def test_a_claimed_message_is_not_sent_by_a_second_relay(store: Store, ctx: DeletionContext) -> None:
    await new_plan(store, ctx)
    first, second = RecordingSender(), RecordingSender()
    relay_one = Relay(store.sessionmaker, ctx.settings, cards=first, mailer=None)
    relay_two = Relay(store.sessionmaker, ctx.settings, cards=second, mailer=None)

    claimed = await relay_one._claim()
    report = await relay_two.run_once()

    assert len(claimed) == 1
    assert report.sent == []
    assert second.posts == []
