"""Bearer-token checks for Graph routes: who is calling and which application permissions they hold."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt
from fastapi import Request

from emulator.errors import GraphError
from emulator.state import Tenant
from emulator.tokens import GRAPH_AUDIENCES, graph_issuer


@dataclass(frozen=True, slots=True)
class Caller:
    client_id: str
    roles: frozenset[str]
    claims: dict[str, Any]


def tenant_of(request: Request) -> Tenant:
    tenant: Tenant = request.app.state.tenant
    return tenant


def authenticate(request: Request) -> Caller:
    """Verify the Graph access token exactly as Graph does: signature, audience, issuer, lifetime."""
    cached: Caller | None = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not token or scheme.lower() != "bearer":
        raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
    tenant = tenant_of(request)
    try:
        claims = tenant.keys.verify(token, audience=GRAPH_AUDIENCES, issuer=graph_issuer(tenant.tenant_id))
    except jwt.ExpiredSignatureError:
        raise GraphError(
            401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."
        ) from None
    except jwt.InvalidAudienceError:
        raise GraphError(
            401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience."
        ) from None
    except jwt.InvalidTokenError:
        raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.") from None
    caller = Caller(
        client_id=str(claims.get("appid") or claims.get("azp") or ""),
        roles=frozenset(claims.get("roles") or ()),
        claims=claims,
    )
    request.state.caller = caller
    return caller


# Graph answers a missing permission differently per workload; these are the codes each one uses.
DENIED = {
    "mail": ("ErrorAccessDenied", "Access is denied. Check credentials and try again."),
    "directory": ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
    "files": ("accessDenied", "Either scp or roles claim need to be present in the token."),
    "default": ("Forbidden", "Missing role permissions on the request."),
}


def require_roles(*any_of: str, workload: str = "default") -> Callable[[Request], Awaitable[Caller]]:
    """A dependency: the caller's token must carry at least one of the given application permissions."""

    async def dependency(request: Request) -> Caller:
        caller = authenticate(request)
        if any_of and not caller.roles.intersection(any_of):
            code, message = DENIED.get(workload, DENIED["default"])
            raise GraphError(403, code, message)
        return caller

    return dependency
