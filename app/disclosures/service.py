"""A compelled-disclosure demand from intake to close (the policy's "Tiết lộ bắt buộc").

Intake freezes the scope at once: every in-scope item of the data map gets an item_hold (source disclosure), so
no deletion plan can touch it (the planner shows "pending_disclosure") until the demand is closed. Unless the law
forbids it (gag), the customer is told in the same transaction (an outbox row). Objections and the authority's or
court's decision move the demand through app.disclosures.machine; every move is audited and announced to the legal
approvers. Approvals and the export live in approvals.py and export.py.
"""

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.service import audit
from app.auth.dependencies import Principal
from app.disclosures.context import DisclosureContext
from app.disclosures.machine import Move, next_status
from app.disclosures.notify import enqueue_customer_notice, enqueue_legal_update
from app.disclosures.repository import DemandRepository, MappedItem, hold_ref
from app.exceptions import BadRequest, Conflict, NotFound
from app.models import (
    Customer,
    DecisionOutcome,
    DisclosureApproval,
    DisclosureDecision,
    DisclosureDemand,
    DisclosureObjection,
    DisclosureScopeItem,
    DisclosureStatus,
    HoldSource,
    ItemHold,
    ScopeMode,
)

ItemKey = tuple[str, str, str]  # (kind, container_id, item_id)
SCOPE_FORMAT = 1
MAX_SHOWN = 5


class ObjectionTooLate(Conflict):
    """The objection reached us after the objection deadline."""


@dataclass(frozen=True, slots=True)
class ScopeSpec:
    """An explicit item selection, or a date range (with the kinds of item it covers)."""

    items: tuple[ItemKey, ...] | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    kinds: tuple[str, ...] = ("message", "file")


@dataclass(frozen=True, slots=True)
class DemandIntake:
    customer_id: str
    authority: str
    legal_basis: str
    reference: str
    data_description: str
    scope: ScopeSpec
    deadline: datetime
    gagged: bool
    objection_deadline: datetime | None = None


