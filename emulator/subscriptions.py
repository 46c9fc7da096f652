"""Change notifications over webhooks: `/v1.0/subscriptions` and the delivery of change and lifecycle notifications.

Shaped after subscription-post-subscriptions.md, change-notifications-delivery-webhooks.md and
change-notifications-lifecycle-events.md:
- create validates the resource, permission and lifetime, then runs the validation handshake
  (`POST {notificationUrl}?validationToken=...`, text/plain, 10 s) against notificationUrl and
  lifecycleNotificationUrl; renew (PATCH), delete, list (clientState hidden) and reauthorize.
- Changes published with `Tenant.emit_change` are matched to subscriptions and POSTed as
  `{"value": [...]}` to each notificationUrl from a background task on the server's loop; changes that arrive
  together are batched into one POST per URL. Each POST has Graph's 3 s timeout.

Supported resources: `users/{id}/messages`, `users/{id}/mailFolders('{id}')/messages` (or `/mailFolders/{id}/`),
`drives/{id}/root`, `users/{id}/drive/root`, `users` and `users/{id}` (`me/...` is rejected for app-only tokens,
as in Graph). Mail changes are expected as ChangeEvent(resource="users/{uid}/messages/{mid}", owner=uid,
data={"parentFolderId", "folderWellKnownName", "etag"}), file changes as
ChangeEvent(resource="drives/{did}/items/{iid}", owner=did) and user changes as ChangeEvent(resource="users/{uid}").

Emulator-only deviations (each documented here because Graph has no equivalent):
- `allow_http_notification_urls` (default False): accept plain-http notification URLs on loopback hosts only.
- `ca_bundle`: the CA file used to verify receivers' TLS certificates (default: the system store).
- Retries: Graph retries a failed delivery for up to 4 hours; the emulator makes at most `max_delivery_attempts`
  attempts (default 4) with exponential backoff from `retry_base_seconds` (default 1 s: 1 + 2 + 4 = 7 s in all).
- `$filter`/`$select` in a subscription's resource are accepted but not evaluated; rich notifications
  (includeResourceData) are not implemented and are refused with 400.
All knobs are set with `PUT /_emulator/subscriptions/settings`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import ssl
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus, urlsplit

import httpx
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from emulator.auth import Caller, authenticate, tenant_of
from emulator.errors import GraphError
from emulator.state import ChangeEvent, Tenant, utc_now

log = logging.getLogger(__name__)

router = APIRouter()
# Test and demo controls for this area, mounted under /_emulator (no Graph prefix).
control_router = APIRouter()

VALIDATION_TIMEOUT_S = 10.0
DELIVERY_TIMEOUT_S = 3.0
# Changes published within this window go out in one POST per notification URL.
COALESCE_DELAY_S = 0.05
MAX_NOTIFICATIONS_PER_POST = 100
DRAIN_TIMEOUT_S = 60.0
CLIENT_STATE_MAX = 128
TLS_VERSIONS = frozenset({"v1_0", "v1_1", "v1_2", "v1_3"})
LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})
# Outlook only sends subscriptionRemoved and missed; reauthorizationRequired applies to every resource.
LIFECYCLE_SUPPORT = {
    "message": LIFECYCLE_EVENTS,
    "driveItem": frozenset({"reauthorizationRequired"}),
    "user": frozenset({"reauthorizationRequired"}),
}
CHANGE_TYPES = {
    "message": frozenset({"created", "updated", "deleted"}),
    # Drive root (and list) subscriptions only support "updated" (subscription resource page).
    "driveItem": frozenset({"updated"}),
    "user": frozenset({"updated", "deleted"}),
}
# Application permissions that may read each resource (subscription-post-subscriptions.md permission table).
READ_ROLES = {
    "message": frozenset({"Mail.ReadBasic", "Mail.ReadBasic.All", "Mail.Read", "Mail.ReadWrite"}),
    "driveItem": frozenset({"Files.ReadWrite.All", "Sites.ReadWrite.All", "Sites.FullControl.All"}),
    "user": frozenset({"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}),
}
ODATA_TYPES = {"message": "#Microsoft.Graph.Message", "user": "#Microsoft.Graph.User"}

_USER = r"(?:users/(?P<user>[^/()]+)|(?P<me>me))"
RESOURCE_PATTERNS = (
    ("message", re.compile(rf"^{_USER}/messages$", re.IGNORECASE)),
    (
        "message",
        re.compile(rf"^{_USER}/mailfolders(?:\('(?P<folder>[^']+)'\)|/(?P<folder_seg>[^/]+))/messages$", re.IGNORECASE),
    ),
    ("driveItem", re.compile(r"^drives/(?P<drive>[^/]+)/root$", re.IGNORECASE)),
    ("driveItem", re.compile(rf"^{_USER}/drive/root$", re.IGNORECASE)),
    ("user", re.compile(r"^users(?:/(?P<user>[^/()]+))?$", re.IGNORECASE)),
)
EVENT_MESSAGE = re.compile(
    r"^/?users/(?P<user>[^/]+)/(?:mailfolders/(?P<folder>[^/]+)/)?messages/(?P<id>[^/]+)$", re.IGNORECASE
)
EVENT_DRIVE_ITEM = re.compile(r"^/?drives/(?P<drive>[^/]+)/(?:items|root)\b", re.IGNORECASE)
EVENT_USER = re.compile(r"^/?users/(?P<user>[^/]+)$", re.IGNORECASE)


@dataclass
class SubscriptionSettings:
    ca_bundle: str | None = None
    allow_http_notification_urls: bool = False
    max_delivery_attempts: int = 4
    retry_base_seconds: float = 1.0
    # Live Graph refuses Outlook subscriptions beyond 10,070 minutes ("under 7 days" in the docs; older doc
    # copies said 4,230). Configurable because the documented value has changed before.
    outlook_max_minutes: int = 10_070
    drive_max_minutes: int = 42_300
    directory_max_minutes: int = 41_760

    def max_minutes(self, kind: str) -> int:
        return {"message": self.outlook_max_minutes, "driveItem": self.drive_max_minutes}.get(
            kind, self.directory_max_minutes
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ca_bundle": self.ca_bundle,
            "allow_http_notification_urls": self.allow_http_notification_urls,
            "max_delivery_attempts": self.max_delivery_attempts,
            "retry_base_seconds": self.retry_base_seconds,
            "outlook_max_minutes": self.outlook_max_minutes,
            "drive_max_minutes": self.drive_max_minutes,
            "directory_max_minutes": self.directory_max_minutes,
        }


@dataclass(slots=True)
class Subscription:
    id: str
    resource: str
    kind: str  # message | driveItem | user
    owner: str | None  # user id (message, users/{id}/drive/root, users/{id}) or drive id (drives/{id}/root)
    owner_is_drive: bool
    folder: str | None
    change_types: frozenset[str]
    notification_url: str
    lifecycle_notification_url: str | None
    expiration: datetime
    client_state: str | None
    application_id: str
    creator_id: str
    latest_supported_tls_version: str
    notification_url_app_id: str | None
    created: datetime = field(default_factory=utc_now)
    reauthorized_at: datetime | None = None


@dataclass(slots=True)
class Delivery:
    """One POST (and its retries) to a receiver, kept for tests."""

    id: str
    kind: str  # change | lifecycle
    url: str
    notifications: list[dict[str, Any]]
    attempts: int = 0
    statuses: list[int | None] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    delivered: bool = False
    finished: bool = False

    @property
    def subscription_ids(self) -> list[str]:
        return sorted({str(n["subscriptionId"]) for n in self.notifications})

    def public(self) -> dict[str, Any]:
        """A view for the control plane: clientState is a shared secret, so it is masked."""
        return {
            "id": self.id,
            "kind": self.kind,
            "url": self.url,
            "subscriptionIds": self.subscription_ids,
            "attempts": self.attempts,
            "statuses": list(self.statuses),
            "errors": list(self.errors),
            "delivered": self.delivered,
            "finished": self.finished,
            "value": [
                {**n, "clientState": None if n.get("clientState") is None else "***"} for n in self.notifications
            ],
        }


def _format_expiration(moment: datetime) -> str:
    # Graph echoes seven fractional digits ("2016-11-20T18:23:45.9356913Z").
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _parse_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _base_url(request: Request) -> str:
    configured = getattr(request.app.state, "base_url", None)
    return str(configured or request.base_url).rstrip("/")


class SubscriptionHub:
    """The tenant's subscriptions and the sender that delivers their notifications."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.settings = SubscriptionSettings()
        self.subscriptions: dict[str, Subscription] = {}
        self.deliveries: deque[Delivery] = deque(maxlen=10_000)
        # The loop the server runs on; changes published from other threads are handed over to it.
        self.loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._flush_handle: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ssl_context: ssl.SSLContext | None = None
        tenant.change_listeners.append(self.on_change)

    # Outbound HTTPS -----------------------------------------------------------------------------------

    def configure(self, **changes: Any) -> None:
        ca_bundle = changes.get("ca_bundle", self.settings.ca_bundle)
        context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
        for name, value in changes.items():
            setattr(self.settings, name, value)
        self._ssl_context = context

    def _client(self, timeout: float) -> httpx.AsyncClient:
        if self._ssl_context is None:
            self.configure()
        assert self._ssl_context is not None
        # trust_env=False: proxy variables of the host must not reroute calls to a local receiver.
        return httpx.AsyncClient(verify=self._ssl_context, timeout=timeout, trust_env=False)

    def check_url(self, url: Any, field_name: str) -> str:
        if not isinstance(url, str) or not url.strip():
            raise GraphError(400, "InvalidRequest", f"The '{field_name}' property is required.")
        parts = urlsplit(url.strip())
        allowed_http = self.settings.allow_http_notification_urls and _is_loopback(parts.hostname or "")
        if parts.scheme != "https" and not (parts.scheme == "http" and allowed_http):
            raise GraphError(400, "InvalidRequest", f"The '{field_name}' must use the HTTPS protocol.")
        if not parts.hostname:
            raise GraphError(400, "InvalidRequest", f"The '{field_name}' is not a valid URL.")
        return url.strip()

    async def validate_endpoint(self, url: str) -> None:
        """Graph's handshake: the receiver must echo the URL-decoded token as text/plain within 10 s."""
        token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
        target = f"{url}{'&' if '?' in url else '?'}validationToken={quote_plus(token)}"
        try:
            async with self._client(VALIDATION_TIMEOUT_S) as client:
                response = await client.post(target, headers={"Content-Type": "text/plain; charset=utf-8"})
        except httpx.HTTPError as exc:
            log.info("subscription validation of %s failed: %s", urlsplit(url).netloc, type(exc).__name__)
            response = None
        if response is None or response.status_code != 200:
            raise GraphError(
                400,
                "InvalidRequest",
                "Subscription validation request failed. Notification endpoint must respond with 200 OK to "
                "validation request.",
            )
        if response.text != token:
            raise GraphError(
                400,
                "InvalidRequest",
                "Subscription validation request failed. Response must exactly match validationToken query parameter.",
            )

    # Matching changes -------------------------------------------------------------------------------

    def purge_expired(self) -> None:
        now = utc_now()
        with self.tenant.lock:
            for expired in [s.id for s in self.subscriptions.values() if s.expiration <= now]:
                del self.subscriptions[expired]

    def on_change(self, event: ChangeEvent) -> None:
        """The tenant's change listener; may be called on the server loop or from any other thread."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and (self.loop is None or running is self.loop):
            self.loop = running
            self._enqueue(event)
        elif self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._enqueue, event)

    def _user_id(self, id_or_upn: str | None) -> str | None:
        if id_or_upn is None:
            return None
        user = self.tenant.user(id_or_upn)
        return user.id if user is not None else id_or_upn

    def _matches(self, subscription: Subscription, event: ChangeEvent) -> dict[str, Any] | None:
        """The notification this event produces for this subscription, or None."""
        if subscription.kind == "message":
            match = EVENT_MESSAGE.match(event.resource)
            if match is None or event.change_type not in subscription.change_types:
                return None
            if subscription.owner not in {self._user_id(match.group("user")), self._user_id(event.owner)}:
                return None
            if subscription.folder is not None and not self._in_folder(subscription.folder, event, match):
                return None
            message_id = event.resource_id or match.group("id")
            resource = f"Users/{subscription.owner}/Messages/{message_id}"
            etag = event.data.get("etag") or f'W/"{uuid.uuid5(uuid.NAMESPACE_URL, event.resource).hex[:24]}"'
            resource_data = {"@odata.type": ODATA_TYPES["message"], "@odata.id": resource, "@odata.etag": etag}
            return self._notification(subscription, event.change_type, resource, {**resource_data, "id": message_id})
        if subscription.kind == "driveItem":
            match = EVENT_DRIVE_ITEM.match(event.resource)
            if match is None:
                return None
            drive = self._subscribed_drive(subscription)
            if drive is None or drive not in {match.group("drive"), event.owner}:
                return None
            # A drive root subscription only learns "something under the root was updated"; clients run delta.
            return self._notification(subscription, "updated", subscription.resource, None)
        match = EVENT_USER.match(event.resource)
        if match is None or event.change_type not in subscription.change_types:
            return None
        user_id = self._user_id(event.resource_id or match.group("user"))
        if subscription.owner is not None and user_id != subscription.owner:
            return None
        resource = f"Users/{user_id}"
        resource_data = {"@odata.type": ODATA_TYPES["user"], "@odata.id": resource, "id": user_id}
        return self._notification(subscription, event.change_type, resource, resource_data)

    def _in_folder(self, folder: str, event: ChangeEvent, match: re.Match[str]) -> bool:
        candidates = {str(event.data.get(key, "")).lower() for key in ("parentFolderId", "folderWellKnownName")}
        candidates.add((match.group("folder") or "").lower())
        return folder.lower() in candidates

    def _subscribed_drive(self, subscription: Subscription) -> str | None:
        if subscription.owner_is_drive:
            return subscription.owner
        user = self.tenant.users.get(subscription.owner or "")
        return user.drive_id if user is not None else None

    def _notification(
        self, subscription: Subscription, change_type: str, resource: str, resource_data: dict[str, Any] | None
    ) -> dict[str, Any]:
        notification: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "subscriptionId": subscription.id,
            "subscriptionExpirationDateTime": _format_expiration(subscription.expiration),
            "changeType": change_type,
            "resource": resource,
            "clientState": subscription.client_state,
            "tenantId": self.tenant.tenant_id,
        }
        if resource_data is not None:
            notification["resourceData"] = resource_data
        return notification

    def _enqueue(self, event: ChangeEvent) -> None:
        now = utc_now()
        with self.tenant.lock:
            live = [s for s in self.subscriptions.values() if s.expiration > now]
        for subscription in live:
            notification = self._matches(subscription, event)
            if notification is None:
                continue
            queued = self._pending.setdefault(subscription.notification_url, [])
            if subscription.kind == "driveItem" and any(n["subscriptionId"] == subscription.id for n in queued):
                continue  # one "root was updated" per subscription per POST says it all
            queued.append(notification)
        if self._pending and self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(COALESCE_DELAY_S, self._flush)

    # Delivery ---------------------------------------------------------------------------------------

    def _flush(self) -> None:
        self._flush_handle = None
        pending, self._pending = self._pending, {}
        for url, notifications in pending.items():
            for start in range(0, len(notifications), MAX_NOTIFICATIONS_PER_POST):
                self._start(
                    Delivery(uuid.uuid4().hex, "change", url, notifications[start : start + MAX_NOTIFICATIONS_PER_POST])
                )

    def _start(self, delivery: Delivery) -> None:
        with self.tenant.lock:
            self.deliveries.append(delivery)
        task = asyncio.get_running_loop().create_task(self._deliver(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, delivery: Delivery) -> None:
        attempts = max(1, self.settings.max_delivery_attempts)
        try:
            for attempt in range(1, attempts + 1):
                delivery.attempts = attempt
                try:
                    async with self._client(DELIVERY_TIMEOUT_S) as client:
                        response = await client.post(delivery.url, json={"value": delivery.notifications})
                    delivery.statuses.append(response.status_code)
                    if 200 <= response.status_code < 300:
                        delivery.delivered = True
                        return
                except httpx.HTTPError as exc:
                    delivery.statuses.append(None)
                    delivery.errors.append(type(exc).__name__)
                if attempt < attempts:
                    await asyncio.sleep(self.settings.retry_base_seconds * 2 ** (attempt - 1))
            log.info(
                "dropped a %s notification to %s after %d attempts",
                delivery.kind,
                urlsplit(delivery.url).netloc,
                attempts,
            )
        finally:
            delivery.finished = True

    def send_lifecycle(self, subscription: Subscription, lifecycle_event: str) -> Delivery | None:
        if subscription.lifecycle_notification_url is None:
            return None
        notification = {
            "subscriptionId": subscription.id,
            "subscriptionExpirationDateTime": _format_expiration(subscription.expiration),
            "tenantId": self.tenant.tenant_id,
            "clientState": subscription.client_state,
            "lifecycleEvent": lifecycle_event,
        }
        delivery = Delivery(uuid.uuid4().hex, "lifecycle", subscription.lifecycle_notification_url, [notification])
        self._start(delivery)
        return delivery

    async def drain(self) -> None:
        """Wait until every queued notification has been delivered or given up on (bounded by the retries)."""
        while self._flush_handle is not None or self._tasks:
            if self._flush_handle is not None:
                self._flush_handle.cancel()
                self._flush()
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def hub_of(tenant: Tenant) -> SubscriptionHub:
    """The tenant's hub, created (and its change listener registered) on first use."""
    with tenant.lock:
        hub: SubscriptionHub | None = tenant.extra.get("subscriptions")
        if hub is None:
            hub = SubscriptionHub(tenant)
            tenant.extra["subscriptions"] = hub
    return hub


