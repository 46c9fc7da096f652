"""JSON batching: `POST /v1.0/$batch`, shaped as concepts/json-batching.md documents it.

Every item is dispatched in-process through the same ASGI app with the outer Authorization header, so
authentication, permissions, limits, injected faults and the request log apply to each item exactly as they do
to a direct call, which is how Graph evaluates batched requests. Sub-requests carry the outer request-id in
`x-emulator-batch-id` and in the ASGI scope state (`emulator_batch_id`); outside callers can forge the header
but never the scope state, so the limits middleware should trust the latter.

Dependency rules follow Graph's documented limits (json-batching known issues): a `dependsOn` may only name
requests that appear earlier in the batch, and a batch is either fully parallel, fully serial (each request
depends on the previous one) or all dependent requests name the same request; such batches run in order.
msgraph-core serialises the dependency list as `depends_on`; the emulator honours it too and records the
batch as flagged (see `batch_records`), because real Graph is not known to honour that key.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.types import Message, Scope

from emulator.auth import authenticate, tenant_of
from emulator.errors import GraphError, graph_error_body
from emulator.state import Tenant

log = logging.getLogger(__name__)

router = APIRouter()
# Test and demo controls for this area, mounted under /_emulator (no Graph prefix).
control_router = APIRouter()

MAX_REQUESTS = 20
# Outlook runs at most four requests of one batch against the same mailbox at a time (throttling-limits.md).
OUTLOOK_PARALLEL_PER_MAILBOX = 4
BATCH_ID_HEADER = "x-emulator-batch-id"
BATCH_ID_STATE_KEY = "emulator_batch_id"
GRAPH_PREFIX = "/v1.0"

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Headers a batch item may not set: the outer request decides who is calling and how the item is framed.
RESERVED_ITEM_HEADERS = frozenset({"authorization", "host", "content-length", "transfer-encoding", BATCH_ID_HEADER})
# Framing headers of the item's own response that mean nothing inside the batch body.
DROPPED_RESPONSE_HEADERS = frozenset({"content-length", "date", "server", "connection", "transfer-encoding"})
CANONICAL_HEADER_NAMES = {"etag": "ETag", "odata-version": "OData-Version", "www-authenticate": "WWW-Authenticate"}
OUTLOOK_SEGMENTS = (
    "messages|mailfolders|sendmail|events|calendar|calendars|calendarview|contacts|contactfolders|"
    "mailboxsettings|inferenceclassification|outlook"
)
MAILBOX_URL = re.compile(rf"^/?(?:users/([^/?(]+)|me)/(?:{OUTLOOK_SEGMENTS})\b", re.IGNORECASE)


@dataclass(slots=True)
class BatchRecord:
    """What the emulator noticed about one $batch call, for tests (never bodies or headers)."""

    request_id: str
    size: int
    sequential: bool
    snake_case_depends_on_ids: tuple[str, ...]


@dataclass(slots=True)
class BatchItem:
    id: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    depends_on: tuple[str, ...]


def batch_records(tenant: Tenant) -> deque[BatchRecord]:
    records: deque[BatchRecord] | None = tenant.extra.get("batch_records")
    if records is None:
        records = deque(maxlen=10_000)
        tenant.extra["batch_records"] = records
    return records


def _bad_batch(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


def _item_body(raw: dict[str, Any], item_id: str, headers: dict[str, str]) -> bytes:
    if "body" not in raw or raw["body"] is None:
        return b""
    body = raw["body"]
    if isinstance(body, dict | list):
        return json.dumps(body).encode()
    if isinstance(body, str):
        # Documented as "a base64 URL-encoded value" for binary bodies; accept both alphabets and missing padding.
        padded = body + "=" * (-len(body) % 4)
        try:
            return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise _bad_batch(f"The body of request Id {item_id} is neither a JSON object nor base64.") from None
    raise _bad_batch(f"The body of request Id {item_id} is neither a JSON object nor base64.")


def _parse_item(raw: Any) -> tuple[BatchItem, bool]:
    """One request of the batch; the flag says the dependency list came as msgraph-core's `depends_on`."""
    if not isinstance(raw, dict):
        raise _bad_batch("Invalid batch payload format.")
    item_id = raw.get("id")
    if not isinstance(item_id, str) or not item_id.strip():
        raise _bad_batch("Invalid batch payload format. Each request needs an 'id' string.")
    method = raw.get("method")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise _bad_batch(f"Request Id {item_id} has no valid 'method'.")
    url = raw.get("url")
    if not isinstance(url, str) or not url.strip():
        raise _bad_batch(f"Request Id {item_id} has no 'url'.")
    if "://" in url or url.startswith("//"):
        # Graph wants the URL relative to the version root (/users, not https://graph.microsoft.com/v1.0/users).
        raise _bad_batch("Invalid batch payload format.")
    raw_headers = raw.get("headers") or {}
    if not isinstance(raw_headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int | float) for k, v in raw_headers.items()
    ):
        raise _bad_batch(f"The headers of request Id {item_id} must be an object of strings.")
    headers = {k.lower(): str(v) for k, v in raw_headers.items()}
    has_body = raw.get("body") is not None
    if (method.upper() in WRITE_METHODS or has_body) and not (has_body and headers.get("content-type")):
        raise _bad_batch(f"Write request id : {item_id} does not contain Content-Type header or body.")
    snake = "dependsOn" not in raw and "depends_on" in raw
    depends_raw = raw.get("dependsOn", raw.get("depends_on")) or []
    if not isinstance(depends_raw, list) or not all(isinstance(d, str) for d in depends_raw):
        raise _bad_batch(f"Invalid dependency for request Id {item_id}.")
    item = BatchItem(
        id=item_id,
        method=method.upper(),
        url=url.strip(),
        headers=headers,
        body=_item_body(raw, item_id, headers),
        depends_on=tuple(depends_raw),
    )
    return item, snake and bool(depends_raw)


