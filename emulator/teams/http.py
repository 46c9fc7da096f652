"""Plumbing shared by the Teams routes: each peer answers errors in its own service's shape, not Graph's."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from emulator.state import Tenant


class TeamsHttpError(Exception):
    """Raised by a Teams route; answered with exactly this status, body and headers."""

    def __init__(self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = headers or {}


class TeamsRoute(APIRoute):
    """Routes whose TeamsHttpError becomes the response (the app-wide handlers speak Graph and Entra only)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except TeamsHttpError as exc:
                if exc.body is None:
                    return Response(status_code=exc.status, headers=exc.headers)
                return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

        return answer


def tenant_of(request: Request) -> Tenant:
    tenant: Tenant = request.app.state.tenant
    return tenant


def base_url(request: Request) -> str:
    """The public https origin clients use (the server sets it; in-process tests fall back to the request's)."""
    configured = getattr(request.app.state, "base_url", None)
    return str(configured or request.base_url).rstrip("/")


async def read_json_object(request: Request, invalid: Callable[[str], TeamsHttpError]) -> dict[str, Any]:
    """The request body as a JSON object; anything else raises the caller's service-shaped error."""
    raw = await request.body()
    try:
        parsed = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise invalid(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(parsed, dict):
        raise invalid("The request body must be a JSON object.")
    return parsed
