"""The local tenant over real HTTPS, Steward's connector signed in to it, and a fresh store: for sync tests."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.classification import Classifier
from app.config import Settings
from app.customers.importing import parse_registry_file
from app.customers.repository import CustomerRepository
from app.customers.service import customers_service, to_record
from app.datamap.sync import DatamapSync, DriveTarget, SyncCounters
from app.db.engine import create_sessionmaker
from app.models import Customer, DatamapItem, DatamapLink
from connectors.graph.auth import ClientSecret, MsalCredential
from connectors.graph.budget import ThrottleBudget
from connectors.graph.client import build_graph_client
from connectors.graph.connector import GraphConnector
from connectors.graph.transport import steward_user_agent
from emulator.seed import SeedConfig, build_tenant, registry_rows
from emulator.server import EmulatorServer
from emulator.state import Tenant
from jobs.sync import SyncRuntime, guests_by_customer
from tests.conftest import Database, migrate
from tests.connectors.graph.conftest import FakeClock

# Small on purpose (seconds, not minutes): 5 customers cover every profile, a do-not-disclose customer, the shared
# thread, the locked and record-locked files and the revenue report naming several customers.
SYNC_SEED = SeedConfig(
    seed=31,
    customers=5,
    staff=3,
    threads_per_customer=2,
    messages_per_thread=2,
    internal_messages_per_mailbox=1,
    files_per_customer=2,
    internal_files_per_drive=1,
)


# The least that still has customers with guests, mail, files and staff: for tests of the cycle's mechanics.
TINY_SEED = SeedConfig(
    seed=31,
    customers=2,
    staff=2,
    threads_per_customer=1,
    messages_per_thread=1,
    internal_messages_per_mailbox=1,
    files_per_customer=1,
    internal_files_per_drive=1,
)


def sqlite_store_at(directory: Path) -> Database:
    """A SQLite store of its own, for tests whose subject is not the database (they run on one backend)."""
    return Database("sqlite", f"sqlite+aiosqlite:///{directory / 'steward.db'}")


@dataclass
class LiveTenant:
    server: EmulatorServer
    connector: GraphConnector
    control: httpx.AsyncClient
    settings: Settings
    clock: FakeClock

    @property
    def tenant(self) -> Tenant:
        return self.server.tenant

    async def requests(self, **filters: Any) -> list[dict[str, Any]]:
        """The emulator's request log, following its paging."""
        records: list[dict[str, Any]] = []
        url, params = "/requests", {"top": 1000, **filters}
        while True:
            response = await self.control.get(url, params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            records.extend(body["value"])
            if not body.get("nextLink"):
                return records
            url, params = body["nextLink"], {}

    async def clear_requests(self) -> None:
        assert (await self.control.delete("/requests")).status_code == 204


@contextlib.asynccontextmanager
async def live_tenant(tenant: Tenant) -> AsyncIterator[LiveTenant]:
    clock = FakeClock()  # the connector's own waits (backoff, monitor polling) cost no wall time
    with EmulatorServer(tenant) as server:
        endpoints = server.endpoints
        credential = MsalCredential(
            tenant_id=endpoints.tenant_id,
            client_id=endpoints.client_id,
            credential=ClientSecret(endpoints.client_secret),
            authority_host=endpoints.base_url,
            ca_bundle=Path(endpoints.ca_bundle),
        )
        client = build_graph_client(
            credential, base_url=endpoints.graph_url, allowed_hosts=["127.0.0.1"], ca_bundle=Path(endpoints.ca_bundle)
        )
        connector = GraphConnector(
            client,
            budget=ThrottleBudget(clock=clock),
            user_agent=steward_user_agent("Test Reseller", "0.1.0"),
            allowed_hosts=["127.0.0.1"],
            token_refresh=credential.force_refresh,
            clock=clock,
        )
        control = httpx.AsyncClient(base_url=endpoints.control_url, verify=endpoints.ca_bundle, timeout=30)
        settings = Settings(
            _env_file=None,
            tenant_id=endpoints.tenant_id,
            client_id=endpoints.client_id,
            identifier_hash_key=SecretStr("sync-test-key"),
        )
        try:
            # Label jobs complete at once, so a cycle never waits on the tenant's simulated processing time.
            response = await control.patch("/files/settings", json={"labelOperationDelaySeconds": 0})
            assert response.status_code == 200, response.text
            yield LiveTenant(server, connector, control, settings, clock)
        finally:
            await control.aclose()
            await client.aclose()
            await credential.close()


@contextlib.asynccontextmanager
async def fresh_store(database: Database) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A migrated, empty store whose sessions really commit (the sync opens its own transactions)."""
    await migrate(database)
    engine = database.engine()
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def import_registry(sessions: async_sessionmaker[AsyncSession], tenant: Tenant) -> None:
    """Import the seed's registry (what emulator.seed.write_registry writes as customers.json)."""
    data = json.dumps(registry_rows(tenant), ensure_ascii=False).encode()
    async with sessions() as session, session.begin():
        report = await customers_service.import_file(
            session, parse_registry_file(data, filename="customers.json"), actor="test"
        )
    assert report.rejected == [], report.rejected


@dataclass
class World:
    """A synced-or-not tenant and store, with the reads tests need."""

    tenant: Tenant
    live: LiveTenant
    sessions: async_sessionmaker[AsyncSession]
    runtime: SyncRuntime

    async def rows(self, **where: object) -> list[DatamapItem]:
        async with self.sessions() as session:
            statement = select(DatamapItem).filter_by(**where).order_by(DatamapItem.id)
            return list((await session.execute(statement)).scalars().all())

    async def links(self, item_id: str) -> dict[str, list[str]]:
        async with self.sessions() as session:
            statement = (
                select(DatamapLink)
                .join(DatamapItem, DatamapItem.id == DatamapLink.item_pk)
                .where(DatamapItem.item_id == item_id)
            )
            return {
                link.customer_id: [r["rule"] for r in link.reasons]
                for link in (await session.execute(statement)).scalars()
            }

    async def customer(self, customer_id: str) -> Customer:
        async with self.sessions() as session:
            found = await CustomerRepository(session).get(customer_id)
            assert found is not None
            return found

    async def datamap_sync(self, *, mail_page_size: int = 100) -> DatamapSync:
        discovery = self.runtime.discovery or await self.runtime.discover(self.live.connector)
        async with self.sessions() as session:
            customers = await CustomerRepository(session).all()
        guests = guests_by_customer(customers, discovery.guests)
        records = [to_record(c, guests.get(c.id, ())) for c in customers]
        classifier = Classifier(self.runtime.policy, records, self.runtime.labels, hasher=self.runtime.hasher)
        return DatamapSync(
            self.sessions,
            self.live.connector,
            classifier,
            self.runtime.labels,
            app_client_id=self.runtime.app_client_id,
            mail_page_size=mail_page_size,
        )

    async def sync_all(self) -> SyncCounters:
        """Every folder and drive into the data map, without labeling (run_sync_cycle is tested in tests/jobs)."""
        sync = await self.datamap_sync()
        assert self.runtime.discovery is not None
        for mailbox in self.runtime.discovery.mailboxes:
            for folder_id in mailbox.folder_ids:
                await sync.sync_mail_folder(mailbox.user_id, folder_id)
        for drive in self.runtime.discovery.drives:
            await sync.sync_drive(drive)
        return sync.counters

    async def drive_of_site(self, site_id: str) -> DriveTarget:
        discovery = self.runtime.discovery or await self.runtime.discover(self.live.connector)
        with self.tenant.lock:
            drive_ids = set(self.tenant.files.sites[site_id].drive_ids)
        return next(drive for drive in discovery.drives if drive.drive_id in drive_ids)


@contextlib.asynccontextmanager
async def world(database: Database, seed: SeedConfig = SYNC_SEED) -> AsyncIterator[World]:
    """The seeded tenant served over HTTPS, its registry imported into a fresh store, a SyncRuntime started."""
    tenant = build_tenant(seed)
    async with fresh_store(database) as sessions, live_tenant(tenant) as live:
        await import_registry(sessions, tenant)
        yield World(tenant, live, sessions, await SyncRuntime.start(live.connector, live.settings))
