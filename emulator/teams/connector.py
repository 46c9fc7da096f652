"""The Bot Connector service (Bot Framework REST API v3) as Teams runs it, at serviceUrl `{base}/botconnector/`.

Every call needs the bot's Entra token for https://api.botframework.com (see botframework.py). Errors use the
connector's ErrorResponse shape {"error": {"code", "message"}}; an unauthenticated call gets the ASP.NET
authorization filter's {"message": "Authorization has been denied for this request."}. Every response carries an
X-Correlating-OperationId header, as the REST reference says.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import jwt
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from emulator.state import Tenant, User, utc_now
from emulator.teams.botframework import connector_token_issuers
from emulator.teams.http import TeamsHttpError, TeamsRoute, base_url, read_json_object, tenant_of
from emulator.teams.state import (
    ADAPTIVE_CARD_CONTENT_TYPE,
    BOT_FRAMEWORK_AUDIENCE,
    TEAMS_CHANNEL_ID,
    Conversation,
    StoredActivity,
    TeamsState,
    personal_conversation_id,
    teams_state,
    teams_user_id,
    utc_timestamp,
)

CONNECTOR_PATH = "/botconnector"
# Teams refuses bot messages over about 28 KB (the same limit as a user's message).
MAX_ACTIVITY_BYTES = 28 * 1024
THREAD_SEPARATOR = ";messageid="

router = APIRouter(prefix=f"{CONNECTOR_PATH}/v3", route_class=TeamsRoute)


def service_url(base: str) -> str:
    return f"{base}{CONNECTOR_PATH}/"


def _headers() -> dict[str, str]:
    return {"X-Correlating-OperationId": uuid.uuid4().hex[:16]}


def connector_error(status: int, code: str, message: str) -> TeamsHttpError:
    return TeamsHttpError(status, {"error": {"code": code, "message": message}}, _headers())


def _bad_syntax(message: str) -> TeamsHttpError:
    return connector_error(400, "BadSyntax", message)


def _denied() -> TeamsHttpError:
    return TeamsHttpError(401, {"message": "Authorization has been denied for this request."}, _headers())


def _ok(body: dict[str, Any] | list[Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=_headers())


def authenticate_bot(request: Request, tenant: Tenant, state: TeamsState) -> str:
    """The calling bot's app id, from an Entra token for the Bot Framework audience issued to a registered bot."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _denied()
    try:
        claims = tenant.keys.verify(token, audience=BOT_FRAMEWORK_AUDIENCE, issuer=None)
    except jwt.InvalidTokenError:
        raise _denied() from None
    app_id = claims.get("appid") or claims.get("azp")
    if claims.get("iss") not in connector_token_issuers(tenant) or app_id != state.bot.app_id:
        raise _denied()
    return str(app_id)


def split_conversation_id(conversation_id: str) -> tuple[str, str | None]:
    """A channel thread is addressed as "<channel id>;messageid=<root message id>"."""
    base, sep, root = conversation_id.partition(THREAD_SEPARATOR)
    return base, (root if sep else None)


def _conversation(state: TeamsState, conversation_id: str) -> tuple[Conversation, str | None]:
    base, root = split_conversation_id(conversation_id)
    conversation = state.conversations.get(base)
    if conversation is None:
        raise connector_error(404, "ConversationNotFound", "Conversation not found.")
    return conversation, root


def member_account(tenant: Tenant, user: User) -> dict[str, Any]:
    """A TeamsChannelAccount, as GetConversationMembers returns it."""
    return {
        "id": teams_user_id(tenant, user.id),
        "name": user.display_name,
        "aadObjectId": user.id,
        "givenName": user.given_name,
        "surname": user.surname,
        "email": user.mail,
        "userPrincipalName": user.user_principal_name,
        "tenantId": tenant.tenant_id,
        "userRole": "user",
    }


