"""The disclosure package: exactly the in-scope items, fetched from Graph, with a manifest and each file's SHA-256.

A zip holding `manifest.json` (the demand, the approvals, and per item its ids, path in the package, size and
SHA-256), `SHA256SUMS` (the same hashes in `sha256sum -c` form) and `items/NNNNN-<name>`: a file's content as
Graph serves it, a message as Graph's JSON (body and headers included). Only a released demand with two valid
legal approvals exports; the approvals are consumed, and a record of exactly what left (ids, sizes, hashes, never
content) stays in the store after the package file itself is removed at close.
"""

import asyncio
import hashlib
import json
import re
import unicodedata
import zipfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from msgraph.generated.users.item.messages.item.message_item_request_builder import MessageItemRequestBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import audit
from app.auth.dependencies import Principal
from app.disclosures.context import DisclosureContext
from app.disclosures.machine import Move, next_status
from app.disclosures.repository import DemandRepository
from app.disclosures.service import get_demand, move, valid_approvals
from app.exceptions import AppError, Conflict, NotFound
from app.models import Customer, DisclosureDemand, DisclosureExport, DisclosureScopeItem
from app.privacy.graph import GraphAccess
from app.privacy.guard import Audience, DisclosureGuard
from connectors.base import ConnectorError
from connectors.base import NotFound as GraphNotFound
from connectors.graph.requests import configured, mail_request, mailbox_claims

PACKAGE_FORMAT = "steward-disclosure-package/1"
MAX_FILE_BYTES = 1024 * 1024 * 1024
READ_CHUNK = 1024 * 1024
MESSAGE_EXPORT_FIELDS = (
    "id",
    "subject",
    "from",
    "sender",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "sentDateTime",
    "receivedDateTime",
    "internetMessageId",
    "conversationId",
    "importance",
    "hasAttachments",
    "internetMessageHeaders",
    "body",
)
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


class NotApproved(Conflict):
    """The release lacks the legal approvals it needs."""


class ExportFailed(AppError):
    """Graph would not hand over an item; nothing was exported and nothing changed."""

    status_code = 502


class PackageGone(AppError):
    status_code = 410


@dataclass(frozen=True, slots=True)
class Fetched:
    name: str
    chunks: AsyncIterator[bytes]


class ItemMissing(Exception):
    """The item is no longer in the tenant (deleted by a person despite the hold, or moved out of reach)."""


class ItemFetcher(Protocol):
    async def fetch(self, kind: str, container_id: str, item_id: str) -> Fetched: ...


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


class GraphItemFetcher:
    """Files as their content stream; messages as Graph's JSON of the message, body and headers included."""

    def __init__(self, graph: GraphAccess) -> None:
        self._connector = graph.connector
        self._sdk = graph.client.sdk

    async def fetch(self, kind: str, container_id: str, item_id: str) -> Fetched:
        try:
            if kind == "file":
                item = await self._connector.files.get_item(container_id, item_id, select=("id", "name", "size"))
                return Fetched(
                    item.name or item_id,
                    self._connector.files.download(container_id, item_id, max_bytes=MAX_FILE_BYTES),
                )
            builder = self._sdk.users.by_user_id(container_id).messages.by_message_id(item_id)
            query = MessageItemRequestBuilder.MessageItemRequestBuilderGetQueryParameters(
                select=list(MESSAGE_EXPORT_FIELDS)
            )
            request = mail_request(builder.to_get_request_information(configured(query)))
            response = await self._connector.transport.send(request, claims=mailbox_claims(container_id))
            return Fetched("message.json", _once(response.content))
        except GraphNotFound as missing:
            raise ItemMissing(f"Graph answered 404 (request-id {missing.request_id})") from None


def safe_name(name: str, limit: int = 120) -> str:
    cleaned = _UNSAFE.sub("_", unicodedata.normalize("NFC", name)).strip(" .") or "item"
    if len(cleaned) <= limit:
        return cleaned
    stem, dot, suffix = cleaned.rpartition(".")
    return (stem[: limit - len(suffix) - 1] + dot + suffix) if dot and len(suffix) < 16 else cleaned[:limit]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(READ_CHUNK):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Package:
    path: Path
    sha256: str
    size: int
    lines: list[dict[str, Any]]


async def write_package(
    path: Path, *, head: dict[str, Any], items: Sequence[DisclosureScopeItem], fetcher: ItemFetcher, now: datetime
) -> Package:
    stamp = now.timetuple()[:6]
    lines: list[dict[str, Any]] = []
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for number, item in enumerate(items, start=1):
            line: dict[str, Any] = {"kind": item.kind, "container_id": item.container_id, "item_id": item.item_id}
            try:
                fetched = await fetcher.fetch(item.kind, item.container_id, item.item_id)
            except ItemMissing as missing:
                lines.append({**line, "status": "missing", "detail": str(missing)})
                continue
            entry = zipfile.ZipInfo(f"items/{number:05d}-{safe_name(fetched.name)}", date_time=stamp)
            entry.compress_type = zipfile.ZIP_DEFLATED
            digest, size = hashlib.sha256(), 0
            with archive.open(entry, "w", force_zip64=True) as target:
                async for chunk in fetched.chunks:
                    target.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            lines.append(
                {**line, "status": "exported", "path": entry.filename, "size": size, "sha256": digest.hexdigest()}
            )
        exported = [line for line in lines if line["status"] == "exported"]
        manifest = {**head, "items": lines}
        archive.writestr(
            zipfile.ZipInfo("manifest.json", date_time=stamp),
            json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True),
            compress_type=zipfile.ZIP_DEFLATED,
        )
        archive.writestr(
            zipfile.ZipInfo("SHA256SUMS", date_time=stamp),
            "".join(f"{line['sha256']}  {line['path']}\n" for line in exported),
            compress_type=zipfile.ZIP_DEFLATED,
        )
    package_hash = await asyncio.to_thread(file_sha256, path)
    package_size = (await asyncio.to_thread(path.stat)).st_size
    return Package(path, package_hash, package_size, lines)


