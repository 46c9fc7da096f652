"""The approval bot: Microsoft's Teams SDK (microsoft-teams-apps 2.x) mounted into Steward's FastAPI app.

`mount_bot` adds POST /api/messages behind BotChannelGuard (guard.py). Only Action.Execute invokes are handled:
the verb says approve or reject, the card data says which plan and which manifest hash was on screen, and the
person is the channel-verified `from.aadObjectId`, checked against the approvers group by the approval rules.
The answer replaces the card for the person who clicked (Universal Actions); the outbox refreshes it for
everyone else.
"""

import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.approvals.service import (
    ApprovalRefused,
    Approver,
    PlanClosed,
    StaleManifest,
    decide,
    record_refusal,
)
from app.audit.service import audit
from app.config import Settings
from app.exceptions import NotFound
from app.models import Decision
from app.plans.context import DeletionContext, policy_for
from app.plans.service import get_plan
from app.teams.cards import APPROVE_VERB, REJECT_VERB, card_view, notice_card, plan_card
from app.teams.guard import BotChannelGuard, ChannelKeys, ChannelTokenVerifier
from app.teams.sender import BotToken

log = logging.getLogger(__name__)

MESSAGING_PATH = "/api/messages"
VERBS = {APPROVE_VERB: Decision.approve, REJECT_VERB: Decision.reject}


def _sessionmaker(api: FastAPI) -> async_sessionmaker[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = api.state.sessionmaker
    return maker


async def handle_execute(
    api: FastAPI, settings: Settings, *, verb: str | None, data: Any, subject: str | None, name: str | None
) -> dict[str, Any]:
    """Decide on a plan for a verified person; returns the card to show them."""
    decision = VERBS.get(verb or "")
    if decision is None or not isinstance(data, dict):
        return notice_card("Not understood", "This button is not one Steward knows.")
    plan_id, manifest_hash = data.get("plan_id"), data.get("manifest_hash")
    if not isinstance(plan_id, str) or not isinstance(manifest_hash, str) or not subject:
        return notice_card("Not understood", "The card is missing the plan it belongs to.")
    ctx = DeletionContext(settings=settings, policy=policy_for(settings))
    approver = Approver(subject=subject, name=name or subject)
    maker = _sessionmaker(api)
    try:
        async with maker() as session, session.begin():
            await decide(
                session,
                ctx,
                plan_id=plan_id,
                manifest_hash=manifest_hash,
                approver=approver,
                decision=decision,
                channel="teams",
            )
            plan = await get_plan(session, plan_id)
            return plan_card(await card_view(session, plan), base_url=settings.public_base_url, mode="bot")
    except (ApprovalRefused, StaleManifest, PlanClosed, NotFound) as refused:
        await record_refusal(
            maker, plan_id=plan_id, actor=subject, action=f"approval.{type(refused).__name__}", why=refused.message
        )
        return notice_card("Nothing changed", refused.message)


def mount_bot(api: FastAPI, settings: Settings) -> None:
    """Serve the bot at /api/messages on `api`. Call before the app starts (it adds a middleware)."""
    from microsoft_teams.api.activities.invoke.adaptive_card.action import AdaptiveCardInvokeActivity
    from microsoft_teams.api.auth.cloud_environment import PUBLIC, with_overrides
    from microsoft_teams.api.models.adaptive_card import AdaptiveCardActionCardResponse
    from microsoft_teams.apps import ActivityContext, App
    from microsoft_teams.apps.http import FastAPIAdapter
    from microsoft_teams.cards import AdaptiveCard

    verify: str | bool = str(settings.ca_bundle) if settings.ca_bundle else True
    verifier = ChannelTokenVerifier(
        keys=ChannelKeys(settings.teams_openid_metadata_url, verify=verify, timeout_s=settings.http_timeout_s),
        issuer=settings.teams_channel_issuer,
        app_id=settings.teams_bot_app_id,
        tenant_id=settings.tenant_id,
    )

    async def audit_refusal(why: str, activity: dict[str, Any]) -> None:
        sender = (activity.get("from") or {}).get("aadObjectId")
        async with _sessionmaker(api)() as session, session.begin():
            await audit.append(
                session,
                actor=str(sender or "unknown"),
                action="teams.invoke_refused",
                subject="bot:/api/messages",
                payload={"reason": why, "type": str(activity.get("type")), "name": str(activity.get("name"))},
            )

    api.add_middleware(BotChannelGuard, path=MESSAGING_PATH, verifier=verifier, on_refusal=audit_refusal)
    adapter = FastAPIAdapter(app=api)
    teams_app = App(
        client_id=settings.teams_bot_app_id,
        tenant_id=settings.tenant_id,
        token=BotToken(settings),
        cloud=with_overrides(
            PUBLIC,
            openid_metadata_url=settings.teams_openid_metadata_url,
            token_issuer=settings.teams_channel_issuer,
        ),
        service_url=settings.teams_service_url,
        http_server_adapter=adapter,
        messaging_endpoint=MESSAGING_PATH,
    )

    @teams_app.on_card_action_execute
    async def on_execute(ctx: ActivityContext[AdaptiveCardInvokeActivity]) -> AdaptiveCardActionCardResponse:
        activity = ctx.activity
        action = activity.value.action
        card = await handle_execute(
            api,
            settings,
            verb=action.verb,
            data=action.data,
            subject=activity.from_.aad_object_id,
            name=activity.from_.name,
        )
        return AdaptiveCardActionCardResponse(value=AdaptiveCard.model_validate(card))

    @asynccontextmanager
    async def initialize(_: Any) -> Any:
        await teams_app.initialize()
        yield

    adapter.lifespans.append(initialize)
    api.state.teams_app = teams_app