def _hub(request: Request) -> SubscriptionHub:
    hub = hub_of(tenant_of(request))
    hub.loop = asyncio.get_running_loop()
    hub.purge_expired()
    return hub


def deliveries(tenant: Tenant) -> list[Delivery]:
    hub = hub_of(tenant)
    with tenant.lock:
        return list(hub.deliveries)


# Graph routes ----------------------------------------------------------------------------------------------


def _resolve_resource(tenant: Tenant, caller: Caller, resource: Any) -> tuple[str, str | None, bool, str | None]:
    """(kind, owner, owner_is_drive, folder) for a subscription resource, or a Graph error."""
    if not isinstance(resource, str) or not resource.strip():
        raise GraphError(400, "InvalidRequest", "The 'resource' property is required.")
    path = resource.strip().lstrip("/").split("?", 1)[0].rstrip("/")
    for kind, pattern in RESOURCE_PATTERNS:
        match = pattern.match(path)
        if match is None:
            continue
        groups = match.groupdict()
        if groups.get("me"):
            if caller.claims.get("idtyp") == "app" or "scp" not in caller.claims:
                raise GraphError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
            groups["user"] = str(caller.claims.get("oid", ""))
        if groups.get("drive"):
            drive_id = groups["drive"]
            known = drive_id in tenant.files.drives or any(u.drive_id == drive_id for u in tenant.users.values())
            if not known:
                raise GraphError(404, "itemNotFound", "The resource could not be found.")
            return kind, drive_id, True, None
        owner = None
        if groups.get("user"):
            user = tenant.user(groups["user"])
            if user is None:
                raise GraphError(
                    404,
                    "ResourceNotFound",
                    f"Resource '{groups['user']}' does not exist or one of its queried reference-property objects "
                    "are not present.",
                )
            if kind == "message" and not user.has_mailbox:
                raise GraphError(
                    404,
                    "MailboxNotEnabledForRESTAPI",
                    "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
                )
            owner = user.id
        return kind, owner, False, groups.get("folder") or groups.get("folder_seg")
    raise GraphError(400, "InvalidRequest", f"The resource '{resource}' does not support change notifications.")