def _check_attachments(activity: dict[str, Any]) -> None:
    attachments = activity.get("attachments")
    if attachments is None:
        return
    if not isinstance(attachments, list):
        raise connector_error(400, "BadArgument", "Activity attachments must be an array.")
    for attachment in attachments:
        if not isinstance(attachment, dict) or not isinstance(attachment.get("contentType"), str):
            raise connector_error(400, "BadArgument", "Each attachment must be an object with a contentType.")
        if attachment["contentType"] == ADAPTIVE_CARD_CONTENT_TYPE:
            content = attachment.get("content")
            if not isinstance(content, dict) or content.get("type") != "AdaptiveCard":
                raise connector_error(
                    400, "BadArgument", "An Adaptive Card attachment's content must be an AdaptiveCard object."
                )


def _validated_activity(activity: dict[str, Any], raw_size: int) -> str:
    if raw_size > MAX_ACTIVITY_BYTES:
        raise connector_error(413, "MessageSizeTooBig", "Message size is too big.")
    activity_type = activity.get("type")
    if not isinstance(activity_type, str) or not activity_type:
        raise connector_error(400, "BadArgument", "Activity type is required.")
    if activity_type == "message" and not (activity.get("text") or activity.get("attachments")):
        raise connector_error(400, "BadArgument", "A message activity must have text or attachments.")
    _check_attachments(activity)
    return activity_type


def _store(
    state: TeamsState,
    conversation: Conversation,
    activity: dict[str, Any],
    *,
    app_id: str,
    thread_root_id: str | None,
    reply_to_id: str | None,
    base: str,
) -> StoredActivity:
    activity_id = state.next_activity_id()
    now = utc_now()
    addressed = conversation.id if thread_root_id is None else f"{conversation.id}{THREAD_SEPARATOR}{thread_root_id}"
    body = {
        **activity,
        "id": activity_id,
        "timestamp": utc_timestamp(now),
        "channelId": TEAMS_CHANNEL_ID,
        "serviceUrl": service_url(base),
        "from": {"id": state.bot.account_id, "name": state.bot.name},
        "conversation": {**(activity.get("conversation") or {}), "id": addressed},
    }
    if reply_to_id is not None:
        body["replyToId"] = reply_to_id
    stored = StoredActivity(
        id=activity_id,
        conversation_id=conversation.id,
        # A post straight to a channel starts a thread rooted at itself.
        thread_root_id=thread_root_id or (activity_id if conversation.conversation_type == "channel" else None),
        reply_to_id=reply_to_id,
        sender_app_id=app_id,
        created=now,
        body=body,
    )
    conversation.activities[activity_id] = stored
    return stored


async def _activity_body(request: Request) -> tuple[dict[str, Any], str]:
    raw = await request.body()
    activity = await read_json_object(request, _bad_syntax)
    return activity, _validated_activity(activity, len(raw))


@router.post("/conversations")
async def create_conversation(request: Request) -> JSONResponse:
    tenant = tenant_of(request)
    state = teams_state(tenant)
    app_id = authenticate_bot(request, tenant, state)
    params = await read_json_object(request, _bad_syntax)
    raw_channel_data = params.get("channelData")
    channel_data = raw_channel_data if isinstance(raw_channel_data, dict) else {}
    tenant_field = channel_data.get("tenant")
    tenant_id = params.get("tenantId") or (tenant_field.get("id") if isinstance(tenant_field, dict) else None)
    if not tenant_id:
        raise connector_error(400, "BadArgument", "Tenant id is required.")
    if tenant_id != tenant.tenant_id:
        raise connector_error(403, "Forbidden", "The bot is not installed in this tenant.")
    activity = params.get("activity")
    if activity is not None and not isinstance(activity, dict):
        raise connector_error(400, "BadArgument", "activity must be an object.")
    with tenant.lock:
        channel = channel_data.get("channel")
        if isinstance(channel, dict):
            return _start_channel_thread(request, state, app_id, channel.get("id"), activity)
        return _start_personal_chat(request, tenant, state, app_id, params.get("members"), activity)


