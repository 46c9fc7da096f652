"""The web pages against the local tenant: real sign-in (authorization code + PKCE through MSAL) and a store.

Each test module gets its own migrated store (SQLite, and PostgreSQL where available) so the rows the pages
commit never leak into other tests.
"""

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from html import unescape
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import ADMIN, APPROVER, AUDITOR, LEGAL, Principal
from app.config import Settings
from app.db.base import utc_now
from app.disclosures.context import DisclosureContext
from app.disclosures.service import DemandIntake, ScopeSpec, receive
from app.models import (
    Customer,
    DatamapItem,
    DatamapLink,
    DeletionPlan,
    DisclosureDemand,
    PlanItem,
    PlanStatus,
    ServiceStatus,
)
from app.plans.service import compute_hash
from app.policy import default_policy
from emulator.seed import SeedConfig, build_tenant
from emulator.server import EmulatorServer
from emulator.state import Tenant, User
from tests.app.apps import RunningApp, app_settings
from tests.conftest import BACKENDS, Database, _create_schema, _drop_schema, _sqlite_database, migrate

BASE_URL = "https://steward.test"
REDIRECT_URI = f"{BASE_URL}/auth/callback"
SESSION_SECRET = "web-tests-session-secret-0123456789abcdef"
TINY = SeedConfig(
    seed=41,
    customers=2,
    staff=7,  # roles by index: admin, approver, approver, approver+legal, legal, auditor, none
    threads_per_customer=1,
    messages_per_thread=1,
    internal_messages_per_mailbox=1,
    files_per_customer=1,
    internal_files_per_drive=1,
)
_HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    tenant = build_tenant(TINY)
    # The reply URL of the deployment under test, registered on the "Steward web" app as an admin would.
    tenant.apps[tenant.extra["web_app_id"]].redirect_uris.append(REDIRECT_URI)
    return tenant


@pytest.fixture(scope="module")
def emulator(tenant: Tenant) -> Iterator[EmulatorServer]:
    with EmulatorServer(tenant) as server:
        yield server


def staff(tenant: Tenant, roles: set[str]) -> User:
    return next(user for user in tenant.staff if user.steward_roles == roles)


@dataclass(frozen=True)
class People:
    admin: User
    approvers: tuple[User, User]
    approver_legal: User
    legal: User
    auditor: User
    nobody: User


@pytest.fixture(scope="module")
def people(tenant: Tenant) -> People:
    approvers = [user for user in tenant.staff if user.steward_roles == {APPROVER}]
    return People(
        admin=staff(tenant, {ADMIN}),
        approvers=(approvers[0], approvers[1]),
        approver_legal=staff(tenant, {APPROVER, LEGAL}),
        legal=staff(tenant, {LEGAL}),
        auditor=staff(tenant, {AUDITOR}),
        nobody=staff(tenant, set()),
    )


@pytest.fixture(scope="module", params=BACKENDS)
def web_backend(request: pytest.FixtureRequest) -> str | None:
    """The PostgreSQL server URL, or None for SQLite (resolved here: async fixtures cannot pull others in)."""
    server: str | None = request.getfixturevalue("postgres_server") if request.param == "postgres" else None
    return server


@pytest.fixture(scope="module")
async def web_database(web_backend: str | None, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Database]:
    if web_backend is None:
        database = _sqlite_database(tmp_path_factory.mktemp("web"))
        await migrate(database)
        yield database
        return
    database = await _create_schema(web_backend)
    try:
        await migrate(database)
        yield database
    finally:
        await _drop_schema(database)


def web_settings(emulator: EmulatorServer, people: People, **overrides: object) -> Settings:
    endpoints = emulator.endpoints
    values: dict[str, object] = {
        "tenant_id": endpoints.tenant_id,
        "authority_host": endpoints.base_url,
        "ca_bundle": endpoints.ca_bundle,
        "web_client_id": endpoints.web_client_id,
        "web_client_secret": endpoints.web_client_secret,
        "web_redirect_uri": REDIRECT_URI,
        "public_base_url": BASE_URL,
        "session_secret": SESSION_SECRET,
        "approvers": [user.id for user in (*people.approvers, people.approver_legal)],
        "automation_owner": people.admin.id,
    }
    return app_settings(**(values | overrides))


