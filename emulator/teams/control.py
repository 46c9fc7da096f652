"""Test and demo controls for the Teams side, under /_emulator/teams: settings, inspection, and card clicks.

`POST /_emulator/teams/invoke` plays Teams when a user presses an Action.Execute button: it builds the
`adaptiveCard/action` invoke activity Teams sends, signs it with the channel's key and POSTs it to the bot's
messaging endpoint over HTTPS, then hands back the bot's status and body. `forge` sends the same activity with a
token that a correct bot must refuse, so tests can prove it does.
"""

from __future__ import annotations

import ssl
import time
import uuid
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import jwt
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from emulator.state import Tenant, User, utc_now
from emulator.teams.botframework import (
    JWKS_PATH,
    OPENID_METADATA_PATH,
    channel_issuer,
    channel_token_claims,
    token_endpoint,
)
from emulator.teams.connector import service_url, split_conversation_id
from emulator.teams.http import TeamsHttpError, TeamsRoute, base_url, tenant_of
from emulator.teams.state import (
    BOT_FRAMEWORK_SCOPE,
    TEAMS_CHANNEL_ID,
    Conversation,
    InvokeRecord,
    StoredActivity,
    TeamsState,
    teams_state,
    teams_user_id,
    utc_timestamp,
)
from emulator.teams.workflows import webhook_url
from emulator.tokens import SigningKey

# Teams gives a bot about 15 seconds to answer an invoke before it shows the user an error.
INVOKE_TIMEOUT_S = 15.0

Forgery = Literal["no_token", "wrong_key", "wrong_audience", "wrong_issuer", "expired", "wrong_service_url"]

control_router = APIRouter(prefix="/teams", route_class=TeamsRoute)


def _control_error(status: int, message: str) -> TeamsHttpError:
    return TeamsHttpError(status, {"error": message})


def teams_config(tenant: Tenant, base: str) -> dict[str, Any]:
    """Everything a bot (or a notifier) needs to point at this tenant's Teams instead of Microsoft's."""
    state = teams_state(tenant)
    workflow = next(iter(state.workflows.values()))
    channel = state.conversations[state.channel_id]
    return {
        "tenant_id": tenant.tenant_id,
        "bot_app_id": state.bot.app_id,
        "bot_app_secret": state.bot.secret,
        "bot_name": state.bot.name,
        "bot_messaging_endpoint": state.bot.messaging_endpoint,
        "service_url": service_url(base),
        "openid_metadata_url": f"{base}{OPENID_METADATA_PATH}",
        "jwks_url": f"{base}{JWKS_PATH}",
        "issuer": channel_issuer(base),
        "token_endpoint": token_endpoint(base, tenant.tenant_id),
        "token_scope": BOT_FRAMEWORK_SCOPE,
        "team_id": state.team_id,
        "team_aad_group_id": state.team_group_id,
        "team_name": state.team_name,
        "channel_conversation_id": channel.id,
        "channel_name": channel.name,
        "webhook_url": webhook_url(base, workflow),
    }


def workflow_posts(tenant: Tenant, workflow_id: str | None = None) -> list[dict[str, Any]]:
    """Cards the tenant's Workflows webhooks accepted, oldest first (for tests that call in-process)."""
    state = teams_state(tenant)
    with tenant.lock:
        return [
            post.as_control()
            for workflow in state.workflows.values()
            if workflow_id in (None, workflow.id)
            for post in workflow.posts
        ]


def conversation_activities(tenant: Tenant, conversation_id: str) -> list[dict[str, Any]]:
    """What bots posted to a conversation (a channel's threads included), oldest first."""
    state = teams_state(tenant)
    base, _ = split_conversation_id(conversation_id)
    with tenant.lock:
        conversation = state.conversations.get(base)
        return [a.as_control() for a in conversation.activities.values()] if conversation else []


@control_router.get("/config")
async def get_config(request: Request) -> JSONResponse:
    return JSONResponse(teams_config(tenant_of(request), base_url(request)))


class BotSettings(BaseModel):
    messaging_endpoint: str | None = None
    ca_bundle: str | None = None


def _https_endpoint(url: str) -> str:
    parts = urlsplit(url)
    # Azure Bot only accepts https messaging endpoints.
    if parts.scheme != "https" or not parts.netloc:
        raise _control_error(400, f"The messaging endpoint must be an absolute https URL, not {url!r}.")
    return url


@control_router.patch("/bot")
async def update_bot(settings: BotSettings, request: Request) -> JSONResponse:
    tenant = tenant_of(request)
    state = teams_state(tenant)
    with tenant.lock:
        if settings.messaging_endpoint is not None:
            state.bot.messaging_endpoint = _https_endpoint(settings.messaging_endpoint)
        if settings.ca_bundle is not None:
            state.bot.ca_bundle = settings.ca_bundle
    return JSONResponse(teams_config(tenant, base_url(request)))


