"""Subscriptions: the validation handshake against a real HTTPS receiver, change and lifecycle delivery, renewals."""

from __future__ import annotations

import contextlib
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest
import trustme
import uvicorn
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse

from emulator.app import create_app
from emulator.server import EmulatorServer
from emulator.state import ChangeEvent, Tenant
from emulator.subscriptions import deliveries, drain, hub_of


class Receiver:
    """A webhook receiver over real HTTPS, behaving per endpoint name as the tests need."""

    def __init__(self, state_dir: Path) -> None:
        ca = trustme.CA()
        self.ca_path = state_dir / "receiver-ca.pem"
        cert_path = state_dir / "receiver.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(str(cert_path))
        self.lock = threading.Lock()
        self.validations: list[dict[str, Any]] = []
        self.received: dict[str, list[dict[str, Any]]] = {}
        self.failures_left: dict[str, int] = {}
        app = FastAPI()
        app.add_api_route("/hooks/{name}", self.endpoint, methods=["POST"])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.base_url = f"https://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(app, ssl_certfile=str(cert_path), log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the receiver did not start")
            time.sleep(0.01)

    def url(self, name: str, query: str = "") -> str:
        return f"{self.base_url}/hooks/{name}{query}"

    def reset(self) -> None:
        with self.lock:
            self.validations.clear()
            self.received.clear()
            self.failures_left.clear()

    def bodies(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.received.get(name, []))

    async def endpoint(self, name: str, request: Request) -> Response:
        token = request.query_params.get("validationToken")
        if token is not None:
            with self.lock:
                self.validations.append(
                    {
                        "name": name,
                        "token": token,
                        "contentType": request.headers.get("content-type"),
                        "rawQuery": request.url.query,
                        "body": await request.body(),
                    }
                )
            if name == "wrong-token":
                return PlainTextResponse("not-the-token")
            if name == "broken":
                return PlainTextResponse("down", status_code=500)
            return PlainTextResponse(token)
        body = await request.json()
        with self.lock:
            if self.failures_left.get(name, 0) > 0:
                self.failures_left[name] -= 1
                return Response(status_code=503)
            self.received.setdefault(name, []).append(body)
        return Response(status_code=202)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[Receiver]:
    with tempfile.TemporaryDirectory(prefix="steward-receiver-") as state_dir:
        receiver = Receiver(Path(state_dir))
        yield receiver
        receiver.stop()


@pytest.fixture
def receiver(receiver_server: Receiver) -> Receiver:
    receiver_server.reset()
    return receiver_server


@pytest.fixture
async def emulator(graph: httpx.AsyncClient, receiver: Receiver) -> httpx.AsyncClient:
    """The in-process Graph client, with the emulator told to trust the receiver's CA."""
    response = await graph.put(
        "https://emulator.test/_emulator/subscriptions/settings",
        json={"ca_bundle": str(receiver.ca_path), "retry_base_seconds": 0.01},
    )
    assert response.status_code == 200, response.text
    return graph


@pytest.fixture
async def live_graph(
    live: EmulatorServer, receiver: Receiver, mint: Callable[..., str]
) -> AsyncIterator[httpx.AsyncClient]:
    context = ssl.create_default_context(cafile=live.endpoints.ca_bundle)
    async with httpx.AsyncClient(
        base_url=live.endpoints.graph_url,
        verify=context,
        trust_env=False,
        headers={"Authorization": f"Bearer {mint()}"},
        timeout=30,
    ) as client:
        response = await client.put(
            f"{live.endpoints.control_url}/subscriptions/settings", json={"ca_bundle": str(receiver.ca_path)}
        )
        assert response.status_code == 200, response.text
        yield client


