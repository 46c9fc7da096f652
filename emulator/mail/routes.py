"""Graph v1.0 Outlook mail: mailFolders, messages, message delta, update, move, delete, sendMail.

Shapes follow api-reference/v1.0/api/{user-list-mailfolders, user-list-messages, message-get, message-update,
message-move, message-delete, message-permanentdelete, message-delta, user-sendmail}.md and
concepts/delta-query-messages.md. Ids honour `Prefer: IdType="ImmutableId"` on every route and both id forms resolve
everywhere. Folder paths also accept the key-in-parentheses form (`mailFolders('inbox')`) that Graph's own links use.

The control router (mounted under /_emulator) exposes the ground truth, the external outbox, mailbox summaries, and
run-time actions: add/change/delete a message, evict a mailbox's delta tokens, put a mailbox on hold.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from emulator.auth import Caller, require_roles, tenant_of
from emulator.errors import GraphError
from emulator.mail import content
from emulator.mail.query import (
    DEFAULT_PAGE,
    MAX_PAGE,
    Preferences,
    ReceivedFilter,
    next_link_query,
    parse_int,
    parse_orderby,
    parse_received_filter,
    parse_select,
    preferences,
    query_options,
)
from emulator.mail.service import (
    IMPORTANCE,
    Outgoing,
    add_message,
    is_on_hold,
    materialise,
    parse_extended_properties,
    parse_recipients,
    send_mail,
    utc_now,
)
from emulator.mail.store import (
    Address,
    Mailbox,
    MailFolder,
    MalformedId,
    Message,
    SentRecord,
    SyncState,
    Tombstone,
    normalise_property_id,
)
from emulator.state import Tenant

router = APIRouter()
# Test and demo controls for this area, mounted under /_emulator (no Graph prefix).
control_router = APIRouter()

read_access = require_roles("Mail.ReadBasic.All", "Mail.Read", "Mail.ReadWrite", workload="mail")
write_access = require_roles("Mail.ReadWrite", workload="mail")
send_access = require_roles("Mail.Send", workload="mail")
FULL_READ = frozenset({"Mail.Read", "Mail.ReadWrite"})

MESSAGE_DEFAULT = (
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "conversationIndex",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "isRead",
    "isDraft",
    "webLink",
    "inferenceClassification",
    "body",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "flag",
)
MESSAGE_SELECT_ONLY = ("uniqueBody", "internetMessageHeaders")
MESSAGE_PROPERTIES = {name.lower(): name for name in ("id", *MESSAGE_DEFAULT, *MESSAGE_SELECT_ONLY)}
# Mail.ReadBasic(.All) reads everything except these (and extended properties).
BASIC_EXCLUDED = frozenset({"body", "bodyPreview", "uniqueBody"})
MESSAGE_TYPE = "microsoft.graph.message"

FOLDER_PROPERTIES = {
    name.lower(): name
    for name in (
        "id",
        "displayName",
        "parentFolderId",
        "childFolderCount",
        "unreadItemCount",
        "totalItemCount",
        "isHidden",
    )
}

UPDATABLE = frozenset(
    {
        "categories",
        "isRead",
        "importance",
        "inferenceClassification",
        "flag",
        "singleValueExtendedProperties",
        "isDeliveryReceiptRequested",
        "isReadReceiptRequested",
    }
)
DRAFT_ONLY = frozenset(
    {
        "subject",
        "body",
        "internetMessageId",
        "replyTo",
        "toRecipients",
        "ccRecipients",
        "bccRecipients",
        "from",
        "sender",
    }
)
READ_ONLY = frozenset(
    {
        "id",
        "createdDateTime",
        "lastModifiedDateTime",
        "changeKey",
        "receivedDateTime",
        "sentDateTime",
        "hasAttachments",
        "bodyPreview",
        "parentFolderId",
        "conversationId",
        "conversationIndex",
        "isDraft",
        "webLink",
        "uniqueBody",
        "internetMessageHeaders",
    }
)
SEND_FIELDS = frozenset(
    {
        "subject",
        "body",
        "toRecipients",
        "ccRecipients",
        "bccRecipients",
        "replyTo",
        "importance",
        "categories",
        "singleValueExtendedProperties",
        "internetMessageHeaders",
        "attachments",
        "flag",
        "isDeliveryReceiptRequested",
        "isReadReceiptRequested",
        "from",
        "sender",
        "inferenceClassification",
    }
)
FLAG_STATUSES = frozenset({"notFlagged", "flagged", "complete"})
CHANGE_TYPES = frozenset({"created", "updated", "deleted"})
_FOLDER_SEGMENT = re.compile(r"mailFolders\('((?:[^']|'')*)'\)", re.IGNORECASE)
_EXPAND = re.compile(r"^\s*singleValueExtendedProperties\s*\(\s*\$filter\s*=(.*)\)\s*$", re.IGNORECASE | re.DOTALL)
_ID_EQ = re.compile(r"^\s*id\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)
_DISPLAY_NAME_EQ = re.compile(r"^\s*displayName\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)


# Plumbing ----------------------------------------------------------------------------------------------------


def base_url(request: Request) -> str:
    """The public origin for absolute links (@odata.nextLink etc.)."""
    configured = getattr(request.app.state, "base_url", None)
    return str(configured or request.base_url).rstrip("/")


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _quote_key(key: str) -> str:
    return quote(key, safe="@")


def _not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def _respond(body: Any, prefs: Preferences, *, status: int = 200, page_size_used: bool = False) -> JSONResponse:
    applied = prefs.applied(page_size_used=page_size_used)
    return JSONResponse(body, status_code=status, headers={"Preference-Applied": applied} if applied else None)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise GraphError(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid "
            "JSON format.",
        )
    return body


def _parameter(body: dict[str, Any], name: str) -> Any:
    """An action parameter: Graph matches their names case-insensitively (msgraph-sdk sends "DestinationId")."""
    lowered = name.lower()
    return next((value for key, value in body.items() if key.lower() == lowered), None)


def _unknown_property(name: str) -> GraphError:
    return GraphError(
        400,
        "RequestBodyRead",
        f"The property '{name}' does not exist on type '{MESSAGE_TYPE}'. Make sure to only use property names that "
        "are defined by the type or mark the type as open type.",
    )


@dataclass(slots=True)
class Scope:
    """What one request works on: the mailbox (and folder), the caller's reach, and its preferences."""

    tenant: Tenant
    mailbox: Mailbox
    user_key: str  # as the client wrote it in the URL
    base: str
    prefs: Preferences
    basic: bool  # Mail.ReadBasic only: no body, preview or extended properties

    def message_id(self, message: Message) -> str:
        return self.mailbox.message_id(message, immutable=self.prefs.immutable_ids)


