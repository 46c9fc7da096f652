"""Who is calling Steward's API, and which of Steward's app roles they hold.

Endpoints declare `principal: Annotated[Principal, Depends(require_roles(ADMIN))]`: the bearer token is validated
(app.auth.tokens) and the caller must hold at least one of the named roles. `require_roles()` with no role only
requires a valid token.

Missing, malformed, expired or foreign tokens get 401 with `WWW-Authenticate: Bearer`; a valid token without the
role gets 403. Both use the one error shape.

This is function-level authorization only. Whether this caller may see or act on *this* object (a plan of another
customer, an approval they requested themselves) is the service's job: services receive the Principal and raise
NotFound/Forbidden per object.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from app.auth.tokens import SigningKeysUnavailable, TokenRejected, TokenValidator
from app.exceptions import AppError, Forbidden, Unauthorized
from app.observability import metrics

ADMIN = "Steward.Admin"
APPROVER = "Steward.Approver"
LEGAL = "Steward.Legal"
AUDITOR = "Steward.Auditor"
ROLES = frozenset({ADMIN, APPROVER, LEGAL, AUDITOR})


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str  # Entra object id (oid): the identity approvals are bound to
    name: str  # preferred_username / upn, for display and audit
    roles: frozenset[str]
    is_service: bool  # an app (client credentials) rather than a person


class InvalidBearerToken(Unauthorized):
    """401 that tells the client, per RFC 6750, that a bearer token is expected and why this one was refused."""

    def __init__(self, reason: str, *, token_presented: bool) -> None:
        super().__init__(reason)
        challenge = "Bearer"
        if token_presented:
            # RFC 6750 §3: no error attributes when the request carried no token at all.
            challenge += f' error="invalid_token", error_description="{reason}"'
        self.headers = {"WWW-Authenticate": challenge}


class IdentityProviderUnavailable(AppError):
    """Entra ID's signing keys cannot be fetched: the token is not known to be bad, so ask the client to retry."""

    status_code = 503
    headers = {"Retry-After": "30"}


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    roles = claims.get("roles") or []
    # App-only tokens say idtyp=app; older v1 app tokens lack idtyp but never carry delegated scopes.
    is_service = claims.get("idtyp") == "app" or "scp" not in claims
    name = claims.get("preferred_username") or claims.get("upn") or claims.get("name") or claims.get("azp") or ""
    return Principal(
        subject=str(claims["oid"]),
        name=str(name),
        roles=frozenset(str(role) for role in roles) if isinstance(roles, list) else frozenset(),
        is_service=is_service,
    )


def _bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not scheme:
        raise InvalidBearerToken("a bearer token is required", token_presented=False)
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidBearerToken("the Authorization header must be 'Bearer <token>'", token_presented=True)
    return token.strip()


async def authenticate(request: Request) -> Principal:
    """The validated caller of this request (cached on the request: several dependencies may ask)."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    token = _bearer_token(request)
    validator: TokenValidator = request.app.state.token_validator
    try:
        claims = await validator.validate(token)
    except TokenRejected as rejected:
        metrics.TOKEN_VALIDATIONS.labels(outcome="rejected").inc()
        raise InvalidBearerToken(rejected.reason, token_presented=True) from None
    except SigningKeysUnavailable as unavailable:
        metrics.TOKEN_VALIDATIONS.labels(outcome="unavailable").inc()
        raise IdentityProviderUnavailable(str(unavailable)) from None
    metrics.TOKEN_VALIDATIONS.labels(outcome="accepted").inc()
    principal = principal_from_claims(claims)
    request.state.principal = principal
    return principal


def require_roles(*any_of: str) -> Callable[[Request], Awaitable[Principal]]:
    unknown = set(any_of) - ROLES
    if unknown:
        # A typo here would silently lock everyone out of an endpoint.
        raise ValueError(f"unknown Steward roles: {', '.join(sorted(unknown))}")
    required = frozenset(any_of)

    async def dependency(request: Request) -> Principal:
        principal = await authenticate(request)
        if required and not required & principal.roles:
            raise Forbidden(f"requires one of the roles: {', '.join(sorted(required))}")
        return principal

    return dependency
