"""The single path every Steward request to Graph takes: budget, headers, retries, parking, error mapping.

Requests are built with msgraph-sdk's request builders and sent through its request adapter (so auth and the
middleware chain stay the SDK's), but:

- the SDK's RetryHandler is switched off per request: this layer owns retries, so the shared budget and the
  "whole mailbox pauses" rule hold, and a non-idempotent POST is never replayed behind our back;
- redirects are not followed automatically, so no request reaches a host we did not check;
- the raw response bytes come back untouched (a ResponseHandlerOption), to be parsed by pydantic models.

Retry rules: 429/503/504 and connection failures are retried, waiting Retry-After (integer seconds or an
HTTP-date) when given, else a jittered exponential backoff, bounded by attempt count and total time. A
throttle (429, or 503 with Retry-After) pauses the whole scope for every worker. A wait at or above the park
threshold is not slept: the unit is parked (see park.py) and `Parked` is raised. A 401 refreshes the token
once and retries once. Non-idempotent requests are retried only when Graph certainly did not run them (429,
throttling 503, connection never made); any other failure raises `OutcomeUnknown` for the caller to settle
by reading the state.
"""

import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_abstractions.response_handler import ResponseHandler
from kiota_http.middleware.middleware import REQUEST_OPTIONS_KEY
from kiota_http.middleware.options import (
    RedirectHandlerOption,
    ResponseHandlerOption,
    RetryHandlerOption,
    UserAgentHandlerOption,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from pydantic import BaseModel

from connectors.base import AuthError, ConnectorError, Throttled, Transient
from connectors.graph.budget import Claim, Scope, ThrottleBudget
from connectors.graph.client import GraphClient
from connectors.graph.clock import Clock
from connectors.graph.errors import (
    RETRYABLE_STATUSES,
    OutcomeUnknown,
    Parked,
    UntrustedLink,
    error_from_response,
    parse_retry_after,
)
from connectors.graph.park import InMemoryParkStore, ParkStore, current_unit

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
ERROR_MAPPING: dict[str, Any] = {"XXX": ODataError}
# Failures that happen before a byte of the request left: safe to retry even for a non-idempotent POST.
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# How much of an error body to read from a streamed response (error JSON is small; never read a payload).
ERROR_BODY_LIMIT = 64 * 1024
# Headers we set per attempt; everything else of a template request is carried to the pages that follow it.
PER_ATTEMPT_HEADERS = frozenset({"client-request-id", "user-agent", "authorization", "retry-attempt"})


def steward_user_agent(company: str, version: str) -> str:
    """Microsoft asks non-ISV apps to decorate traffic as NONISV|Company|App/Version."""
    return f"NONISV|{company}|Steward/{version}"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    # Overall deadline for one call's retries: longer than any single wait we are willing to sleep.
    max_total_s: float = 600.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 60.0
    jitter_s: float = 1.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Kiota's shape (0.5 * 2^(n-1) + up to 1 s of jitter), capped: spreads retries of many workers."""
        base = min(self.backoff_max_s, self.backoff_base_s * 2 ** max(attempt - 1, 0))
        return base + rng.uniform(0, self.jitter_s)


@dataclass(frozen=True)
class GraphResponse:
    status: int
    headers: httpx.Headers
    content: bytes
    client_request_id: str
    # An open streamed body (downloads only); the caller must close it.
    stream: httpx.Response | None = None

    @property
    def request_id(self) -> str | None:
        return self.headers.get("request-id")

    def parse(self, model: type[M]) -> M:
        return model.model_validate_json(self.content or b"{}")


class _KeepResponse(ResponseHandler):
    """Hands the adapter's httpx response back as is: no Kiota parsing, no exception on error statuses."""

    async def handle_response_async(self, response: Any, error_map: Any) -> Any:
        return response


_KEEP_RESPONSE = ResponseHandlerOption(_KeepResponse())
_NO_RETRY = RetryHandlerOption(delay=0, max_retries=0, should_retry=False)
_NO_REDIRECT = RedirectHandlerOption(should_redirect=False)
_NO_UA_SUFFIX = UserAgentHandlerOption(enabled=False)
_MIDDLEWARE_OPTIONS = (_NO_RETRY, _NO_REDIRECT, _NO_UA_SUFFIX)


class GraphTransport:
    def __init__(
        self,
        client: GraphClient,
        *,
        budget: ThrottleBudget,
        user_agent: str,
        allowed_hosts: Sequence[str] | None = None,
        park_store: ParkStore | None = None,
        retry: RetryPolicy | None = None,
        token_refresh: Callable[[], Awaitable[None]] | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.adapter = client.sdk.request_adapter
        self.budget = budget
        self.user_agent = user_agent
        base_host = (urlsplit(self.adapter.base_url).hostname or "").lower()
        self.allowed_hosts = frozenset(host.lower() for host in (allowed_hosts or ())) | {base_host}
        self.park_store: ParkStore = park_store if park_store is not None else InMemoryParkStore()
        self.retry = retry or RetryPolicy()
        self._token_refresh = token_refresh
        self.clock = clock or budget.clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security

    # Links -------------------------------------------------------------------------------------------------

    def check_link(self, url: str, what: str = "link") -> str:
        """`url` if it is https on an allowed host, else UntrustedLink: our token must never leave the tenant."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" or host not in self.allowed_hosts:
            raise UntrustedLink(f"refusing to follow {what} to {parts.scheme}://{host or '?'}: not an allowed host")
        return url

    def request_for_link(self, url: str, template: RequestInformation | None = None) -> RequestInformation:
        """A GET of `url` (a nextLink, deltaLink or Location) carrying the template's headers (Prefer...)."""
        request = RequestInformation(Method.GET)
        request.url = self.check_link(url)
        if template is not None:
            for name, values in template.headers.get_all().items():
                if name not in PER_ATTEMPT_HEADERS:
                    request.headers[name] = set(values)
        return request

    # Sending -----------------------------------------------------------------------------------------------

    async def send(
        self, request: RequestInformation, *, claims: Sequence[Claim], idempotent: bool = True
    ) -> GraphResponse:
        """Send a request built by the SDK; returns any status below 400, raises ConnectorError otherwise."""
        request.path_parameters.setdefault("baseurl", self.adapter.base_url)
        self.check_link(str(request.url), "request")
        method = request.http_method.value if request.http_method else "GET"
        return await self._run(
            lambda: self._adapter_attempt(request), claims=claims, idempotent=idempotent, what=method
        )

    async def send_unauthenticated(
        self,
        method: str,
        url: str,
        *,
        claims: Sequence[Claim],
        stream: bool = False,
    ) -> GraphResponse:
        """Send to a pre-authenticated URL (a monitor or a download URL): no Authorization header, same rules."""
        self.check_link(url)

        async def build() -> httpx.Request:
            options = {option.get_key(): option for option in _MIDDLEWARE_OPTIONS}
            headers = {"user-agent": self.user_agent, "client-request-id": str(uuid.uuid4())}
            return self.client.http.build_request(
                method, url, headers=headers, extensions={REQUEST_OPTIONS_KEY: options}
            )

        async def attempt() -> GraphResponse:
            return await self._raw_attempt(build, stream=stream)

        return await self._run(attempt, claims=claims, idempotent=method in {"GET", "HEAD"}, what=method)

    async def send_streamed(self, request: RequestInformation, *, claims: Sequence[Claim]) -> GraphResponse:
        """Like `send` (authenticated through the adapter) but leaves a success body unread in `.stream`."""
        request.path_parameters.setdefault("baseurl", self.adapter.base_url)
        self.check_link(str(request.url), "request")

        async def build() -> httpx.Request:
            self._decorate(request)
            native = await self.adapter.convert_to_native_async(request)
            assert isinstance(native, httpx.Request)
            return native

        async def attempt() -> GraphResponse:
            return await self._raw_attempt(build, stream=True)

        return await self._run(attempt, claims=claims, idempotent=True, what="GET")

    def _decorate(self, request: RequestInformation) -> str:
        # kiota keeps an Authorization header already on the request: drop it so each attempt (notably the one
        # after a 401 refresh) carries the credential's current token.
        if "authorization" in request.headers:
            request.headers.remove("authorization")
        client_request_id = str(uuid.uuid4())
        request.headers["client-request-id"] = client_request_id
        request.headers["user-agent"] = self.user_agent
        request.add_request_options([*_MIDDLEWARE_OPTIONS, _KEEP_RESPONSE])
        return client_request_id

    async def _adapter_attempt(self, request: RequestInformation) -> GraphResponse:
        client_request_id = self._decorate(request)
        try:
            # The handler in the request options makes the adapter return the httpx response itself.
            response: object = await self.adapter.send_primitive_async(request, "bytes", ERROR_MAPPING)
        except (ConnectorError, httpx.TransportError):
            raise
        except Exception as exc:
            # The credential is the only other thing that fails here (azure-identity or MSAL errors).
            raise AuthError(f"cannot authenticate the Graph request: {type(exc).__name__}") from exc
        assert isinstance(response, httpx.Response)
        return GraphResponse(response.status_code, response.headers, response.content, client_request_id)

    async def _raw_attempt(self, build: Callable[[], Awaitable[httpx.Request]], *, stream: bool) -> GraphResponse:
        native = await build()
        client_request_id = native.headers.get("client-request-id", "")
        response = await self.client.http.send(native, stream=stream)
        if not stream:
            return GraphResponse(response.status_code, response.headers, response.content, client_request_id)
        if response.status_code < 300:
            return GraphResponse(response.status_code, response.headers, b"", client_request_id, stream=response)
        try:
            content = b""
            async for chunk in response.aiter_bytes():
                content += chunk
                if len(content) >= ERROR_BODY_LIMIT:
                    break
        finally:
            await response.aclose()
        return GraphResponse(response.status_code, response.headers, content[:ERROR_BODY_LIMIT], client_request_id)

    async def _run(
        self,
        attempt: Callable[[], Awaitable[GraphResponse]],
        *,
        claims: Sequence[Claim],
        idempotent: bool,
        what: str,
    ) -> GraphResponse:
        started = self.clock.monotonic()
        attempts = 0
        refreshed = False
        while True:
            attempts += 1
            try:
                async with self.budget.reserve(claims):
                    response = await attempt()
            except Parked as pause_too_long:
                raise await self.park(pause_too_long, claims) from None
            except httpx.TransportError as exc:
                sent = not isinstance(exc, NOT_SENT_ERRORS)
                message = f"Graph {what} failed: {type(exc).__name__}"
                if sent and not idempotent:
                    raise OutcomeUnknown(message + "; the write may or may not have happened") from exc
                delay = self.backoff(attempts)
                if not self._may_retry(attempts, started, delay):
                    raise Transient(message) from exc
                log.info("graph.retry transport error=%s attempt=%d delay=%.2fs", type(exc).__name__, attempts, delay)
                await self.clock.sleep(delay)
                continue
            if response.status < 400:
                return response
            if response.status == 401 and not refreshed and self._token_refresh is not None:
                # A revoked or rotated token: fetch a new one once; a second 401 is a real auth failure.
                refreshed = True
                attempts -= 1
                await self._token_refresh()
                continue
            error = error_from_response(
                response.status,
                response.headers,
                response.content,
                client_request_id=response.client_request_id,
                now=self.clock.now(),
            )
            if response.status not in RETRYABLE_STATUSES:
                raise error
            retry_after = parse_retry_after(response.headers.get("retry-after"), self.clock.now())
            throttle = response.status == 429 or (response.status == 503 and retry_after is not None)
            if not throttle and not idempotent:
                raise OutcomeUnknown(
                    f"Graph {what} answered {response.status}; the write may or may not have happened",
                    status_code=response.status,
                    code=error.code,
                    request_id=error.request_id,
                    client_request_id=error.client_request_id,
                ) from error
            delay = retry_after if retry_after is not None else self.backoff(attempts)
            if throttle:
                for claim in claims:
                    self.budget.throttled(claim.scope, delay)
            if delay >= self.budget.park_threshold_s:
                parked = Parked(
                    f"Graph asked to wait {delay:.0f}s",
                    not_before=self.clock.now() + timedelta(seconds=delay),
                    unit=str(claims[0].scope) if claims else "graph",
                    retry_after_s=delay,
                    status_code=response.status,
                    code=error.code,
                    request_id=error.request_id,
                    client_request_id=error.client_request_id,
                )
                raise await self.park(parked, claims) from error
            if not self._may_retry(attempts, started, delay):
                if isinstance(error, Throttled):
                    error.retry_after_s = delay
                raise error
            log.info(
                "graph.retry status=%d scope=%s attempt=%d delay=%.2fs client_request_id=%s",
                response.status,
                ",".join(str(claim.scope) for claim in claims),
                attempts,
                delay,
                response.client_request_id,
            )
            if not throttle:
                # A throttle already paused the scope; `reserve` waits it out with every other worker.
                await self.clock.sleep(delay)

    def _may_retry(self, attempts: int, started: float, delay: float) -> bool:
        elapsed = self.clock.monotonic() - started
        return attempts < self.retry.max_attempts and elapsed + delay <= self.retry.max_total_s

    def backoff(self, attempt: int) -> float:
        return self.retry.backoff(attempt, self._rng)

    async def park(self, parked: Parked, claims: Sequence[Claim]) -> Parked:
        """Record `parked` in the ParkStore (under the current unit, if one is set) and return it to raise."""
        parked.unit = current_unit() or parked.unit
        await self.park_store.park(parked.unit, parked.not_before, reason=parked.message)
        log.warning(
            "graph.parked unit=%s scopes=%s not_before=%s",
            parked.unit,
            ",".join(str(claim.scope) for claim in claims),
            parked.not_before.isoformat(),
        )
        return parked


def claim(scope: Scope, units: int = 1) -> list[Claim]:
    """The claims of one ordinary request: a mailbox slot and request, or `units` SharePoint RU."""
    return [Claim(scope, units=units, slots=1 if scope.kind == "mailbox" else 0)]