def _scope(request: Request, caller: Caller) -> Scope:
    tenant = tenant_of(request)
    user_key = request.path_params["user_key"]
    user = tenant.user(user_key)
    if user is None:
        raise GraphError(404, "ErrorInvalidUser", f"The requested user '{user_key}' is invalid.")
    mailbox = tenant.mail.mailbox(user.id) if user.has_mailbox else None
    if mailbox is None:
        raise GraphError(
            404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or is hosted on-premise."
        )
    return Scope(
        tenant=tenant,
        mailbox=mailbox,
        user_key=user_key,
        base=base_url(request),
        prefs=preferences(request),
        basic=not caller.roles.intersection(FULL_READ),
    )


def _folder_key(request: Request) -> str | None:
    params = request.path_params
    if "folder_id" in params:
        return str(params["folder_id"])
    segment = params.get("folder_seg")
    if segment is None:
        return None
    match = _FOLDER_SEGMENT.fullmatch(segment)
    if match is None:
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
    return match.group(1).replace("''", "'")


def _folder(scope: Scope, key: str) -> MailFolder:
    folder = scope.mailbox.folder(key)
    if folder is None:
        raise _not_found()
    return folder


def _message(scope: Scope, message_id: str) -> Message:
    try:
        message = scope.mailbox.resolve(message_id)
    except MalformedId:
        raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.") from None
    if message is None:
        raise _not_found()
    return message


PATH_SAFE = "/@()'=,:"
USER = "/users/{user_key}"
FOLDER = USER + "/mailFolders/{folder_id}"
FOLDER_SEG = USER + "/{folder_seg}"


# Rendering ---------------------------------------------------------------------------------------------------


def _recipient(address: Address) -> dict[str, Any]:
    return {"emailAddress": {"name": address[0], "address": address[1]}}


def _body(scope: Scope, message: Message) -> dict[str, str]:
    if scope.prefs.body_type == "text":
        return {"contentType": "text", "content": content.body_text(message)}
    return {"contentType": "html", "content": content.body_html(message)}


def _conversation_index(message: Message) -> str:
    digest = hashlib.blake2b(content.conversation_id(message).encode(), digest_size=21).digest()
    return base64.b64encode(b"\x01" + digest).decode()


def _headers(message: Message) -> list[dict[str, str]]:
    headers = [
        ("From", f"{message.sender[0]} <{message.sender[1]}>"),
        ("To", ", ".join(f"{n} <{a}>" for n, a in message.to)),
        ("Subject", content.subject_of(message)),
        ("Date", time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(message.sent))),
        ("Message-ID", content.internet_message_id(message)),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/html; charset=utf-8"),
    ]
    if message.own is not None:
        headers.extend(message.own.headers)
    labels = message.ext_value("String {00020386-0000-0000-C000-000000000046} Name msip_labels")
    if labels is not None:
        headers.append(("msip_labels", labels))
    return [{"name": name, "value": value} for name, value in headers]


def _field(scope: Scope, message: Message, name: str, message_id: str) -> Any:
    own = message.own
    match name:
        case "createdDateTime":
            return _iso(message.received)
        case "lastModifiedDateTime":
            return _iso(message.modified)
        case "changeKey":
            return Mailbox.change_key(message)
        case "categories":
            return list(message.categories)
        case "receivedDateTime":
            return _iso(message.received)
        case "sentDateTime":
            return _iso(message.sent)
        case "hasAttachments":
            return message.has_attachments
        case "internetMessageId":
            return content.internet_message_id(message)
        case "subject":
            return content.subject_of(message)
        case "bodyPreview":
            return content.body_preview(message)
        case "importance":
            return message.importance
        case "parentFolderId":
            return message.folder.id
        case "conversationId":
            return content.conversation_id(message)
        case "conversationIndex":
            return _conversation_index(message)
        case "isDeliveryReceiptRequested":
            return message.receipt_requested[0]
        case "isReadReceiptRequested":
            return message.receipt_requested[1]
        case "isRead":
            return message.is_read
        case "isDraft":
            return own.is_draft if own is not None else False
        case "webLink":
            item_id = quote(message_id, safe="")
            return f"https://outlook.office365.com/owa/?ItemID={item_id}&exvsurl=1&viewmodel=ReadMessageItem"
        case "inferenceClassification":
            return message.inference
        case "body" | "uniqueBody":
            return _body(scope, message)
        case "sender" | "from":
            return _recipient(message.sender)
        case "toRecipients":
            return [_recipient(a) for a in message.to]
        case "ccRecipients":
            return [_recipient(a) for a in message.cc]
        case "bccRecipients":
            return [_recipient(a) for a in own.bcc] if own is not None else []
        case "replyTo":
            return [_recipient(a) for a in own.reply_to] if own is not None else []
        case "flag":
            return {"flagStatus": message.flag}
        case "internetMessageHeaders":
            return _headers(message)
    raise AssertionError(name)


