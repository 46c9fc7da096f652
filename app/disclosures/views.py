"""Demands as the API shows them, with the customer rendered by the do-not-disclose guard."""

from sqlalchemy.ext.asyncio import AsyncSession

from app.disclosures.context import DisclosureContext
from app.disclosures.repository import DemandRepository
from app.disclosures.schemas import (
    ApprovalRead,
    ApprovalState,
    CustomerRef,
    DecisionRead,
    DemandRead,
    DemandSummary,
    ExportRead,
    ObjectionRead,
)
from app.disclosures.service import valid_approvals
from app.models import Customer, DisclosureDemand
from app.privacy.guard import CustomerField, DisclosureGuard


async def customer_ref(session: AsyncSession, customer_id: str, guard: DisclosureGuard) -> CustomerRef:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        return CustomerRef(id=customer_id, confidential=True)
    view = guard.customer_view(customer, (CustomerField.legal_name,))
    return CustomerRef(id=customer.id, confidential=view["confidential"], legal_name=view.get("legal_name"))


async def summary(session: AsyncSession, demand: DisclosureDemand, guard: DisclosureGuard) -> DemandSummary:
    return DemandSummary(
        id=demand.id,
        customer=await customer_ref(session, demand.customer_id, guard),
        authority=demand.authority,
        reference=demand.reference,
        status=demand.status,
        gagged=demand.gagged,
        deadline=demand.deadline,
        objection_deadline=demand.objection_deadline,
        created_at=demand.created_at,
    )


async def detail(
    session: AsyncSession, ctx: DisclosureContext, demand: DisclosureDemand, guard: DisclosureGuard
) -> DemandRead:
    repository = DemandRepository(session)
    in_scope, frozen = await repository.scope_counts(demand.id)
    customer = await session.get(Customer, demand.customer_id)
    # The notified addresses are the customer's contacts: shown only to callers who may see contacts.
    recipients = (
        list(demand.notice_recipients)
        if customer is not None and guard.may_show(customer, CustomerField.contact_emails)
        else []
    )
    head = await summary(session, demand, guard)
    return DemandRead(
        **head.model_dump(),
        legal_basis=demand.legal_basis,
        data_description=demand.data_description,
        scope_mode=demand.scope_mode,
        scope_from=demand.scope_from,
        scope_to=demand.scope_to,
        scope_kinds=list(demand.scope_kinds),
        scope_hash=demand.scope_hash,
        scope_version=demand.scope_version,
        items_in_scope=in_scope,
        items_frozen=frozen,
        holds_active=len(await repository.active_holds(demand.id)),
        received_by_name=demand.received_by_name,
        notice_sent_at=demand.notice_sent_at,
        notice_recipients=recipients,
        closed_at=demand.closed_at,
        close_reason=demand.close_reason,
        objections=[ObjectionRead.model_validate(o) for o in await repository.objections(demand.id)],
        decisions=[DecisionRead.model_validate(d) for d in await repository.decisions(demand.id)],
        approval=ApprovalState(
            required=ctx.required_approvals,
            valid=len(await valid_approvals(session, ctx, demand, ctx.clock())),
            approvals=[
                ApprovalRead.model_validate(a)
                for a in await repository.approvals(demand.id, scope_hash=demand.scope_hash)
            ],
        ),
        exports=[ExportRead.model_validate(e) for e in await repository.exports(demand.id)],
    )
