from datetime import datetime

from pydantic import BaseModel, Field

from app.models import LabelState

# How item label states read in a coverage report.
LABELED_STATES = frozenset({LabelState.labeled})
PENDING_STATES = frozenset({LabelState.pending, LabelState.in_progress, LabelState.deferred})


class CoverageCounts(BaseModel):
    items: int = 0
    labeled: int = 0
    pending: int = 0  # due, running, or refused for now (retried)
    skipped: int = 0  # not labeled on purpose or for good: see skipped_reasons
    skipped_reasons: dict[str, int] = Field(default_factory=dict)

    def add(self, state: str, reason: str | None, count: int) -> None:
        self.items += count
        if state in LABELED_STATES:
            self.labeled += count
        elif state in PENDING_STATES:
            self.pending += count
        else:
            self.skipped += count
            key = reason or state
            self.skipped_reasons[key] = self.skipped_reasons.get(key, 0) + count


class CustomerCoverage(CoverageCounts):
    customer_id: str
    customer_name: str  # the legal name, or the id where the caller may not see it (do-not-disclose)


class CoverageReport(BaseModel):
    generated_at: datetime
    overall: CoverageCounts  # every customer item once, however many customers it belongs to
    by_kind: dict[str, CoverageCounts]
    unattributed_items: int  # items of no known customer: counted, not dropped
    unattributed_by_kind: dict[str, int]
    customers: list[CustomerCoverage]


class InactivityBucket(BaseModel):
    label: str
    min_months: int
    max_months: int | None  # None: open-ended
    customers: int


class CustomerInactivity(BaseModel):
    customer_id: str
    customer_name: str
    state: str  # active | inactive | service_ended | unknown
    last_activity_at: datetime | None
    last_activity_kind: str | None
    months_inactive: int | None
    inactive_days: int | None
    deletion_due_at: datetime | None
    deletion_trigger: str | None
    deletion_due: bool


class InactivityReport(BaseModel):
    generated_at: datetime
    inactivity_months: int  # the policy's retention period
    states: dict[str, int]
    buckets: list[InactivityBucket]
    never_active: int  # no activity signal at all yet
    customers: list[CustomerInactivity]