def _start_channel_thread(
    request: Request, state: TeamsState, app_id: str, channel_id: Any, activity: dict[str, Any] | None
) -> JSONResponse:
    conversation = state.conversations.get(channel_id) if isinstance(channel_id, str) else None
    if conversation is None or conversation.conversation_type != "channel":
        raise connector_error(404, "ConversationNotFound", "Channel not found.")
    if activity is None:
        raise connector_error(400, "BadArgument", "An activity is required to start a channel conversation.")
    _validated_activity(activity, len(json.dumps(activity)))
    stored = _store(
        state, conversation, activity, app_id=app_id, thread_root_id=None, reply_to_id=None, base=base_url(request)
    )
    return _ok(
        {
            "id": f"{conversation.id}{THREAD_SEPARATOR}{stored.id}",
            "activityId": stored.id,
            "serviceUrl": service_url(base_url(request)),
        },
        status=201,
    )


def _start_personal_chat(
    request: Request, tenant: Tenant, state: TeamsState, app_id: str, members: Any, activity: dict[str, Any] | None
) -> JSONResponse:
    if not isinstance(members, list) or len(members) != 1 or not isinstance(members[0], dict):
        raise connector_error(400, "BadArgument", "A one-on-one conversation needs exactly one member.")
    member_id = members[0].get("id") or members[0].get("aadObjectId")
    user = _resolve_user(tenant, member_id)
    if user is None or user.user_type != "Member" or not user.account_enabled:
        raise connector_error(404, "NotFound", "The member could not be found in this tenant.")
    conversation_id = personal_conversation_id(state.bot, user.id)
    conversation = state.conversations.setdefault(
        conversation_id,
        Conversation(id=conversation_id, conversation_type="personal", name=None, member_user_ids=[user.id]),
    )
    body: dict[str, Any] = {"id": conversation.id}
    if activity is not None:
        _validated_activity(activity, len(json.dumps(activity)))
        stored = _store(
            state, conversation, activity, app_id=app_id, thread_root_id=None, reply_to_id=None, base=base_url(request)
        )
        body["activityId"] = stored.id
    return _ok(body, status=201)


def _resolve_user(tenant: Tenant, member_id: Any) -> User | None:
    if not isinstance(member_id, str) or not member_id:
        return None
    if member_id.startswith("29:"):
        return next((u for u in tenant.users.values() if teams_user_id(tenant, u.id) == member_id), None)
    return tenant.users.get(member_id)


@router.post("/conversations/{conversation_id}/activities")
async def send_to_conversation(conversation_id: str, request: Request) -> JSONResponse:
    tenant = tenant_of(request)
    state = teams_state(tenant)
    app_id = authenticate_bot(request, tenant, state)
    activity, activity_type = await _activity_body(request)
    with tenant.lock:
        conversation, root = _conversation(state, conversation_id)
        if activity_type == "typing":
            return _ok({}, status=201)
        if root is not None and root not in conversation.activities:
            raise connector_error(404, "ActivityNotFound", "The thread's root message was not found.")
        stored = _store(
            state, conversation, activity, app_id=app_id, thread_root_id=root, reply_to_id=root, base=base_url(request)
        )
    return _ok({"id": stored.id}, status=201)


@router.post("/conversations/{conversation_id}/activities/{activity_id}")
async def reply_to_activity(conversation_id: str, activity_id: str, request: Request) -> JSONResponse:
    tenant = tenant_of(request)
    state = teams_state(tenant)
    app_id = authenticate_bot(request, tenant, state)
    activity, activity_type = await _activity_body(request)
    with tenant.lock:
        conversation, root = _conversation(state, conversation_id)
        if activity_type == "typing":
            return _ok({}, status=201)
        replied = conversation.activities.get(activity_id)
        # Teams files a reply under the thread of the message it answers; an unknown id just starts a thread.
        thread_root = root or (replied.thread_root_id if replied else None)
        stored = _store(
            state,
            conversation,
            activity,
            app_id=app_id,
            thread_root_id=thread_root,
            reply_to_id=activity_id,
            base=base_url(request),
        )
    return _ok({"id": stored.id}, status=201)


def _own_activity(conversation: Conversation, activity_id: str, app_id: str) -> StoredActivity:
    stored = conversation.activities.get(activity_id)
    if stored is None or stored.deleted:
        raise connector_error(404, "ActivityNotFound", "Activity not found.")
    if stored.sender_app_id != app_id:
        raise connector_error(403, "Forbidden", "The bot can only change its own activities.")
    return stored