def render_message(
    scope: Scope, message: Message, select: tuple[str, ...] | None, expand: tuple[str, ...] | None = None
) -> dict[str, Any]:
    message_id = scope.message_id(message)
    item: dict[str, Any] = {"@odata.etag": f'W/"{Mailbox.change_key(message)}"', "id": message_id}
    for name in select or MESSAGE_DEFAULT:
        if name == "id" or (scope.basic and name in BASIC_EXCLUDED):
            continue
        item[name] = _field(scope, message, name, message_id)
    if expand and message.ext:
        found = [message.ext[key] for key in expand if key in message.ext]
        if found:
            item["singleValueExtendedProperties"] = [{"id": pid, "value": value} for pid, value in found]
    return item


def _context_select(select: tuple[str, ...] | None) -> str:
    return f"({','.join(select)})" if select else ""


def _parse_expand(scope: Scope, raw: str | None) -> tuple[str, ...] | None:
    """`singleValueExtendedProperties($filter=id eq '...' [or id eq '...'])` as property comparison keys."""
    if raw is None or not raw.strip():
        return None
    if scope.basic:
        raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
    match = _EXPAND.match(raw)
    if match is None:
        raise GraphError(
            400, "ErrorInvalidUrlQuery", f"The '$expand' value '{raw}' is not supported for 'Messages' resource."
        )
    keys: list[str] = []
    for clause in re.split(r"\s+or\s+", match.group(1).strip(), flags=re.IGNORECASE):
        found = _ID_EQ.match(clause)
        if found is None:
            raise GraphError(400, "ErrorInvalidUrlQuery", "Extended properties can only be expanded by 'id eq'.")
        property_id = found.group(1).replace("''", "'")
        try:
            keys.append(normalise_property_id(property_id))
        except ValueError:
            raise GraphError(
                400, "ErrorInvalidExtendedProperty", f"The extended property id '{property_id}' is invalid."
            ) from None
    return tuple(keys)


def _message_select(scope: Scope, raw: str | None) -> tuple[str, ...] | None:
    select = parse_select(raw, MESSAGE_PROPERTIES, "Microsoft.OutlookServices.Message")
    if select and scope.basic and BASIC_EXCLUDED.intersection(select):
        raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
    return select


def render_folder(folder: MailFolder, select: tuple[str, ...] | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": folder.id,
        "displayName": folder.display_name,
        "parentFolderId": folder.parent.id if folder.parent is not None else "",
        "childFolderCount": len(folder.children),
        "unreadItemCount": folder.unread,
        "totalItemCount": folder.total,
        "isHidden": folder.hidden,
    }
    if select:
        return {"id": folder.id, **{name: values[name] for name in select if name != "id"}}
    return values


# Mail folders ------------------------------------------------------------------------------------------------


def _folder_page(
    request: Request, scope: Scope, folders: Iterable[MailFolder], context: str, link_path: str
) -> JSONResponse:
    options = query_options(request)
    include_hidden = options.get("includehiddenfolders", "").lower() == "true"
    select = parse_select(options.get("select"), FOLDER_PROPERTIES, "Microsoft.OutlookServices.MailFolder")
    top = parse_int(options, "top", default=DEFAULT_PAGE, low=1, high=MAX_PAGE)
    skip = parse_int(options, "skip", default=0, low=0, high=1 << 31)
    listed = [f for f in folders if include_hidden or not f.hidden]
    raw_filter = options.get("filter")
    if raw_filter:
        match = _DISPLAY_NAME_EQ.match(raw_filter)
        if match is None:
            raise GraphError(400, "ErrorInvalidUrlQuery", "Only 'displayName eq' filters are supported on folders.")
        wanted = match.group(1).replace("''", "'").lower()
        listed = [f for f in listed if f.display_name.lower() == wanted]
    page = listed[skip : skip + top]
    body: dict[str, Any] = {"@odata.context": f"{scope.base}/v1.0/$metadata#{context}{_context_select(select)}"}
    if options.get("count", "").lower() == "true":
        body["@odata.count"] = len(listed)
    body["value"] = [render_folder(f, select) for f in page]
    if skip + top < len(listed):
        query = next_link_query(
            {
                "includeHiddenFolders": "true" if include_hidden else None,
                "$select": options.get("select"),
                "$filter": raw_filter,
                "$top": str(top),
                "$skip": str(skip + top),
            }
        )
        body["@odata.nextLink"] = f"{scope.base}/v1.0/{link_path}?{query}"
    return _respond(body, scope.prefs)


async def list_mail_folders(request: Request, caller: Caller = Depends(read_access)) -> JSONResponse:
    scope = _scope(request, caller)
    with scope.tenant.lock:
        key = _quote_key(scope.user_key)
        return _folder_page(
            request,
            scope,
            scope.mailbox.top_level,
            f"users('{scope.user_key}')/mailFolders",
            f"users/{key}/mailFolders",
        )


async def get_mail_folder(request: Request, caller: Caller = Depends(read_access)) -> JSONResponse:
    scope = _scope(request, caller)
    with scope.tenant.lock:
        folder = _folder(scope, _folder_key(request) or "")
        options = query_options(request)
        select = parse_select(options.get("select"), FOLDER_PROPERTIES, "Microsoft.OutlookServices.MailFolder")
        context = f"users('{scope.user_key}')/mailFolders{_context_select(select)}/$entity"
        return _respond(
            {"@odata.context": f"{scope.base}/v1.0/$metadata#{context}", **render_folder(folder, select)}, scope.prefs
        )


