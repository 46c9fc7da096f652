"""The activity clock: the latest of mail, guests' file changes, explicit events and an imported date."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.service import DuplicateEventReference, activity
from app.exceptions import BadRequest
from app.models import AuditRecord, Customer, CustomerEvent
from app.policy import default_policy

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _customer(**values: object) -> Customer:
    return Customer(id="A1", legal_name="Activity Co", created_at=NOW - timedelta(days=900), **values)


def test_last_activity_is_the_latest_signal_with_its_kind() -> None:
    customer = _customer(
        last_mail_at=NOW - timedelta(days=40),
        last_file_at=NOW - timedelta(days=10),
        last_event_at=NOW - timedelta(days=20),
        last_event_kind="purchase",
        imported_activity_at=NOW - timedelta(days=5),
    )
    activity.refresh(customer, now=NOW)
    assert (customer.last_activity_at, customer.last_activity_kind) == (NOW - timedelta(days=5), "imported")
    customer.imported_activity_at = None
    activity.refresh(customer, now=NOW)
    assert (customer.last_activity_at, customer.last_activity_kind) == (NOW - timedelta(days=10), "file")


def test_signals_only_move_forward_and_a_future_one_is_refused() -> None:
    customer = _customer()
    assert activity.note(customer, "mail", NOW - timedelta(days=3), now=NOW)
    assert not activity.note(customer, "mail", NOW - timedelta(days=30), now=NOW)
    assert not activity.note(customer, "mail", NOW + timedelta(days=2), now=NOW)
    assert (customer.last_mail_at, customer.last_activity_kind) == (NOW - timedelta(days=3), "mail")


async def test_an_event_is_recorded_once_per_reference_and_audited(session: AsyncSession) -> None:
    customer = _customer(last_mail_at=NOW - timedelta(days=400))
    session.add(customer)
    await session.flush()
    occurred = NOW - timedelta(days=2)
    event, created = await activity.record_event(
        session, customer, kind="purchase", occurred_at=occurred, reference="SO-1", recorded_by="sales", now=NOW
    )
    again, created_again = await activity.record_event(
        session, customer, kind="purchase", occurred_at=occurred, reference="SO-1", recorded_by="sales", now=NOW
    )
    assert (created, created_again, again.id) == (True, False, event.id)
    assert (customer.last_activity_at, customer.last_activity_kind) == (occurred, "purchase")
    events = (await session.execute(select(CustomerEvent).where(CustomerEvent.customer_id == "A1"))).scalars()
    assert len(list(events)) == 1
    audits = (
        await session.execute(select(AuditRecord).where(AuditRecord.action == "customer.event_recorded"))
    ).scalars()
    assert [record.subject for record in audits] == ["A1"]


async def test_a_reference_reported_again_with_another_date_is_a_conflict(session: AsyncSession) -> None:
    customer = _customer()
    session.add(customer)
    await session.flush()
    await activity.record_event(
        session, customer, kind="support_ticket", occurred_at=NOW, reference="T-9", recorded_by="helpdesk", now=NOW
    )
    with pytest.raises(DuplicateEventReference):
        await activity.record_event(
            session,
            customer,
            kind="support_ticket",
            occurred_at=NOW - timedelta(days=1),
            reference="T-9",
            recorded_by="helpdesk",
            now=NOW,
        )


async def test_future_events_are_refused_and_older_ones_do_not_move_the_clock_back(session: AsyncSession) -> None:
    customer = _customer()
    session.add(customer)
    await session.flush()
    with pytest.raises(BadRequest, match="future"):
        await activity.record_event(
            session,
            customer,
            kind="purchase",
            occurred_at=NOW + timedelta(hours=1),
            reference=None,
            recorded_by="x",
            now=NOW,
        )
    await activity.record_event(
        session,
        customer,
        kind="purchase",
        occurred_at=NOW - timedelta(days=1),
        reference=None,
        recorded_by="x",
        now=NOW,
    )
    await activity.record_event(
        session,
        customer,
        kind="support_ticket",
        occurred_at=NOW - timedelta(days=50),
        reference=None,
        recorded_by="x",
        now=NOW,
    )
    assert (customer.last_event_at, customer.last_event_kind) == (NOW - timedelta(days=1), "purchase")


def test_a_purchase_keeps_a_customer_active_and_silence_makes_it_inactive() -> None:
    policy = default_policy()
    bought = _customer(last_event_at=NOW - timedelta(days=30), last_event_kind="purchase")
    activity.refresh(bought, now=NOW)
    status = activity.status(bought, policy=policy, now=NOW)
    assert (status.state, status.last_activity_kind, status.deletion_due) == ("active", "purchase", False)
    silent = _customer(last_mail_at=NOW - timedelta(days=500))
    activity.refresh(silent, now=NOW)
    assert activity.status(silent, policy=policy, now=NOW).state == "inactive"