def in_days(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat().replace("+00:00", "Z")


def mail_subscription(user_id: str, receiver: Receiver, **overrides: Any) -> dict[str, Any]:
    return {
        "changeType": "created,updated",
        "notificationUrl": receiver.url("notify", "?tenant=vn&x=1"),
        "resource": f"users/{user_id}/mailFolders('inbox')/messages",
        "expirationDateTime": in_days(2),
        "clientState": "s3cret-client-state",
        **overrides,
    }


def staff_id(tenant: Tenant, index: int = 0) -> str:
    return tenant.staff[index].id


def message_event(user_id: str, message_id: str, change: str = "created", folder: str = "inbox") -> ChangeEvent:
    return ChangeEvent(
        resource=f"users/{user_id}/messages/{message_id}",
        change_type=change,
        resource_id=message_id,
        owner=user_id,
        data={"folderWellKnownName": folder, "etag": 'W/"CQAAABYAAAB"'},
    )


def assert_graph_error(response: httpx.Response, status: int, code: str, fragment: str = "") -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert fragment in error["message"]


# Creation and the validation handshake ---------------------------------------------------------------------


async def test_create_runs_the_handshake_and_returns_the_subscription(
    live_graph: httpx.AsyncClient, receiver: Receiver, tenant: Tenant
) -> None:
    body = mail_subscription(staff_id(tenant), receiver, lifecycleNotificationUrl=receiver.url("lifecycle"))
    response = await live_graph.post("/subscriptions", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["@odata.context"].endswith("/v1.0/$metadata#subscriptions/$entity")
    assert created["resource"] == body["resource"]
    assert created["changeType"] == "created,updated"
    assert created["clientState"] == "s3cret-client-state"
    assert created["notificationUrl"] == body["notificationUrl"]
    assert created["lifecycleNotificationUrl"] == receiver.url("lifecycle")
    assert created["applicationId"] == tenant.extra["steward_app_id"]
    assert created["creatorId"] == tenant.apps[tenant.extra["steward_app_id"]].object_id
    assert created["latestSupportedTlsVersion"] == "v1_2"
    assert created["expirationDateTime"].endswith("Z")
    assert len(created["id"]) == 36

    # Both endpoints were validated; the token travels URL-encoded with the URL's own query kept.
    assert [v["name"] for v in receiver.validations] == ["notify", "lifecycle"]
    first = receiver.validations[0]
    assert first["contentType"] == "text/plain; charset=utf-8"
    assert first["body"] == b""
    assert first["rawQuery"].startswith("tenant=vn&x=1&validationToken=")
    assert " " not in first["rawQuery"]
    assert first["token"].startswith("Validation: Testing client application reachability")


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("wrong-token", "Response must exactly match validationToken query parameter."),
        ("broken", "Notification endpoint must respond with 200 OK to validation request."),
    ],
)
async def test_failed_handshake_refuses_the_subscription(
    emulator: httpx.AsyncClient, receiver: Receiver, tenant: Tenant, endpoint: str, message: str
) -> None:
    response = await emulator.post(
        "/subscriptions", json=mail_subscription(staff_id(tenant), receiver, notificationUrl=receiver.url(endpoint))
    )
    assert_graph_error(response, 400, "InvalidRequest", f"Subscription validation request failed. {message}")
    assert (await emulator.get("/subscriptions")).json()["value"] == []


async def test_failed_lifecycle_handshake_refuses_the_subscription(
    emulator: httpx.AsyncClient, receiver: Receiver, tenant: Tenant
) -> None:
    body = mail_subscription(staff_id(tenant), receiver, lifecycleNotificationUrl=receiver.url("wrong-token"))
    assert_graph_error(await emulator.post("/subscriptions", json=body), 400, "InvalidRequest", "exactly match")


async def test_receiver_tls_is_verified(graph: httpx.AsyncClient, receiver: Receiver, tenant: Tenant) -> None:
    # No CA configured: the system store does not know the receiver's test CA, so the handshake cannot happen.
    response = await graph.post("/subscriptions", json=mail_subscription(staff_id(tenant), receiver))
    assert_graph_error(response, 400, "InvalidRequest", "must respond with 200 OK")
    assert receiver.validations == []