async def list_child_folders(request: Request, caller: Caller = Depends(read_access)) -> JSONResponse:
    scope = _scope(request, caller)
    with scope.tenant.lock:
        folder_key = _folder_key(request) or ""
        folder = _folder(scope, folder_key)
        context = f"users('{scope.user_key}')/mailFolders('{folder_key}')/childFolders"
        link = f"users/{_quote_key(scope.user_key)}/mailFolders/{quote(folder.id, safe='')}/childFolders"
        return _folder_page(request, scope, folder.children, context, link)


router.add_api_route(USER + "/mailFolders", list_mail_folders, methods=["GET"], include_in_schema=False)
router.add_api_route(FOLDER, get_mail_folder, methods=["GET"], include_in_schema=False)
router.add_api_route(FOLDER + "/childFolders", list_child_folders, methods=["GET"], include_in_schema=False)
router.add_api_route(FOLDER_SEG + "/childFolders", list_child_folders, methods=["GET"], include_in_schema=False)


# Message delta -------------------------------------------------------------------------------------------------


def _sync_gone() -> GraphError:
    return GraphError(
        410, "SyncStateNotFound", "The sync state generation is not found. Start a new synchronization round."
    )


def _delta_options(scope: Scope, folder: MailFolder | None, options: dict[str, str]) -> SyncState:
    select = _message_select(scope, options.get("select"))
    expand = options.get("expand")
    _parse_expand(scope, expand)
    raw_filter = options.get("filter")
    parse_received_filter(raw_filter, operators=("ge", "gt"), resource="Messages")
    order = options.get("orderby")
    if order and " ".join(order.split()).lower() != "receiveddatetime desc":
        raise GraphError(
            400, "ErrorInvalidUrlQuery", "The '$orderby' parameter value is only supported as 'receivedDateTime desc'."
        )
    change_type = options.get("changetype")
    if change_type is not None and change_type not in CHANGE_TYPES:
        raise GraphError(
            400, "ErrorInvalidUrlQuery", f"The changeType '{change_type}' is invalid; use created, updated or deleted."
        )
    return SyncState(
        folder=folder.number if folder is not None else None,
        select=select,
        expand=expand,
        filter=raw_filter,
        change_type=change_type,
        since=0,
        until=0,
        cursor=0,
        initial=True,
    )


def _in_scope(message: Message, folder: MailFolder | None) -> bool:
    return message.folder is folder if folder is not None else message.folder.ipm


async def message_delta(request: Request, caller: Caller = Depends(read_access)) -> JSONResponse:
    scope = _scope(request, caller)
    tenant, mailbox = scope.tenant, scope.mailbox
    with tenant.lock:
        folder_key = _folder_key(request)
        folder = _folder(scope, folder_key) if folder_key is not None else None
        options = query_options(request)
        delta_token, skip_token = options.get("deltatoken"), options.get("skiptoken")
        token = delta_token or skip_token
        if token is not None:
            saved = mailbox.sync_states.get(token)
            if saved is None or saved.folder != (folder.number if folder is not None else None):
                raise _sync_gone()
            # A deltaLink starts a new round from where the last one ended; a nextLink continues a round.
            state = replace(saved, until=tenant.next_seq()) if delta_token else saved
        else:
            state = replace(_delta_options(scope, folder, options), until=tenant.next_seq())
        page_size = scope.prefs.max_page_size or parse_int(options, "top", default=DEFAULT_PAGE, low=1, high=MAX_PAGE)
        select = state.select
        expand = _parse_expand(scope, state.expand)
        received = parse_received_filter(state.filter, operators=("ge", "gt"), resource="Messages")
        log = folder.log if folder is not None else mailbox.log
        position, end = log.after(state.cursor), len(log.seqs)
        # Stale entries are skipped without counting, so bound the scan: an empty page with a nextLink is legal.
        budget = page_size * 50 + 1_000
        value: list[dict[str, Any]] = []
        cursor = state.cursor
        while position < end and log.seqs[position] <= state.until and len(value) < page_size and budget:
            seq, item = log.seqs[position], log.items[position]
            position += 1
            budget -= 1
            cursor = seq
            rendered = _delta_entry(scope, state, folder, seq, item, select, expand, received)
            if rendered is not None:
                value.append(rendered)
        finished = position >= end or log.seqs[position] > state.until
        body: dict[str, Any] = {"@odata.context": f"{scope.base}/v1.0/$metadata#Collection(message)"}
        link_base = f"{scope.base}/v1.0/users/{_quote_key(scope.user_key)}" + (
            f"/mailFolders('{folder.id}')/messages/delta" if folder is not None else "/messages/delta"
        )
        new_token = secrets.token_urlsafe(24)
        if finished:
            mailbox.save_sync_state(new_token, replace(state, since=state.until, cursor=state.until, initial=False))
            body["@odata.deltaLink"] = f"{link_base}?$deltatoken={new_token}"
        else:
            mailbox.save_sync_state(new_token, replace(state, cursor=cursor))
            body["@odata.nextLink"] = f"{link_base}?$skiptoken={new_token}"
        body["value"] = value
        return _respond(body, scope.prefs, page_size_used=True)