@dataclass
class Web:
    """Steward's app in-process over https://steward.test, its store, and the tenant to sign in to."""

    client: httpx.AsyncClient
    running: RunningApp
    emulator: EmulatorServer

    async def sign_in(self, user: User, next_path: str = "/") -> httpx.Response:
        """Sign in through the emulator's real form; returns Steward's answer to the callback."""
        assert user.password is not None
        start = await self.client.get("/auth/signin", params={"next": next_path})
        assert start.status_code == 303, start.text
        async with httpx.AsyncClient(verify=self.emulator.endpoints.ca_bundle) as entra:
            page = await entra.get(start.headers["location"])
            assert page.status_code == 200, page.text
            form = {name: unescape(value) for name, value in _HIDDEN_INPUT.findall(page.text)}
            submitted = await entra.post(
                f"{self.emulator.endpoints.authority}/oauth2/v2.0/authorize",
                data={**form, "username": user.user_principal_name, "password": user.password},
            )
        assert submitted.status_code == 302, submitted.text
        back = urlsplit(submitted.headers["location"])
        assert f"{back.scheme}://{back.netloc}{back.path}" == REDIRECT_URI
        return await self.client.get(f"{back.path}?{back.query}")

    async def csrf(self, path: str = "/") -> str:
        page = await self.client.get(path)
        match = CSRF_INPUT.search(page.text)
        assert match is not None, page.text
        return match.group(1)

    @asynccontextmanager
    async def store(self) -> AsyncIterator[AsyncSession]:
        """A session on the app's store, committed at the end (what the pages then read)."""
        async with self.running.app.state.sessionmaker() as session, session.begin():
            yield session