@control_router.post("/botframework/rotate-keys")
async def rotate_channel_keys(request: Request) -> JSONResponse:
    """Publish a new channel signing key (the old one stays published), as Microsoft rolls its keys."""
    tenant = tenant_of(request)
    state = teams_state(tenant)
    with tenant.lock:
        key = state.channel_keys.rotate()
    return JSONResponse({"kid": key.kid})


class NewWorkflow(BaseModel):
    name: str = Field(default="Steward notifications", min_length=1, max_length=200)


@control_router.get("/workflows")
async def list_workflows(request: Request) -> JSONResponse:
    tenant = tenant_of(request)
    state = teams_state(tenant)
    base = base_url(request)
    with tenant.lock:
        return JSONResponse(
            [
                {
                    "id": w.id,
                    "name": w.name,
                    "url": webhook_url(base, w),
                    "channel_id": w.channel_id,
                    "posts": len(w.posts),
                }
                for w in state.workflows.values()
            ]
        )


@control_router.post("/workflows", status_code=201)
async def create_workflow(body: NewWorkflow, request: Request) -> JSONResponse:
    tenant = tenant_of(request)
    state = teams_state(tenant)
    staff = tenant.staff
    with tenant.lock:
        workflow = state.new_workflow(body.name, state.channel_id, staff[0].id if staff else None)
    return JSONResponse(
        {"id": workflow.id, "name": workflow.name, "url": webhook_url(base_url(request), workflow)}, 201
    )


@control_router.get("/workflows/{workflow_id}/posts")
async def list_workflow_posts(workflow_id: str, request: Request) -> JSONResponse:
    tenant = tenant_of(request)
    if workflow_id not in teams_state(tenant).workflows:
        raise _control_error(404, f"No workflow {workflow_id}.")
    return JSONResponse(workflow_posts(tenant, workflow_id))


@control_router.get("/conversations")
async def list_conversations(request: Request) -> JSONResponse:
    tenant = tenant_of(request)
    state = teams_state(tenant)
    with tenant.lock:
        return JSONResponse(
            [
                {
                    "id": c.id,
                    "conversation_type": c.conversation_type,
                    "name": c.name,
                    "team_id": c.team_id,
                    "activities": len(c.activities),
                }
                for c in state.conversations.values()
            ]
        )


@control_router.get("/conversations/{conversation_id}/activities")
async def list_activities(conversation_id: str, request: Request) -> JSONResponse:
    tenant = tenant_of(request)
    base, _ = split_conversation_id(conversation_id)
    if base not in teams_state(tenant).conversations:
        raise _control_error(404, f"No conversation {conversation_id}.")
    return JSONResponse(conversation_activities(tenant, conversation_id))


@control_router.get("/invokes")
async def list_invokes(request: Request) -> JSONResponse:
    tenant = tenant_of(request)
    state = teams_state(tenant)
    with tenant.lock:
        return JSONResponse([record.as_control() for record in state.invokes])


class InvokeRequest(BaseModel):
    user_id: str = Field(description="The clicking user's object id (or UPN).")
    verb: str = Field(min_length=1)
    data: dict[str, Any] = Field(default_factory=dict)
    conversation_id: str | None = Field(default=None, description="Defaults to the card's, else the channel.")
    activity_id: str | None = Field(default=None, description="The card message whose button was pressed.")
    bot_endpoint: str | None = Field(default=None, description="Defaults to the bot's messaging endpoint.")
    ca_bundle: str | None = Field(default=None, description="CA file to trust for the bot's certificate.")
    forge: Forgery | None = None
    locale: str = "en-US"


def _clicked_card(state: TeamsState, body: InvokeRequest) -> tuple[Conversation, StoredActivity | None]:
    if body.activity_id is None:
        conversation_id, _ = split_conversation_id(body.conversation_id or state.channel_id)
        conversation = state.conversations.get(conversation_id)
        if conversation is None:
            raise _control_error(404, f"No conversation {body.conversation_id}.")
        return conversation, None
    candidates = (
        [state.conversations.get(split_conversation_id(body.conversation_id)[0])]
        if body.conversation_id
        else list(state.conversations.values())
    )
    for conversation in candidates:
        if conversation is not None and body.activity_id in conversation.activities:
            card = conversation.activities[body.activity_id]
            if card.deleted:
                raise _control_error(409, f"Message {body.activity_id} was deleted; there is no button to press.")
            return conversation, card
    raise _control_error(404, f"No message {body.activity_id} in the bot's conversations.")