async def test_plain_http_only_for_loopback_when_allowed(graph: httpx.AsyncClient, tenant: Tenant) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    loopback = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"
    closed.close()
    body = {
        "changeType": "created",
        "notificationUrl": loopback,
        "resource": f"users/{staff_id(tenant)}/messages",
        "expirationDateTime": in_days(1),
    }
    assert_graph_error(await graph.post("/subscriptions", json=body), 400, "InvalidRequest", "HTTPS")

    settings = await graph.put(
        "https://emulator.test/_emulator/subscriptions/settings", json={"allow_http_notification_urls": True}
    )
    assert settings.json()["allow_http_notification_urls"] is True
    # Now the URL is acceptable and the handshake is attempted (and fails: nothing listens there).
    assert_graph_error(await graph.post("/subscriptions", json=body), 400, "InvalidRequest", "must respond")
    remote = {**body, "notificationUrl": "http://example.com/hook"}
    assert_graph_error(await graph.post("/subscriptions", json=remote), 400, "InvalidRequest", "HTTPS")


@pytest.fixture
def any_receiver_url() -> str:
    return "https://127.0.0.1:9/unused"


@pytest.mark.parametrize(
    ("overrides", "status", "code", "fragment"),
    [
        ({"resource": "users/{user}/events"}, 400, "InvalidRequest", "does not support change notifications"),
        ({"resource": "me/messages"}, 400, "BadRequest", "/me request is only valid with delegated"),
        ({"resource": "users/nobody@nowhere.test/messages"}, 404, "ResourceNotFound", "nobody@nowhere.test"),
        ({"resource": "users/{guest}/messages"}, 404, "MailboxNotEnabledForRESTAPI", "mailbox"),
        ({"changeType": "created,moved"}, 400, "InvalidRequest", "moved"),
        ({"changeType": ""}, 400, "InvalidRequest", "changeType"),
        ({"expirationDateTime": "tomorrow"}, 400, "InvalidRequest", "expirationDateTime"),
        ({"expirationDateTime": "2020-01-01T00:00:00Z"}, 400, "ExtensionError", "in the future"),
        ({"expirationDateTime": in_days(7.1)}, 400, "ExtensionError", "10070 minutes in the future"),
        ({"clientState": "x" * 129}, 400, "InvalidRequest", "128"),
        ({"latestSupportedTlsVersion": "v9"}, 400, "InvalidRequest", "latestSupportedTlsVersion"),
        ({"notificationUrl": None}, 400, "InvalidRequest", "notificationUrl"),
        ({"includeResourceData": True}, 400, "InvalidRequest", "encryptionCertificate"),
        (
            {"resource": "drives/{drive}/root", "changeType": "created"},
            400,
            "InvalidRequest",
            "supported: updated",
        ),
        ({"resource": "drives/no-such-drive/root", "changeType": "updated"}, 404, "itemNotFound", "could not"),
    ],
)
async def test_invalid_subscriptions_are_refused_before_any_handshake(
    graph: httpx.AsyncClient,
    tenant: Tenant,
    any_receiver_url: str,
    overrides: dict[str, Any],
    status: int,
    code: str,
    fragment: str,
) -> None:
    user = tenant.staff[0]
    guest = next(u for u in tenant.users.values() if u.user_type == "Guest")
    with tenant.lock:
        user.drive_id = user.drive_id or "b!test-drive"
    body = {
        "changeType": "created",
        "notificationUrl": any_receiver_url,
        "resource": f"users/{user.id}/messages",
        "expirationDateTime": in_days(1),
    }
    for key, value in overrides.items():
        if isinstance(value, str):
            value = value.format(user=user.id, guest=guest.id, drive=user.drive_id)
        body[key] = value
    assert_graph_error(await graph.post("/subscriptions", json=body), status, code, fragment)


async def test_malformed_body_is_a_graph_400(graph: httpx.AsyncClient) -> None:
    response = await graph.post("/subscriptions", content=b"{nope", headers={"Content-Type": "application/json"})
    assert_graph_error(response, 400, "BadRequest")
    assert_graph_error(await graph.post("/subscriptions", json=["x"]), 400, "BadRequest")


async def test_permissions_follow_the_resource(tenant: Tenant, mint: Callable[..., str], any_receiver_url: str) -> None:
    app = create_app(tenant)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="https://emulator.test/v1.0",
        headers={"Authorization": f"Bearer {mint(roles=['Files.ReadWrite.All'])}"},
    ) as files_only:
        body = {
            "changeType": "created",
            "notificationUrl": any_receiver_url,
            "resource": f"users/{staff_id(tenant)}/messages",
            "expirationDateTime": in_days(1),
        }
        assert_graph_error(await files_only.post("/subscriptions", json=body), 403, "ExtensionError", "Forbidden")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://emulator.test") as anon:
        assert_graph_error(await anon.get("/v1.0/subscriptions"), 401, "InvalidAuthenticationToken")