@pytest.fixture
async def web(emulator: EmulatorServer, people: People, web_database: Database) -> AsyncIterator[Web]:
    running = RunningApp(web_settings(emulator, people), web_database)
    async with running:
        transport = httpx.ASGITransport(app=running.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield Web(client, running, emulator)


# Store contents ----------------------------------------------------------------------------------------


async def add_customers(session: AsyncSession) -> dict[str, Customer]:
    """One customer of each kind the pages distinguish (ids are unique per call)."""
    now = utc_now()
    suffix = uuid.uuid4().hex[:6]

    def customer(key: str, **values: object) -> Customer:
        fields: dict[str, object] = {
            "id": f"C-{key}-{suffix}",
            "legal_name": f"Công ty TNHH {key.title()} {suffix}",
            "domains": [f"{key}-{suffix}.example"],
            "contacts": [{"email": f"ke.toan@{key}-{suffix}.example", "name": "Nguyễn Thị Lan"}],
            "products": ["Microsoft 365 Business Standard"],
            "tax_codes": [],
            "service_status": ServiceStatus.active,
            "created_at": now - timedelta(days=900),
            "updated_at": now,
        }
        fields.update(values)
        return Customer(**fields)

    customers = {
        "active": customer("active", last_activity_at=now - timedelta(days=10), last_activity_kind="mail"),
        "silent": customer("silent", last_activity_at=now - timedelta(days=500), last_activity_kind="mail"),
        "ended": customer(
            "ended",
            service_status=ServiceStatus.ended,
            service_ended_at=now - timedelta(days=100),
            last_activity_at=now - timedelta(days=110),
            last_activity_kind="purchase",
        ),
        "secret": customer(
            "secret", do_not_disclose=True, last_activity_at=now - timedelta(days=40), last_activity_kind="file"
        ),
    }
    session.add_all(customers.values())
    await session.flush()
    return customers


async def add_plan(
    session: AsyncSession, *, customer_ids: list[str], requested_by: str, tenant_id: str, items: int = 3
) -> DeletionPlan:
    """A plan awaiting approval: `items` to delete, one held by a legal hold and one shared with another customer."""
    now = utc_now()
    plan = DeletionPlan(
        id=uuid.uuid4().hex,
        tenant_id=tenant_id,
        customer_ids=customer_ids,
        trigger="inactivity",
        reason="",
        trigger_details={"soft_delete_grace_days": 30},
        requested_by=requested_by,
        requested_by_name="Steward scheduler",
        requested_by_is_service=True,
        owner=None,
        status=PlanStatus.pending_approval,
        include_shared=False,
        manifest_hash="",
        manifest_version=1,
        item_count=items,
        total_bytes=0,
        excluded_count=2,
        required_approvals=2,
        cap_reasons=[],
        created_at=now,
        submitted_at=now,
        expires_at=now + timedelta(hours=72),
    )
    session.add(plan)
    await session.flush()
    # (kind, action, exclusion reason, detail, shared with, size)
    rows: list[tuple[str, str, str | None, str | None, list[str], int]] = [
        ("message" if n % 2 else "file", "delete", None, None, [], 20_000 + n * 1_000) for n in range(items)
    ] + [
        ("message", "exclude", "legal_hold", "case LH-7 holds this mailbox", [], 5_000),
        ("file", "exclude", "shared_with_other_customer", "also belongs to C-other", ["C-other"], 9_000),
    ]
    for ordinal, (kind, action, reason, detail, shared, size) in enumerate(rows, start=1):
        session.add(
            PlanItem(
                plan_id=plan.id,
                ordinal=ordinal,
                kind=kind,
                container_id=f"mailbox-{ordinal % 2}" if kind == "message" else "drive-b!7",
                item_id=f"AAMkAG-{plan.id[:6]}-{ordinal:04d}",
                etag=f'"etag-{ordinal}"',
                size=size,
                name_hash=f"{ordinal:064x}",
                customer_ids=customer_ids,
                shared_with=shared,
                action=action,
                exclusion_reason=reason,
                exclusion_detail=detail,
                state="planned" if action == "delete" else "excluded",
                attempts=0,
            )
        )
    await session.flush()
    plan.total_bytes = sum(size for _, action, _, _, _, size in rows if action == "delete")
    plan.manifest_hash = await compute_hash(session, plan)
    await session.flush()
    return plan


async def add_demand(session: AsyncSession, *, customer_id: str, by: User) -> DisclosureDemand:
    """A compelled-disclosure demand received through the disclosure service (date-range scope)."""
    now = utc_now()
    context = DisclosureContext(settings=app_settings(), policy=default_policy())
    intake = DemandIntake(
        customer_id=customer_id,
        authority="Cơ quan Cảnh sát điều tra, Công an TP. Hà Nội",
        legal_basis="Điều 88 Bộ luật Tố tụng hình sự 2015",
        reference=f"QĐ-{uuid.uuid4().hex[:6]}/CSĐT",
        data_description="Thư điện tử trao đổi với khách hàng trong năm 2025",
        scope=ScopeSpec(date_from=now - timedelta(days=365), date_to=now),
        deadline=now + timedelta(days=30),
        gagged=False,
    )
    actor = Principal(subject=by.id, name=by.user_principal_name, roles=frozenset({LEGAL}), is_service=False)
    return await receive(session, context, intake, actor=actor)


async def add_datamap(session: AsyncSession, customers: dict[str, Customer]) -> None:
    """Data map items of the customers, in every label state the coverage report distinguishes."""
    now = utc_now()
    states = [
        ("labeled", None),
        ("labeled", None),
        ("labeled", None),
        ("pending", None),
        ("skipped", "category_not_labeled"),
        ("kept_higher", "higher_label_present"),
    ]
    for key, customer in customers.items():
        for index, (state, reason) in enumerate(states):
            item = DatamapItem(
                kind="message" if index % 2 else "file",
                container_id=f"mailbox-{key}",
                item_id=f"{customer.id}-item-{index}",
                etag=f'"e{index}"',
                name_hash=f"{index:064x}",
                size=12_000 + index,
                item_modified_at=now - timedelta(days=30 * index),
                scan_status="scanned",
                findings=[],
                category="highly_confidential" if customer.do_not_disclose else "confidential",
                category_reason="customer data",
                label_state=state,
                label_reason=reason,
                first_seen_at=now,
                synced_at=now,
            )
            session.add(item)
            await session.flush()
            session.add(
                DatamapLink(
                    item_pk=item.id,
                    customer_id=customer.id,
                    reasons=[{"rule": "participant.domain", "detail": customer.domains[0]}],
                )
            )
    await session.flush()
