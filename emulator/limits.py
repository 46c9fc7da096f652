"""Latency, Outlook and SharePoint limits, injected faults and the request log, as one pure ASGI middleware.

Every request except the /_emulator control plane is recorded in `tenant.request_log` (token requests included,
so tests can assert that a cached token made no call). Graph requests (/v1.0, /beta) also get:

- latency: a fixed delay plus uniform jitter from a seeded RNG, paid while the request holds its Outlook slot;
- Outlook limits per app + mailbox (throttling-limits.md): at most N concurrent requests and M requests per
  window; throttled requests count against the window too, as on Graph. Answer: 429 with an integer Retry-After;
- the SharePoint resource-unit budget per tenant per minute for /drives, /sites, /shares and users' drives
  (SharePoint's "avoid getting throttled" costs: 1 single item / delta with token / download, 2 collections,
  delta without token and writes, 5 permission operations); RateLimit-* headers from 80% of the budget, 429 with
  Retry-After beyond it.

Injected faults (`FaultSpec`) apply to every non-control request: a status (429/503/504/...; Graph's error shape on
Graph paths, Entra's AADSTS shape on login paths, Retry-After as integer seconds, an HTTP-date, or a fractional test
value), a slow response, or a connection reset (the socket is closed without any response; in-process ASGI
clients see httpx.RemoteProtocolError raised, which is what a real client sees).

Batch sub-requests: emulator/batch.py runs each $batch item through this same app with the outer request-id in
`scope["state"]["emulator_batch_id"]`, which only in-process code can set, so it is trusted, and in the
`x-emulator-batch-id` header, which is removed from every request before routing (an outside caller cannot
forge a batch id). Items count against limits and faults like direct calls, because Graph evaluates batched
requests individually, but they pay no latency of their own (the outer request already paid the round trip)
and are never reset (there is no connection of their own to drop).

Connection resets need the server's help: emulator/server.py exposes a callable under the ASGI scope extension
`DROP_CONNECTION_EXTENSION` that aborts the transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Literal
from urllib.parse import unquote

import httpx
import jwt
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulator.errors import entra_error_body, graph_error_body
from emulator.state import RequestRecord, Tenant

BATCH_ID_HEADER = b"x-emulator-batch-id"
BATCH_ID_STATE_KEY = "emulator_batch_id"
DROP_CONNECTION_EXTENSION = "emulator.drop_connection"
CONTROL_PREFIX = "/_emulator"
GRAPH_PREFIXES = ("/v1.0/", "/beta/")
LOGIN_PATH_MARKERS = ("/oauth2/", "/discovery/", "/.well-known/")
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

OUTLOOK_PATH = re.compile(
    r"^/(?:v1\.0|beta)/users/(?P<mailbox>[^/()]+)/(?:messages|mailfolders|sendmail|mailboxsettings|events|calendar|"
    r"calendars|calendarview|contacts|contactfolders|inferenceclassification|outlook)(?:[/(]|$)",
    re.IGNORECASE,
)
SHAREPOINT_PATH = re.compile(
    r"^/(?:v1\.0|beta)/(?:drives|sites|shares|(?:users|groups)/[^/]+/drives?)(?:[/(]|$)", re.IGNORECASE
)
# GETs of these segments return many items: a multi-item query in SharePoint's resource-unit table.
COLLECTION_SEGMENTS = frozenset(
    {"children", "drives", "sites", "items", "lists", "getallsites", "followed", "sharedwithme", "recent", "versions"}
)
RU_WINDOW_S = 60.0
RATE_LIMIT_HEADERS_FROM = 0.8

DEFAULT_ERRORS = {
    429: ("TooManyRequests", "Please retry again later."),
    500: ("generalException", "An unspecified error has occurred."),
    502: ("UnknownError", "Bad gateway."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable. Please retry later."),
    504: ("UnknownError", "The request timed out."),
}


class Profile(BaseModel):
    """Latency and limits in force; presets live in PROFILES and any field can be changed at run time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("custom", max_length=50)
    latency_ms: int = Field(0, ge=0, le=120_000)
    jitter_ms: int = Field(0, ge=0, le=120_000)
    outlook_limits: bool = False
    outlook_concurrency: int = Field(4, ge=1, le=1_000)
    outlook_requests_per_window: int = Field(10_000, ge=1)
    outlook_window_s: int = Field(600, ge=1, le=86_400)
    # What a concurrency 429 tells the client to wait; the window 429 says when the window frees a request.
    outlook_concurrency_retry_after_s: int = Field(1, ge=1, le=3_600)
    sharepoint_limits: bool = False
    ru_per_minute: int = Field(1_250, ge=1)