@router.put("/conversations/{conversation_id}/activities/{activity_id}")
async def update_activity(conversation_id: str, activity_id: str, request: Request) -> JSONResponse:
    tenant = tenant_of(request)
    state = teams_state(tenant)
    app_id = authenticate_bot(request, tenant, state)
    activity, activity_type = await _activity_body(request)
    if activity_type != "message":
        raise connector_error(400, "BadArgument", "Only message activities can be updated.")
    with tenant.lock:
        conversation, _ = _conversation(state, conversation_id)
        stored = _own_activity(conversation, activity_id, app_id)
        stored.body = {
            **activity,
            "id": stored.id,
            "timestamp": stored.body["timestamp"],
            "channelId": TEAMS_CHANNEL_ID,
            "serviceUrl": stored.body["serviceUrl"],
            "from": stored.body["from"],
            "conversation": stored.body["conversation"],
        }
        if stored.reply_to_id is not None:
            stored.body["replyToId"] = stored.reply_to_id
        stored.modified = utc_now()
        stored.revision += 1
    return _ok({"id": stored.id})


@router.delete("/conversations/{conversation_id}/activities/{activity_id}")
async def delete_activity(conversation_id: str, activity_id: str, request: Request) -> Response:
    tenant = tenant_of(request)
    state = teams_state(tenant)
    app_id = authenticate_bot(request, tenant, state)
    with tenant.lock:
        conversation, _ = _conversation(state, conversation_id)
        stored = _own_activity(conversation, activity_id, app_id)
        stored.deleted = True
        stored.modified = utc_now()
    return Response(status_code=200, headers=_headers())


@router.get("/conversations/{conversation_id}/members")
async def get_members(conversation_id: str, request: Request) -> JSONResponse:
    tenant = tenant_of(request)
    state = teams_state(tenant)
    authenticate_bot(request, tenant, state)
    with tenant.lock:
        conversation, _ = _conversation(state, conversation_id)
        return _ok([member_account(tenant, user) for user in conversation.members(tenant)])


@router.get("/conversations/{conversation_id}/members/{member_id}")
async def get_member(conversation_id: str, member_id: str, request: Request) -> JSONResponse:
    tenant = tenant_of(request)
    state = teams_state(tenant)
    authenticate_bot(request, tenant, state)
    with tenant.lock:
        conversation, _ = _conversation(state, conversation_id)
        user = _resolve_user(tenant, member_id)
        if user is None or not conversation.has_member(user):
            raise connector_error(404, "MemberNotFoundInConversation", "The member was not found in the conversation.")
        return _ok(member_account(tenant, user))


@router.get("/conversations/{conversation_id}/pagedmembers")
@router.get("/conversations/{conversation_id}/pagedMembers")
async def get_paged_members(conversation_id: str, request: Request) -> JSONResponse:
    tenant = tenant_of(request)
    state = teams_state(tenant)
    authenticate_bot(request, tenant, state)
    try:
        page_size = int(request.query_params.get("pageSize") or 200)
        start = int(request.query_params.get("continuationToken") or 0)
    except ValueError:
        raise connector_error(400, "BadArgument", "pageSize and continuationToken must be integers.") from None
    # Teams clamps the page to 50..500 members.
    page_size = min(max(page_size, 50), 500)
    with tenant.lock:
        conversation, _ = _conversation(state, conversation_id)
        members = conversation.members(tenant)
        page = members[start : start + page_size]
        body: dict[str, Any] = {"members": [member_account(tenant, user) for user in page]}
        if start + page_size < len(members):
            body["continuationToken"] = str(start + page_size)
        return _ok(body)


@router.get("/conversations/{conversation_id}/activities/{activity_id}/members")
async def get_activity_members(conversation_id: str, activity_id: str, request: Request) -> JSONResponse:
    tenant = tenant_of(request)
    state = teams_state(tenant)
    authenticate_bot(request, tenant, state)
    with tenant.lock:
        conversation, _ = _conversation(state, conversation_id)
        if activity_id not in conversation.activities:
            raise connector_error(404, "ActivityNotFound", "Activity not found.")
        return _ok([member_account(tenant, user) for user in conversation.members(tenant)])
