"""Graph change notifications end to end: the local tenant validates and calls Steward's receiver over HTTPS."""

import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import trustme
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.config import Settings
from app.main import create_app
from app.models import NotificationKind
from app.webhooks.service import new_client_state, register_subscription
from emulator.seed import SeedConfig, build_tenant
from emulator.server import EmulatorServer
from emulator.state import Tenant
from tests.app.apps import app_settings
from tests.app.auth.flows import client_credentials
from tests.app.webhooks.test_graph_notifications import stored_for
from tests.conftest import Database

TINY = SeedConfig(
    seed=5,
    customers=2,
    staff=2,
    threads_per_customer=1,
    messages_per_thread=1,
    internal_messages_per_mailbox=1,
    files_per_customer=1,
    internal_files_per_drive=1,
)


class ServedSteward:
    """Steward's app served by uvicorn over HTTPS (a trustme certificate) in a thread, as in production."""

    def __init__(self, settings: Settings, state_dir: Path) -> None:
        ca = trustme.CA()
        self.ca_path = state_dir / "steward-ca.pem"
        certificate = state_dir / "steward.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(certificate))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.base_url = f"https://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            create_app(settings), ssl_certfile=str(certificate), log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("Steward did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    return build_tenant(TINY)


@pytest.fixture(scope="module")
def emulator(tenant: Tenant) -> Iterator[EmulatorServer]:
    with EmulatorServer(tenant) as server:
        yield server


@pytest.fixture(scope="module")
def steward(sqlite_database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedSteward]:
    served = ServedSteward(app_settings(database_url=sqlite_database.url), tmp_path_factory.mktemp("steward-receiver"))
    yield served
    served.stop()


@pytest.fixture
async def graph(emulator: EmulatorServer, steward: ServedSteward) -> AsyncIterator[httpx.AsyncClient]:
    """Graph as Steward's daemon app, with the local tenant trusting Steward's receiver certificate."""
    endpoints = emulator.endpoints
    async with httpx.AsyncClient(verify=endpoints.ca_bundle) as control:
        response = await control.put(
            f"{endpoints.control_url}/subscriptions/settings", json={"ca_bundle": str(steward.ca_path)}
        )
        assert response.status_code == 200, response.text
    token = await client_credentials(endpoints, "https://graph.microsoft.com/.default")
    async with httpx.AsyncClient(
        verify=endpoints.ca_bundle, base_url=endpoints.graph_url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield client


@pytest.fixture
def control(emulator: EmulatorServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=emulator.endpoints.ca_bundle, base_url=emulator.endpoints.control_url, timeout=70)


async def test_a_message_change_reaches_the_store(
    graph: httpx.AsyncClient,
    control: httpx.AsyncClient,
    steward: ServedSteward,
    tenant: Tenant,
    sqlite_database: Database,
) -> None:
    engine: AsyncEngine = sqlite_database.engine()
    mailbox = tenant.staff[0]
    client_state = new_client_state()
    expires_at = datetime.now(UTC) + timedelta(days=1)
    created = await graph.post(
        "/subscriptions",
        json={
            "changeType": "created,updated",
            "resource": f"users/{mailbox.id}/messages",
            "notificationUrl": f"{steward.base_url}/v1/notifications/graph",
            "lifecycleNotificationUrl": f"{steward.base_url}/v1/notifications/graph/lifecycle",
            "expirationDateTime": expires_at.isoformat(),
            "clientState": client_state,
        },
    )
    # Graph only creates the subscription once both of Steward's URLs answered the validation handshake.
    assert created.status_code == 201, created.text
    subscription = created.json()
    try:
        async with AsyncSession(engine) as session:
            await register_subscription(
                session,
                subscription_id=subscription["id"],
                resource=subscription["resource"],
                change_types=subscription["changeType"].split(","),
                tenant_id=tenant.tenant_id,
                client_state=client_state,
                expires_at=expires_at,
            )
            await session.commit()

        async with control:
            message = (
                await control.post(f"/mail/mailboxes/{mailbox.id}/messages", json={"subject": "Quote for Q1"})
            ).json()
            changed = await control.patch(
                f"/mail/mailboxes/{mailbox.id}/messages/{message['id']}", json={"isRead": True}
            )
            assert changed.status_code == 200, changed.text
            missed = await control.post(f"/subscriptions/{subscription['id']}/lifecycle", json={"event": "missed"})
            assert missed.status_code == 202, missed.text
            deliveries = (await control.post("/subscriptions/drain")).json()["value"]

        ours = [d for d in deliveries if subscription["id"] in d["subscriptionIds"]]
        assert ours
        assert all(d["statuses"] == [202] for d in ours), ours
        stored = await stored_for(engine, subscription["id"])
        changes = [n for n in stored if n.kind == NotificationKind.change]
        assert {n.change_type for n in changes} == {"created", "updated"}
        assert all(n.resource is not None and n.resource.startswith(f"Users/{mailbox.id}/Messages/") for n in changes)
        assert [n.lifecycle_event for n in stored if n.kind == NotificationKind.lifecycle] == ["missed"]

        # Someone who knows the URL and the subscription id but not the clientState changes nothing.
        async with httpx.AsyncClient(verify=str(steward.ca_path)) as forger:
            forged = {
                "value": [
                    {
                        "subscriptionId": subscription["id"],
                        "clientState": str(uuid.uuid4()),
                        "tenantId": tenant.tenant_id,
                        "changeType": "deleted",
                        "resource": f"Users/{mailbox.id}/Messages/{message['id']}",
                    }
                ]
            }
            response = await forger.post(f"{steward.base_url}/v1/notifications/graph", json=forged)
        assert response.status_code == 202
        assert len(await stored_for(engine, subscription["id"])) == len(stored)
    finally:
        await graph.delete(f"/subscriptions/{subscription['id']}")
        await engine.dispose()