PROFILES: dict[str, Profile] = {
    "fast": Profile(name="fast"),
    # Graph's published numbers for a tenant under 1,000 licences.
    "realistic": Profile(
        name="realistic", latency_ms=50, jitter_ms=20, outlook_limits=True, sharepoint_limits=True, ru_per_minute=1_250
    ),
    # Tight budgets so a demo or a soak test meets throttling within seconds.
    "throttled": Profile(
        name="throttled",
        latency_ms=20,
        jitter_ms=10,
        outlook_limits=True,
        outlook_requests_per_window=200,
        outlook_window_s=60,
        sharepoint_limits=True,
        ru_per_minute=120,
    ),
}

RETRY_AFTER_DATE = re.compile(r"^http-date(?::(?P<seconds>\d{1,6}))?$")


class FaultSpec(BaseModel):
    """An injected fault: which requests it matches, what happens, and when it fires."""

    model_config = ConfigDict(extra="forbid")

    method: str | None = None
    path: str = Field(".*", max_length=500, description="regular expression searched in the request path")
    mailbox: str | None = Field(None, max_length=320, description="user id or UPN of the targeted mailbox")
    client_id: str | None = Field(None, max_length=100)
    kind: Literal["status", "reset", "slow"] = "status"
    status: int = Field(429, ge=400, le=599)
    code: str | None = Field(None, max_length=100)
    message: str | None = Field(None, max_length=500)
    retry_after: int | float | str | None = Field(
        None, description="integer seconds, a fractional test value, or 'http-date[:seconds]'"
    )
    delay_ms: int = Field(0, ge=0, le=120_000)
    on_nth: int | None = Field(None, ge=1, description="fire on the Nth matching request only")
    every: int | None = Field(None, ge=1, description="fire on every Nth matching request")
    rate: float | None = Field(None, ge=0, le=1, description="probability of firing, from a seeded RNG")
    times: int | None = Field(None, ge=1, description="stop after firing this many times")

    @field_validator("path")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.upper() not in HTTP_METHODS:
            raise ValueError(f"must be one of {', '.join(sorted(HTTP_METHODS))}")
        return value.upper()

    @field_validator("retry_after")
    @classmethod
    def _retry_after_form(cls, value: int | float | str | None) -> int | float | str | None:
        if isinstance(value, str) and not RETRY_AFTER_DATE.match(value):
            raise ValueError("must be a number of seconds or 'http-date' / 'http-date:<seconds>'")
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            raise ValueError("must not be negative")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FaultSpec:
        if self.kind == "slow" and self.delay_ms <= 0:
            raise ValueError("a slow fault needs delay_ms > 0")
        if self.on_nth is not None and self.every is not None:
            raise ValueError("on_nth and every cannot be combined")
        return self


@dataclass(slots=True)
class Fault:
    id: str
    spec: FaultSpec
    pattern: re.Pattern[str]
    mailbox: str | None  # resolved to a user id when the tenant knows the mailbox
    rng: random.Random
    matched: int = 0
    fired: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, **self.spec.model_dump(exclude_none=True), "matched": self.matched, "fired": self.fired}

    def fires(self) -> bool:
        """Count one matching request and decide whether the fault fires on it."""
        self.matched += 1
        spec = self.spec
        if spec.times is not None and self.fired >= spec.times:
            return False
        if spec.on_nth is not None and self.matched != spec.on_nth:
            return False
        if spec.every is not None and self.matched % spec.every:
            return False
        if spec.rate is not None and self.rng.random() >= spec.rate:
            return False
        self.fired += 1
        return True


@dataclass(slots=True)
class _RequestInfo:
    method: str
    path: str
    query: str
    is_graph: bool
    mailbox: str | None
    client_id: str | None
    batch_id: str | None
    client_request_id: str | None


@dataclass(slots=True)
class _Outcome:
    status: int = 0  # 0: no response was sent (connection reset, or the client went away)
    dropped: bool = False  # an injected connection reset: no response on purpose
    request_id: str | None = None
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    recorded: bool = False


@dataclass(frozen=True, slots=True)
class _Throttle:
    code: str
    message: str
    retry_after_s: int
    inner_code: str | None = None


def resource_units(method: str, path: str, query: str) -> int:
    """What a SharePoint/OneDrive request costs in resource units (SharePoint throttling guidance)."""
    lowered = path.lower()
    decoded_query = unquote(query).lower()
    if (
        "/permissions" in lowered
        or "expand=permissions" in decoded_query
        or lowered.endswith(("/invite", "/createlink"))
    ):
        return 5
    if method not in ("GET", "HEAD"):
        return 2
    last = lowered.rstrip("/").rsplit("/", 1)[-1]
    if last.startswith("delta"):
        with_token = "(token=" in last or any(
            marker in decoded_query for marker in ("token=", "$deltatoken=", "$skiptoken=")
        )
        return 1 if with_token else 2
    if last.removesuffix("()") in COLLECTION_SEGMENTS or last.startswith("search("):
        return 2
    return 1


