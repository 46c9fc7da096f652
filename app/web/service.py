"""What each page shows, assembled from the domain services (the web never queries the store itself).

Customer information always goes through the disclosure guard with the signed-in person's audience. A section
whose domain service does not exist yet is a `NotYet`, which the page shows as such instead of an empty table.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.service import activity
from app.approvals.service import is_listed_approver, valid_approvals
from app.audit.checkpoints import AuditVerification, load_public_key, verify_audit
from app.auth.dependencies import ADMIN, APPROVER, AUDITOR, LEGAL
from app.classification.activity import ActivityStatus
from app.customers.schemas import CustomerRead
from app.customers.service import CustomerNotFound, customers_service
from app.datamap.schemas import CustomerDatamap
from app.datamap.service import datamap_service
from app.disclosures import service as disclosures_service
from app.disclosures import views as disclosure_views
from app.disclosures.context import DisclosureContext
from app.disclosures.repository import DemandRepository
from app.disclosures.schemas import DemandRead, DemandSummary
from app.disposal.proof import records_for
from app.models import Approval, DeletionPlan, DisclosureStatus, DisposalRecord, PlanItem, PlanStatus
from app.plans.context import DeletionContext
from app.plans.service import get_plan, plan_items, summary
from app.policy import Policy
from app.privacy.guard import CustomerField, DisclosureGuard
from app.reports.schemas import CoverageReport, CustomerInactivity, InactivityReport
from app.reports.service import reports
from app.web.auth import WebUser
from app.web.charts import BarChart, bar_chart

# Who may read what, as the API decides it for the same data (app/*/endpoints.py).
REPORT_READERS = frozenset({ADMIN, AUDITOR, LEGAL})
CUSTOMER_READERS = frozenset({ADMIN, AUDITOR, LEGAL})
PROOF_READERS = frozenset({ADMIN, AUDITOR, LEGAL})
PLAN_EDITORS = frozenset({ADMIN})
DISCLOSURE_READERS = frozenset({LEGAL, AUDITOR})
AUDIT_READERS = frozenset({AUDITOR, ADMIN})
CUSTOMER_PAGE_SIZE = 50
DATAMAP_PAGE_SIZE = 25
PROOF_SHOWN = 50
DEMANDS_SHOWN = 200
MANIFEST_PAGE_SIZE = 25
# Reading the whole registry for the dashboard happens in pages of this many customers.
REGISTRY_BATCH = 500
DECIDABLE = frozenset({PlanStatus.pending_approval, PlanStatus.approved})


@dataclass(frozen=True, slots=True)
class NotYet:
    """A section whose data comes from a service that has not landed: said plainly on the page."""

    what: str
    detail: str


def display_name(customer: CustomerRead) -> str:
    """The name a page shows: the legal name when the guard let it through, else the id (as the guard names it)."""
    if customer.legal_name is not None:
        return customer.legal_name
    return f"{customer.id} (do-not-disclose)" if customer.confidential else customer.id


# Dashboard ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dashboard:
    reports_visible: bool  # the reports are for admins, legal and auditors, as in the API
    customers: int
    inactivity: BarChart | None
    deletion_due: list[CustomerInactivity]
    label_coverage: BarChart | None
    labeled_percent: float | None
    unattributed_items: int
    plans_awaiting_approval: NotYet
    recent_disposals: NotYet


def inactivity_chart(report: InactivityReport) -> BarChart:
    months = report.inactivity_months
    rows = []
    for bucket in report.buckets:
        tone = "bad" if bucket.min_months >= months else "warn" if bucket.max_months == months else "good"
        rows.append((f"{bucket.label.replace('-', '–')}", bucket.customers, tone))
    rows.append(("No activity recorded", report.never_active, "muted"))
    return bar_chart(
        "Customer inactivity",
        f"Customers by months since their last activity; after {months} months a customer is inactive and its "
        "data is due for deletion.",
        rows,
    )


def coverage_chart(report: CoverageReport) -> BarChart:
    overall = report.overall
    skipped = sorted(overall.skipped_reasons.items(), key=lambda reason: (-reason[1], reason[0]))
    rows = [("Labeled", overall.labeled, "good"), ("Pending or running", overall.pending, "warn")]
    rows += [(_short(reason.replace("_", " ").capitalize()), count, "muted") for reason, count in skipped[:5]]
    rest = sum(count for _, count in skipped[5:])
    if rest:
        rows.append(("Other reasons", rest, "muted"))
    return bar_chart(
        "Label coverage",
        "Customer items by sensitivity label state, each item once however many customers it belongs to; "
        "grey bars are items not labeled, by reason.",
        rows,
    )


def _short(label: str, limit: int = 28) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


async def dashboard(
    session: AsyncSession, *, user: WebUser, policy: Policy, guard: DisclosureGuard, now: datetime
) -> Dashboard:
    plans = NotYet(
        "Plans awaiting approval", "the deletion service has no list of plans yet; open a plan from its card."
    )
    disposals = NotYet("Recent disposals", "the disposal service reads proof of disposal per plan only (plan pages).")
    if not user.has_any(REPORT_READERS):
        return Dashboard(False, 0, None, [], None, None, 0, plans, disposals)
    inactivity = await reports.inactivity(session, guard, policy, now=now)
    coverage = await reports.coverage(session, guard)
    items = coverage.overall.items
    return Dashboard(
        reports_visible=True,
        customers=len(inactivity.customers),
        inactivity=inactivity_chart(inactivity),
        deletion_due=[row for row in inactivity.customers if row.deletion_due],
        label_coverage=coverage_chart(coverage) if items else None,
        labeled_percent=round(coverage.overall.labeled / items * 100, 1) if items else None,
        unattributed_items=coverage.unattributed_items,
        plans_awaiting_approval=plans,
        recent_disposals=disposals,
    )


# Customers ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomerRow:
    id: str
    name: str
    service_status: str
    last_activity_at: datetime | None
    do_not_disclose: bool
    marketing_opt_out: bool
    legal_holds: int


@dataclass(frozen=True, slots=True)
class CustomerList:
    rows: list[CustomerRow]
    after: str | None
    next_after: str | None


async def customer_list(session: AsyncSession, *, after: str | None, guard: DisclosureGuard) -> CustomerList:
    page, next_after = await customers_service.page(
        session, after=after, limit=CUSTOMER_PAGE_SIZE, status=None, guard=guard
    )
    rows = [
        CustomerRow(
            id=customer.id,
            name=display_name(customer),
            service_status=customer.service_status.value,
            last_activity_at=customer.last_activity_at,
            do_not_disclose=customer.do_not_disclose,
            marketing_opt_out=customer.marketing_opt_out,
            legal_holds=len(customer.legal_holds),
        )
        for customer in page
    ]
    return CustomerList(rows=rows, after=after, next_after=next_after)


@dataclass(frozen=True, slots=True)
class CustomerPage:
    name: str
    customer: CustomerRead  # already through the guard: what this audience may not see is None
    withheld: list[str]  # what the guard kept from this audience (an empty field is simply empty)
    activity: ActivityStatus
    data_map: CustomerDatamap
    plans: NotYet


async def customer_page(
    session: AsyncSession, customer_id: str, *, policy: Policy, guard: DisclosureGuard, now: datetime
) -> CustomerPage:
    customer = await customers_service.get(session, customer_id)
    read = (await customers_service.read_many(session, [customer], guard))[0]
    return CustomerPage(
        name=display_name(read),
        customer=read,
        withheld=[field.value for field in CustomerField if not guard.may_show(customer, field)],
        activity=activity.status(customer, policy=policy, now=now),
        data_map=await datamap_service.for_customer(session, customer_id, kind=None, after=0, limit=DATAMAP_PAGE_SIZE),
        plans=NotYet("Deletion plans", "the deletion service has no list of a customer's plans yet."),
    )


# Plans -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ManifestFilter:
    action: str = ""
    kind: str = ""
    reason: str = ""
    state: str = ""
    query: str = ""
    page: int = 1

    def matches(self, item: PlanItem) -> bool:
        query = self.query.strip().lower()
        return (
            (not self.action or item.action == self.action)
            and (not self.kind or item.kind == self.kind)
            and (not self.reason or (item.exclusion_reason or "") == self.reason)
            and (not self.state or item.state == self.state)
            and (
                not query
                or query in item.container_id.lower()
                or query in item.item_id.lower()
                or query in item.name_hash.lower()
            )
        )

    def query_string(self, **changes: str | int) -> str:
        """The filter as a query string, with some values changed (page links, filter links)."""
        values: dict[str, str | int] = {
            "action": self.action,
            "kind": self.kind,
            "reason": self.reason,
            "state": self.state,
            "q": self.query,
            "page": self.page,
        }
        values.update(changes)
        return urlencode({name: value for name, value in values.items() if value and (name, value) != ("page", 1)})


@dataclass(frozen=True, slots=True)
class Manifest:
    plan_id: str
    filter: ManifestFilter
    items: list[PlanItem]
    matching: int
    total: int
    pages: int
    reasons: list[str]
    states: list[str]
    can_exclude: bool
    csrf: str


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    why_not: str | None
    already_approved: bool


@dataclass(frozen=True, slots=True)
class PlanPage:
    plan: DeletionPlan
    facts: dict[str, Any]
    customers: list[tuple[str, str]]  # (id, name as this audience may see it)
    approvals: list[Approval]
    decision: Decision
    manifest: Manifest
    suggested: str  # "approve" when the person came from an approval link (Workflows card)
    proof: "Proof | None"  # None: this role does not read proof of disposal


@dataclass(frozen=True, slots=True)
class Proof:
    """Proof of disposal of a plan (the first records, and how many there are by outcome)."""

    records: list[DisposalRecord]
    total: int
    outcomes: dict[str, int]


def manifest(
    plan: DeletionPlan, items: Sequence[PlanItem], wanted: ManifestFilter, *, can_exclude: bool, csrf: str
) -> Manifest:
    matching = [item for item in items if wanted.matches(item)]
    pages = max(1, -(-len(matching) // MANIFEST_PAGE_SIZE))
    page = min(max(wanted.page, 1), pages)
    start = (page - 1) * MANIFEST_PAGE_SIZE
    return Manifest(
        plan_id=plan.id,
        filter=ManifestFilter(wanted.action, wanted.kind, wanted.reason, wanted.state, wanted.query, page),
        items=matching[start : start + MANIFEST_PAGE_SIZE],
        matching=len(matching),
        total=len(items),
        pages=pages,
        reasons=sorted({item.exclusion_reason for item in items if item.exclusion_reason}),
        states=sorted({item.state for item in items}),
        can_exclude=can_exclude and plan.status in DECIDABLE,
        csrf=csrf,
    )


def decision_for(ctx: DeletionContext, plan: DeletionPlan, user: WebUser, approvals: Sequence[Approval]) -> Decision:
    """Whether the page offers Approve / Reject to this person, and why not. The approval rules decide again."""
    subject = user.subject.lower()
    already = any(approval.approver == subject for approval in approvals)
    why_not: str | None = None
    if APPROVER not in user.roles:
        why_not = "Deciding needs the Steward.Approver role."
    elif not is_listed_approver(ctx, subject):
        why_not = "You are not in the approvers group, so your decision would not count."
    elif subject in {person.lower() for person in (plan.requested_by, plan.owner) if person}:
        why_not = "You requested or own this plan: two other people must approve it."
    elif plan.status not in DECIDABLE:
        why_not = f"This plan is {plan.status.replace('_', ' ')}: it takes no more decisions."
    elif plan.expires_at is not None and plan.expires_at <= ctx.clock() and plan.status == PlanStatus.pending_approval:
        why_not = "The approval request has expired: nothing will be deleted."
    return Decision(allowed=why_not is None, why_not=why_not, already_approved=already)


async def customer_names(session: AsyncSession, ids: Sequence[str], guard: DisclosureGuard) -> list[tuple[str, str]]:
    names: list[tuple[str, str]] = []
    for customer_id in ids:
        try:
            names.append((customer_id, display_name(await customers_service.read(session, customer_id, guard))))
        except CustomerNotFound:
            names.append((customer_id, customer_id))  # reduced to a tombstone, or never imported: the id is all
    return names


async def plan_page(
    session: AsyncSession,
    ctx: DeletionContext,
    plan_id: str,
    *,
    user: WebUser,
    guard: DisclosureGuard,
    wanted: ManifestFilter,
    suggested: str = "",
) -> PlanPage:
    plan = await get_plan(session, plan_id)
    items = await plan_items(session, plan.id)
    approvals = await valid_approvals(session, ctx, plan, ctx.clock())
    proof = None
    if user.has_any(PROOF_READERS):
        records = await records_for(session, plan.id)
        outcomes: dict[str, int] = {}
        for record in records:
            outcomes[record.outcome] = outcomes.get(record.outcome, 0) + 1
        proof = Proof(records=records[:PROOF_SHOWN], total=len(records), outcomes=outcomes)
    return PlanPage(
        plan=plan,
        facts=summary(plan, items),
        customers=await customer_names(session, list(plan.customer_ids), guard),
        approvals=approvals,
        decision=decision_for(ctx, plan, user, approvals),
        manifest=manifest(plan, items, wanted, can_exclude=user.has_any(PLAN_EDITORS), csrf=user.csrf),
        suggested=suggested if suggested in ("approve", "reject") else "",
        proof=proof,
    )


async def plan_manifest(session: AsyncSession, plan_id: str, *, user: WebUser, wanted: ManifestFilter) -> Manifest:
    plan = await get_plan(session, plan_id)
    items = await plan_items(session, plan.id)
    return manifest(plan, items, wanted, can_exclude=user.has_any(PLAN_EDITORS), csrf=user.csrf)


# Disclosures -------------------------------------------------------------------------------------------


async def demands(
    session: AsyncSession, *, status: DisclosureStatus | None, guard: DisclosureGuard
) -> list[DemandSummary]:
    """Demands, newest first, as GET /v1/disclosures lists them."""
    found = await DemandRepository(session).page(status=status, customer_id=None, limit=DEMANDS_SHOWN)
    return [await disclosure_views.summary(session, demand, guard) for demand in found]


async def demand(session: AsyncSession, ctx: DisclosureContext, demand_id: str, guard: DisclosureGuard) -> DemandRead:
    return await disclosure_views.detail(session, ctx, await disclosures_service.get_demand(session, demand_id), guard)


# Audit -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditCheck:
    verification: AuditVerification
    checked_at: datetime
    key_configured: bool  # without the checkpoint key, a truncated tail cannot be detected


async def audit_check(session: AsyncSession, *, key_path: Path | None, now: datetime) -> AuditCheck:
    public_key = load_public_key(key_path) if key_path is not None else None
    verification = await verify_audit(session, public_key)
    return AuditCheck(verification=verification, checked_at=now, key_configured=public_key is not None)