def _delta_entry(
    scope: Scope,
    state: SyncState,
    folder: MailFolder | None,
    seq: int,
    item: Message | Tombstone,
    select: tuple[str, ...] | None,
    expand: tuple[str, ...] | None,
    received: ReceivedFilter | None,
) -> dict[str, Any] | None:
    immutable = scope.prefs.immutable_ids
    if isinstance(item, Message):
        if item.seq != seq or not _in_scope(item, folder):
            return None  # changed again later (a newer entry reports it) or no longer here (a tombstone does)
        if received is not None and not received(item):
            return None
        if not state.initial and state.change_type is not None:
            created = item.folder_seq > state.since
            if state.change_type == "deleted" or (state.change_type == "created") != created:
                return None
        return {"@odata.type": "#microsoft.graph.message", **render_message(scope, item, select, expand)}
    if state.initial or state.change_type in ("created", "updated"):
        return None
    current = scope.mailbox.by_serial[item.serial]
    if current is not None and _in_scope(current, folder) and (immutable or current.rest_serial == item.rest_serial):
        return None  # still here under the same id: nothing was removed from the client's point of view
    return {
        "@odata.type": "#microsoft.graph.message",
        "id": scope.mailbox.tombstone_id(item, immutable=immutable),
        "@removed": {"reason": "deleted"},
    }


for _path in (
    FOLDER + "/messages/delta",
    FOLDER + "/messages/delta()",
    FOLDER_SEG + "/messages/delta",
    FOLDER_SEG + "/messages/delta()",
    USER + "/messages/delta",
    USER + "/messages/delta()",
):
    router.add_api_route(_path, message_delta, methods=["GET"], include_in_schema=False)


# Messages ------------------------------------------------------------------------------------------------------


def _sort_key(name: str) -> Callable[[Message], Any]:
    if name == "receivedDateTime" or name == "createdDateTime":
        return lambda m: (m.received, m.serial)
    if name == "sentDateTime":
        return lambda m: (m.sent, m.serial)
    if name == "lastModifiedDateTime":
        return lambda m: (m.modified, m.serial)
    return lambda m: (content.subject_of(m).lower(), m.serial)


async def list_messages(request: Request, caller: Caller = Depends(read_access)) -> JSONResponse:
    scope = _scope(request, caller)
    with scope.tenant.lock:
        folder_key = _folder_key(request)
        folder = _folder(scope, folder_key) if folder_key is not None else None
        options = query_options(request)
        select = _message_select(scope, options.get("select"))
        expand = _parse_expand(scope, options.get("expand"))
        received = parse_received_filter(
            options.get("filter"), operators=("ge", "gt", "le", "lt", "eq"), resource="Messages"
        )
        order = parse_orderby(options.get("orderby"), filtered=received is not None)
        top = parse_int(options, "top", default=DEFAULT_PAGE, low=1, high=MAX_PAGE)
        skip = parse_int(options, "skip", default=0, low=0, high=1 << 31)
        page_size = min(top, scope.prefs.max_page_size or top)
        messages = folder.newest_first() if folder is not None else scope.mailbox.visible_newest_first()
        if received is not None:
            messages = [m for m in messages if received(m)]
        for name, descending in reversed(order):
            messages = sorted(messages, key=_sort_key(name), reverse=descending)
        page = messages[skip : skip + page_size]
        where = (
            f"users('{scope.user_key}')/mailFolders('{folder_key}')/messages"
            if folder is not None
            else f"users('{scope.user_key}')/messages"
        )
        body: dict[str, Any] = {"@odata.context": f"{scope.base}/v1.0/$metadata#{where}{_context_select(select)}"}
        if options.get("count", "").lower() == "true":
            body["@odata.count"] = len(messages)
        body["value"] = [render_message(scope, m, select, expand) for m in page]
        if skip + page_size < len(messages):
            query = next_link_query(
                {
                    "$select": options.get("select"),
                    "$expand": options.get("expand"),
                    "$filter": options.get("filter"),
                    "$orderby": options.get("orderby"),
                    "$top": str(page_size),
                    "$skip": str(skip + page_size),
                }
            )
            body["@odata.nextLink"] = f"{scope.base}{quote(request.url.path, safe=PATH_SAFE)}?{query}"
        return _respond(body, scope.prefs, page_size_used=scope.prefs.max_page_size is not None)


for _path in (USER + "/messages", FOLDER + "/messages", FOLDER_SEG + "/messages"):
    router.add_api_route(_path, list_messages, methods=["GET"], include_in_schema=False)


def _entity_context(scope: Scope, select: tuple[str, ...] | None) -> str:
    return f"{scope.base}/v1.0/$metadata#users('{scope.user_key}')/messages{_context_select(select)}/$entity"


def _message_in_path(request: Request, scope: Scope) -> Message:
    folder_key = _folder_key(request)
    if folder_key is not None:
        _folder(scope, folder_key)
    return _message(scope, request.path_params["message_id"])


async def get_message(request: Request, caller: Caller = Depends(read_access)) -> JSONResponse:
    scope = _scope(request, caller)
    with scope.tenant.lock:
        message = _message_in_path(request, scope)
        options = query_options(request)
        select = _message_select(scope, options.get("select"))
        expand = _parse_expand(scope, options.get("expand"))
        body = {"@odata.context": _entity_context(scope, select), **render_message(scope, message, select, expand)}
        return _respond(body, scope.prefs)


def _apply_update(scope: Scope, message: Message, changes: dict[str, Any]) -> bool:
    """Validate every field first, then apply; returns whether anything was written."""
    is_draft = message.own is not None and message.own.is_draft
    updates: list[Callable[[], None]] = []
    for name, value in changes.items():
        if name.startswith("@"):
            continue  # OData annotations such as the @odata.type the SDK sends
        if name in DRAFT_ONLY and not is_draft:
            raise GraphError(
                400,
                "ErrorInvalidPropertyUpdateSentMessage",
                "Update operation is invalid for property of a sent message.",
            )
        if name in READ_ONLY:
            raise GraphError(400, "ErrorInvalidPropertySet", "Set action is invalid for property.")
        if name not in UPDATABLE:
            if name in ("multiValueExtendedProperties", "extensions", "attachments"):
                raise GraphError(400, "ErrorInvalidRequest", f"Updating '{name}' is not supported by this emulator.")
            raise _unknown_property(name)
        updates.append(_updater(scope, message, name, value))
    for update in updates:
        update()
    return bool(updates)