class Limits:
    """Run-time state of latency, limits and faults for one app (one tenant)."""

    def __init__(self, tenant: Tenant, profile: str = "fast") -> None:
        self.tenant = tenant
        self.profile: Profile = PROFILES[profile]
        self.faults: list[Fault] = []
        self._latency_rng = random.Random(f"{tenant.seed}:latency")
        # Every delay goes through here, so tests can observe delays instead of timing them.
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._fault_ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._in_flight: dict[tuple[str | None, str], int] = {}
        self._windows: dict[tuple[str | None, str], deque[float]] = {}
        self._ru_spent: deque[tuple[float, int]] = deque()
        self._ru_total = 0
        self._client_ids: dict[str, str | None] = {}
        self._upn_index: dict[str, str] = {}
        self._upn_index_users = -1

    # Configuration -------------------------------------------------------------------------------------

    def use_profile(self, name: str) -> Profile:
        if name not in PROFILES:
            raise ValueError(f"unknown profile '{name}'; presets: {', '.join(sorted(PROFILES))}")
        self.profile = PROFILES[name]
        return self.profile

    def profile_with(self, preset: str | None, overrides: dict[str, Any]) -> Profile:
        """A preset (or the current profile) with some fields changed; raises ValueError / ValidationError."""
        if preset is not None and preset not in PROFILES:
            raise ValueError(f"unknown profile '{preset}'; presets: {', '.join(sorted(PROFILES))}")
        base = PROFILES[preset] if preset is not None else self.profile
        values = base.model_dump()
        if overrides:
            values.update({"name": "custom", **overrides})
        return Profile.model_validate(values)

    def add_fault(self, spec: FaultSpec) -> Fault:
        fault_id = f"fault-{next(self._fault_ids)}"
        fault = Fault(
            id=fault_id,
            spec=spec,
            pattern=re.compile(spec.path),
            mailbox=self._mailbox_key(spec.mailbox) if spec.mailbox else None,
            rng=random.Random(f"{self.tenant.seed}:{fault_id}"),
        )
        self.faults.append(fault)
        return fault

    def remove_fault(self, fault_id: str) -> bool:
        before = len(self.faults)
        self.faults = [f for f in self.faults if f.id != fault_id]
        return len(self.faults) != before

    def clear_faults(self) -> None:
        self.faults = []

    def usage(self) -> dict[str, Any]:
        """Counters for inspection: in-flight Outlook requests and the SharePoint units spent this minute."""
        self._prune_ru(time.monotonic())
        return {
            "outlookInFlight": {f"{c or '-'}|{m}": n for (c, m), n in self._in_flight.items() if n},
            "sharepointUnitsLastMinute": self._ru_total,
        }

    # Request classification ----------------------------------------------------------------------------

    def _mailbox_key(self, id_or_upn: str) -> str:
        if id_or_upn in self.tenant.users:
            return id_or_upn
        lowered = id_or_upn.lower()
        if len(self.tenant.users) != self._upn_index_users:
            self._upn_index = {}
            for user in self.tenant.users.values():
                self._upn_index[user.user_principal_name.lower()] = user.id
                self._upn_index.setdefault(user.mail.lower(), user.id)
            self._upn_index_users = len(self.tenant.users)
        return self._upn_index.get(lowered, lowered)

    def _client_id(self, authorization: str | None) -> str | None:
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        token = authorization[7:].strip()
        if token in self._client_ids:
            return self._client_ids[token]
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            client_id = claims.get("appid") or claims.get("azp")
        except jwt.InvalidTokenError:
            client_id = None
        if len(self._client_ids) >= 4_096:
            self._client_ids.clear()
        self._client_ids[token] = client_id if isinstance(client_id, str) else None
        return self._client_ids[token]

    def _describe(self, scope: Scope, batch_id: str | None) -> _RequestInfo:
        path: str = scope["path"]
        authorization = client_request_id = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"client-request-id":
                client_request_id = value.decode("latin-1")
        is_graph = path.startswith(GRAPH_PREFIXES)
        outlook = OUTLOOK_PATH.match(path) if is_graph else None
        return _RequestInfo(
            method=scope["method"],
            path=path,
            query=scope.get("query_string", b"").decode("latin-1"),
            is_graph=is_graph,
            mailbox=self._mailbox_key(unquote(outlook.group("mailbox")).strip("'")) if outlook else None,
            client_id=self._client_id(authorization),
            batch_id=batch_id,
            client_request_id=client_request_id,
        )

    # Faults ----------------------------------------------------------------------------------------------

    def _fired_faults(self, info: _RequestInfo) -> list[Fault]:
        fired = []
        for fault in self.faults:
            spec = fault.spec
            if info.batch_id is not None and spec.kind == "reset":
                continue
            if spec.method is not None and spec.method != info.method:
                continue
            if fault.mailbox is not None and fault.mailbox != info.mailbox:
                continue
            if spec.client_id is not None and spec.client_id != info.client_id:
                continue
            if not fault.pattern.search(info.path):
                continue
            if fault.fires():
                fired.append(fault)
        return fired

    @staticmethod
    def _retry_after_header(value: int | float | str | None) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            matched = RETRY_AFTER_DATE.match(value)
            seconds = int(matched.group("seconds") or 1) if matched else 1
            # Whole seconds from the next second on, so the date is never earlier than promised.
            return format_datetime(datetime.fromtimestamp(math.ceil(time.time()) + seconds, UTC), usegmt=True)
        if isinstance(value, float) and not value.is_integer():
            return str(value)
        return str(int(value))

    # Limits ----------------------------------------------------------------------------------------------

    def _admit_outlook(self, key: tuple[str | None, str], now: float) -> _Throttle | None:
        profile = self.profile
        window = self._windows.setdefault(key, deque())
        cutoff = now - profile.outlook_window_s
        while window and window[0] <= cutoff:
            window.popleft()
        window.append(now)  # throttled requests count against the window too, as on Graph
        if len(window) > profile.outlook_requests_per_window:
            # The next request fits once enough of the oldest requests leave the window.
            frees_at = window[len(window) - profile.outlook_requests_per_window] + profile.outlook_window_s
            return _Throttle("TooManyRequests", "Please retry again later.", max(1, math.ceil(frees_at - now)), "429")
        if self._in_flight.get(key, 0) >= profile.outlook_concurrency:
            return _Throttle(
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
                profile.outlook_concurrency_retry_after_s,
            )
        return None

    def _prune_ru(self, now: float) -> None:
        cutoff = now - RU_WINDOW_S
        while self._ru_spent and self._ru_spent[0][0] <= cutoff:
            self._ru_total -= self._ru_spent.popleft()[1]

    def _admit_sharepoint(self, cost: int, now: float) -> tuple[_Throttle | None, list[tuple[bytes, bytes]]]:
        budget = self.profile.ru_per_minute
        self._prune_ru(now)
        over = self._ru_total + cost > budget
        self._ru_spent.append((now, cost))  # throttled requests are charged too
        self._ru_total += cost
        headers: list[tuple[bytes, bytes]] = []
        if self._ru_total >= RATE_LIMIT_HEADERS_FROM * budget:
            reset_s = max(1, math.ceil(self._ru_spent[0][0] + RU_WINDOW_S - now))
            headers = [
                (b"ratelimit-limit", str(budget).encode()),
                (b"ratelimit-remaining", str(max(0, budget - self._ru_total)).encode()),
                (b"ratelimit-reset", str(reset_s).encode()),
            ]
        if not over:
            return None, headers
        # Wait until enough units leave the window for a request of the same cost to fit.
        must_free = self._ru_total + cost - budget
        freed, retry_after = 0, RU_WINDOW_S
        for spent_at, units in self._ru_spent:
            freed += units
            if freed >= must_free:
                retry_after = spent_at + RU_WINDOW_S - now
                break
        throttle = _Throttle(
            "activityLimitReached", "The request has been throttled", max(1, math.ceil(retry_after)), "throttledRequest"
        )
        return throttle, headers

    async def _latency(self) -> None:
        profile = self.profile
        if profile.latency_ms <= 0 and profile.jitter_ms <= 0:
            return
        jitter = self._latency_rng.uniform(-profile.jitter_ms, profile.jitter_ms) if profile.jitter_ms else 0.0
        delay_ms = max(0.0, profile.latency_ms + jitter)
        if delay_ms:
            await self.sleep(delay_ms / 1000)

    # Responses -------------------------------------------------------------------------------------------

    @staticmethod
    def _error_response(
        info: _RequestInfo,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: str | None,
        inner_code: str | None = None,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> tuple[JSONResponse, str]:
        request_id = str(uuid.uuid4())
        headers = {"request-id": request_id, "client-request-id": info.client_request_id or request_id}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        for name, value in extra_headers or ():
            headers[name.decode()] = value.decode()
        if any(marker in info.path for marker in LOGIN_PATH_MARKERS):
            error = "temporarily_unavailable" if status in (429, 503, 504) else "server_error"
            aadsts = 90055 if status == 429 else 90033
            body = entra_error_body(error, aadsts, message)
        else:
            body = graph_error_body(code, message, request_id, info.client_request_id, inner_code)
        return JSONResponse(body, status_code=status, headers=headers), request_id

    async def _drop_connection(self, scope: Scope, receive: Receive) -> None:
        drop: Callable[[], None] | None = scope.get("extensions", {}).get(DROP_CONNECTION_EXTENSION)
        if drop is None:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        drop()
        # Wait until the server has seen the connection go, so nothing tries to answer on it.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                while (await receive())["type"] != "http.disconnect":
                    pass

    # The middleware body ---------------------------------------------------------------------------------

    async def handle(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        state: MutableMapping[str, Any] = scope.setdefault("state", {})
        batch_id = state.get(BATCH_ID_STATE_KEY)
        scope["headers"] = [(name, value) for name, value in scope.get("headers", ()) if name != BATCH_ID_HEADER]
        info = self._describe(scope, batch_id if isinstance(batch_id, str) else None)
        outcome = _Outcome()
        slot: tuple[str | None, str] | None = None
        # Logged before the response's last byte leaves: a client that reads the log once answered sees its request.
        send = self._observing(send, outcome, lambda: self._record(info, outcome, started))
        try:
            fired = self._fired_faults(info) if self.faults else []
            delay_ms = sum(f.spec.delay_ms for f in fired if f.spec.kind == "slow")
            if delay_ms:
                await self.sleep(delay_ms / 1000)
            blocking = next((f for f in fired if f.spec.kind != "slow"), None)
            if blocking is not None:
                if blocking.spec.kind == "reset":
                    outcome.dropped = True
                    await self._drop_connection(scope, receive)
                    return
                default_code, default_message = DEFAULT_ERRORS.get(blocking.spec.status, ("BadRequest", "Injected."))
                response, outcome.request_id = self._error_response(
                    info,
                    blocking.spec.status,
                    blocking.spec.code or default_code,
                    blocking.spec.message or default_message,
                    retry_after=self._retry_after_header(blocking.spec.retry_after),
                )
                outcome.status = response.status_code
                await response(scope, receive, send)
                return
            if info.is_graph:
                throttle = None
                now = time.monotonic()
                if self.profile.outlook_limits and info.mailbox is not None:
                    key = (info.client_id, info.mailbox)
                    throttle = self._admit_outlook(key, now)
                    if throttle is None:
                        self._in_flight[key] = self._in_flight.get(key, 0) + 1
                        slot = key
                if throttle is None and self.profile.sharepoint_limits and SHAREPOINT_PATH.match(info.path):
                    cost = resource_units(info.method, info.path, info.query)
                    throttle, outcome.extra_headers = self._admit_sharepoint(cost, now)
                if throttle is not None:
                    response, outcome.request_id = self._error_response(
                        info,
                        429,
                        throttle.code,
                        throttle.message,
                        retry_after=str(throttle.retry_after_s),
                        inner_code=throttle.inner_code,
                        extra_headers=outcome.extra_headers,
                    )
                    outcome.status = 429
                    await response(scope, receive, send)
                    return
                if info.batch_id is None:
                    await self._latency()
            await app(scope, receive, send)
        except Exception:
            if outcome.status == 0 and not outcome.dropped:
                outcome.status = 500
            raise
        finally:
            if slot is not None:
                remaining = self._in_flight.get(slot, 1) - 1
                if remaining > 0:
                    self._in_flight[slot] = remaining
                else:
                    self._in_flight.pop(slot, None)
            if not outcome.recorded:
                self._record(info, outcome, started)

    @staticmethod
    def _observing(send: Send, outcome: _Outcome, record: Callable[[], None]) -> Callable[[Message], Awaitable[None]]:
        # Bytes still to send before the client has the whole response (Content-Length), when declared.
        remaining: list[int | None] = [None]

        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome.status = int(message["status"])
                headers = list(message.get("headers", ()))
                outcome.request_id = next(
                    (value.decode("latin-1") for name, value in headers if name.lower() == b"request-id"), None
                )
                length = next((value for name, value in headers if name.lower() == b"content-length"), None)
                remaining[0] = int(length) if length is not None and length.isdigit() else None
                present = {name.lower() for name, _ in headers}
                extra = [(name, value) for name, value in outcome.extra_headers if name.lower() not in present]
                if extra:  # an error response built here carries them already
                    message = {**message, "headers": headers + extra}
            elif message["type"] == "http.response.body" and not outcome.recorded:
                if remaining[0] is not None:
                    remaining[0] -= len(message.get("body", b""))
                if not message.get("more_body", False) or (remaining[0] is not None and remaining[0] <= 0):
                    record()
            await send(message)

        return observe

    def _record(self, info: _RequestInfo, outcome: _Outcome, started: float) -> None:
        outcome.recorded = True
        record = RequestRecord(
            seq=next(self._seq),
            at=time.time(),
            method=info.method,
            path=info.path,
            query=info.query,
            status=outcome.status,
            client_id=info.client_id,
            mailbox=info.mailbox,
            batch_id=info.batch_id,
            request_id=outcome.request_id or "",
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        with self.tenant.lock:
            self.tenant.request_log.append(record)


class LimitsMiddleware:
    """Pure ASGI: no response buffering, so streamed downloads stay streamed."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        await self.limits.handle(self.app, scope, receive, send)


def limits_of(app: Any) -> Limits:
    limits: Limits = app.state.limits
    return limits


def install(app: FastAPI) -> Limits:
    """Add the middleware (outermost of the app's own) and keep its state on `app.state.limits`."""
    tenant: Tenant = app.state.tenant
    limits = Limits(tenant)
    app.state.limits = limits
    app.add_middleware(LimitsMiddleware, limits=limits)
    return limits
