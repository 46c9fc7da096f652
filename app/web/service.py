"""What each page shows, assembled from the domain services (the web never queries the store itself).

Customer information always goes through the disclosure guard with the signed-in person's audience. A section
whose domain service does not exist yet is a `NotYet`, which the page shows as such instead of an empty table.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.service import activity
from app.approvals.service import is_listed_approver, valid_approvals
from app.audit.checkpoints import AuditVerification, load_public_key, verify_audit
from app.auth.dependencies import APPROVER
from app.classification.activity import ActivityEvent, ActivityStatus, activity_status
from app.customers.schemas import CustomerRead, LegalHoldRead
from app.customers.service import CustomerNotFound, customers_service
from app.models import Approval, DeletionPlan, PlanItem, PlanStatus
from app.plans.context import DeletionContext
from app.plans.service import get_plan, plan_items, summary
from app.policy import Policy
from app.privacy.guard import DisclosureGuard
from app.web.auth import WebUser
from app.web.charts import BarChart, bar_chart

CUSTOMER_PAGE_SIZE = 50
MANIFEST_PAGE_SIZE = 50
# Reading the whole registry for the dashboard happens in pages of this many customers.
REGISTRY_BATCH = 500
DECIDABLE = frozenset({PlanStatus.pending_approval, PlanStatus.approved})


@dataclass(frozen=True, slots=True)
class NotYet:
    """A section whose data comes from a service that has not landed: said plainly on the page."""

    what: str
    detail: str


@dataclass(frozen=True, slots=True)
class CustomerInfo:
    """A registry row in the shape the disclosure guard reads (contacts as plain mappings)."""

    id: str
    legal_name: str
    do_not_disclose: bool
    marketing_opt_out: bool
    contacts: Sequence[Mapping[str, Any]]
    address: str | None
    business_phone: str | None
    domains: Sequence[str]
    tax_codes: Sequence[str]
    products: Sequence[str]


def customer_info(customer: CustomerRead) -> CustomerInfo:
    return CustomerInfo(
        id=customer.id,
        legal_name=customer.legal_name,
        do_not_disclose=customer.do_not_disclose,
        marketing_opt_out=customer.marketing_opt_out,
        contacts=[contact.model_dump(exclude_none=True) for contact in customer.contacts],
        address=customer.address,
        business_phone=customer.business_phone,
        domains=customer.domains,
        tax_codes=customer.tax_codes,
        products=customer.products,
    )


def status_of(customer: CustomerRead, *, policy: Policy, now: datetime) -> ActivityStatus:
    """The activity clock's verdict for a registry row (the same rule as ActivityService.status)."""
    last = None
    if customer.last_activity_at is not None:
        kind = customer.last_activity_kind if customer.last_activity_kind in KNOWN_KINDS else "imported"
        last = ActivityEvent(customer.id, kind, customer.last_activity_at)  # type: ignore[arg-type]
    return activity_status(
        customer.id,
        last=last,
        now=now,
        policy=policy,
        service_ended_at=customer.service_ended_at,
        registered_at=customer.created_at,
    )


KNOWN_KINDS = frozenset({"mail", "file", "purchase", "support_ticket", "imported"})


# Dashboard ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DueCustomer:
    id: str
    name: str
    state: str
    due_at: datetime | None
    trigger: str | None


@dataclass(frozen=True, slots=True)
class Dashboard:
    customers: int
    inactivity: BarChart
    deletion_due: list[DueCustomer]
    label_coverage: BarChart | NotYet
    plans_awaiting_approval: NotYet
    recent_disposals: NotYet


def inactivity_chart(statuses: Sequence[ActivityStatus], *, policy: Policy) -> BarChart:
    months = policy.retention.inactivity_months
    buckets = {"recent": 0, "quarter": 0, "half": 0, "inactive": 0, "ended": 0, "unknown": 0}
    for status in statuses:
        if status.state == "service_ended":
            buckets["ended"] += 1
        elif status.state == "unknown" or status.inactive_days is None:
            buckets["unknown"] += 1
        elif status.state == "inactive":
            buckets["inactive"] += 1
        elif status.inactive_days < 90:
            buckets["recent"] += 1
        elif status.inactive_days < 180:
            buckets["quarter"] += 1
        else:
            buckets["half"] += 1
    return bar_chart(
        "Customer activity",
        f"Customers by time since their last activity; inactive means more than {months} months.",
        [
            ("Active, under 3 months", buckets["recent"], "good"),
            ("Active, 3 to 6 months", buckets["quarter"], "good"),
            (f"Active, 6 to {months} months", buckets["half"], "warn"),
            (f"Inactive, over {months} months", buckets["inactive"], "bad"),
            ("Service ended", buckets["ended"], "bad"),
            ("No activity recorded", buckets["unknown"], "muted"),
        ],
    )


