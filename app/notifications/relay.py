"""The outbox relay: delivers pending notifications at least once, with backoff, and records the outcome.

A row is claimed with a conditional UPDATE (pending, or a claim that ran out) before it is sent, so two relays
never send the same row at once; a relay that dies mid-send leaves a claim that expires and the row is sent
again. That is the at-least-once half; the other half is on the receiving side: a card that was already posted
is updated rather than posted again, and a confirmation mail carries a send id Graph can be asked about.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.service import audit
from app.config import Settings
from app.db.base import utc_now
from app.models import Customer, DeletionPlan, OutboxMessage, OutboxStatus, PlanStatus
from app.notifications.outbox import DELETION_CONFIRMATION, PLAN_CARD, PLAN_CARD_UPDATE, PLAN_REMINDER
from app.plans.context import policy_for
from app.policy import render_notice
from app.teams.cards import card_view, plan_card, plan_url
from app.teams.sender import CardSender, TeamsError

log = logging.getLogger(__name__)
DELIVERED_KINDS = (DELETION_CONFIRMATION, PLAN_CARD, PLAN_CARD_UPDATE, PLAN_REMINDER)

CLAIM_S = 300
MAX_ATTEMPTS = 8
BACKOFF_BASE_S = 5.0
BACKOFF_MAX_S = 3600.0


class DeliveryError(Exception):
    """Delivery failed in a way worth retrying."""


class Mailer(Protocol):
    async def send(self, to: list[str], subject: str, body: str) -> str | None:
        """Send a plain-text mail; returns Graph's request-id when known."""
        ...


@dataclass
class RelayReport:
    sent: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1)))