def _bad_value(name: str) -> GraphError:
    return GraphError(400, "RequestBodyRead", f"Cannot convert the literal value of property '{name}'.")


def _updater(scope: Scope, message: Message, name: str, value: Any) -> Callable[[], None]:
    mailbox = scope.mailbox
    if name == "isRead":
        if not isinstance(value, bool):
            raise _bad_value(name)
        return lambda: mailbox.set_read(message, value)
    if name == "categories":
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise _bad_value(name)
        categories = tuple(dict.fromkeys(value))
        return lambda: setattr(message, "categories", categories)
    if name == "importance":
        importance = IMPORTANCE.get(value.lower()) if isinstance(value, str) else None
        if importance is None:
            raise _bad_value(name)
        return lambda: setattr(message, "importance", importance)
    if name == "inferenceClassification":
        if value not in ("focused", "other"):
            raise _bad_value(name)
        return lambda: setattr(message, "inference", value)
    if name == "flag":
        status = value.get("flagStatus") if isinstance(value, dict) else None
        if status not in FLAG_STATUSES:
            raise _bad_value(name)
        return lambda: setattr(message, "flag", status)
    if name in ("isDeliveryReceiptRequested", "isReadReceiptRequested"):
        if not isinstance(value, bool):
            raise _bad_value(name)
        delivery, read = message.receipt_requested
        pair = (value, read) if name == "isDeliveryReceiptRequested" else (delivery, value)
        return lambda: setattr(message, "receipt_requested", pair)
    # singleValueExtendedProperties: create or replace each named property.
    try:
        parsed = parse_extended_properties(value)
    except ValueError as exc:
        raise GraphError(400, "ErrorInvalidExtendedPropertyValue", str(exc)) from None

    def write() -> None:
        message.ext = {**(message.ext or {}), **parsed}

    return write


async def update_message(request: Request, caller: Caller = Depends(write_access)) -> JSONResponse:
    scope = _scope(request, caller)
    changes = await _json_body(request)
    with scope.tenant.lock:
        message = _message_in_path(request, scope)
        if _apply_update(scope, message, changes):
            scope.mailbox.touch(scope.tenant, message, at=utc_now())
        body = {"@odata.context": _entity_context(scope, None), **render_message(scope, message, None)}
        return _respond(body, scope.prefs)


async def delete_message(request: Request, caller: Caller = Depends(write_access)) -> Response:
    scope = _scope(request, caller)
    with scope.tenant.lock:
        message = _message_in_path(request, scope)
        scope.mailbox.soft_delete(scope.tenant, message, at=utc_now(), on_hold=is_on_hold(scope.tenant, scope.mailbox))
    return Response(status_code=204)


async def move_message(request: Request, caller: Caller = Depends(write_access)) -> JSONResponse:
    scope = _scope(request, caller)
    body = await _json_body(request)
    with scope.tenant.lock:
        message = _message_in_path(request, scope)
        destination_id = _parameter(body, "destinationId")
        if not isinstance(destination_id, str) or not destination_id:
            raise GraphError(400, "ErrorInvalidParameter", "The value of the parameter 'DestinationId' is empty.")
        destination = scope.mailbox.folder(destination_id)
        if destination is None:
            raise _not_found()
        scope.mailbox.move(scope.tenant, message, destination, at=utc_now())
        out = {"@odata.context": _entity_context(scope, None), **render_message(scope, message, None)}
        return _respond(out, scope.prefs, status=201)


async def permanent_delete(request: Request, caller: Caller = Depends(write_access)) -> Response:
    scope = _scope(request, caller)
    with scope.tenant.lock:
        message = _message_in_path(request, scope)
        scope.mailbox.purge(scope.tenant, message, on_hold=is_on_hold(scope.tenant, scope.mailbox))
    return Response(status_code=204)


for _prefix in (USER, FOLDER, FOLDER_SEG):
    _item = _prefix + "/messages/{message_id}"
    router.add_api_route(_item, get_message, methods=["GET"], include_in_schema=False)
    router.add_api_route(_item, update_message, methods=["PATCH"], include_in_schema=False)
    router.add_api_route(_item, delete_message, methods=["DELETE"], include_in_schema=False)
    router.add_api_route(_item + "/move", move_message, methods=["POST"], include_in_schema=False)
    router.add_api_route(_item + "/permanentDelete", permanent_delete, methods=["POST"], include_in_schema=False)


# sendMail ------------------------------------------------------------------------------------------------------