# Renew, list, get, delete, reauthorize ----------------------------------------------------------------------


async def test_subscription_management(
    emulator: httpx.AsyncClient, receiver: Receiver, tenant: Tenant, mint: Callable[..., str]
) -> None:
    created = (await emulator.post("/subscriptions", json=mail_subscription(staff_id(tenant), receiver))).json()
    sub_id = created["id"]

    listed = (await emulator.get("/subscriptions")).json()
    assert listed["@odata.context"].endswith("$metadata#subscriptions")
    assert [s["id"] for s in listed["value"]] == [sub_id]
    assert listed["value"][0]["clientState"] is None  # list never returns clientState

    got = await emulator.get(f"/subscriptions/{sub_id}")
    assert got.status_code == 200
    assert got.json()["clientState"] == "s3cret-client-state"

    new_expiry = datetime.now(UTC) + timedelta(days=6)
    renewed = await emulator.patch(f"/subscriptions/{sub_id}", json={"expirationDateTime": new_expiry.isoformat()})
    assert renewed.status_code == 200, renewed.text
    renewed_at = datetime.fromisoformat(renewed.json()["expirationDateTime"])
    assert abs((renewed_at - new_expiry).total_seconds()) < 1

    too_far = await emulator.patch(f"/subscriptions/{sub_id}", json={"expirationDateTime": in_days(8)})
    assert_graph_error(too_far, 400, "ExtensionError", "10070 minutes")
    assert_graph_error(await emulator.patch(f"/subscriptions/{sub_id}", json={}), 400, "InvalidRequest", "either")
    lifecycle_later = {"lifecycleNotificationUrl": receiver.url("lifecycle")}
    assert_graph_error(await emulator.patch(f"/subscriptions/{sub_id}", json=lifecycle_later), 400, "InvalidRequest")

    # Moving the notification URL revalidates the new endpoint.
    receiver.reset()
    moved = await emulator.patch(f"/subscriptions/{sub_id}", json={"notificationUrl": receiver.url("moved")})
    assert moved.json()["notificationUrl"] == receiver.url("moved")
    assert [v["name"] for v in receiver.validations] == ["moved"]
    refused = await emulator.patch(f"/subscriptions/{sub_id}", json={"notificationUrl": receiver.url("wrong-token")})
    assert_graph_error(refused, 400, "InvalidRequest", "exactly match")

    assert (await emulator.post(f"/subscriptions/{sub_id}/reauthorize")).status_code == 204

    # Another app neither sees nor touches it.
    other = {"Authorization": f"Bearer {mint(client_id=tenant.extra['reader_app_id'], roles=['Mail.Read'])}"}
    assert (await emulator.get("/subscriptions", headers=other)).json()["value"] == []
    assert_graph_error(await emulator.delete(f"/subscriptions/{sub_id}", headers=other), 404, "ResourceNotFound")

    assert (await emulator.delete(f"/subscriptions/{sub_id}")).status_code == 204
    assert_graph_error(await emulator.get(f"/subscriptions/{sub_id}"), 404, "ResourceNotFound")
    assert_graph_error(await emulator.delete(f"/subscriptions/{sub_id}"), 404, "ResourceNotFound")
    assert_graph_error(await emulator.post(f"/subscriptions/{sub_id}/reauthorize"), 404, "ResourceNotFound")


async def test_expired_subscriptions_are_removed(
    emulator: httpx.AsyncClient, receiver: Receiver, tenant: Tenant
) -> None:
    created = (await emulator.post("/subscriptions", json=mail_subscription(staff_id(tenant), receiver))).json()
    hub = hub_of(tenant)
    with tenant.lock:
        hub.subscriptions[created["id"]].expiration = datetime.now(UTC) - timedelta(seconds=1)
    assert_graph_error(await emulator.get(f"/subscriptions/{created['id']}"), 404, "ResourceNotFound")