class Relay:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        cards: CardSender | None,
        mailer: Mailer | None,
        clock: Callable[[], datetime] = utc_now,
        batch_size: int = 20,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._cards = cards
        self._mailer = mailer
        self._clock = clock
        self._batch_size = batch_size

    async def run_once(self) -> RelayReport:
        report = RelayReport()
        for message_id in await self._claim():
            await self._deliver_one(message_id, report)
        return report

    async def _claim(self) -> list[int]:
        now = self._clock()
        # Other domains share the outbox table with their own relays: claim only the kinds delivered here.
        claimable = and_(
            OutboxMessage.kind.in_(DELIVERED_KINDS),
            or_(
                and_(OutboxMessage.status == OutboxStatus.pending, OutboxMessage.next_attempt_at <= now),
                and_(OutboxMessage.status == OutboxStatus.sending, OutboxMessage.claimed_until <= now),
            ),
        )
        claimed: list[int] = []
        async with self._sessionmaker() as session, session.begin():
            candidates = await session.execute(
                select(OutboxMessage.id).where(claimable).order_by(OutboxMessage.id).limit(self._batch_size)
            )
            for message_id in candidates.scalars().all():
                result = await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == message_id, claimable)
                    .values(status=OutboxStatus.sending, claimed_until=now + timedelta(seconds=CLAIM_S))
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(message_id)
        return claimed

    async def _deliver_one(self, message_id: int, report: RelayReport) -> None:
        async with self._sessionmaker() as session, session.begin():
            message = await session.get(OutboxMessage, message_id)
            assert message is not None
            try:
                result = await self._deliver(session, message)
            except DeliveryError as exc:
                message.attempts += 1
                message.last_error = str(exc)[:2000]
                message.claimed_until = None
                if message.attempts >= MAX_ATTEMPTS:
                    message.status = OutboxStatus.failed
                    report.failed.append(message_id)
                    await audit.append(
                        session,
                        actor="service:relay",
                        action="outbox.failed",
                        subject=f"outbox:{message.key}",
                        payload={"kind": message.kind, "attempts": message.attempts, "error": message.last_error},
                    )
                else:
                    message.status = OutboxStatus.pending
                    message.next_attempt_at = self._clock() + backoff(message.attempts)
                    report.retried.append(message_id)
                log.warning("outbox %s (%s) not delivered: %s", message.id, message.kind, exc)
                return
            message.status = OutboxStatus.sent
            message.sent_at = self._clock()
            message.claimed_until = None
            message.result = result
            report.sent.append(message_id)

    async def _deliver(self, session: AsyncSession, message: OutboxMessage) -> dict[str, Any]:
        payload = message.payload
        if message.kind == DELETION_CONFIRMATION:
            return await self._confirmation(session, payload)
        plan = await session.get(DeletionPlan, str(payload.get("plan_id")))
        if plan is None:
            return {"skipped": "the plan no longer exists"}
        if self._cards is None:
            raise DeliveryError("no Teams bot and no Workflows webhook is configured")
        try:
            if message.kind == PLAN_CARD:
                return await self._post_card(session, plan, payload)
            if message.kind == PLAN_CARD_UPDATE:
                return await self._update_card(session, plan)
            if message.kind == PLAN_REMINDER:
                return await self._remind(plan, str(payload.get("stage", "reminder")))
        except TeamsError as exc:
            raise DeliveryError(str(exc)) from None
        raise DeliveryError(f"unknown outbox kind {message.kind}")

    def _mode(self) -> str:
        return str(getattr(self._cards, "mode", "bot"))

    async def _render(self, session: AsyncSession, plan: DeletionPlan) -> dict[str, Any]:
        view = await card_view(session, plan)
        if self._mode() == "bot":
            return plan_card(view, base_url=self._settings.public_base_url, mode="bot")
        return plan_card(view, base_url=self._settings.public_base_url, mode="webhook")

    async def _post_card(self, session: AsyncSession, plan: DeletionPlan, payload: dict[str, Any]) -> dict[str, Any]:
        assert self._cards is not None
        if plan.status != PlanStatus.pending_approval or plan.manifest_version != payload.get("manifest_version"):
            return {"skipped": f"plan is {plan.status} at manifest v{plan.manifest_version}"}
        card = await self._render(session, plan)
        if plan.card_activity_id and plan.card_conversation_id:
            # One live card per plan: a new manifest version replaces the card instead of adding a second one.
            await self._cards.update(plan.card_conversation_id, plan.card_activity_id, card)
            posted_id: str | None = plan.card_activity_id
        else:
            posted = await self._cards.post(card)
            posted_id = posted.activity_id
            if posted.activity_id:
                plan.card_conversation_id = posted.conversation_id
                plan.card_activity_id = posted.activity_id
        await audit.append(
            session,
            actor="service:relay",
            action="teams.card_posted",
            subject=f"plan:{plan.id}",
            payload={"mode": self._mode(), "activity_id": posted_id, "manifest_hash": plan.manifest_hash},
        )
        return {"mode": self._mode(), "activity_id": posted_id}

    async def _update_card(self, session: AsyncSession, plan: DeletionPlan) -> dict[str, Any]:
        assert self._cards is not None
        card = await self._render(session, plan)
        if self._mode() == "bot":
            if not (plan.card_activity_id and plan.card_conversation_id):
                return {"skipped": "no card was posted for this plan"}
            await self._cards.update(plan.card_conversation_id, plan.card_activity_id, card)
            return {"updated": plan.card_activity_id}
        if plan.status == PlanStatus.pending_approval:
            return {"skipped": "webhook posts carry only final states"}
        await self._cards.post(card)
        return {"posted": plan.status}

    async def _remind(self, plan: DeletionPlan, stage: str) -> dict[str, Any]:
        assert self._cards is not None
        if plan.status != PlanStatus.pending_approval:
            return {"skipped": f"plan is {plan.status}"}
        word = "Escalation" if stage == "escalation" else "Reminder"
        text = (
            f"{word}: deletion plan {plan.id[:8]} still needs approval before "
            f"{plan.expires_at.isoformat() if plan.expires_at else 'it expires'}. "
            f"Review: {plan_url(self._settings.public_base_url, plan.id)}"
        )
        await self._cards.reply(plan.card_conversation_id or "", plan.card_activity_id, text)
        return {"stage": stage}

    async def _confirmation(self, session: AsyncSession, payload: dict[str, Any]) -> dict[str, Any]:
        if self._mailer is None:
            raise DeliveryError("no notification mailbox is configured")
        plan = await session.get(DeletionPlan, str(payload.get("plan_id")))
        if plan is None:
            return {"skipped": "the plan no longer exists"}
        recipients = [str(address) for address in payload.get("to", []) if address]
        if not recipients:
            return {"skipped": "no address to confirm to"}
        customer = await session.get(Customer, plan.customer_ids[0]) if plan.customer_ids else None
        subject, body = confirmation_text(self._settings, plan, customer, payload)
        request_id = await self._mailer.send(recipients, subject, body)
        await audit.append(
            session,
            actor="service:relay",
            action="mail.deletion_confirmation",
            subject=f"plan:{plan.id}",
            payload={"recipients": len(recipients), "request_id": request_id},
        )
        return {"request_id": request_id, "recipients": len(recipients)}


def confirmation_text(
    settings: Settings, plan: DeletionPlan, customer: Customer | None, payload: dict[str, Any]
) -> tuple[str, str]:
    """One mail, Vietnamese first then English, from the policy's deletion_confirmation templates."""
    policy = policy_for(settings)
    values = {
        "customer_name": customer.legal_name if customer else ", ".join(plan.customer_ids),
        "trigger": plan.trigger,
        "deleted_at": str(payload.get("deleted_at", "")),
        "item_count": int(payload.get("item_count", 0)),
        "proof_id": plan.id,
        "proof_retention_years": policy.disposal.proof_retention_years,
        "contact_email": str(payload.get("contact_email", "")),
    }
    vi = render_notice(policy, "deletion_confirmation", "vi", values)
    en = render_notice(policy, "deletion_confirmation", "en", values)
    return f"{vi.subject} / {en.subject}", f"{vi.body}\n\n----------\n\n{en.body}"
