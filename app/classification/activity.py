"""The activity clock: a customer's last activity and whether the inactivity deletion trigger is due.

Last activity = the latest of mail exchanged with the customer, files touched by the customer's guests and
explicit events (purchase, support ticket, or a date imported with the registry). The service end date is kept
apart: it starts its own grace period.
"""

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from app.classification.attribution import ItemMetadata
from app.classification.verdict import Verdict
from app.policy.schemas import Policy

ActivityKind = Literal["mail", "file", "purchase", "support_ticket", "imported"]
ActivityState = Literal["active", "inactive", "service_ended", "unknown"]
_MAIL_RULES = frozenset({"participant.domain", "participant.contact"})


@dataclass(frozen=True, slots=True)
class ActivityEvent:
    customer_id: str
    kind: ActivityKind
    at: datetime


@dataclass(frozen=True, slots=True)
class ActivityStatus:
    customer_id: str
    state: ActivityState
    last_activity_at: datetime | None
    last_activity_kind: ActivityKind | None
    inactive_days: int | None  # days since the last activity (or since registration when there was none)
    deletion_due_at: datetime | None  # when the inactivity / service-ended trigger fires; None if it cannot
    deletion_trigger: Literal["inactivity", "service_ended"] | None
    deletion_due: bool


def activity_from_item(item: ItemMetadata, verdict: Verdict) -> list[ActivityEvent]:
    """Activity an item proves: mail with a customer participant, or a file a customer's guest modified."""
    if item.timestamp is None:
        return []
    events = []
    for attribution in verdict.customers:
        rules = {reason.rule for reason in attribution.reasons}
        if item.kind == "message" and rules & _MAIL_RULES:
            events.append(ActivityEvent(attribution.customer_id, "mail", _aware(item.timestamp)))
        elif item.kind == "file" and "modified_by.guest" in rules:
            events.append(ActivityEvent(attribution.customer_id, "file", _aware(item.timestamp)))
    return events


def latest_activity(events: Iterable[ActivityEvent], *, now: datetime) -> dict[str, ActivityEvent]:
    """The latest event per customer. Events dated after `now` are ignored: a wrong clock must not keep a
    customer active forever."""
    now = _aware(now)
    latest: dict[str, ActivityEvent] = {}
    for event in events:
        at = _aware(event.at)
        if at > now:
            continue
        current = latest.get(event.customer_id)
        if current is None or at > current.at:
            latest[event.customer_id] = ActivityEvent(event.customer_id, event.kind, at)
    return latest


def activity_status(
    customer_id: str,
    *,
    last: ActivityEvent | None,
    now: datetime,
    policy: Policy,
    service_ended_at: datetime | None = None,
    registered_at: datetime | None = None,
) -> ActivityStatus:
    now = _aware(now)
    trigger = policy.deletion.inactivity
    baseline = last.at if last else (_aware(registered_at) if registered_at else None)
    inactive_since = add_months(baseline, policy.retention.inactivity_months) if baseline else None
    ended = _aware(service_ended_at) if service_ended_at else None

    candidates: list[tuple[datetime, Literal["inactivity", "service_ended"]]] = []
    if trigger.enabled and inactive_since:
        candidates.append((inactive_since + timedelta(days=trigger.grace_days), "inactivity"))
    if trigger.enabled and ended:
        candidates.append((ended + timedelta(days=trigger.service_ended_grace_days), "service_ended"))
    due_at, due_trigger = min(candidates) if candidates else (None, None)

    state: ActivityState
    if ended and ended <= now:
        state = "service_ended"
    elif inactive_since is None:
        state = "unknown"
    else:
        state = "inactive" if now >= inactive_since else "active"
    return ActivityStatus(
        customer_id=customer_id,
        state=state,
        last_activity_at=last.at if last else None,
        last_activity_kind=last.kind if last else None,
        inactive_days=(now - baseline).days if baseline else None,
        deletion_due_at=due_at,
        deletion_trigger=due_trigger,
        deletion_due=due_at is not None and now >= due_at,
    )


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months; the 31st of a shorter month falls back to its last day."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def _aware(moment: datetime) -> datetime:
    # Graph and the registry give UTC; a naive value from a CSV import is taken as UTC rather than failing.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
