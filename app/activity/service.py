"""The activity clock. A customer's last activity is the latest of: mail exchanged with them, a file one of their
guests changed, an explicit event (purchase, support ticket) and a date the registry import supplied. The service
end date is kept apart (it starts its own grace period, see app.classification.activity).

Signals only move forward, and a signal dated in the future is refused: a wrong clock must not keep a customer
"active" forever.
"""

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.repository import CustomerEventRepository
from app.activity.schemas import EventKind
from app.audit.service import audit
from app.classification.activity import ActivityEvent, ActivityKind, ActivityStatus, activity_status
from app.db.base import utc_now
from app.exceptions import BadRequest, Conflict
from app.models import Customer, CustomerEvent
from app.policy.schemas import Policy

# Graph and Steward clocks differ by seconds; more than this is a wrong clock, not skew.
CLOCK_SKEW = timedelta(minutes=5)


class ActivityService:
    def note(self, customer: Customer, kind: str, at: datetime, *, now: datetime | None = None) -> bool:
        """Move the customer's `kind` signal (mail | file) forward to `at`; True when it moved."""
        now = now or utc_now()
        if at > now + CLOCK_SKEW:
            return False
        column = {"mail": "last_mail_at", "file": "last_file_at"}[kind]
        current: datetime | None = getattr(customer, column)
        if current is not None and current >= at:
            return False
        setattr(customer, column, at)
        self.refresh(customer, now=now)
        return True

    def refresh(self, customer: Customer, *, now: datetime | None = None) -> None:
        """Recompute last_activity_at / last_activity_kind from the signals."""
        now = now or utc_now()
        signals = [
            (customer.last_mail_at, "mail"),
            (customer.last_file_at, "file"),
            (customer.last_event_at, customer.last_event_kind or "event"),
            (customer.imported_activity_at, "imported"),
        ]
        dated = [(at, kind) for at, kind in signals if at is not None and at <= now + CLOCK_SKEW]
        latest = max(dated, default=None, key=lambda signal: signal[0])
        at, kind = latest if latest else (None, None)
        if customer.last_activity_at != at or customer.last_activity_kind != kind:
            customer.last_activity_at, customer.last_activity_kind = at, kind

    async def record_event(
        self,
        session: AsyncSession,
        customer: Customer,
        *,
        kind: EventKind,
        occurred_at: datetime,
        reference: str | None,
        recorded_by: str,
        now: datetime | None = None,
    ) -> tuple[CustomerEvent, bool]:
        """Record a purchase or support ticket; (event, created). A known reference returns the stored event."""
        now = now or utc_now()
        occurred_at = occurred_at.astimezone(UTC)  # stored and compared in UTC, as the store hands it back
        if occurred_at > now + CLOCK_SKEW:
            raise BadRequest("occurred_at is in the future")
        events = CustomerEventRepository(session)
        if reference is not None:
            known = await events.by_reference(customer.id, kind, reference)
            if known is not None:
                if known.occurred_at != occurred_at:
                    raise DuplicateEventReference(
                        f"{kind} {reference!r} was already reported with another date ({known.occurred_at.isoformat()})"
                    )
                return known, False
        event = await events.create(
            CustomerEvent(
                customer_id=customer.id,
                kind=kind,
                occurred_at=occurred_at,
                reference=reference,
                recorded_by=recorded_by,
                recorded_at=now,
            ),
            flush=True,
        )
        if customer.last_event_at is None or occurred_at >= customer.last_event_at:
            customer.last_event_at, customer.last_event_kind = occurred_at, kind
            self.refresh(customer, now=now)
        # Activity postpones inactivity deletion, so who reported it is kept.
        await audit.append(
            session,
            actor=recorded_by,
            action="customer.event_recorded",
            subject=customer.id,
            payload={"kind": kind, "occurred_at": occurred_at.isoformat(), "reference": reference},
        )
        return event, True

    def status(self, customer: Customer, *, policy: Policy, now: datetime | None = None) -> ActivityStatus:
        last = None
        if customer.last_activity_at is not None:
            kind = _KINDS.get(customer.last_activity_kind or "", "imported")
            last = ActivityEvent(customer.id, kind, customer.last_activity_at)
        return activity_status(
            customer.id,
            last=last,
            now=now or utc_now(),
            policy=policy,
            service_ended_at=customer.service_ended_at,
            registered_at=customer.created_at,
        )


_KINDS: dict[str, ActivityKind] = {
    "mail": "mail",
    "file": "file",
    "purchase": "purchase",
    "support_ticket": "support_ticket",
    "imported": "imported",
}


class DuplicateEventReference(Conflict):
    """The same order or ticket number was reported before with a different date."""


activity = ActivityService()