# Change notifications ------------------------------------------------------------------------------------


async def test_changes_are_delivered_batched_with_client_state(
    emulator: httpx.AsyncClient, receiver: Receiver, tenant: Tenant
) -> None:
    user = staff_id(tenant)
    created = (await emulator.post("/subscriptions", json=mail_subscription(user, receiver))).json()
    for index in range(3):
        tenant.emit_change(message_event(user, f"AAMkAD{index}"))
    await drain(tenant)

    posts = receiver.bodies("notify")
    assert len(posts) == 1  # changes published together go out in one POST
    notifications = posts[0]["value"]
    assert [n["resourceData"]["id"] for n in notifications] == ["AAMkAD0", "AAMkAD1", "AAMkAD2"]
    first = notifications[0]
    assert first["subscriptionId"] == created["id"]
    assert first["clientState"] == "s3cret-client-state"
    assert first["changeType"] == "created"
    assert first["tenantId"] == tenant.tenant_id
    assert first["resource"] == f"Users/{user}/Messages/AAMkAD0"
    assert first["subscriptionExpirationDateTime"] == created["expirationDateTime"]
    assert first["resourceData"] == {
        "@odata.type": "#Microsoft.Graph.Message",
        "@odata.id": f"Users/{user}/Messages/AAMkAD0",
        "@odata.etag": 'W/"CQAAABYAAAB"',
        "id": "AAMkAD0",
    }
    record = deliveries(tenant)[-1]
    assert record.delivered
    assert record.statuses == [202]
    assert record.subscription_ids == [created["id"]]


async def test_only_matching_changes_are_notified(
    emulator: httpx.AsyncClient, receiver: Receiver, tenant: Tenant
) -> None:
    user, other = staff_id(tenant, 0), staff_id(tenant, 1)
    body = mail_subscription(user, receiver, changeType="created")
    assert (await emulator.post("/subscriptions", json=body)).status_code == 201
    tenant.emit_change(message_event(user, "wrong-type", change="deleted"))
    tenant.emit_change(message_event(user, "wrong-folder", folder="sentitems"))
    tenant.emit_change(message_event(other, "wrong-mailbox"))
    tenant.emit_change(ChangeEvent(resource="drives/x/items/y", change_type="created", resource_id="y"))
    tenant.emit_change(message_event(tenant.staff[0].user_principal_name, "by-upn"))
    await drain(tenant)
    notified = [n["resourceData"]["id"] for post in receiver.bodies("notify") for n in post["value"]]
    assert notified == ["by-upn"]


async def test_drive_root_gets_one_updated_per_post(
    emulator: httpx.AsyncClient, receiver: Receiver, tenant: Tenant
) -> None:
    user = tenant.staff[0]
    with tenant.lock:
        user.drive_id = user.drive_id or "b!drive-0"
    body = {
        "changeType": "updated",
        "notificationUrl": receiver.url("files"),
        "resource": f"users/{user.id}/drive/root",
        "expirationDateTime": in_days(29),
        "clientState": "files-state",
    }
    created = await emulator.post("/subscriptions", json=body)
    assert created.status_code == 201, created.text
    for index, change in enumerate(("created", "updated", "deleted")):
        tenant.emit_change(
            ChangeEvent(resource=f"drives/{user.drive_id}/items/i{index}", change_type=change, resource_id=f"i{index}")
        )
    tenant.emit_change(ChangeEvent(resource="drives/another/items/z", change_type="updated", resource_id="z"))
    await drain(tenant)
    posts = receiver.bodies("files")
    assert len(posts) == 1
    assert posts[0]["value"] == [
        {
            "id": posts[0]["value"][0]["id"],
            "subscriptionId": created.json()["id"],
            "subscriptionExpirationDateTime": created.json()["expirationDateTime"],
            "changeType": "updated",
            "resource": f"users/{user.id}/drive/root",
            "clientState": "files-state",
            "tenantId": tenant.tenant_id,
        }
    ]


