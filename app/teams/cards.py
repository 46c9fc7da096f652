"""Adaptive Cards for deletion plans (schema 1.5, what Teams renders at most).

Two variants of the same facts: the bot's card with Approve / Reject as Action.Execute (handled by our bot,
which learns who clicked from the channel's signed token) and Review as Action.OpenUrl; and the Workflows
webhook card, where only Action.OpenUrl works, so Approve is a link to the plan page (Entra sign-in there).
The card's data carries the plan id and the manifest hash on screen, never who is deciding.
"""

from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Approval, Customer, DeletionPlan, PlanItem, PlanStatus
from app.plans.service import plan_items, summary

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
APPROVE_VERB = "approve"
REJECT_VERB = "reject"
TRIGGER_TEXT = {
    "customer_request": "Customer request / Yêu cầu của khách hàng",
    "inactivity": "Inactivity / Không hoạt động",
    "company_decision": "Company decision / Quyết định của công ty",
}
STATUS_TEXT = {
    PlanStatus.pending_approval.value: "Awaiting approval",
    PlanStatus.approved.value: "Approved: deletion will run",
    PlanStatus.rejected.value: "Rejected: nothing will be deleted",
    PlanStatus.expired.value: "Expired: nothing will be deleted",
    PlanStatus.executing.value: "Deleting",
    PlanStatus.awaiting_purge.value: "Soft-deleted: permanent deletion after the grace window",
    PlanStatus.completed.value: "Completed",
    PlanStatus.cancelled.value: "Cancelled",
}


@dataclass(frozen=True, slots=True)
class PlanCardView:
    plan_id: str
    status: str
    trigger: str
    reason: str
    customers: list[str]
    requested_by: str
    messages: int
    files: int
    total_bytes: int
    exclusions: dict[str, int]
    approvals: list[str]
    required: int
    expires_at: str | None
    manifest_hash: str
    cap_reasons: list[str] = field(default_factory=list)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


async def card_view(session: AsyncSession, plan: DeletionPlan, items: list[PlanItem] | None = None) -> PlanCardView:
    items = items if items is not None else await plan_items(session, plan.id)
    facts = summary(plan, items)
    names = {
        customer.id: customer.legal_name
        for customer in (
            await session.execute(select(Customer).where(Customer.id.in_(list(plan.customer_ids) or [""])))
        ).scalars()
    }
    approvals = await session.execute(
        select(Approval)
        .where(
            Approval.plan_id == plan.id,
            Approval.manifest_hash == plan.manifest_hash,
            Approval.decision == "approve",
            Approval.voided_at.is_(None),
        )
        .order_by(Approval.decided_at)
    )
    return PlanCardView(
        plan_id=plan.id,
        status=plan.status,
        trigger=plan.trigger,
        reason=plan.reason,
        customers=[f"{names.get(cid, cid)} ({cid})" for cid in plan.customer_ids],
        requested_by=plan.requested_by_name,
        messages=facts["by_kind"].get("message", {}).get("items", 0),
        files=facts["by_kind"].get("file", {}).get("items", 0),
        total_bytes=plan.total_bytes,
        exclusions=facts["exclusions"],
        approvals=[approval.approver_name for approval in approvals.scalars()],
        required=plan.required_approvals,
        expires_at=facts["expires_at"],
        manifest_hash=plan.manifest_hash,
        cap_reasons=list(plan.cap_reasons),
    )


def plan_url(base_url: str, plan_id: str, **query: str) -> str:
    url = f"{base_url.rstrip('/')}/plans/{quote(plan_id)}"
    return f"{url}?{urlencode(query)}" if query else url


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def plan_card(view: PlanCardView, *, base_url: str, mode: Literal["bot", "webhook"]) -> dict[str, Any]:
    exclusions = ", ".join(f"{reason} × {count}" for reason, count in sorted(view.exclusions.items())) or "none"
    facts = [
        {"title": "Customer", "value": "; ".join(view.customers)},
        {"title": "Trigger", "value": TRIGGER_TEXT.get(view.trigger, view.trigger)},
        {"title": "Requested by", "value": view.requested_by},
        {
            "title": "To delete",
            "value": f"{view.messages} messages, {view.files} files ({human_size(view.total_bytes)})",
        },
        {"title": "Excluded", "value": exclusions},
        {"title": "Approvals", "value": f"{len(view.approvals)} of {view.required}"},
        {"title": "Expires", "value": view.expires_at or "-"},
        {"title": "Manifest", "value": view.manifest_hash[:16]},
    ]
    if view.reason:
        facts.insert(2, {"title": "Reason", "value": view.reason})
    body: list[dict[str, Any]] = [
        _text("Steward: deletion plan", weight="Bolder", size="Medium"),
        _text(
            STATUS_TEXT.get(view.status, view.status),
            color="Attention" if view.status == "pending_approval" else "Default",
        ),
        {"type": "FactSet", "facts": facts},
    ]
    if view.approvals:
        body.append(_text("Approved by: " + ", ".join(view.approvals), isSubtle=True))
    for cap in view.cap_reasons:
        body.append(_text(f"Extra approval needed: {cap}", color="Warning"))
    actions: list[dict[str, Any]] = []
    if view.status == PlanStatus.pending_approval.value:
        data = {"plan_id": view.plan_id, "manifest_hash": view.manifest_hash}
        if mode == "bot":
            actions += [
                {"type": "Action.Execute", "title": "Approve", "verb": APPROVE_VERB, "data": data, "style": "positive"},
                {
                    "type": "Action.Execute",
                    "title": "Reject",
                    "verb": REJECT_VERB,
                    "data": data,
                    "style": "destructive",
                },
            ]
        else:
            actions.append(
                {
                    "type": "Action.OpenUrl",
                    "title": "Approve",
                    "url": plan_url(base_url, view.plan_id, decision="approve", manifest=view.manifest_hash),
                }
            )
    actions.append({"type": "Action.OpenUrl", "title": "Review", "url": plan_url(base_url, view.plan_id)})
    return {
        "$schema": SCHEMA,
        "type": "AdaptiveCard",
        # Action.Execute needs 1.5; a Workflows post has only links, and 1.4 is what every host renders.
        "version": "1.5" if mode == "bot" else "1.4",
        "body": body,
        "actions": actions,
    }


def notice_card(title: str, text: str) -> dict[str, Any]:
    """A plain card for answers to a click that changed nothing (refused, stale, closed)."""
    return {
        "$schema": SCHEMA,
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [_text(title, weight="Bolder"), _text(text)],
    }


def message_activity(card: dict[str, Any]) -> dict[str, Any]:
    """The message shape both the Bot Connector and the Workflows webhook accept."""
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }
