"""`steward demo`: start the local tenant, sign in as the app, list the tenant, prepare the store.

The local tenant runs as a separate process (`python -m emulator serve --json`); Steward talks to it only
over HTTPS, exactly as it talks to Microsoft 365.
"""

import asyncio
import contextlib
import json
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from alembic.migration import MigrationContext
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import (
    MessagesRequestBuilder,
)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from app.audit.service import audit
from app.db.engine import create_engine, create_sessionmaker
from app.db.migrate import upgrade
from connectors.graph.auth import ClientSecret, MsalCredential
from connectors.graph.client import GraphClient, build_graph_client

EMULATOR_KEYS = ("authority", "graph_url", "ca_bundle", "tenant_id", "client_id", "client_secret", "control_url")
EMULATOR_START_TIMEOUT_S = 180.0
EMULATOR_STOP_TIMEOUT_S = 10.0
MAILBOXES_SAMPLED = 3


class DemoError(Exception):
    """The demo could not run to its summary; the message says which step failed and why."""


@dataclass(frozen=True)
class Emulator:
    authority_host: str
    tenant_id: str
    graph_url: str
    ca_bundle: Path
    client_id: str
    client_secret: str = field(repr=False)


@dataclass
class MailboxSummary:
    user: str
    folders: int
    messages: int


@dataclass
class DemoSummary:
    tenant_id: str
    graph_url: str
    token_roles: list[str]
    users: int
    guests: int
    mailboxes: list[MailboxSummary]
    sites: int
    site_drives: int
    database: str
    audit_records: int
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def run_demo(*, seed: int = 7, customers: int = 12, database_url: str | None = None) -> DemoSummary:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="steward-demo-") as tmp:
        base = Path(tmp)
        async with emulator_process(seed=seed, customers=customers, workdir=base) as emulator:
            summary = await _list_tenant(emulator)
        url = database_url or f"sqlite+aiosqlite:///{base / 'steward.db'}"
        summary.database, summary.audit_records = await _prepare_store(url, summary)
    summary.seconds = round(time.monotonic() - started, 2)
    return summary


@contextlib.asynccontextmanager
async def emulator_process(*, seed: int, customers: int, workdir: Path) -> AsyncIterator[Emulator]:
    """Run `python -m emulator serve --json` until the block ends; yield what its ready line says."""
    log_path = workdir / "emulator.log"
    args = ["-m", "emulator", "serve", "--json", "--seed", str(seed), "--customers", str(customers)]
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            "--state-dir",
            str(workdir / "emulator"),
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            stdin=asyncio.subprocess.DEVNULL,
        )
        try:
            yield await _read_ready_line(process, log_path)
        finally:
            await _stop(process)


async def _read_ready_line(process: asyncio.subprocess.Process, log_path: Path) -> Emulator:
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), EMULATOR_START_TIMEOUT_S)
    except TimeoutError:
        raise DemoError(f"the emulator printed nothing within {EMULATOR_START_TIMEOUT_S:g}s") from None
    if not line:
        await process.wait()
        raise DemoError(f"the emulator exited with code {process.returncode} before it was ready:\n{_tail(log_path)}")
    try:
        info = json.loads(line)
        missing = [key for key in EMULATOR_KEYS if not info.get(key)]
    except (json.JSONDecodeError, AttributeError):
        raise DemoError(f"the emulator's ready line is not a JSON object: {line[:200]!r}") from None
    if missing:
        raise DemoError(f"the emulator's ready line lacks {', '.join(missing)}")
    # The authority is "<host>/<tenant>"; MSAL wants the host and the tenant separately.
    authority = urlsplit(info["authority"])
    tenant_in_path = authority.path.strip("/")
    return Emulator(
        authority_host=f"{authority.scheme}://{authority.netloc}",
        tenant_id=tenant_in_path or info["tenant_id"],
        graph_url=info["graph_url"],
        ca_bundle=Path(info["ca_bundle"]),
        client_id=info["client_id"],
        client_secret=info["client_secret"],
    )


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), EMULATOR_STOP_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no emulator log)"


async def _list_tenant(emulator: Emulator) -> DemoSummary:
    credential = MsalCredential(
        tenant_id=emulator.tenant_id,
        client_id=emulator.client_id,
        credential=ClientSecret(emulator.client_secret),
        authority_host=emulator.authority_host,
        ca_bundle=emulator.ca_bundle,
    )
    async with credential:
        token = await credential.get_token("https://graph.microsoft.com/.default")
        # Only the granted app roles are read (for display); the token itself is never printed or logged.
        claims = jwt.decode(token.token, options={"verify_signature": False})
        graph_host = urlsplit(emulator.graph_url).hostname or ""
        async with build_graph_client(
            credential, base_url=emulator.graph_url, allowed_hosts=[graph_host], ca_bundle=emulator.ca_bundle
        ) as graph:
            users = await _users(graph)
            members = [user for user in users if user.get("userType") != "Guest" and user.get("mail")]
            mailboxes = [await _mailbox(graph, user) for user in members[:MAILBOXES_SAMPLED]]
            sites, site_drives = await _sites(graph)
    return DemoSummary(
        tenant_id=emulator.tenant_id,
        graph_url=emulator.graph_url,
        token_roles=sorted(claims.get("roles", [])),
        users=len(users),
        guests=sum(1 for user in users if user.get("userType") == "Guest"),
        mailboxes=mailboxes,
        sites=sites,
        site_drives=site_drives,
        database="",
        audit_records=0,
    )


async def _users(graph: GraphClient) -> list[dict[str, Any]]:
    config = RequestConfiguration(
        query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            select=["id", "displayName", "userPrincipalName", "mail", "userType"], top=100
        )
    )
    request = graph.sdk.users.to_get_request_information(config)
    return [user async for user in graph.iter_values(request)]


async def _mailbox(graph: GraphClient, user: dict[str, Any]) -> MailboxSummary:
    mailbox = graph.sdk.users.by_user_id(user["id"])
    folders = [folder async for folder in graph.iter_values(mailbox.mail_folders.to_get_request_information())]
    messages = 0
    config = RequestConfiguration(
        query_parameters=MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(select=["id"], top=250)
    )
    for folder in folders:
        request = mailbox.mail_folders.by_mail_folder_id(folder["id"]).messages.to_get_request_information(config)
        messages += sum([1 async for _ in graph.iter_values(request)])
    return MailboxSummary(user=user.get("userPrincipalName") or user["id"], folders=len(folders), messages=messages)


async def _sites(graph: GraphClient) -> tuple[int, int]:
    sites = [site async for site in graph.iter_values(graph.sdk.sites.get_all_sites.to_get_request_information())]
    drives = 0
    for site in sites:
        request = graph.sdk.sites.by_site_id(site["id"]).drives.to_get_request_information()
        drives += sum([1 async for _ in graph.iter_values(request)])
    return len(sites), drives


async def _prepare_store(database_url: str, summary: DemoSummary) -> tuple[str, int]:
    # Alembic runs its own event loop, hence the thread.
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            revision = await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
        async with create_sessionmaker(engine)() as session, session.begin():
            await audit.append(
                session,
                actor="steward-demo",
                action="tenant.listed",
                subject=summary.tenant_id,
                payload={"users": summary.users, "sites": summary.sites, "drives": summary.site_drives},
            )
            check = await audit.verify(session)
        if not check.intact:
            raise DemoError(f"audit chain broken at record {check.first_broken_seq}")
    finally:
        await engine.dispose()
    return f"{engine.dialect.name} at migration {revision}", check.records
