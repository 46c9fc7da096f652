from datetime import UTC, datetime

import pytest

from app.classification import ActivityEvent, activity_status, latest_activity
from app.classification.activity import add_months
from app.policy import Policy, parse_policy

NOW = datetime(2026, 1, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2025, 1, 31), 1, datetime(2025, 2, 28)),
        (datetime(2024, 2, 29), 12, datetime(2025, 2, 28)),
        (datetime(2025, 11, 15), 2, datetime(2026, 1, 15)),
        (datetime(2025, 5, 10), 12, datetime(2026, 5, 10)),
    ],
)
def test_add_months(start, months, expected):
    assert add_months(start, months) == expected


def test_latest_ignores_events_from_the_future_and_accepts_naive_utc():
    events = [
        ActivityEvent("C1", "purchase", datetime(2025, 1, 1)),
        ActivityEvent("C1", "mail", datetime(2030, 1, 1, tzinfo=UTC)),
        ActivityEvent("C1", "support_ticket", datetime(2025, 6, 1, tzinfo=UTC)),
    ]
    latest = latest_activity(events, now=NOW)
    assert latest["C1"] == ActivityEvent("C1", "support_ticket", datetime(2025, 6, 1, tzinfo=UTC))


def test_registration_date_is_the_baseline_without_activity():
    status = activity_status("C1", last=None, now=NOW, policy=Policy(), registered_at=datetime(2024, 1, 1))
    assert (status.state, status.last_activity_at, status.deletion_due) == ("inactive", None, True)
    assert status.inactive_days == (NOW - datetime(2024, 1, 1, tzinfo=UTC)).days


def test_no_signal_at_all_is_unknown_and_never_due():
    status = activity_status("C1", last=None, now=NOW, policy=Policy())
    assert (status.state, status.deletion_due, status.deletion_due_at) == ("unknown", False, None)


def test_disabled_trigger_never_makes_deletion_due():
    policy = parse_policy("deletion:\n  inactivity:\n    enabled: false\n")
    last = ActivityEvent("C1", "mail", datetime(2020, 1, 1, tzinfo=UTC))
    status = activity_status("C1", last=last, now=NOW, policy=policy, service_ended_at=datetime(2021, 1, 1))
    assert (status.state, status.deletion_due, status.deletion_trigger) == ("service_ended", False, None)


def test_inactivity_period_and_grace_come_from_the_policy():
    policy = parse_policy("retention: {inactivity_months: 24}\ndeletion:\n  inactivity: {grace_days: 0}\n")
    last = ActivityEvent("C1", "mail", datetime(2024, 1, 15, tzinfo=UTC))
    status = activity_status("C1", last=last, now=NOW, policy=policy)
    assert (status.state, status.deletion_due, status.deletion_due_at) == ("inactive", True, NOW)
