"""Label coverage and the inactivity distribution, from the data map and the activity clock."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.service import activity
from app.classification.activity import add_months
from app.customers.repository import CustomerRepository
from app.db.base import utc_now
from app.models import Customer
from app.policy.schemas import Policy
from app.privacy.guard import DisclosureGuard
from app.reports.repository import CoverageRepository
from app.reports.schemas import (
    CoverageCounts,
    CoverageReport,
    CustomerCoverage,
    CustomerInactivity,
    InactivityBucket,
    InactivityReport,
)

BUCKET_EDGES = (0, 3, 6)


class ReportService:
    async def coverage(self, session: AsyncSession, guard: DisclosureGuard) -> CoverageReport:
        repository = CoverageRepository(session)
        customers = await CustomerRepository(session).all()
        per_customer = {
            customer.id: CustomerCoverage(customer_id=customer.id, customer_name=guard.display_name(customer))
            for customer in customers
        }
        for customer_id, _kind, state, reason, count in await repository.per_customer():
            if customer_id in per_customer:
                per_customer[customer_id].add(state, reason, count)
        overall = CoverageCounts()
        by_kind: dict[str, CoverageCounts] = {}
        for kind, state, reason, count in await repository.customer_items(attributed=True):
            overall.add(state, reason, count)
            by_kind.setdefault(kind, CoverageCounts()).add(state, reason, count)
        unattributed: dict[str, int] = {}
        for kind, _state, _reason, count in await repository.customer_items(attributed=False):
            unattributed[kind] = unattributed.get(kind, 0) + count
        return CoverageReport(
            generated_at=utc_now(),
            overall=overall,
            by_kind=by_kind,
            unattributed_items=sum(unattributed.values()),
            unattributed_by_kind=unattributed,
            customers=list(per_customer.values()),
        )

    async def inactivity(
        self, session: AsyncSession, guard: DisclosureGuard, policy: Policy, *, now: datetime | None = None
    ) -> InactivityReport:
        now = now or utc_now()
        customers = await CustomerRepository(session).all()
        rows = [self._row(customer, guard, policy, now) for customer in customers]
        states: dict[str, int] = {}
        for row in rows:
            states[row.state] = states.get(row.state, 0) + 1
        return InactivityReport(
            generated_at=now,
            inactivity_months=policy.retention.inactivity_months,
            states=states,
            buckets=_buckets(rows, policy.retention.inactivity_months),
            never_active=sum(1 for row in rows if row.last_activity_at is None),
            customers=rows,
        )

    @staticmethod
    def _row(customer: Customer, guard: DisclosureGuard, policy: Policy, now: datetime) -> CustomerInactivity:
        status = activity.status(customer, policy=policy, now=now)
        return CustomerInactivity(
            customer_id=customer.id,
            customer_name=guard.display_name(customer),
            state=status.state,
            last_activity_at=status.last_activity_at,
            last_activity_kind=status.last_activity_kind,
            months_inactive=months_between(status.last_activity_at, now) if status.last_activity_at else None,
            inactive_days=status.inactive_days,
            deletion_due_at=status.deletion_due_at,
            deletion_trigger=status.deletion_trigger,
            deletion_due=status.deletion_due,
        )


def months_between(start: datetime, end: datetime) -> int:
    """Whole calendar months from `start` to `end` (0 when `end` is earlier)."""
    months = max(0, (end.year - start.year) * 12 + end.month - start.month)
    while months and add_months(start, months) > end:
        months -= 1
    return months


def _buckets(rows: Sequence[CustomerInactivity], inactivity_months: int) -> list[InactivityBucket]:
    edges = sorted({edge for edge in BUCKET_EDGES if edge < inactivity_months} | {inactivity_months})
    buckets = []
    for index, low in enumerate(edges):
        high = edges[index + 1] if index + 1 < len(edges) else None
        label = f"{low}-{high} months" if high is not None else f"{low}+ months"
        count = sum(
            1
            for row in rows
            if row.months_inactive is not None
            and row.months_inactive >= low
            and (high is None or row.months_inactive < high)
        )
        buckets.append(InactivityBucket(label=label, min_months=low, max_months=high, customers=count))
    return buckets


reports = ReportService()
