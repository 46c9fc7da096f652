"""Label coverage and the inactivity distribution, from data map rows and customers written directly."""

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.service import activity
from app.db.base import utc_now
from app.models import Customer, DatamapItem, DatamapLink, LabelState, ServiceStatus
from app.policy import default_policy
from app.privacy.guard import Audience, DisclosureGuard
from app.reports.service import months_between, reports

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def _item(item_id: str, kind: str, state: str, reason: str | None = None) -> DatamapItem:
    return DatamapItem(
        kind=kind,
        container_id="container",
        item_id=item_id,
        scan_status="scanned",
        findings=[],
        category="confidential",
        category_reason="customer data",
        label_state=state,
        label_reason=reason,
        first_seen_at=utc_now(),
        synced_at=utc_now(),
    )


async def test_coverage_counts_each_item_once_overall_and_once_per_customer(session: AsyncSession) -> None:
    session.add_all(
        [
            Customer(id="R1", legal_name="Kín Đáo Co", do_not_disclose=True),
            Customer(id="R2", legal_name="Open Co"),
            Customer(id="R3", legal_name="Nothing Yet Co"),
        ]
    )
    items = {
        "shared": _item("shared", "message", LabelState.labeled, "applied"),
        "higher": _item("higher", "file", LabelState.kept_higher, "higher_label_kept"),
        "locked": _item("locked", "file", LabelState.failed, "locked"),
        "running": _item("running", "file", LabelState.in_progress, "monitor_pending"),
        "public": _item("public", "file", LabelState.skipped, "category_not_labeled"),
        "nobody": _item("nobody", "message", LabelState.skipped, "category_not_labeled"),
    }
    session.add_all(items.values())
    await session.flush()
    owners = {"shared": ["R1", "R2"], "higher": ["R2"], "locked": ["R2"], "running": ["R1"], "public": ["R2"]}
    session.add_all(
        DatamapLink(item_pk=items[item].id, customer_id=customer, reasons=[])
        for item, customers in owners.items()
        for customer in customers
    )
    await session.flush()
    report = await reports.coverage(session, DisclosureGuard(default_policy(), Audience.CHANNEL))
    by_customer = {c.customer_id: c for c in report.customers}
    assert by_customer["R1"].model_dump(exclude={"customer_id"}) == {
        "customer_name": "R1 (do-not-disclose)",
        "items": 2,
        "labeled": 1,
        "pending": 1,
        "skipped": 0,
        "skipped_reasons": {},
    }
    assert by_customer["R2"].model_dump(exclude={"customer_id", "customer_name"}) == {
        "items": 4,
        "labeled": 1,
        "pending": 0,
        "skipped": 3,
        "skipped_reasons": {"higher_label_kept": 1, "locked": 1, "category_not_labeled": 1},
    }
    assert (by_customer["R2"].customer_name, by_customer["R3"].items) == ("Open Co", 0)
    assert report.overall.model_dump() == {
        "items": 5,
        "labeled": 1,
        "pending": 1,
        "skipped": 3,
        "skipped_reasons": {"higher_label_kept": 1, "locked": 1, "category_not_labeled": 1},
    }
    assert (report.by_kind["message"].items, report.by_kind["file"].items) == (1, 4)
    assert (report.unattributed_items, report.unattributed_by_kind) == (1, {"message": 1})


def _customer(customer_id: str, **values: object) -> Customer:
    customer = Customer(id=customer_id, legal_name=customer_id, created_at=NOW - timedelta(days=1000), **values)
    activity.refresh(customer, now=NOW)
    return customer


async def test_inactivity_is_bucketed_against_the_retention_period(session: AsyncSession) -> None:
    session.add_all(
        [
            _customer("I1", last_mail_at=NOW - timedelta(days=20)),
            _customer("I2", last_file_at=datetime(2026, 2, 1, tzinfo=UTC)),
            _customer("I3", last_event_at=datetime(2025, 11, 20, tzinfo=UTC), last_event_kind="support_ticket"),
            _customer("I4", last_mail_at=datetime(2025, 6, 15, 12, 0, tzinfo=UTC)),
            _customer("I5"),
            _customer(
                "I6",
                last_mail_at=NOW - timedelta(days=90),
                service_status=ServiceStatus.ended,
                service_ended_at=NOW - timedelta(days=60),
            ),
        ]
    )
    await session.flush()
    report = await reports.inactivity(
        session, DisclosureGuard(default_policy(), Audience.STAFF), default_policy(), now=NOW
    )
    assert report.inactivity_months == 12
    assert [(bucket.label, bucket.customers) for bucket in report.buckets] == [
        ("0-3 months", 2),
        ("3-6 months", 1),
        ("6-12 months", 1),
        ("12+ months", 1),
    ]
    assert report.never_active == 1
    # No activity at all counts from registration: registered 1,000 days ago, I5 is inactive too.
    assert report.states == {"active": 3, "inactive": 2, "service_ended": 1}
    rows = {row.customer_id: row for row in report.customers}
    assert (rows["I4"].months_inactive, rows["I4"].state, rows["I4"].deletion_trigger) == (12, "inactive", "inactivity")
    assert (rows["I3"].last_activity_kind, rows["I6"].state) == ("support_ticket", "service_ended")


def test_months_are_whole_calendar_months() -> None:
    start = datetime(2025, 1, 31, tzinfo=UTC)
    assert months_between(start, datetime(2025, 2, 28, tzinfo=UTC)) == 1
    assert months_between(start, datetime(2025, 2, 27, tzinfo=UTC)) == 0
    assert months_between(start, datetime(2026, 1, 31, tzinfo=UTC)) == 12
    assert months_between(start, datetime(2024, 12, 1, tzinfo=UTC)) == 0