def _outgoing(message: dict[str, Any]) -> Outgoing:
    for name in message:
        if not name.startswith("@") and name not in SEND_FIELDS:
            raise _unknown_property(name)
    try:
        to = parse_recipients(message.get("toRecipients"), "toRecipients")
        cc = parse_recipients(message.get("ccRecipients"), "ccRecipients")
        bcc = parse_recipients(message.get("bccRecipients"), "bccRecipients")
        reply_to = parse_recipients(message.get("replyTo"), "replyTo")
    except ValueError as exc:
        raise GraphError(400, "ErrorInvalidRecipients", str(exc)) from None
    if not (to or cc or bcc):
        raise GraphError(
            400,
            "ErrorInvalidRecipients",
            "At least one recipient isn't valid., A message can't be sent because it contains no recipients.",
        )
    body = message.get("body") or {}
    if not isinstance(body, dict):
        raise _bad_value("body")
    content_type = str(body.get("contentType") or "text").lower()
    text = body.get("content") or ""
    if content_type not in ("text", "html") or not isinstance(text, str):
        raise _bad_value("body")
    subject = message.get("subject") or ""
    if not isinstance(subject, str):
        raise _bad_value("subject")
    importance = IMPORTANCE.get(str(message.get("importance") or "normal").lower())
    if importance is None:
        raise _bad_value("importance")
    categories = message.get("categories") or []
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise _bad_value("categories")
    headers: list[tuple[str, str]] = []
    for header in message.get("internetMessageHeaders") or []:
        if not isinstance(header, dict) or not isinstance(header.get("name"), str):
            raise _bad_value("internetMessageHeaders")
        name = header["name"]
        if not isinstance(header.get("value"), str):
            raise _bad_value("internetMessageHeaders")
        if not name.lower().startswith("x-"):
            raise GraphError(
                400,
                "InvalidInternetMessageHeader",
                f"The internet message header name '{name}' should start with 'x-' or 'X-'.",
            )
        headers.append((name, header["value"]))
    ext = None
    if message.get("singleValueExtendedProperties") is not None:
        try:
            ext = parse_extended_properties(message["singleValueExtendedProperties"])
        except ValueError as exc:
            raise GraphError(400, "ErrorInvalidExtendedPropertyValue", str(exc)) from None
    return Outgoing(
        subject=subject,
        body_type=content_type,
        body=text,
        to=to,
        cc=cc,
        bcc=bcc,
        reply_to=reply_to,
        importance=importance,
        categories=tuple(categories),
        ext=ext,
        headers=tuple(headers),
        has_attachments=bool(message.get("attachments")),
    )


async def send_mail_route(request: Request, caller: Caller = Depends(send_access)) -> Response:
    scope = _scope(request, caller)
    body = await _json_body(request)
    message = _parameter(body, "message")
    if not isinstance(message, dict) or not message:
        raise GraphError(400, "ErrorInvalidParameter", "The value of the parameter 'Message' is empty.")
    save = _parameter(body, "saveToSentItems")
    save = True if save is None else save
    if isinstance(save, str) and save.lower() in ("true", "false"):
        save = save.lower() == "true"
    if not isinstance(save, bool):
        raise _bad_value("saveToSentItems")
    outgoing = _outgoing(message)
    for key in ("from", "sender"):
        sent_as = message.get(key)
        address = (sent_as or {}).get("emailAddress", {}).get("address") if isinstance(sent_as, dict) else None
        if address and address.lower() != scope.mailbox.address.lower():
            raise GraphError(
                403,
                "ErrorSendAsDenied",
                "The user account which was used to submit this request does not have the right to send mail on "
                "behalf of the specified sending account.",
            )
    with scope.tenant.lock:
        send_mail(scope.tenant, scope.mailbox, outgoing, save_to_sent_items=save)
    return Response(status_code=202)


router.add_api_route(USER + "/sendMail", send_mail_route, methods=["POST"], include_in_schema=False)


# Control plane (/_emulator/mail/...) ---------------------------------------------------------------------------


def _control_mailbox(tenant: Tenant, user_key: str) -> Mailbox:
    user = tenant.user(user_key)
    mailbox = tenant.mail.mailbox(user.id) if user is not None else None
    if mailbox is None:
        raise HTTPException(404, f"no mailbox for '{user_key}'")
    return mailbox


def _control_message(mailbox: Mailbox, message_id: str) -> Message:
    try:
        message = mailbox.resolve(message_id)
    except MalformedId:
        message = None
    if message is None:
        raise HTTPException(404, f"no message '{message_id}' in this mailbox")
    return message


def _truth_row(mailbox: Mailbox, message: Message) -> dict[str, Any]:
    return {
        "mailbox": mailbox.user_id,
        "immutableId": mailbox.immutable_id(message),
        "id": mailbox.rest_id(message),
        "folder": message.folder.well_known or message.folder.display_name,
        "receivedDateTime": _iso(message.received),
        "subject": content.subject_of(message),
        "customers": list(message.truth_customers),
        "identifiers": [{"kind": kind, "value": value} for kind, value in message.truth_identifiers],
    }


def _sent_row(record: SentRecord) -> dict[str, Any]:
    return {
        "at": record.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "mailbox": record.mailbox,
        "from": record.sender[1],
        "to": [a for _, a in record.to],
        "cc": [a for _, a in record.cc],
        "bcc": [a for _, a in record.bcc],
        "external": list(record.external),
        "customers": list(record.customers),
        "subject": record.subject,
        "bodyType": record.body_type,
        "body": record.body,
        "internetMessageId": record.internet_message_id,
        "sentCopyImmutableId": record.sent_copy_id,
    }


async def _control_json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise HTTPException(400, "body must be a JSON object")
    return body


@control_router.get("/mail/truth")
async def control_truth(request: Request) -> dict[str, Any]:
    tenant = tenant_of(request)
    with tenant.lock:
        found = tenant.mail.truth_by_customer()
        return {cid: [_truth_row(mb, m) for mb, m in rows] for cid, rows in sorted(found.items())}


@control_router.get("/mail/truth/{customer_id}")
async def control_truth_for(request: Request, customer_id: str) -> list[dict[str, Any]]:
    tenant = tenant_of(request)
    if tenant.customer(customer_id) is None:
        raise HTTPException(404, f"no customer '{customer_id}'")
    with tenant.lock:
        return [_truth_row(mb, m) for mb, m in tenant.mail.truth(customer_id)]


@control_router.get("/mail/mailboxes")
async def control_mailboxes(request: Request) -> list[dict[str, Any]]:
    tenant = tenant_of(request)
    with tenant.lock:
        rows = tenant.mail.summary()
        for row in rows:
            row["onHold"] = is_on_hold(tenant, tenant.mail.mailboxes[row["userId"]])
        return rows