async def test_failed_deliveries_are_retried_a_bounded_number_of_times(
    emulator: httpx.AsyncClient, receiver: Receiver, tenant: Tenant
) -> None:
    user = staff_id(tenant)
    await emulator.post("/subscriptions", json=mail_subscription(user, receiver))
    with receiver.lock:
        receiver.failures_left["notify"] = 2
    tenant.emit_change(message_event(user, "retried"))
    await drain(tenant)
    record = deliveries(tenant)[-1]
    assert record.statuses == [503, 503, 202]
    assert record.delivered
    assert len(receiver.bodies("notify")) == 1

    with receiver.lock:
        receiver.failures_left["notify"] = 100
    tenant.emit_change(message_event(user, "dropped"))
    await drain(tenant)
    record = deliveries(tenant)[-1]
    assert record.attempts == 4  # the default bound
    assert record.statuses == [503] * 4
    assert not record.delivered
    assert record.finished


# Lifecycle notifications and the control plane -------------------------------------------------------------


async def test_lifecycle_events_reach_the_lifecycle_url(
    live_graph: httpx.AsyncClient, live: EmulatorServer, receiver: Receiver, tenant: Tenant
) -> None:
    control = live.endpoints.control_url
    body = mail_subscription(staff_id(tenant), receiver, lifecycleNotificationUrl=receiver.url("lifecycle"))
    created = (await live_graph.post("/subscriptions", json=body)).json()

    accepted = await live_graph.post(
        f"{control}/subscriptions/{created['id']}/lifecycle", json={"event": "reauthorizationRequired"}
    )
    assert accepted.status_code == 202
    drained = await live_graph.post(f"{control}/subscriptions/drain")
    assert drained.status_code == 200
    assert receiver.bodies("lifecycle") == [
        {
            "value": [
                {
                    "subscriptionId": created["id"],
                    "subscriptionExpirationDateTime": created["expirationDateTime"],
                    "tenantId": tenant.tenant_id,
                    "clientState": "s3cret-client-state",
                    "lifecycleEvent": "reauthorizationRequired",
                }
            ]
        }
    ]
    # The control plane masks clientState.
    public = drained.json()["value"][-1]
    assert public["kind"] == "lifecycle"
    assert public["delivered"]
    assert public["value"][0]["clientState"] == "***"

    removed = await live_graph.post(
        f"{control}/subscriptions/{created['id']}/lifecycle", json={"event": "subscriptionRemoved"}
    )
    assert removed.status_code == 202
    await live_graph.post(f"{control}/subscriptions/drain")
    assert receiver.bodies("lifecycle")[-1]["value"][0]["lifecycleEvent"] == "subscriptionRemoved"
    assert (await live_graph.get(f"/subscriptions/{created['id']}")).status_code == 404


async def test_raw_change_through_the_control_plane(
    live_graph: httpx.AsyncClient, live: EmulatorServer, receiver: Receiver, tenant: Tenant
) -> None:
    control = live.endpoints.control_url
    user = staff_id(tenant)
    created = (await live_graph.post("/subscriptions", json=mail_subscription(user, receiver))).json()
    listed = (await live_graph.get(f"{control}/subscriptions")).json()["value"]
    assert [s["id"] for s in listed] == [created["id"]]
    assert listed[0]["hasClientState"] is True
    assert "clientState" not in listed[0]

    change = {
        "resource": f"users/{user}/messages/AAMkRAW",
        "changeType": "updated",
        "owner": user,
        "data": {"parentFolderId": "inbox"},
    }
    assert (await live_graph.post(f"{control}/subscriptions/changes", json=change)).status_code == 202
    await live_graph.post(f"{control}/subscriptions/drain")
    (notification,) = receiver.bodies("notify")[0]["value"]
    assert notification["changeType"] == "updated"
    assert notification["clientState"] == "s3cret-client-state"
    assert notification["resourceData"]["id"] == "AAMkRAW"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/subscriptions/settings", {"ca_bundle": "/no/such/ca.pem"}, 400),
        ("/subscriptions/settings", {"colour": "blue"}, 400),
        ("/subscriptions/settings", {"max_delivery_attempts": 0}, 400),
        ("/subscriptions/settings", {"allow_http_notification_urls": "yes"}, 400),
        ("/subscriptions/changes", {"resource": "users/x"}, 400),
        ("/subscriptions/changes", {"resource": "users/x", "changeType": "moved"}, 400),
        ("/subscriptions/nope/lifecycle", {"event": "missed"}, 404),
    ],
)
async def test_control_plane_rejects_bad_input(
    graph: httpx.AsyncClient, path: str, body: dict[str, Any], status: int
) -> None:
    method = graph.put if path.endswith("settings") else graph.post
    response = await method(f"https://emulator.test/_emulator{path}", json=body)
    assert response.status_code == status, response.text


async def test_lifecycle_events_a_resource_never_gets_are_refused(
    emulator: httpx.AsyncClient, receiver: Receiver, tenant: Tenant
) -> None:
    user = tenant.staff[0]
    with tenant.lock:
        user.drive_id = user.drive_id or "b!drive-0"
    body = {
        "changeType": "updated",
        "notificationUrl": receiver.url("files"),
        "resource": f"drives/{user.drive_id}/root",
        "expirationDateTime": in_days(1),
    }
    created = (await emulator.post("/subscriptions", json=body)).json()
    response = await emulator.post(
        f"https://emulator.test/_emulator/subscriptions/{created['id']}/lifecycle", json={"event": "missed"}
    )
    assert response.status_code == 400


# The real client ------------------------------------------------------------------------------------------


class StaticCredential(AsyncTokenCredential):
    """An AsyncTokenCredential handing out one pre-minted token (the token endpoint is tested elsewhere)."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.close()


@contextlib.asynccontextmanager
async def graph_client(server: EmulatorServer, token: str) -> AsyncIterator[Any]:
    """msgraph-sdk wired as sdk-notes.md section 3 describes, against the live emulator."""
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from kiota_http.middleware.options import RetryHandlerOption
    from msgraph.graph_request_adapter import GraphRequestAdapter
    from msgraph.graph_request_adapter import options as graph_default_options
    from msgraph.graph_service_client import GraphServiceClient
    from msgraph_core import GraphClientFactory

    http = httpx.AsyncClient(
        verify=ssl.create_default_context(cafile=server.endpoints.ca_bundle), timeout=30, trust_env=False
    )
    connections = http._transport
    options = dict(graph_default_options)
    options[RetryHandlerOption.get_key()] = RetryHandlerOption(max_retries=0, delay=0)
    http = GraphClientFactory.create_with_default_middleware(client=http, options=options)
    auth = AzureIdentityAuthenticationProvider(
        StaticCredential(token), scopes=["https://graph.microsoft.com/.default"], allowed_hosts=["127.0.0.1"]
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = server.endpoints.graph_url
    try:
        yield GraphServiceClient(request_adapter=adapter)
    finally:
        # The middleware transport does not close the pool it wraps; open keep-alives would hold the emulator's
        # server up at shutdown.
        await connections.aclose()


async def test_msgraph_sdk_creates_a_subscription(
    live: EmulatorServer, live_graph: httpx.AsyncClient, receiver: Receiver, tenant: Tenant, mint: Callable[..., str]
) -> None:
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph.generated.models.subscription import Subscription

    user = staff_id(tenant)
    expiry = datetime.now(UTC) + timedelta(days=3)
    async with graph_client(live, mint()) as client:
        created = await client.subscriptions.post(
            Subscription(
                change_type="created,updated",
                notification_url=receiver.url("notify"),
                lifecycle_notification_url=receiver.url("lifecycle"),
                resource=f"users/{user}/mailFolders('inbox')/messages",
                expiration_date_time=expiry,
                client_state="sdk-client-state",
            )
        )
        with pytest.raises(ODataError) as refused:
            await client.subscriptions.post(
                Subscription(
                    change_type="created",
                    notification_url=receiver.url("wrong-token"),
                    resource=f"users/{user}/messages",
                    expiration_date_time=expiry,
                )
            )
    assert created is not None
    assert created.id
    assert created.client_state == "sdk-client-state"
    assert created.expiration_date_time is not None
    assert abs((created.expiration_date_time - expiry).total_seconds()) < 1
    assert [v["name"] for v in receiver.validations] == ["notify", "lifecycle", "wrong-token"]
    assert refused.value.response_status_code == 400
    assert refused.value.error is not None
    assert refused.value.error.code == "InvalidRequest"