def _require_permission(caller: Caller, kind: str, operation: str) -> None:
    if not caller.roles.intersection(READ_ROLES[kind]):
        raise GraphError(
            403,
            "ExtensionError",
            f"Operation: {operation}; Exception: [Status Code: Forbidden; Reason: Access is denied. Check credentials "
            "and try again.]",
        )


def _expiration(value: Any, hub: SubscriptionHub, kind: str) -> datetime:
    moment = _parse_datetime(value)
    if moment is None:
        raise GraphError(400, "InvalidRequest", "The 'expirationDateTime' property is required and must be a date.")
    limit = hub.settings.max_minutes(kind)
    now = utc_now()
    if moment <= now:
        raise GraphError(400, "ExtensionError", "Subscription expiration can only be in the future.")
    if moment > now + timedelta(minutes=limit):
        raise GraphError(400, "ExtensionError", f"Subscription expiration can only be {limit} minutes in the future.")
    return moment


def _change_types(value: Any, kind: str) -> frozenset[str]:
    if not isinstance(value, str) or not value.strip():
        raise GraphError(400, "InvalidRequest", "The 'changeType' property is required.")
    requested = frozenset(part.strip() for part in value.split(","))
    unsupported = requested - CHANGE_TYPES[kind]
    if unsupported:
        raise GraphError(
            400,
            "InvalidRequest",
            f"changeType '{','.join(sorted(unsupported))}' is not supported for this resource; supported: "
            f"{','.join(sorted(CHANGE_TYPES[kind]))}.",
        )
    return requested


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from None
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "The request body must be a JSON object.")
    return body


def _render(subscription: Subscription, *, hide_client_state: bool = False) -> dict[str, Any]:
    return {
        "id": subscription.id,
        "resource": subscription.resource,
        "applicationId": subscription.application_id,
        "changeType": ",".join(sorted(subscription.change_types)),
        "clientState": None if hide_client_state else subscription.client_state,
        "notificationUrl": subscription.notification_url,
        "notificationQueryOptions": None,
        "lifecycleNotificationUrl": subscription.lifecycle_notification_url,
        "expirationDateTime": _format_expiration(subscription.expiration),
        "creatorId": subscription.creator_id,
        "includeResourceData": False,
        "latestSupportedTlsVersion": subscription.latest_supported_tls_version,
        "encryptionCertificate": None,
        "encryptionCertificateId": None,
        "notificationUrlAppId": subscription.notification_url_app_id,
        "notificationContentType": "application/json",
    }


def _owned(hub: SubscriptionHub, caller: Caller, subscription_id: str) -> Subscription:
    with hub.tenant.lock:
        subscription = hub.subscriptions.get(subscription_id)
    # Another app's subscription is as invisible as a missing one.
    if subscription is None or subscription.application_id != caller.client_id:
        raise GraphError(404, "ResourceNotFound", f"Subscription '{subscription_id}' was not found.")
    return subscription


@router.post("/subscriptions", status_code=201)
async def create_subscription(request: Request) -> JSONResponse:
    caller = authenticate(request)
    hub = _hub(request)
    body = await _json_object(request)
    kind, owner, owner_is_drive, folder = _resolve_resource(hub.tenant, caller, body.get("resource"))
    _require_permission(caller, kind, "Create")
    change_types = _change_types(body.get("changeType"), kind)
    expiration = _expiration(body.get("expirationDateTime"), hub, kind)
    notification_url = hub.check_url(body.get("notificationUrl"), "notificationUrl")
    lifecycle_url = body.get("lifecycleNotificationUrl")
    if lifecycle_url is not None:
        lifecycle_url = hub.check_url(lifecycle_url, "lifecycleNotificationUrl")
    client_state = body.get("clientState")
    if client_state is not None and (not isinstance(client_state, str) or len(client_state) > CLIENT_STATE_MAX):
        raise GraphError(
            400, "InvalidRequest", f"clientState must be a string of at most {CLIENT_STATE_MAX} characters."
        )
    tls = body.get("latestSupportedTlsVersion") or "v1_2"
    if not isinstance(tls, str) or tls not in TLS_VERSIONS:
        raise GraphError(
            400, "InvalidRequest", f"latestSupportedTlsVersion must be one of {', '.join(sorted(TLS_VERSIONS))}."
        )
    if body.get("includeResourceData"):
        if not body.get("encryptionCertificate") or not body.get("encryptionCertificateId"):
            raise GraphError(
                400,
                "InvalidRequest",
                "encryptionCertificate and encryptionCertificateId are required when includeResourceData is true.",
            )
        raise GraphError(400, "InvalidRequest", "Rich notifications (includeResourceData) are not emulated.")
    await hub.validate_endpoint(notification_url)
    if lifecycle_url is not None:
        await hub.validate_endpoint(lifecycle_url)
    subscription = Subscription(
        id=str(uuid.uuid4()),
        resource=str(body["resource"]),
        kind=kind,
        owner=owner,
        owner_is_drive=owner_is_drive,
        folder=folder,
        change_types=change_types,
        notification_url=notification_url,
        lifecycle_notification_url=lifecycle_url,
        expiration=expiration,
        client_state=client_state,
        application_id=caller.client_id,
        creator_id=str(caller.claims.get("oid") or ""),
        latest_supported_tls_version=tls,
        notification_url_app_id=str(body["notificationUrlAppId"]) if body.get("notificationUrlAppId") else None,
    )
    with hub.tenant.lock:
        hub.subscriptions[subscription.id] = subscription
    rendered = {
        "@odata.context": f"{_base_url(request)}/v1.0/$metadata#subscriptions/$entity",
        **_render(subscription),
    }
    return JSONResponse(rendered, status_code=201)