def invoke_activity(
    tenant: Tenant,
    state: TeamsState,
    *,
    base: str,
    user: User,
    conversation: Conversation,
    card: StoredActivity | None,
    verb: str,
    data: dict[str, Any],
    locale: str,
) -> dict[str, Any]:
    """The `adaptiveCard/action` invoke Teams delivers when `user` presses an Action.Execute button."""
    now = utc_now()
    conversation_account: dict[str, Any] = {
        "conversationType": conversation.conversation_type,
        "tenantId": tenant.tenant_id,
        "id": conversation.id,
    }
    channel_data: dict[str, Any] = {"tenant": {"id": tenant.tenant_id}, "source": {"name": "message"}}
    if conversation.conversation_type == "channel":
        conversation_account["isGroup"] = True
        if card is not None and card.thread_root_id is not None:
            conversation_account["id"] = f"{conversation.id};messageid={card.thread_root_id}"
        channel_data["channel"] = {"id": conversation.id, "name": conversation.name}
        channel_data["team"] = {"id": state.team_id, "name": state.team_name, "aadGroupId": state.team_group_id}
    activity: dict[str, Any] = {
        "name": "adaptiveCard/action",
        "type": "invoke",
        "timestamp": utc_timestamp(now),
        "localTimestamp": utc_timestamp(now),
        "id": f"f:{uuid.uuid4().int % 10**19:019d}",
        "channelId": TEAMS_CHANNEL_ID,
        "serviceUrl": service_url(base),
        "from": {"id": teams_user_id(tenant, user.id), "name": user.display_name, "aadObjectId": user.id},
        "conversation": conversation_account,
        "recipient": {"id": state.bot.account_id, "name": state.bot.name},
        "entities": [{"locale": locale, "platform": "Web", "type": "clientInfo"}],
        "channelData": channel_data,
        "value": {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"},
        "locale": locale,
    }
    if card is not None:
        activity["replyToId"] = card.id
        channel_data["legacy"] = {"replyToId": card.id}
    return activity


def channel_token(state: TeamsState, *, base: str, service: str, forge: Forgery | None) -> str | None:
    """The channel's JWT for one delivery, or a deliberately broken one when `forge` says how."""
    if forge == "no_token":
        return None
    now = time.time()
    claims = channel_token_claims(base=base, app_id=state.bot.app_id, service_url=service, now=now)
    if forge == "wrong_audience":
        claims["aud"] = str(uuid.uuid4())
    elif forge == "wrong_issuer":
        claims["iss"] = f"{base}/not-the-channel"
    elif forge == "expired":
        claims["nbf"], claims["exp"] = int(now) - 7200, int(now) - 3600
    elif forge == "wrong_service_url":
        claims["serviceurl"] = "https://smba.attacker.example/teams/"
    if forge == "wrong_key":
        # Same kid as the published key, different private key: only a signature check catches it.
        rogue = SigningKey.generate()
        kid = state.channel_keys.current.kid
        return jwt.encode(claims, rogue.private_key, algorithm="RS256", headers={"kid": kid, "x5t": kid})
    kid = state.channel_keys.current.kid
    return jwt.encode(
        claims, state.channel_keys.current.private_key, algorithm="RS256", headers={"kid": kid, "x5t": kid}
    )


def _trust(ca_bundle: str | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise _control_error(400, f"The CA bundle could not be loaded ({type(exc).__name__}).") from None


def _response_body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


@control_router.post("/invoke")
async def press_button(body: InvokeRequest, request: Request) -> JSONResponse:
    tenant = tenant_of(request)
    state = teams_state(tenant)
    base = base_url(request)
    with tenant.lock:
        user = tenant.user(body.user_id)
        if user is None:
            raise _control_error(404, f"No user {body.user_id}.")
        conversation, card = _clicked_card(state, body)
        if not conversation.has_member(user):
            raise _control_error(403, f"{user.user_principal_name} is not a member of {conversation.id}.")
        endpoint = _https_endpoint(body.bot_endpoint or state.bot.messaging_endpoint or "")
        activity = invoke_activity(
            tenant,
            state,
            base=base,
            user=user,
            conversation=conversation,
            card=card,
            verb=body.verb,
            data=body.data,
            locale=body.locale,
        )
        token = channel_token(state, base=base, service=activity["serviceUrl"], forge=body.forge)
        trust = _trust(body.ca_bundle or state.bot.ca_bundle)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with httpx.AsyncClient(verify=trust, timeout=INVOKE_TIMEOUT_S) as client:
            response = await client.post(endpoint, json=activity, headers=headers)
    except httpx.TimeoutException:
        raise _control_error(504, f"The bot did not answer within {INVOKE_TIMEOUT_S:.0f} s.") from None
    except httpx.HTTPError as exc:
        raise _control_error(502, f"The bot could not be reached ({type(exc).__name__}).") from None
    answer = _response_body(response)
    with tenant.lock:
        state.invokes.append(
            InvokeRecord(
                at=utc_now(),
                user_id=user.id,
                conversation_id=activity["conversation"]["id"],
                activity_id=card.id if card else None,
                verb=body.verb,
                forge=body.forge,
                endpoint=endpoint,
                status=response.status_code,
                response=answer,
            )
        )
    return JSONResponse({"status": response.status_code, "body": answer, "activity": activity})