async def registry(session: AsyncSession) -> list[CustomerRead]:
    customers: list[CustomerRead] = []
    after: str | None = None
    while True:
        page, after = await customers_service.page(session, after=after, limit=REGISTRY_BATCH, status=None)
        customers.extend(page)
        if after is None:
            return customers


async def dashboard(session: AsyncSession, *, policy: Policy, guard: DisclosureGuard, now: datetime) -> Dashboard:
    customers = await registry(session)
    statuses = {customer.id: status_of(customer, policy=policy, now=now) for customer in customers}
    due = [
        DueCustomer(
            id=customer.id,
            name=guard.display_name(customer_info(customer)),
            state=statuses[customer.id].state,
            due_at=statuses[customer.id].deletion_due_at,
            trigger=statuses[customer.id].deletion_trigger,
        )
        for customer in customers
        if statuses[customer.id].deletion_due
    ]
    return Dashboard(
        customers=len(customers),
        inactivity=inactivity_chart(list(statuses.values()), policy=policy),
        deletion_due=due,
        label_coverage=NotYet("Label coverage", "coverage reports arrive with the labeling service (app/labeling)."),
        plans_awaiting_approval=NotYet(
            "Plans awaiting approval", "the deletion service has no list of plans yet; open a plan from its Teams card."
        ),
        recent_disposals=NotYet("Recent disposals", "the disposal service has no read of disposal records yet."),
    )


# Customers ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomerRow:
    id: str
    name: str
    service_status: str
    state: str
    last_activity_at: datetime | None
    do_not_disclose: bool
    marketing_opt_out: bool
    legal_holds: int


@dataclass(frozen=True, slots=True)
class CustomerList:
    rows: list[CustomerRow]
    after: str | None
    next_after: str | None


async def customer_list(
    session: AsyncSession, *, after: str | None, policy: Policy, guard: DisclosureGuard, now: datetime
) -> CustomerList:
    page, next_after = await customers_service.page(session, after=after, limit=CUSTOMER_PAGE_SIZE, status=None)
    rows = [
        CustomerRow(
            id=customer.id,
            name=guard.display_name(customer_info(customer)),
            service_status=customer.service_status.value,
            state=status_of(customer, policy=policy, now=now).state,
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
    id: str
    name: str
    confidential: bool
    view: dict[str, Any]  # what the guard lets this audience see
    customer: CustomerRead
    legal_holds: list[LegalHoldRead]
    activity: ActivityStatus
    data_map: NotYet
    plans: NotYet


async def customer_page(
    session: AsyncSession, customer_id: str, *, policy: Policy, guard: DisclosureGuard, now: datetime
) -> CustomerPage:
    customer = await customers_service.get(session, customer_id)
    read = (await customers_service.read_many(session, [customer]))[0]
    info = customer_info(read)
    return CustomerPage(
        id=read.id,
        name=guard.display_name(info),
        confidential=guard.is_confidential(info),
        view=guard.customer_view(info),
        customer=read,
        legal_holds=read.legal_holds,
        activity=activity.status(customer, policy=policy, now=now),
        data_map=NotYet("Data map", "per-customer data map counts arrive with the data map service (app/datamap)."),
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
    reads = {}
    for customer_id in ids:
        try:
            reads[customer_id] = await customers_service.read(session, customer_id)
        except CustomerNotFound:
            continue  # reduced to a tombstone, or never imported: the id is all there is
    return [
        (customer_id, guard.display_name(customer_info(reads[customer_id])) if customer_id in reads else customer_id)
        for customer_id in ids
    ]


async def plan_page(
    session: AsyncSession,
    ctx: DeletionContext,
    plan_id: str,
    *,
    user: WebUser,
    guard: DisclosureGuard,
    wanted: ManifestFilter,
    can_exclude: bool,
    suggested: str = "",
) -> PlanPage:
    plan = await get_plan(session, plan_id)
    items = await plan_items(session, plan.id)
    approvals = await valid_approvals(session, ctx, plan, ctx.clock())
    return PlanPage(
        plan=plan,
        facts=summary(plan, items),
        customers=await customer_names(session, list(plan.customer_ids), guard),
        approvals=approvals,
        decision=decision_for(ctx, plan, user, approvals),
        manifest=manifest(plan, items, wanted, can_exclude=can_exclude, csrf=user.csrf),
        suggested=suggested if suggested in ("approve", "reject") else "",
    )


async def plan_manifest(
    session: AsyncSession, plan_id: str, *, wanted: ManifestFilter, can_exclude: bool, csrf: str
) -> Manifest:
    plan = await get_plan(session, plan_id)
    return manifest(plan, await plan_items(session, plan.id), wanted, can_exclude=can_exclude, csrf=csrf)


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
