"""ASGI middleware: request ids, request metrics and access logs, and the request body size limit.

Plain ASGI rather than BaseHTTPMiddleware, so that streamed bodies stay streamed and the limit is enforced while
the body arrives, not after it has been buffered.
"""

import logging
import time

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability import metrics
from app.observability.request_id import (
    REQUEST_ID_HEADER,
    acceptable_request_id,
    new_request_id,
    set_request_id,
)

log = logging.getLogger("app.access")

UNMATCHED_ROUTE = "unmatched"


def _route_template(scope: Scope) -> str:
    """The matched route as a template ("/v1/plans/{plan_id}"), never the concrete path: ids in metric labels
    would explode the series count. Rebuilt from the path parameters, which every FastAPI version reports."""
    if scope.get("endpoint") is None and scope.get("route") is None:
        return UNMATCHED_ROUTE
    names_by_value = {str(value): name for name, value in (scope.get("path_params") or {}).items()}
    segments = str(scope["path"]).split("/")
    return "/".join(f"{{{names_by_value[segment]}}}" if segment in names_by_value else segment for segment in segments)


class RequestContextMiddleware:
    """Gives every request an id (the caller's X-Request-ID if sane, else a new GUID), returns it in X-Request-ID,
    makes it available to logs and outbound calls, and records the request in metrics and the access log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = acceptable_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER)) or new_request_id()
        # Not reset afterwards on purpose: when the app raises, the server's error handler runs after this
        # middleware and must still log under this id. Each request runs in a task (a context) of its own.
        set_request_id(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
            metrics.HTTP_REQUEST_DURATION.labels(method=method, route=route).observe(elapsed)
            # The route template, not the URL: query strings carry tokens (validationToken) and search terms.
            log.info(
                "http.request",
                extra={"method": method, "route": route, "status": status, "duration_ms": round(elapsed * 1000, 1)},
            )


class RequestBodyTooLarge(HTTPException):
    """Raised while the body is read; an HTTPException so that FastAPI's body parsing lets it through."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"the request body exceeds {limit} bytes")


def body_too_large_response(limit: int) -> JSONResponse:
    return JSONResponse({"error": "ContentTooLarge", "detail": f"the request body exceeds {limit} bytes"}, 413)


async def body_too_large_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestBodyTooLarge)
    return JSONResponse({"error": "ContentTooLarge", "detail": exc.detail}, 413)


class BodySizeLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413: at once from Content-Length, else as soon as the count passes it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await body_too_large_response(self.max_bytes)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestBodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)
