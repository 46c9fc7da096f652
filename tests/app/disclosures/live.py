"""Steward end to end on the seeded local tenant: the emulator over HTTPS, the registry imported, one real sync
cycle filling the data map, and the API app running with its Graph connector and Teams bot pointed at the tenant.

Shared by the end-to-end tests of disclosures, references and the storage posture.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from app.auth.dependencies import ADMIN, AUDITOR, LEGAL
from app.config import Settings
from app.disclosures import notify
from app.disclosures.context import DisclosureContext
from app.privacy.graph import attach, open_graph_access
from emulator.seed import SeedConfig, build_tenant
from emulator.server import EmulatorServer
from emulator.state import Tenant, User
from emulator.teams import teams_config
from jobs.runtime import Runtime
from jobs.sync import SyncRuntime, run_sync_cycle
from tests.app.apps import RunningApp
from tests.app.plans.support import emulator_settings
from tests.conftest import Database, migrate
from tests.jobs.live import import_registry

SEED = SeedConfig(
    seed=31,
    customers=6,
    staff=5,
    threads_per_customer=2,
    messages_per_thread=2,
    internal_messages_per_mailbox=1,
    files_per_customer=2,
    internal_files_per_drive=1,
)


def _b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Live:
    server: EmulatorServer
    runtime: Runtime
    api: httpx.AsyncClient
    control: httpx.AsyncClient
    clerk: User  # takes demands in (Admin + Legal)
    lawyers: tuple[User, User]  # the legal approvers who release
    auditor: User

    @property
    def tenant(self) -> Tenant:
        return self.server.tenant

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    def headers(self, user: User | None = None, *, roles: set[str] | None = None) -> dict[str, str]:
        """A bearer token shaped as the local tenant issues them for Steward's API (emulator/identity.py)."""
        subject = user or self.clerk
        endpoints = self.server.endpoints
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": endpoints.web_client_id,
            "iss": f"{endpoints.base_url}/{self.tenant.tenant_id}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "oid": subject.id,
            "tid": self.tenant.tenant_id,
            "sub": _b64url(hashlib.sha256(subject.id.encode()).digest()),
            "preferred_username": subject.user_principal_name,
            "scp": "access_as_user",
            "roles": sorted(subject.steward_roles if roles is None else roles),
            "ver": "2.0",
        }
        return {"Authorization": f"Bearer {self.tenant.keys.sign(claims)}"}

    def context(self) -> DisclosureContext:
        return DisclosureContext(settings=self.settings, policy=self.runtime.policy)

    async def relay(self) -> None:
        """The scheduler's pass over disclosure notifications: mail through Graph, cards through the bot."""
        delivery = notify.Delivery(
            self.settings, self.runtime.policy, mail=self.runtime.connector.mail, teams=self.runtime.cards
        )
        while await notify.relay_job(self.runtime.sessionmaker, delivery):
            pass

    async def outbox(self) -> list[dict[str, Any]]:
        response = await self.control.get("/mail/outbox")
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()
        return rows

    async def channel_cards(self) -> list[dict[str, Any]]:
        channel = teams_config(self.tenant, self.server.endpoints.base_url)["channel_conversation_id"]
        response = await self.control.get(f"/teams/conversations/{channel}/activities")
        assert response.status_code == 200, response.text
        return [
            attachment["content"] for row in response.json() for attachment in row["activity"].get("attachments") or []
        ]


@contextlib.asynccontextmanager
async def live_steward(directory: Path, *, sync: bool = True, **overrides: Any) -> AsyncIterator[Live]:
    """With sync=False the data map stays empty: for tests that need only the registry and Graph."""
    tenant = build_tenant(SEED)
    staff = tenant.staff
    clerk, lawyers, auditor = staff[0], (staff[3], staff[4]), staff[2]
    clerk.steward_roles |= {LEGAL}
    auditor.steward_roles = {AUDITOR}
    assert ADMIN in clerk.steward_roles
    assert all(LEGAL in lawyer.steward_roles for lawyer in lawyers)
    with EmulatorServer(tenant) as server, pytest.MonkeyPatch.context() as patch:
        # The Teams SDK's HTTP clients trust what SSL_CERT_FILE names (teams-notes.md, pitfall 9).
        patch.setenv("SSL_CERT_FILE", server.endpoints.ca_bundle)
        database = Database("sqlite", f"sqlite+aiosqlite:///{directory / 'steward.db'}")
        await migrate(database)
        settings = emulator_settings(
            server,
            database.url,
            api_audience=[server.endpoints.web_client_id],
            legal_approvers=[clerk.id, *(lawyer.id for lawyer in lawyers)],
            disclosure_export_dir=directory / "exports",
            disclosure_contact_email="legal@vnreseller.example",
            identifier_hash_key=SecretStr("e2e-identifier-key"),
            **overrides,
        )
        runtime = await Runtime.open(settings)
        control = httpx.AsyncClient(
            base_url=server.endpoints.control_url, verify=server.endpoints.ca_bundle, timeout=60
        )
        try:
            # Label jobs finish at once: the sync cycle below then never waits on the tenant's processing time.
            assert (await control.patch("/files/settings", json={"labelOperationDelaySeconds": 0})).status_code == 200
            await import_registry(runtime.sessionmaker, tenant)
            if sync:
                report = await run_sync_cycle(
                    runtime.sessionmaker, runtime.connector, await SyncRuntime.start(runtime.connector, settings)
                )
                assert report.errors == [], report.errors
            running = RunningApp(settings, database)
            # The API process signs in on its own, as the service's lifespan does (app.privacy.graph).
            async with running as api, open_graph_access(settings) as graph:
                attach(running.app, graph)
                yield Live(server, runtime, api, control, clerk, lawyers, auditor)
        finally:
            await control.aclose()
            await runtime.aclose()
