"""The msgraph-sdk client, wired so the same code reaches graph.microsoft.com or the local tenant."""

import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from kiota_abstractions.api_error import APIError
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as graph_default_options
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from connectors.base import ConnectorError, Transient, error_for_status
from connectors.graph.auth import tls_context

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# Every error status is parsed as Graph's {"error": {...}} shape.
ERROR_MAPPING: dict[str, Any] = {"XXX": ODataError}


class GraphClient:
    """msgraph-sdk's GraphServiceClient plus the HTTP client under it, which `aclose` releases.

    `sdk` builds requests (and parses small responses into Kiota models). `get_json`/`iter_values`
    send a built request through the same adapter (auth, retry, redirect middleware) but parse the bytes
    with `json`, because Kiota model parsing costs milliseconds per object.
    """

    def __init__(self, sdk: GraphServiceClient, http: httpx.AsyncClient, allowed_hosts: Iterable[str]) -> None:
        self.sdk = sdk
        self._http = http
        self._allowed_hosts = frozenset(host.lower() for host in allowed_hosts)

    async def get_json(self, request: RequestInformation) -> dict[str, Any]:
        # kiota annotates the result with an unbound type variable, which mypy reads as "always None".
        send: Any = self.sdk.request_adapter.send_primitive_async
        try:
            raw: bytes | None = await send(request, "bytes", ERROR_MAPPING)
        except Exception as exc:
            raise graph_error(exc) from exc
        if not raw:
            return {}
        body: dict[str, Any] = json.loads(raw)
        return body

    async def iter_values(self, request: RequestInformation) -> AsyncIterator[dict[str, Any]]:
        """Yield the items of a collection, page after page, following @odata.nextLink."""
        while True:
            page = await self.get_json(request)
            for item in page.get("value", []):
                yield item
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return
            request = self._next_page(request, next_link)

    def _next_page(self, previous: RequestInformation, next_link: str) -> RequestInformation:
        # The token is sent wherever the link points, so a link to a foreign host is refused.
        link = urlsplit(next_link)
        if link.scheme != "https" or (link.hostname or "").lower() not in self._allowed_hosts:
            raise ConnectorError(f"refusing to follow @odata.nextLink to {link.scheme}://{link.hostname}")
        request = RequestInformation(Method.GET)
        request.url = next_link
        request.headers.add_all(previous.headers)
        request.add_request_options(list(previous.request_options.values()))
        return request

    @property
    def http(self) -> httpx.AsyncClient:
        """The middleware-wrapped HTTP client under the adapter, for pre-authenticated URLs (monitors, downloads)."""
        return self._http

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "GraphClient":
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def build_graph_client(
    credential: AsyncTokenCredential,
    *,
    base_url: str = "https://graph.microsoft.com/v1.0",
    allowed_hosts: Iterable[str] = ("graph.microsoft.com",),
    ca_bundle: Path | None = None,
    scopes: Iterable[str] = (GRAPH_SCOPE,),
    timeout_s: float = 30.0,
    max_retries: int = 3,
    user_agent: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> GraphClient:
    """Build the client. `transport` replaces the network (tests); TLS, auth and middleware stay real."""
    allowed = [host.lower() for host in allowed_hosts]
    base = urlsplit(base_url)
    if base.scheme != "https" or not base.hostname:
        raise ValueError(f"Graph base URL must be https, got {base_url!r}")
    if base.hostname.lower() not in allowed:
        # kiota silently omits the Authorization header for hosts outside allowed_hosts.
        raise ValueError(f"allowed_hosts must include the Graph host {base.hostname!r}")
    http = httpx.AsyncClient(
        verify=tls_context(ca_bundle),
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
        http2=True,
        headers={"User-Agent": user_agent} if user_agent else None,
        transport=transport,
    )
    options = dict(graph_default_options)
    options[RetryHandlerOption.get_key()] = RetryHandlerOption(max_retries=max_retries)
    # A custom client gets no retry/redirect middleware unless the factory wraps it.
    http = GraphClientFactory.create_with_default_middleware(client=http, options=options)
    # Explicit scopes: otherwise kiota asks for "<request host>/.default", the wrong audience off Microsoft's hosts.
    auth = AzureIdentityAuthenticationProvider(credential, scopes=list(scopes), allowed_hosts=allowed)
    adapter = GraphRequestAdapter(auth, client=http)
    # httpx normalises base URLs to end in "/", which the SDK turns into "/v1.0//users".
    adapter.base_url = base_url.rstrip("/")
    return GraphClient(GraphServiceClient(request_adapter=adapter), http, allowed)


def graph_error(exc: Exception) -> ConnectorError:
    """Translate what msgraph-sdk raises into the connector error tree, keeping Graph's request-id."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, httpx.TransportError):
        return Transient(f"Graph unreachable: {type(exc).__name__}")
    if not isinstance(exc, APIError) or exc.response_status_code is None:
        return ConnectorError(f"Graph call failed: {type(exc).__name__}: {exc}")
    headers = {key.lower(): value for key, value in (exc.response_headers or {}).items()}
    code, message, request_id = None, exc.message or "", headers.get("request-id")
    if isinstance(exc, ODataError) and exc.error is not None:
        code, message = exc.error.code, exc.error.message or message
        if exc.error.inner_error is not None and exc.error.inner_error.request_id:
            request_id = exc.error.inner_error.request_id
    retry_after = headers.get("retry-after", "")
    return error_for_status(
        exc.response_status_code,
        message or "Graph call failed",
        code=code,
        request_id=request_id,
        retry_after_s=float(retry_after) if retry_after.isdigit() else None,
    )
