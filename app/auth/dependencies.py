"""Who is calling Steward's API, and which of Steward's app roles they hold.

INTERFACE (stable; the implementation is being completed): endpoints declare
`principal: Annotated[Principal, Depends(require_roles("Steward.Admin"))]`.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from app.exceptions import Unauthorized

ADMIN = "Steward.Admin"
APPROVER = "Steward.Approver"
LEGAL = "Steward.Legal"
AUDITOR = "Steward.Auditor"


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str  # Entra object id (oid): the identity approvals are bound to
    name: str  # preferred_username / upn, for display and audit
    roles: frozenset[str]
    is_service: bool  # an app (client credentials) rather than a person


def require_roles(*any_of: str) -> Callable[[Request], Awaitable[Principal]]:
    async def dependency(request: Request) -> Principal:
        raise Unauthorized("Bearer token validation is not configured")

    return dependency