def _head(
    demand: DisclosureDemand,
    customer: Customer,
    approvers: list[dict[str, str]],
    actor: Principal,
    ctx: DisclosureContext,
    now: datetime,
) -> dict[str, Any]:
    guard = DisclosureGuard(ctx.policy, Audience.AUTHORITY)
    return {
        "format": PACKAGE_FORMAT,
        "created_at": now.isoformat(),
        "created_by": actor.name or actor.subject,
        "discloser": ctx.policy.organization.name,
        "demand": {
            "id": demand.id,
            "authority": demand.authority,
            "legal_basis": demand.legal_basis,
            "reference": demand.reference,
            "data_requested": demand.data_description,
            "customer": {"id": customer.id, "name": guard.display_name(customer)},
            "scope_hash": demand.scope_hash,
        },
        "approved_by": approvers,
    }


async def export(
    session: AsyncSession, ctx: DisclosureContext, demand_id: str, *, actor: Principal, fetcher: ItemFetcher
) -> DisclosureExport:
    now = ctx.clock()
    demand = await get_demand(session, demand_id, lock=True)
    next_status(demand.status, Move.export)
    valid = await valid_approvals(session, ctx, demand, now)
    if len(valid) < ctx.required_approvals:
        raise NotApproved(
            f"releasing this demand needs {ctx.required_approvals} approvals from distinct legal approvers; "
            f"it has {len(valid)}"
        )
    customer = await session.get(Customer, demand.customer_id)
    if customer is None:
        raise NotFound(f"the demand's customer {demand.customer_id!r} is gone")
    repository = DemandRepository(session)
    items = await repository.scope_items(demand.id, in_scope_only=True)
    approvers = [{"name": a.approver_name, "id": a.approver, "at": a.decided_at.isoformat()} for a in valid]
    directory = Path(ctx.settings.disclosure_export_dir)
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    name = f"disclosure-{demand.id}-{now:%Y%m%dT%H%M%S}Z.zip"
    partial = directory / f"{name}.part"
    try:
        package = await write_package(
            partial, head=_head(demand, customer, approvers, actor, ctx, now), items=items, fetcher=fetcher, now=now
        )
    except ConnectorError as failure:
        partial.unlink(missing_ok=True)
        raise ExportFailed(f"Graph refused an item, nothing was exported: {failure}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    package.path = partial.rename(directory / name)
    exported = [line for line in package.lines if line["status"] == "exported"]
    record = DisclosureExport(
        demand_id=demand.id,
        scope_hash=demand.scope_hash,
        package_name=name,
        package_sha256=package.sha256,
        package_bytes=package.size,
        item_count=len(exported),
        total_bytes=sum(int(line["size"]) for line in exported),
        items=package.lines,
        approvers=approvers,
        created_by=actor.subject,
        created_by_name=actor.name,
        created_at=now,
    )
    session.add(record)
    for approval in valid:
        approval.consumed_at = now
    await session.flush()
    await move(
        session,
        demand,
        Move.export,
        actor=actor,
        payload={
            "export_id": record.id,
            "package_sha256": record.package_sha256,
            "items": record.item_count,
            "missing": len(package.lines) - len(exported),
            "bytes": record.total_bytes,
            "approvers": [a["id"] for a in approvers],
        },
        now=now,
    )
    return record


async def package_file(
    session: AsyncSession, ctx: DisclosureContext, demand_id: str, export_id: int, *, actor: Principal
) -> tuple[Path, DisclosureExport]:
    """The stored package, after checking it is byte for byte what was exported; every download is audited."""
    await get_demand(session, demand_id)
    record = await DemandRepository(session).export(demand_id, export_id)
    if record is None:
        raise NotFound(f"no export {export_id} for demand {demand_id!r}")
    path = Path(ctx.settings.disclosure_export_dir) / record.package_name
    if record.package_removed_at is not None or not path.is_file():
        raise PackageGone("the package file was removed when the demand closed (the record of what left remains)")
    if await asyncio.to_thread(file_sha256, path) != record.package_sha256:
        raise Conflict("the stored package no longer matches the exported one; it is not served")
    await audit.append(
        session,
        actor=actor.subject,
        action="disclosure.package_downloaded",
        subject=f"disclosure:{demand_id}",
        payload={"export_id": export_id, "package_sha256": record.package_sha256, "name": actor.name},
    )
    return path, record