def _check_dependencies(items: list[BatchItem]) -> bool:
    """Validate the documented dependency patterns; True when the batch must run in order."""
    seen: set[str] = set()
    for item in items:
        for dependency in item.depends_on:
            # Graph resolves dependencies in array order: the target must already be in the batch (no cycles).
            if dependency.lower() not in seen or dependency.lower() == item.id.lower():
                raise _bad_batch(f"Invalid dependency for request Id {item.id}.")
        seen.add(item.id.lower())
    dependent = [item for item in items if item.depends_on]
    if not dependent:
        return False
    serial = all(
        (index == 0 and not item.depends_on)
        or (index > 0 and [d.lower() for d in item.depends_on] == [items[index - 1].id.lower()])
        for index, item in enumerate(items)
    )
    same = all(len(item.depends_on) == 1 for item in dependent) and (
        len({item.depends_on[0].lower() for item in dependent}) == 1
    )
    if not (serial or same):
        raise _bad_batch("Batch should be either fully sequential or fully parallel.")
    return True


def _mailbox_of(url: str) -> str | None:
    match = MAILBOX_URL.match(url)
    if match is None:
        return None
    return (match.group(1) or "me").lower()


def _canonical(name: str) -> str:
    return CANONICAL_HEADER_NAMES.get(name, "-".join(part.capitalize() for part in name.split("-")))


def _response_item(item_id: str, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> dict[str, Any]:
    out_headers: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        if name not in DROPPED_RESPONSE_HEADERS:
            out_headers[_canonical(name)] = raw_value.decode("latin-1")
    result: dict[str, Any] = {"id": item_id, "status": status, "headers": out_headers}
    if body and status != 204:
        content_type = out_headers.get("Content-Type", "")
        parsed: Any = None
        if "json" in content_type:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        result["body"] = parsed if parsed is not None else base64.b64encode(body).decode()
    return result


def _failed_dependency(item: BatchItem, request_id: str) -> dict[str, Any]:
    body = graph_error_body("FailedDependency", "Failed dependency.", request_id, None)
    return {"id": item.id, "status": 424, "headers": {"Content-Type": "application/json"}, "body": body}


async def _dispatch(request: Request, item: BatchItem, batch_id: str) -> dict[str, Any]:
    """Run one item through the whole app (middleware included) as if it had arrived on its own."""
    relative = item.url if item.url.startswith("/") else "/" + item.url
    path, _, query = relative.partition("?")
    decoded_path = GRAPH_PREFIX + unquote(path)
    headers: list[tuple[bytes, bytes]] = [
        (name.encode("latin-1"), value.encode("latin-1", "replace"))
        for name, value in item.headers.items()
        if name not in RESERVED_ITEM_HEADERS
    ]
    for name in ("authorization", "host"):
        value = request.headers.get(name)
        if value is not None:
            headers.append((name.encode(), value.encode("latin-1")))
    headers.append((BATCH_ID_HEADER.encode(), batch_id.encode()))
    if item.body:
        headers.append((b"content-length", str(len(item.body)).encode()))
    outer: Scope = request.scope
    scope: Scope = {
        "type": "http",
        "asgi": outer.get("asgi", {"version": "3.0"}),
        "http_version": outer.get("http_version", "1.1"),
        "method": item.method,
        "scheme": outer.get("scheme", "https"),
        "server": outer.get("server"),
        "client": outer.get("client"),
        "root_path": outer.get("root_path", ""),
        "path": decoded_path,
        "raw_path": quote(decoded_path, safe="/:@!$&'()*+,;=-._~%").encode(),
        "query_string": quote(query, safe="/:@!$&'()*+,;=-._~%?").encode(),
        "headers": headers,
        # A fresh state: nothing of the outer request (its cached caller, its request-id) leaks into the item.
        "state": {BATCH_ID_STATE_KEY: batch_id},
        "extensions": {},
    }
    body_sent = False
    response_done = asyncio.Event()
    status = 500
    response_headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []
    started = False

    async def receive() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": item.body, "more_body": False}
        # Like a live connection: a disconnect only after the response went out.
        await response_done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, response_headers, started
        if message["type"] == "http.response.start":
            started = True
            status = int(message["status"])
            response_headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                response_done.set()

    try:
        await request.app(scope, receive, send)
    except Exception:
        # Starlette re-raises an unhandled error after its 500 response went out; keep that response.
        if not started:
            log.exception("batch item %s crashed before answering", item.id)
            body = json.dumps(
                graph_error_body("generalException", "An internal error occurred.", batch_id, None)
            ).encode()
            return _response_item(item.id, 500, [(b"content-type", b"application/json")], body)
    finally:
        response_done.set()
    return _response_item(item.id, status, response_headers, b"".join(chunks))


async def _run_parallel(request: Request, items: list[BatchItem], batch_id: str) -> list[dict[str, Any]]:
    mailbox_slots: dict[str, asyncio.Semaphore] = {}

    async def run(item: BatchItem) -> dict[str, Any]:
        mailbox = _mailbox_of(item.url)
        if mailbox is None:
            return await _dispatch(request, item, batch_id)
        slot = mailbox_slots.setdefault(mailbox, asyncio.Semaphore(OUTLOOK_PARALLEL_PER_MAILBOX))
        async with slot:
            return await _dispatch(request, item, batch_id)

    return list(await asyncio.gather(*(run(item) for item in items)))


async def _run_in_order(request: Request, items: list[BatchItem], batch_id: str) -> list[dict[str, Any]]:
    statuses: dict[str, int] = {}
    responses: list[dict[str, Any]] = []
    for item in items:
        if any(statuses.get(dependency.lower(), 0) >= 400 for dependency in item.depends_on):
            response = _failed_dependency(item, batch_id)
        else:
            response = await _dispatch(request, item, batch_id)
        statuses[item.id.lower()] = int(response["status"])
        responses.append(response)
    return responses


@router.post("/$batch")
async def post_batch(request: Request) -> JSONResponse:
    authenticate(request)
    try:
        payload = json.loads(await request.body())
    except ValueError:
        raise _bad_batch("Invalid batch payload format.") from None
    raw_items = payload.get("requests") if isinstance(payload, dict) else None
    if not isinstance(raw_items, list) or not raw_items:
        raise _bad_batch("Invalid batch payload format.")
    if len(raw_items) > MAX_REQUESTS:
        raise _bad_batch(f"The number of requests in a batch is limited to {MAX_REQUESTS}.")
    items: list[BatchItem] = []
    snake_ids: list[str] = []
    seen: set[str] = set()
    for raw in raw_items:
        item, snake = _parse_item(raw)
        if item.id.lower() in seen:
            raise _bad_batch(f"Request Id {item.id} has to be unique in a batch.")
        seen.add(item.id.lower())
        items.append(item)
        if snake:
            snake_ids.append(item.id)
    sequential = _check_dependencies(items)
    batch_id: str = getattr(request.state, "request_id", "") or str(uuid.uuid4())
    if snake_ids:
        log.warning(
            "$batch %s used 'depends_on' (msgraph-core's spelling) on %d request(s); Graph documents 'dependsOn'",
            batch_id,
            len(snake_ids),
        )
    tenant = tenant_of(request)
    with tenant.lock:
        batch_records(tenant).append(BatchRecord(batch_id, len(items), sequential, tuple(snake_ids)))
    runner = _run_in_order if sequential else _run_parallel
    responses = await runner(request, items, batch_id)
    return JSONResponse({"responses": responses})


@control_router.get("/batch/records")
async def list_batch_records(request: Request) -> dict[str, Any]:
    tenant = tenant_of(request)
    with tenant.lock:
        records = list(batch_records(tenant))
    return {
        "value": [
            {
                "requestId": r.request_id,
                "size": r.size,
                "sequential": r.sequential,
                "snakeCaseDependsOnIds": list(r.snake_case_depends_on_ids),
            }
            for r in records
        ]
    }