def scope_hash(demand_id: str, customer_id: str, keys: Iterable[ItemKey]) -> str:
    """SHA-256 of the canonical in-scope list; it names the demand so an approval cannot be replayed elsewhere."""
    canonical = json.dumps(
        {"format": SCOPE_FORMAT, "demand": demand_id, "customer": customer_id, "items": sorted(list(k) for k in keys)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _key(item: DisclosureScopeItem) -> ItemKey:
    return (item.kind, item.container_id, item.item_id)


def _shown(keys: Sequence[ItemKey]) -> str:
    listed = ", ".join(f"{kind} {item_id}" for kind, _, item_id in keys[:MAX_SHOWN])
    return listed + (f" and {len(keys) - MAX_SHOWN} more" if len(keys) > MAX_SHOWN else "")


async def get_demand(session: AsyncSession, demand_id: str, *, lock: bool = False) -> DisclosureDemand:
    repository = DemandRepository(session)
    demand = await (repository.locked(demand_id) if lock else repository.get(demand_id))
    if demand is None:
        raise NotFound(f"no disclosure demand {demand_id!r}")
    return demand


async def move(
    session: AsyncSession,
    demand: DisclosureDemand,
    step: Move,
    *,
    actor: Principal,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """One state-machine move: the guard of the table, the audit record, the legal approvers' notification."""
    previous = demand.status
    demand.status = next_status(previous, step)
    record = await audit.append(
        session,
        actor=actor.subject,
        action=f"disclosure.{step.value}",
        subject=f"disclosure:{demand.id}",
        payload={"from": previous, "to": demand.status, "name": actor.name, **payload},
    )
    await session.flush()
    demand.updated_at = now
    await enqueue_legal_update(session, demand, event=step.value, seq=record.seq, now=now)


async def _resolve(repository: DemandRepository, customer_id: str, scope: ScopeSpec) -> list[MappedItem]:
    if scope.items is not None:
        requested = list(dict.fromkeys(scope.items))
        found = {item.key: item for item in await repository.customer_items(customer_id, [k[2] for k in requested])}
        missing = [key for key in requested if key not in found]
        if missing:
            raise BadRequest(f"not in the data map as items of customer {customer_id}: {_shown(missing)}")
        return [found[key] for key in requested]
    assert scope.date_from is not None
    assert scope.date_to is not None
    return await repository.customer_items_in_range(customer_id, scope.kinds, scope.date_from, scope.date_to)


def _check_dates(intake: DemandIntake, now: datetime, default_days: int) -> datetime:
    if intake.deadline <= now:
        raise BadRequest("the authority's deadline has already passed")
    objection_deadline = intake.objection_deadline or min(now + timedelta(days=default_days), intake.deadline)
    if objection_deadline <= now:
        raise BadRequest("the objection deadline must be in the future")
    if objection_deadline > intake.deadline:
        raise BadRequest("the objection deadline cannot be after the authority's deadline")
    scope = intake.scope
    if scope.items is None and (scope.date_from is None or scope.date_to is None or scope.date_from > scope.date_to):
        raise BadRequest("a date-range scope needs date_from <= date_to")
    return objection_deadline


async def receive(
    session: AsyncSession, ctx: DisclosureContext, intake: DemandIntake, *, actor: Principal
) -> DisclosureDemand:
    """Take a demand in: validate it, freeze its scope with holds, and (unless gagged) queue the customer's notice."""
    now = ctx.clock()
    objection_deadline = _check_dates(intake, now, ctx.settings.disclosure_objection_days)
    if await session.get(Customer, intake.customer_id) is None:
        raise NotFound(f"no customer {intake.customer_id!r}")
    repository = DemandRepository(session)
    if await repository.find(customer_id=intake.customer_id, authority=intake.authority, reference=intake.reference):
        raise Conflict(f"a demand from {intake.authority} with reference {intake.reference!r} is already recorded")
    items = await _resolve(repository, intake.customer_id, intake.scope)
    demand_id = uuid.uuid4().hex
    scope = intake.scope
    demand = DisclosureDemand(
        id=demand_id,
        customer_id=intake.customer_id,
        authority=intake.authority,
        legal_basis=intake.legal_basis,
        reference=intake.reference,
        data_description=intake.data_description,
        scope_mode=ScopeMode.items if scope.items is not None else ScopeMode.date_range,
        scope_from=scope.date_from,
        scope_to=scope.date_to,
        scope_kinds=list(scope.kinds),
        deadline=intake.deadline,
        objection_deadline=objection_deadline,
        gagged=intake.gagged,
        status=DisclosureStatus.objection_window,
        scope_hash=scope_hash(demand_id, intake.customer_id, (item.key for item in items)),
        scope_version=1,
        received_by=actor.subject.lower(),
        received_by_name=actor.name,
        notice_recipients=[],
        created_at=now,
        updated_at=now,
    )
    session.add(demand)
    await session.flush()
    await _freeze(session, demand, items, actor=actor, now=now)
    record = await audit.append(
        session,
        actor=actor.subject,
        action="disclosure.received",
        subject=f"disclosure:{demand.id}",
        payload={
            "customer_id": demand.customer_id,
            "items": len(items),
            "gagged": demand.gagged,
            "deadline": demand.deadline.isoformat(),
            "objection_deadline": demand.objection_deadline.isoformat(),
            "scope_hash": demand.scope_hash,
            "name": actor.name,
        },
    )
    if not demand.gagged:
        await enqueue_customer_notice(session, demand, now=now)
    await enqueue_legal_update(session, demand, event="received", seq=record.seq, now=now)
    return demand


async def _freeze(
    session: AsyncSession, demand: DisclosureDemand, items: Sequence[MappedItem], *, actor: Principal, now: datetime
) -> None:
    # Neutral wording: the reason shows in deletion dry runs and cards, which must not reveal a gagged demand.
    reason = f"compelled disclosure pending (demand {demand.id})"
    holds = [
        ItemHold(
            customer_id=demand.customer_id,
            kind=item.kind,
            container_id=item.container_id,
            item_id=item.item_id,
            source=HoldSource.disclosure.value,
            source_ref=hold_ref(demand.id),
            reason=reason,
            created_by=actor.name or actor.subject,
            created_at=now,
        )
        for item in items
    ]
    session.add_all(holds)
    await session.flush()
    session.add_all(
        DisclosureScopeItem(
            demand_id=demand.id,
            kind=item.kind,
            container_id=item.container_id,
            item_id=item.item_id,
            etag=item.etag,
            size=item.size,
            name_hash=item.name_hash,
            item_date=item.item_date,
            hold_id=hold.id,
            in_scope=True,
            added_at=now,
        )
        for item, hold in zip(items, holds, strict=True)
    )
    await session.flush()


async def record_objection(
    session: AsyncSession,
    ctx: DisclosureContext,
    demand_id: str,
    *,
    objector: str,
    received_at: datetime,
    grounds: str,
    evidence_ref: str | None,
    actor: Principal,
) -> DisclosureObjection:
    now = ctx.clock()
    demand = await get_demand(session, demand_id, lock=True)
    next_status(demand.status, Move.object)
    if received_at > now:
        raise BadRequest("received_at is in the future")
    if received_at > demand.objection_deadline:
        raise ObjectionTooLate(
            f"the objection reached us at {received_at.isoformat()}, after the objection deadline "
            f"{demand.objection_deadline.isoformat()}"
        )
    objection = DisclosureObjection(
        demand_id=demand.id,
        objector=objector,
        received_at=received_at,
        grounds=grounds,
        evidence_ref=evidence_ref,
        recorded_by=actor.subject,
        recorded_at=now,
    )
    session.add(objection)
    await session.flush()
    await move(
        session,
        demand,
        Move.object,
        actor=actor,
        payload={"objection_id": objection.id, "evidence_ref": evidence_ref},
        now=now,
    )
    return objection


@dataclass(frozen=True, slots=True)
class Narrowing:
    """What a narrowing decision keeps: listed items, or the items dated within a range (or both together)."""

    items: tuple[ItemKey, ...] | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None

    def keeps(self, item: DisclosureScopeItem) -> bool:
        if self.items is not None and _key(item) not in self.items:
            return False
        if self.date_from is not None or self.date_to is not None:
            if item.item_date is None:
                return False
            if self.date_from is not None and item.item_date < self.date_from:
                return False
            if self.date_to is not None and item.item_date > self.date_to:
                return False
        return True


OUTCOME_MOVES = {
    DecisionOutcome.upheld: Move.uphold,
    DecisionOutcome.rejected: Move.reject,
    DecisionOutcome.narrowed: Move.narrow,
}


async def record_decision(
    session: AsyncSession,
    ctx: DisclosureContext,
    demand_id: str,
    *,
    outcome: DecisionOutcome,
    decided_by: str,
    decided_at: datetime,
    reference: str | None,
    note: str | None,
    narrowing: Narrowing | None,
    actor: Principal,
) -> DisclosureDecision:
    """The authority's or court's written decision: upheld stays the disclosure, rejected or narrowed releases it."""
    now = ctx.clock()
    demand = await get_demand(session, demand_id, lock=True)
    step = OUTCOME_MOVES[outcome]
    next_status(demand.status, step)
    if decided_at > now:
        raise BadRequest("decided_at is in the future")
    if (narrowing is not None) != (outcome is DecisionOutcome.narrowed):
        raise BadRequest("a narrowed decision needs the scope it keeps, and only a narrowed decision changes the scope")
    decision = DisclosureDecision(
        demand_id=demand.id,
        decided_by=decided_by,
        decided_at=decided_at,
        outcome=outcome.value,
        reference=reference,
        note=note,
        removed_items=0,
        recorded_by=actor.subject,
        recorded_at=now,
    )
    session.add(decision)
    await session.flush()
    payload: dict[str, Any] = {"decision_id": decision.id, "outcome": outcome.value}
    if narrowing is not None:
        decision.removed_items = await _narrow(session, demand, narrowing, decision_id=decision.id, now=now)
        payload |= {"removed_items": decision.removed_items, "scope_hash": demand.scope_hash}
    await move(session, demand, step, actor=actor, payload=payload, now=now)
    return decision


async def _narrow(
    session: AsyncSession, demand: DisclosureDemand, narrowing: Narrowing, *, decision_id: int, now: datetime
) -> int:
    repository = DemandRepository(session)
    current = await repository.scope_items(demand.id, in_scope_only=True)
    if narrowing.items is not None:
        unknown = sorted(set(narrowing.items) - {_key(item) for item in current})
        if unknown:
            raise BadRequest(f"a narrowing can only keep items already in scope; not in scope: {_shown(unknown)}")
    kept = [item for item in current if narrowing.keeps(item)]
    if not kept:
        raise BadRequest("the narrowed scope keeps no item; record an upheld decision to stop the disclosure")
    if len(kept) == len(current):
        raise BadRequest("the narrowed scope keeps every item; record a rejected decision instead")
    for item in current:
        if not narrowing.keeps(item):
            item.in_scope = False
            item.removed_at = now
            item.removed_by_decision_id = decision_id
    demand.scope_hash = scope_hash(demand.id, demand.customer_id, (_key(item) for item in kept))
    demand.scope_version += 1
    # Approvals were given for the wider scope; they never count for the narrowed one (bound to the old hash),
    # and are voided as well so the record says why.
    for approval in await repository.approvals(demand.id):
        if approval.voided_at is None and approval.consumed_at is None:
            approval.voided_at = now
            approval.void_reason = "the scope was narrowed"
    await session.flush()
    return len(current) - len(kept)


async def release_after_window(
    session: AsyncSession, ctx: DisclosureContext, demand_id: str, *, actor: Principal
) -> DisclosureDemand:
    """No objection reached us by the deadline: the demand is ready for release."""
    now = ctx.clock()
    demand = await get_demand(session, demand_id, lock=True)
    next_status(demand.status, Move.release)
    if now <= demand.objection_deadline:
        raise Conflict(f"the objection window is open until {demand.objection_deadline.isoformat()}")
    if await DemandRepository(session).objections(demand.id):
        raise Conflict("objections were recorded: the authority's decision decides")
    await move(
        session,
        demand,
        Move.release,
        actor=actor,
        payload={"objection_deadline": demand.objection_deadline.isoformat()},
        now=now,
    )
    return demand


async def release_due(session: AsyncSession, ctx: DisclosureContext) -> list[str]:
    """The scheduler's daily pass: release every demand whose objection window ended without an objection."""
    scheduler = Principal(subject="service:scheduler", name="scheduler", roles=frozenset(), is_service=True)
    released: list[str] = []
    for demand_id in await DemandRepository(session).window_ended(ctx.clock()):
        await release_after_window(session, ctx, demand_id, actor=scheduler)
        released.append(demand_id)
    return released


async def release_due_job(sessionmaker: async_sessionmaker[AsyncSession], ctx: DisclosureContext) -> list[str]:
    """The scheduler's entry point for release_due, in a transaction of its own."""
    async with sessionmaker() as session, session.begin():
        return await release_due(session, ctx)


async def close(
    session: AsyncSession, ctx: DisclosureContext, demand_id: str, *, reason: str, actor: Principal
) -> DisclosureDemand:
    """Finish or withdraw the demand: its holds are released and any package file is removed (records stay)."""
    now = ctx.clock()
    demand = await get_demand(session, demand_id, lock=True)
    next_status(demand.status, Move.close)
    repository = DemandRepository(session)
    released = await repository.release_holds(demand.id, by=actor.name or actor.subject, at=now)
    for export in await repository.exports(demand.id):
        if export.package_removed_at is None:
            (Path(ctx.settings.disclosure_export_dir) / export.package_name).unlink(missing_ok=True)
            export.package_removed_at = now
    for approval in await repository.approvals(demand.id):
        if approval.voided_at is None and approval.consumed_at is None:
            approval.voided_at = now
            approval.void_reason = "the demand was closed"
    demand.closed_at = now
    demand.closed_by = actor.subject
    demand.close_reason = reason
    await move(
        session, demand, Move.close, actor=actor, payload={"reason": reason, "holds_released": released}, now=now
    )
    return demand


async def valid_approvals(
    session: AsyncSession, ctx: DisclosureContext, demand: DisclosureDemand, now: datetime
) -> list[DisclosureApproval]:
    """Approvals that count now: this scope, unused, unexpired, not voided, by distinct eligible legal approvers."""
    eligible = {approver.lower() for approver in ctx.settings.legal_approvers}
    counted: dict[str, DisclosureApproval] = {}
    for approval in await DemandRepository(session).approvals(demand.id, scope_hash=demand.scope_hash):
        subject = approval.approver.lower()
        if (
            approval.decision != "approve"
            or approval.voided_at is not None
            or approval.consumed_at is not None
            or approval.expires_at <= now
            or subject == demand.received_by.lower()
            or subject not in eligible
        ):
            continue
        counted.setdefault(subject, approval)
    return list(counted.values())
