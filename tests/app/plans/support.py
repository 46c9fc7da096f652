"""Shared by the deletion tests (plans, approvals, notifications, teams, disposal, jobs).

- TruthDataMap: a DataMapReader fed from the local tenant's ground truth (which customer an item belongs to)
  and the Graph connector (what Graph reports for the item: eTag, size, name), so plans are built exactly as
  from a finished data map, against the same ids Graph answers with.
- Store helpers: a migrated database per test, customers imported from the seeded tenant.
- Settings pointing every endpoint at the local tenant (Graph, Entra, the Bot Framework channel, Workflows).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.base import utc_now
from app.db.engine import create_engine, create_sessionmaker
from app.db.migrate import upgrade_connection
from app.models import Customer, ServiceStatus
from app.plans.datamap import Coverage, MappedItem
from app.plans.holds import HoldHit, ItemRef
from connectors.graph.connector import GraphConnector
from emulator.seed import SeedConfig
from emulator.server import EmulatorServer
from emulator.state import Tenant, User
from emulator.teams import teams_config

# Small enough to build quickly, big enough to have silent and ended customers, a shared thread, a held
# mailbox and retention-labelled files.
SEED = SeedConfig(
    seed=31,
    customers=6,
    staff=5,
    threads_per_customer=2,
    messages_per_thread=2,
    internal_messages_per_mailbox=1,
    files_per_customer=3,
    internal_files_per_drive=1,
)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Store:
    url: str
    sessionmaker: async_sessionmaker[AsyncSession]


async def migrated_store(url: str, connect_args: dict[str, Any] | None = None) -> tuple[Store, Any]:
    engine = create_engine(url, connect_args=connect_args or {})
    async with engine.connect() as connection:
        await connection.run_sync(upgrade_connection)
    return Store(url, create_sessionmaker(engine)), engine


def approvers(tenant: Tenant) -> list[User]:
    return [user for user in tenant.staff if "Steward.Approver" in user.steward_roles]


def emulator_settings(live: EmulatorServer, database_url: str, **overrides: Any) -> Settings:
    """Every endpoint pointed at the local tenant; nothing else differs from production settings."""
    return Settings(_env_file=None, **emulator_values(live, database_url, **overrides))


def settings_environment(values: dict[str, Any]) -> dict[str, str]:
    """The same settings as STEWARD_* variables, for a subprocess."""
    return {
        f"STEWARD_{name.upper()}": ",".join(value) if isinstance(value, list) else str(value)
        for name, value in values.items()
    }


def emulator_values(live: EmulatorServer, database_url: str, **overrides: Any) -> dict[str, Any]:
    endpoints = live.endpoints
    teams = teams_config(live.tenant, endpoints.base_url)
    values: dict[str, Any] = {
        "env": "testing",
        "database_url": database_url,
        "tenant_id": endpoints.tenant_id,
        "client_id": endpoints.client_id,
        "client_secret": endpoints.client_secret,
        "authority_host": endpoints.base_url,
        "graph_base_url": endpoints.graph_url,
        "graph_allowed_hosts": ["127.0.0.1"],
        "ca_bundle": endpoints.ca_bundle,
        "approvers": [user.id for user in approvers(live.tenant)],
        "public_base_url": "https://steward.example",
        "teams_bot_app_id": teams["bot_app_id"],
        "teams_bot_app_secret": teams["bot_app_secret"],
        "teams_bot_token_endpoint": teams["token_endpoint"],
        "teams_openid_metadata_url": teams["openid_metadata_url"],
        "teams_channel_issuer": teams["issuer"],
        "teams_service_url": teams["service_url"],
        "teams_channel_conversation_id": teams["channel_conversation_id"],
        "notification_mailbox": live.tenant.staff[0].user_principal_name,
        "http_timeout_s": 30,
    }
    values.update(overrides)
    return values


async def import_customers(session: AsyncSession, tenant: Tenant) -> None:
    """The registry as the customer import would leave it (only what deletion reads)."""
    for customer in tenant.customers:
        session.add(
            Customer(
                id=customer.id,
                legal_name=customer.legal_name,
                domains=list(customer.domains),
                contacts=[{"name": c.name, "email": c.email} for c in customer.contacts],
                products=list(customer.products),
                service_status=ServiceStatus(customer.service_status),
                service_ended_at=customer.service_ended_at,
                last_activity_at=customer.last_activity_at,
                created_at=customer.last_activity_at - timedelta(days=800),
                updated_at=utc_now(),
            )
        )
    await session.flush()


@dataclass
class TruthDataMap:
    """The data map a finished sync would hold, read from the seeded tenant's ground truth and from Graph."""

    tenant: Tenant
    connector: GraphConnector | None = None
    incomplete: tuple[str, ...] = ()
    served: list[str] = field(default_factory=list)

    async def coverage(self, customer_ids: Sequence[str]) -> Coverage:
        return Coverage(not self.incomplete, self.incomplete)

    def _truth(self, wanted: set[str]) -> list[tuple[str, str, str, frozenset[str]]]:
        rows: list[tuple[str, str, str, frozenset[str]]] = []
        with self.tenant.lock:
            for mailbox in self.tenant.mail.mailboxes.values():
                for message in mailbox.messages():
                    owners = frozenset(message.truth_customers)
                    if owners & wanted:
                        rows.append(("message", mailbox.user_id, mailbox.immutable_id(message), owners))
            for item in self.tenant.files.items.values():
                owners = frozenset(item.truth_customers)
                if item.alive and not item.is_folder and owners & wanted:
                    rows.append(("file", item.drive_id, item.id, owners))
        return sorted(rows)

    async def items_for(self, customer_ids: Sequence[str]) -> AsyncIterator[MappedItem]:
        assert self.connector is not None, "bind the connector first"
        for kind, container, item_id, owners in self._truth(set(customer_ids)):
            if kind == "message":
                message = await self.connector.mail.get_message(container, item_id, select=("id", "subject"))
                etag, size, name = message.etag, 0, message.subject or ""
            else:
                item = await self.connector.files.get_item(container, item_id, select=("id", "name", "size", "eTag"))
                etag, size, name = item.e_tag, item.size or 0, item.name or ""
            self.served.append(item_id)
            yield MappedItem(kind, container, item_id, etag, size, sha(name), owners)