@router.get("/subscriptions")
async def list_subscriptions(request: Request) -> dict[str, Any]:
    caller = authenticate(request)
    hub = _hub(request)
    with hub.tenant.lock:
        mine = [s for s in hub.subscriptions.values() if s.application_id == caller.client_id]
    return {
        "@odata.context": f"{_base_url(request)}/v1.0/$metadata#subscriptions",
        # list-subscriptions: "the clientState property value is not returned for security purposes".
        "value": [_render(s, hide_client_state=True) for s in sorted(mine, key=lambda s: s.created)],
    }


@router.get("/subscriptions/{subscription_id}")
async def get_subscription(subscription_id: str, request: Request) -> dict[str, Any]:
    caller = authenticate(request)
    subscription = _owned(_hub(request), caller, subscription_id)
    _require_permission(caller, subscription.kind, "Get")
    return {"@odata.context": f"{_base_url(request)}/v1.0/$metadata#subscriptions/$entity", **_render(subscription)}


@router.patch("/subscriptions/{subscription_id}")
async def update_subscription(subscription_id: str, request: Request) -> dict[str, Any]:
    caller = authenticate(request)
    hub = _hub(request)
    subscription = _owned(hub, caller, subscription_id)
    _require_permission(caller, subscription.kind, "Update")
    body = await _json_object(request)
    if "lifecycleNotificationUrl" in body:
        raise GraphError(
            400,
            "InvalidRequest",
            "lifecycleNotificationUrl cannot be changed; delete the subscription and create a new one.",
        )
    if body.get("expirationDateTime") is None and body.get("notificationUrl") is None:
        raise GraphError(
            400,
            "InvalidRequest",
            "Subscription must contain either the 'expirationDateTime' or 'notificationUrl' property and its value.",
        )
    expiration = subscription.expiration
    if body.get("expirationDateTime") is not None:
        expiration = _expiration(body["expirationDateTime"], hub, subscription.kind)
    notification_url = subscription.notification_url
    if body.get("notificationUrl") is not None:
        notification_url = hub.check_url(body["notificationUrl"], "notificationUrl")
        if notification_url != subscription.notification_url:
            await hub.validate_endpoint(notification_url)
    with hub.tenant.lock:
        subscription.expiration = expiration
        subscription.notification_url = notification_url
        # Renewing also reauthorizes (change-notifications-lifecycle-events.md).
        subscription.reauthorized_at = utc_now()
    return {"@odata.context": f"{_base_url(request)}/v1.0/$metadata#subscriptions/$entity", **_render(subscription)}


@router.delete("/subscriptions/{subscription_id}", status_code=204)
async def delete_subscription(subscription_id: str, request: Request) -> Response:
    caller = authenticate(request)
    hub = _hub(request)
    subscription = _owned(hub, caller, subscription_id)
    _require_permission(caller, subscription.kind, "Delete")
    with hub.tenant.lock:
        hub.subscriptions.pop(subscription.id, None)
    return Response(status_code=204)


@router.post("/subscriptions/{subscription_id}/reauthorize", status_code=204)
async def reauthorize_subscription(subscription_id: str, request: Request) -> Response:
    caller = authenticate(request)
    subscription = _owned(_hub(request), caller, subscription_id)
    _require_permission(caller, subscription.kind, "Reauthorize")
    subscription.reauthorized_at = utc_now()
    return Response(status_code=204)


# Control plane ---------------------------------------------------------------------------------------------


def _control_body(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise HTTPException(400, "expected a JSON object")
    return raw


async def _control_json(request: Request) -> dict[str, Any]:
    try:
        return _control_body(await request.json())
    except ValueError:
        raise HTTPException(400, "expected a JSON object") from None


def _public_subscription(subscription: Subscription) -> dict[str, Any]:
    return {
        "id": subscription.id,
        "resource": subscription.resource,
        "kind": subscription.kind,
        "owner": subscription.owner,
        "changeType": ",".join(sorted(subscription.change_types)),
        "notificationUrl": subscription.notification_url,
        "lifecycleNotificationUrl": subscription.lifecycle_notification_url,
        "expirationDateTime": _format_expiration(subscription.expiration),
        "applicationId": subscription.application_id,
        "hasClientState": subscription.client_state is not None,
        "reauthorizedDateTime": _format_expiration(subscription.reauthorized_at)
        if subscription.reauthorized_at
        else None,
    }


@control_router.get("/subscriptions")
async def control_list_subscriptions(request: Request) -> dict[str, Any]:
    hub = _hub(request)
    with hub.tenant.lock:
        return {"value": [_public_subscription(s) for s in hub.subscriptions.values()]}


@control_router.get("/subscriptions/deliveries")
async def control_list_deliveries(request: Request) -> dict[str, Any]:
    hub = _hub(request)
    with hub.tenant.lock:
        return {"value": [d.public() for d in hub.deliveries]}


@control_router.post("/subscriptions/drain")
async def control_drain(request: Request) -> dict[str, Any]:
    """Wait until queued notifications are delivered or given up on (tests call this instead of sleeping)."""
    hub = _hub(request)
    try:
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            await hub.drain()
    except TimeoutError:
        raise HTTPException(504, "deliveries still in flight") from None
    with hub.tenant.lock:
        return {"value": [d.public() for d in hub.deliveries]}


@control_router.get("/subscriptions/settings")
async def control_get_settings(request: Request) -> dict[str, Any]:
    return _hub(request).settings.as_dict()


SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "ca_bundle": (str, type(None)),
    "allow_http_notification_urls": (bool,),
    "max_delivery_attempts": (int,),
    "retry_base_seconds": (int, float),
    "outlook_max_minutes": (int,),
    "drive_max_minutes": (int,),
    "directory_max_minutes": (int,),
}


def _settings_changes(body: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - set(SETTING_TYPES))
    if unknown:
        raise HTTPException(400, f"unknown settings: {', '.join(unknown)}")
    for name, value in body.items():
        if not isinstance(value, SETTING_TYPES[name]) or (isinstance(value, bool) and bool not in SETTING_TYPES[name]):
            raise HTTPException(400, f"{name} has the wrong type")
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and value < (0 if name == "retry_base_seconds" else 1)
        ):
            raise HTTPException(400, f"{name} is out of range")
    return body


@control_router.put("/subscriptions/settings")
async def control_put_settings(request: Request) -> dict[str, Any]:
    hub = _hub(request)
    changes = _settings_changes(await _control_json(request))
    try:
        hub.configure(**changes)
    except (OSError, ssl.SSLError) as exc:
        raise HTTPException(400, f"ca_bundle cannot be loaded: {type(exc).__name__}") from None
    return hub.settings.as_dict()


@control_router.post("/subscriptions/{subscription_id}/lifecycle", status_code=202)
async def control_lifecycle(subscription_id: str, request: Request) -> dict[str, Any]:
    hub = _hub(request)
    body = await _control_json(request)
    lifecycle_event = body.get("event")
    if lifecycle_event not in LIFECYCLE_EVENTS:
        raise HTTPException(400, f"event must be one of {', '.join(sorted(LIFECYCLE_EVENTS))}")
    with hub.tenant.lock:
        subscription = hub.subscriptions.get(subscription_id)
    if subscription is None:
        raise HTTPException(404, "no such subscription")
    if lifecycle_event not in LIFECYCLE_SUPPORT[subscription.kind]:
        raise HTTPException(400, f"{subscription.kind} subscriptions do not get {lifecycle_event} notifications")
    delivery = hub.send_lifecycle(subscription, lifecycle_event)
    if lifecycle_event == "subscriptionRemoved":
        with hub.tenant.lock:
            hub.subscriptions.pop(subscription.id, None)
    return {"delivery": delivery.id if delivery is not None else None}


@control_router.post("/subscriptions/changes", status_code=202)
async def control_emit_change(request: Request) -> dict[str, Any]:
    """Publish a raw change, as if emulated data had changed (every listener sees it, not only subscriptions)."""
    hub = _hub(request)
    body = await _control_json(request)
    fields = (body.get("resource"), body.get("changeType"))
    if not all(isinstance(value, str) and value for value in fields):
        raise HTTPException(400, "resource and changeType are required strings")
    if body["changeType"] not in {"created", "updated", "deleted"}:
        raise HTTPException(400, "changeType must be created, updated or deleted")
    data = body.get("data") or {}
    if not isinstance(data, dict):
        raise HTTPException(400, "data must be an object")
    event = ChangeEvent(
        resource=body["resource"],
        change_type=body["changeType"],
        resource_id=str(body.get("resourceId") or body["resource"].rstrip("/").rsplit("/", 1)[-1]),
        owner=body.get("owner"),
        data=data,
    )
    hub.tenant.emit_change(event)
    return {"resource": event.resource, "changeType": event.change_type}


async def drain(tenant: Tenant) -> None:
    """For in-process tests: wait for the tenant's deliveries."""
    await hub_of(tenant).drain()