@control_router.get("/mail/outbox")
async def control_outbox(request: Request) -> list[dict[str, Any]]:
    tenant = tenant_of(request)
    with tenant.lock:
        return [_sent_row(r) for r in tenant.mail.outbox]


@control_router.post("/mail/mailboxes/{user_key}/evict-delta-tokens")
async def control_evict(request: Request, user_key: str) -> dict[str, int]:
    tenant = tenant_of(request)
    with tenant.lock:
        return {"evicted": _control_mailbox(tenant, user_key).evict_sync_states()}


@control_router.put("/mail/mailboxes/{user_key}/hold")
async def control_hold(request: Request, user_key: str) -> dict[str, Any]:
    tenant = tenant_of(request)
    body = await _control_json(request)
    if not isinstance(body.get("enabled"), bool):
        raise HTTPException(400, 'body must be {"enabled": true|false}')
    with tenant.lock:
        mailbox = _control_mailbox(tenant, user_key)
        mailbox.hold = body["enabled"]
        return {"userId": mailbox.user_id, "hold": mailbox.hold, "onHold": is_on_hold(tenant, mailbox)}


@control_router.get("/mail/mailboxes/{user_key}/purges")
async def control_purges(request: Request, user_key: str) -> list[dict[str, Any]]:
    tenant = tenant_of(request)
    with tenant.lock:
        mailbox = _control_mailbox(tenant, user_key)
        return [_truth_row(mailbox, m) for m in mailbox.purges]


def _control_address(value: Any, field: str) -> Address:
    if isinstance(value, str) and "@" in value:
        return (value, value)
    if isinstance(value, dict) and isinstance(value.get("address"), str) and "@" in value["address"]:
        return (str(value.get("name") or value["address"]), value["address"])
    raise HTTPException(400, f'\'{field}\' must be an address or {{"name", "address"}}')


@control_router.post("/mail/mailboxes/{user_key}/messages", status_code=201)
async def control_add_message(request: Request, user_key: str) -> dict[str, Any]:
    """Deliver a message now: {"folder", "subject", "body", "from", "to": [...], "cc", "isRead", "customerIds"}."""
    tenant = tenant_of(request)
    body = await _control_json(request)
    with tenant.lock:
        mailbox = _control_mailbox(tenant, user_key)
        folder = mailbox.folder(str(body.get("folder") or "inbox"))
        if folder is None:
            raise HTTPException(404, f"no folder '{body.get('folder')}'")
        to_raw = body.get("to") or [mailbox.address]
        cc_raw = body.get("cc") or []
        if not isinstance(to_raw, list) or not isinstance(cc_raw, list):
            raise HTTPException(400, "'to' and 'cc' must be lists")
        customer_ids = body.get("customerIds")
        if customer_ids is not None and (
            not isinstance(customer_ids, list) or any(tenant.customer(str(c)) is None for c in customer_ids)
        ):
            raise HTTPException(400, "'customerIds' must list known customer ids")
        message = add_message(
            tenant,
            mailbox,
            folder,
            subject=str(body.get("subject") or ""),
            body=str(body.get("body") or ""),
            sender=_control_address(body.get("from") or mailbox.address, "from"),
            to=tuple(_control_address(a, "to") for a in to_raw),
            cc=tuple(_control_address(a, "cc") for a in cc_raw),
            is_read=bool(body.get("isRead", False)),
            customer_ids=tuple(str(c) for c in customer_ids) if customer_ids is not None else None,
        )
        return _truth_row(mailbox, message)


@control_router.patch("/mail/mailboxes/{user_key}/messages/{message_id}")
async def control_change_message(request: Request, user_key: str, message_id: str) -> dict[str, Any]:
    """Change a message as its owner would in Outlook: {"isRead", "categories", "importance", "subject"}."""
    tenant = tenant_of(request)
    body = await _control_json(request)
    if not body:
        raise HTTPException(400, "body must name at least one change")
    with tenant.lock:
        mailbox = _control_mailbox(tenant, user_key)
        message = _control_message(mailbox, message_id)
        for name, value in body.items():
            if name == "isRead" and isinstance(value, bool):
                mailbox.set_read(message, value)
            elif name == "categories" and isinstance(value, list):
                message.categories = tuple(str(c) for c in value)
            elif name == "importance" and value in IMPORTANCE:
                message.importance = value
            elif name == "subject" and isinstance(value, str):
                materialise(message).subject = value
            else:
                raise HTTPException(400, f"cannot set '{name}' to {value!r}")
        mailbox.touch(tenant, message, at=utc_now())
        return _truth_row(mailbox, message)


@control_router.delete("/mail/mailboxes/{user_key}/messages/{message_id}", status_code=204)
async def control_delete_message(request: Request, user_key: str, message_id: str, mode: str = "soft") -> Response:
    """Delete as a user would: mode=soft (Recoverable Items), deleteditems (Deleted Items) or purge (for good)."""
    tenant = tenant_of(request)
    if mode not in ("soft", "deleteditems", "purge"):
        raise HTTPException(400, "mode must be soft, deleteditems or purge")
    with tenant.lock:
        mailbox = _control_mailbox(tenant, user_key)
        message = _control_message(mailbox, message_id)
        on_hold = is_on_hold(tenant, mailbox)
        if mode == "soft":
            mailbox.soft_delete(tenant, message, at=utc_now(), on_hold=on_hold)
        elif mode == "deleteditems":
            mailbox.move(tenant, message, mailbox.by_name["deleteditems"], at=utc_now())
        else:
            mailbox.purge(tenant, message, on_hold=on_hold)
    return Response(status_code=204)