@dataclass
class ListDataMap:
    """A data map given as a list, for rules that need no Graph."""

    items: list[MappedItem]
    incomplete: tuple[str, ...] = ()

    async def coverage(self, customer_ids: Sequence[str]) -> Coverage:
        return Coverage(not self.incomplete, self.incomplete)

    async def items_for(self, customer_ids: Sequence[str]) -> AsyncIterator[MappedItem]:
        for item in self.items:
            if item.customer_ids & set(customer_ids):
                yield item


@dataclass
class FixedHolds:
    """ExternalHolds answering from a table (item id -> hit), counting refreshes."""

    hits: dict[str, HoldHit] = field(default_factory=dict)
    refreshes: int = 0

    async def refresh(self) -> None:
        self.refreshes += 1

    async def check(self, ref: ItemRef) -> HoldHit | None:
        return self.hits.get(ref.item_id)


def mapped(item_id: str, *customers: str, kind: str = "file", size: int = 100, etag: str = '"1"') -> MappedItem:
    return MappedItem(kind, f"container-{kind}", item_id, etag, size, sha(item_id), frozenset(customers))


class LiveDeletion:
    """The local tenant over HTTPS, a migrated SQLite store, and Steward's runtime signed in to the tenant."""

    def __init__(self, live: EmulatorServer, runtime: Any, store: Store) -> None:
        self.live = live
        self.runtime = runtime
        self.store = store

    @property
    def tenant(self) -> Tenant:
        return self.live.tenant

    async def control(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        async with httpx.AsyncClient(verify=self.live.endpoints.ca_bundle, timeout=30) as client:
            response = await client.request(method, f"{self.live.endpoints.control_url}{path}", **kwargs)
        assert response.status_code < 400, response.text
        return response.json() if response.content else None

    async def requests(self, **filters: Any) -> list[dict[str, Any]]:
        """The tenant's request log, every page."""
        records: list[dict[str, Any]] = []
        params: dict[str, Any] = {"top": 1000, **filters}
        while True:
            page = await self.control("GET", "/requests", params=params)
            records.extend(page["value"])
            if not page.get("nextLink") or not page["value"]:
                return records
            params = {**params, "since": page["value"][-1]["seq"]}


async def open_live_deletion(live: EmulatorServer, directory: Any, **overrides: Any) -> LiveDeletion:
    from jobs.runtime import Runtime

    url = f"sqlite+aiosqlite:///{directory / 'steward.db'}"
    store, engine = await migrated_store(url)
    await engine.dispose()
    settings = emulator_settings(live, url, **overrides)
    runtime = await Runtime.open(settings)
    runtime.datamap = TruthDataMap(live.tenant, runtime.connector)
    store = Store(url, runtime.sessionmaker)
    async with store.sessionmaker() as session, session.begin():
        await import_customers(session, live.tenant)
    return LiveDeletion(live, runtime, store)


def customer_by_profile(tenant: Tenant, profile: str) -> str:
    return next(customer.id for customer in tenant.customers if customer.profile == profile)
