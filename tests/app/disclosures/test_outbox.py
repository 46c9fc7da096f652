"""Disclosure notifications share the transactional outbox with deletion: each relay delivers only its own kinds.

The deletion relay (app.notifications.relay) must leave `disclosure.*` rows alone, or a customer's notice would be
marked sent without ever leaving; the disclosure relay delivers them. Both relays run against one store here.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app.disclosures import notify, service
from app.models import OutboxMessage, OutboxStatus
from app.notifications.relay import Relay
from tests.app.disclosures.support import CLERK, FakeMail, FakeTeams, intake, make_context, seed
from tests.app.plans.support import Store, migrated_store
from tests.conftest import Database


@pytest.fixture
async def store(empty_database: Database) -> AsyncIterator[Store]:
    migrated, engine = await migrated_store(empty_database.url, empty_database.connect_args)
    try:
        yield migrated
    finally:
        await engine.dispose()


async def disclosure_rows(store: Store) -> list[OutboxMessage]:
    async with store.sessionmaker() as session:
        rows = await session.execute(select(OutboxMessage).where(OutboxMessage.kind.in_(sorted(notify.KINDS))))
        return list(rows.scalars().all())


async def test_each_relay_delivers_only_its_own_kinds(store: Store, tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    async with store.sessionmaker() as session, session.begin():
        await seed(session)
        await service.receive(session, ctx, intake(), actor=CLERK)
    assert {row.kind for row in await disclosure_rows(store)} == notify.KINDS

    await Relay(store.sessionmaker, ctx.settings, cards=FakeTeams(), mailer=None).run_once()
    assert {row.status for row in await disclosure_rows(store)} == {OutboxStatus.pending}, (
        "the deletion relay claimed disclosure rows: it must claim only the kinds it delivers"
    )

    mail = FakeMail()
    await notify.relay_job(store.sessionmaker, notify.Delivery(ctx.settings, ctx.policy, mail=mail, teams=FakeTeams()))
    assert len(mail.sent) == 1
    delivered = [row for row in await disclosure_rows(store) if row.status == OutboxStatus.sent]
    assert {row.kind for row in delivered} == notify.KINDS
