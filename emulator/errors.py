"""Error bodies exactly as Microsoft shapes them: Graph's OData error and Entra ID's AADSTS error."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse


class GraphError(Exception):
    """Raised by Graph routes; rendered as {"error": {"code", "message", "innerError"}}."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        inner_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.inner_code = inner_code


def request_ids(request: Request | None) -> tuple[str, str | None]:
    """The request-id Graph assigns and the client-request-id it echoes."""
    client_request_id = request.headers.get("client-request-id") if request is not None else None
    if request is not None and getattr(request.state, "request_id", None):
        return request.state.request_id, client_request_id
    return str(uuid.uuid4()), client_request_id


def graph_error_body(
    code: str, message: str, request_id: str, client_request_id: str | None, inner_code: str | None = None
) -> dict[str, Any]:
    inner: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id or request_id,
    }
    if inner_code:
        inner["code"] = inner_code
    return {"error": {"code": code, "message": message, "innerError": inner}}


def graph_error_response(
    request: Request | None,
    status: int,
    code: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    inner_code: str | None = None,
) -> JSONResponse:
    request_id, client_request_id = request_ids(request)
    out_headers = {"request-id": request_id, "client-request-id": client_request_id or request_id}
    out_headers.update(headers or {})
    return JSONResponse(
        graph_error_body(code, message, request_id, client_request_id, inner_code),
        status_code=status,
        headers=out_headers,
    )


async def handle_graph_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GraphError)
    return graph_error_response(
        request, exc.status, exc.code, exc.message, headers=exc.headers, inner_code=exc.inner_code
    )


# Entra ID (AADSTS) errors --------------------------------------------------------------------------------


class EntraError(Exception):
    """Raised by the login endpoints; rendered in the token endpoint's error shape."""

    def __init__(self, status: int, error: str, aadsts: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description


def entra_error_body(error: str, aadsts: int, description: str) -> dict[str, Any]:
    trace_id = str(uuid.uuid4())
    correlation_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    return {
        "error": error,
        "error_description": (
            f"AADSTS{aadsts}: {description} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {stamp}"
        ),
        "error_codes": [aadsts],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={aadsts}",
    }


async def handle_entra_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EntraError)
    return JSONResponse(
        entra_error_body(exc.error, exc.aadsts, exc.description),
        status_code=exc.status,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )
