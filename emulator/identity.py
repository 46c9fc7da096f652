"""Entra ID for the emulated tenant: OIDC discovery, JWKS, instance discovery, the v2 token endpoint and sign-in.

Shaped after the Microsoft identity platform (entra-docs: v2-oauth2-client-creds-grant-flow.md,
certificate-credentials.md, v2-oauth2-auth-code-flow.md, reference-error-codes.md) and after what MSAL Python and
azure-identity actually send (sdk-notes.md):

- client credentials with a client secret (form or HTTP Basic) or a certificate `client_assertion` (RS256 + `x5t`
  or PS256 + `x5t#S256`, thumbprints compared without base64 padding), issuing Graph access tokens whose `roles`
  are the application permissions granted to the app registration;
- the authorization-code flow with PKCE for staff users (a minimal sign-in form), issuing v2 id tokens and v2
  access tokens for Steward's own API (`aud` = the web app's client id, `roles` = the user's app roles), plus
  refresh tokens.

Errors use Entra's AADSTS shape (`EntraError`). Nothing here logs secrets, passwords, codes or tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from emulator.auth import tenant_of
from emulator.errors import EntraError
from emulator.state import AppRegistration, Tenant, User
from emulator.tokens import ACCESS_TOKEN_LIFETIME_S, GRAPH_RESOURCE, app_access_token_claims, b64url, graph_issuer

router = APIRouter()

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCE_ALIASES = frozenset({GRAPH_RESOURCE, GRAPH_APP_ID, "https://graph.microsoft.com/"})
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
# The delegated permission every API-exposing app registration in the emulated tenant publishes.
API_SCOPE = "access_as_user"
MULTI_TENANT_SEGMENTS = frozenset({"common", "organizations", "consumers"})

# Lifetimes: codes are short-lived (about 10 minutes per the auth-code flow doc), refresh tokens last 90 days.
AUTH_CODE_LIFETIME_S = 600
ID_TOKEN_LIFETIME_S = 3600
REFRESH_TOKEN_LIFETIME_S = 90 * 24 * 3600
# Entra tolerates five minutes of clock skew on client assertions.
ASSERTION_LEEWAY_S = 300
MAX_FORM_BYTES = 64 * 1024
PKCE_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
AUTHORIZE_PARAMS = (
    "client_id",
    "response_type",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "prompt",
    "login_hint",
)
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def public_base_url(request: Request) -> str:
    """The scheme://host:port clients use to reach the emulator (set by the server, else the request's own)."""
    configured: str | None = getattr(request.app.state, "base_url", None)
    return (configured or str(request.base_url)).rstrip("/")


def _request_base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def v2_issuer(base: str, tenant_id: str) -> str:
    return f"{base}/{tenant_id}/v2.0"


def _missing(parameter: str) -> EntraError:
    return EntraError(
        400, "invalid_request", 900144, f"The request body must contain the following parameter: '{parameter}'."
    )


def _tenant_not_found(segment: str, error: str = "invalid_request") -> EntraError:
    return EntraError(
        400,
        error,
        90002,
        f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into "
        "the correct cloud.",
    )


def _resolve_tenant(request: Request, segment: str) -> Tenant | None:
    tenant = tenant_of(request)
    lowered = segment.lower()
    if lowered in (tenant.tenant_id.lower(), tenant.domain.lower()):
        return tenant
    return None


# Keys, certificates ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Certificate:
    sha1: str  # base64url, no padding: the `x5t` header value
    sha256: str  # base64url, no padding: the `x5t#S256` header value
    public_key: rsa.RSAPublicKey


@lru_cache(maxsize=128)
def _load_certificate(pem: bytes) -> _Certificate | None:
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None
    public_key = cert.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        return None
    return _Certificate(
        sha1=b64url(cert.fingerprint(hashes.SHA1())),  # noqa: S303 - x5t is defined as a SHA-1 thumbprint
        sha256=b64url(cert.fingerprint(hashes.SHA256())),
        public_key=public_key,
    )


def generate_client_certificate(display_name: str) -> tuple[bytes, bytes]:
    """An RSA key and a self-signed certificate for an app credential: (private key PEM, certificate PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, display_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def ensure_app_certificate(tenant: Tenant, client_id: str) -> bytes:
    """Register a certificate credential on the app once; returns its private key + certificate as one PEM."""
    issued: dict[str, bytes] = tenant.extra.setdefault("app_certificate_pems", {})
    if client_id not in issued:
        app = tenant.apps[client_id]
        key_pem, cert_pem = generate_client_certificate(f"{app.display_name} (emulated credential)")
        app.certificates.append(cert_pem)
        issued[client_id] = key_pem + cert_pem
    return issued[client_id]


# Discovery ---------------------------------------------------------------------------------------------


def _openid_configuration(base: str, segment: str, tenant_id_in_issuer: str) -> dict[str, Any]:
    authority = f"{base}/{segment}"
    return {
        "token_endpoint": f"{authority}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{authority}/discovery/v2.0/keys",
        "response_modes_supported": ["query"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code"],
        "scopes_supported": sorted(OIDC_SCOPES),
        "issuer": v2_issuer(base, tenant_id_in_issuer),
        "request_uri_parameter_supported": False,
        "authorization_endpoint": f"{authority}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{authority}/oauth2/v2.0/devicecode",
        "http_logout_supported": False,
        "frontchannel_logout_supported": False,
        "code_challenge_methods_supported": ["plain", "S256"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "nbf",
            "nonce",
            "preferred_username",
            "name",
            "oid",
            "tid",
            "ver",
            "email",
        ],
        "tenant_region_scope": "AS",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": urlsplit(base).netloc,
    }


@router.get("/{segment}/v2.0/.well-known/openid-configuration")
async def openid_configuration(request: Request, segment: str) -> JSONResponse:
    base = public_base_url(request)
    if segment.lower() in MULTI_TENANT_SEGMENTS:
        # Multi-tenant authorities publish a templated issuer, exactly as login.microsoftonline.com does.
        return JSONResponse(_openid_configuration(base, segment.lower(), "{tenantid}"))
    tenant = _resolve_tenant(request, segment)
    if tenant is None:
        raise _tenant_not_found(segment, error="invalid_tenant")
    # Like Entra, a document fetched by domain name still names the tenant by its id.
    return JSONResponse(_openid_configuration(base, tenant.tenant_id, tenant.tenant_id))


def _jwks(tenant: Tenant, issuer: str | None) -> dict[str, Any]:
    keys = tenant.keys.jwks()["keys"]
    if issuer is not None:
        keys = [{**key, "issuer": issuer} for key in keys]
    return {"keys": keys}


@router.get("/{segment}/discovery/v2.0/keys")
@router.get("/{segment}/discovery/keys")
async def signing_keys(request: Request, segment: str) -> JSONResponse:
    if segment.lower() in MULTI_TENANT_SEGMENTS:
        return JSONResponse(_jwks(tenant_of(request), None))
    tenant = _resolve_tenant(request, segment)
    if tenant is None:
        raise _tenant_not_found(segment, error="invalid_tenant")
    return JSONResponse(_jwks(tenant, v2_issuer(public_base_url(request), tenant.tenant_id)))


@router.get("/common/discovery/instance")
async def instance_discovery(request: Request) -> JSONResponse:
    """MSAL's authority validation: maps an authorization endpoint to its tenant discovery document."""
    base = public_base_url(request)
    authorization_endpoint = request.query_params.get("authorization_endpoint")
    if not authorization_endpoint:
        raise EntraError(
            400, "invalid_request", 900144, "The request must contain the 'authorization_endpoint' parameter."
        )
    parts = urlsplit(authorization_endpoint)
    known_hosts = {urlsplit(base).hostname, request.url.hostname}
    path_segments = [s for s in parts.path.split("/") if s]
    if parts.scheme != "https" or parts.hostname not in known_hosts or not path_segments:
        raise EntraError(400, "invalid_instance", 50049, "Unknown or invalid instance.")
    host = urlsplit(base).netloc
    return JSONResponse(
        {
            "tenant_discovery_endpoint": f"{base}/{path_segments[0]}/v2.0/.well-known/openid-configuration",
            "api-version": request.query_params.get("api-version", "1.1"),
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }
    )


@router.post("/{segment}/oauth2/v2.0/devicecode")
async def device_code(segment: str) -> Response:
    # No app registration in the emulated tenant allows public client flows, as Entra answers in that case.
    raise EntraError(
        400,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    )


# Client authentication ---------------------------------------------------------------------------------


async def _read_form(request: Request) -> dict[str, str]:
    """The token request's form fields; anything that is not a well-formed form is a missing grant_type."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise _missing("grant_type")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise EntraError(400, "invalid_request", 90015, "The request body is too long.")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise _missing("grant_type") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise EntraError(
                400,
                "invalid_request",
                9000411,
                f"The request is not properly formatted. The parameter '{name}' is duplicated.",
            )
        form[name] = value
    return form


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise EntraError(401, "invalid_client", 7000215, "Invalid client secret provided.") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise EntraError(401, "invalid_client", 7000215, "Invalid client secret provided.")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before being joined.
    return _form_unquote(client_id), _form_unquote(secret)


def _form_unquote(value: str) -> str:
    pairs = parse_qsl(f"v={value}", keep_blank_values=True)
    return pairs[0][1] if pairs else ""


def _app_not_found(client_id: str, tenant: Tenant) -> EntraError:
    return EntraError(
        400,
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory '{tenant.domain}'. This can "
        "happen if the application has not been installed by the administrator of the tenant or consented to by "
        "any user in the tenant. You may have sent your authentication request to the wrong tenant.",
    )


@dataclass(frozen=True, slots=True)
class _ClientAuth:
    app: AppRegistration
    method: str  # "secret" | "certificate"


def _authenticate_client(
    request: Request, form: dict[str, str], tenant: Tenant, token_endpoints: set[str]
) -> _ClientAuth:
    basic = _basic_credentials(request)
    form_client_id = form.get("client_id")
    if basic is not None and form_client_id and form_client_id.lower() != basic[0].lower():
        raise EntraError(
            400, "invalid_request", 90023, "The client_id in the request body does not match the Authorization header."
        )
    client_id = basic[0] if basic is not None else form_client_id
    if not client_id:
        raise _missing("client_id")
    app = tenant.apps.get(client_id.lower()) or tenant.apps.get(client_id)
    if app is None:
        raise _app_not_found(client_id, tenant)
    secret = basic[1] if basic is not None else form.get("client_secret")
    assertion = form.get("client_assertion")
    if secret:
        # compare_digest on every registered secret: no early exit that would time which one matched.
        matched = [hmac.compare_digest(secret.encode(), known.encode()) for known in app.secrets]
        if not any(matched):
            raise EntraError(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
                f"value, not the client secret ID, for a secret added to app '{app.client_id}'.",
            )
        return _ClientAuth(app, "secret")
    if assertion:
        if form.get("client_assertion_type") != JWT_BEARER:
            raise EntraError(
                400,
                "invalid_request",
                90014,
                f"The required field 'client_assertion_type' is missing or is not '{JWT_BEARER}'.",
            )
        _verify_client_assertion(assertion, app, token_endpoints)
        return _ClientAuth(app, "certificate")
    raise EntraError(
        401,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    )


def _verify_client_assertion(assertion: str, app: AppRegistration, token_endpoints: set[str]) -> None:
    """Check a certificate-signed assertion the way Entra does (certificate-credentials.md)."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.InvalidTokenError:
        raise EntraError(401, "invalid_client", 50027, "JWT token is invalid or malformed.") from None
    algorithm = header.get("alg")
    if algorithm not in ("RS256", "PS256"):
        raise EntraError(
            401,
            "invalid_client",
            50027,
            f"JWT token is invalid or malformed. Algorithm '{algorithm}' is not supported.",
        )
    # MSAL sends thumbprints with base64 '=' padding; Entra's comparison ignores it.
    sha256 = str(header.get("x5t#S256") or "").rstrip("=")
    sha1 = str(header.get("x5t") or "").rstrip("=")
    certificates = [c for c in (_load_certificate(pem) for pem in app.certificates) if c is not None]
    certificate = next(
        (c for c in certificates if (sha256 and c.sha256 == sha256) or (not sha256 and sha1 and c.sha1 == sha1)),
        None,
    )
    if certificate is None:
        presented = sha256 or sha1 or "none"
        raise EntraError(
            401,
            "invalid_client",
            700027,
            "The certificate with identifier used to sign the client assertion is not registered on application. "
            f"[Reason - The key was not found., Thumbprint of key used by client: '{presented}']",
        )
    try:
        claims = jwt.decode(
            assertion,
            certificate.public_key,
            algorithms=[algorithm],
            audience=sorted(token_endpoints),
            options={"require": ["exp", "aud", "iss", "sub"]},
            leeway=ASSERTION_LEEWAY_S,
        )
    except jwt.InvalidSignatureError:
        raise EntraError(401, "invalid_client", 700027, "Client assertion contains an invalid signature.") from None
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
        raise EntraError(
            401, "invalid_client", 700024, "Client assertion is not within its valid time range."
        ) from None
    except jwt.InvalidAudienceError:
        raise EntraError(
            401, "invalid_client", 700023, "Client assertion audience claim does not match Realm issuer."
        ) from None
    except jwt.InvalidTokenError:
        raise EntraError(401, "invalid_client", 50027, "JWT token is invalid or malformed.") from None
    client_id = app.client_id.lower()
    if str(claims.get("iss", "")).lower() != client_id or str(claims.get("sub", "")).lower() != client_id:
        raise EntraError(
            401,
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        )


# Scopes ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Scopes:
    """A user-flow scope request: OIDC scopes plus permissions on at most one resource."""

    oidc: frozenset[str]
    resource: str | None  # "graph", an API-exposing app's client id, or None (OIDC scopes only)
    names: tuple[str, ...]


def _resolve_resource(tenant: Tenant, resource: str) -> str | None:
    lowered = resource.lower()
    if lowered in GRAPH_RESOURCE_ALIASES:
        return "graph"
    app_id = lowered.removeprefix("api://")
    app = tenant.apps.get(app_id)
    return app.client_id if app is not None and app.exposed_roles else None


def _resource_not_found(resource: str, tenant: Tenant) -> EntraError:
    return EntraError(
        400,
        "invalid_resource",
        500011,
        f"The resource principal named {resource} was not found in the tenant named {tenant.domain}. This can "
        "happen if the application has not been installed by the administrator of the tenant or consented to by "
        "any user in the tenant. You might have sent your authentication request to the wrong tenant.",
    )


def _client_credentials_resource(tenant: Tenant, raw_scope: str | None) -> str:
    """Client credentials take exactly one `{resource}/.default` scope."""
    if not raw_scope:
        raise _missing("scope")
    scopes = raw_scope.split()
    if any(not s.endswith("/.default") for s in scopes):
        raise EntraError(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {raw_scope} is not valid. Client credential flows must have a scope "
            "value with /.default suffixed to the resource identifier (application ID URI).",
        )
    if len(scopes) != 1:
        raise EntraError(
            400,
            "invalid_scope",
            70011,
            f"The provided value for the input parameter 'scope' is not valid. The scope {raw_scope} is not valid.",
        )
    resource = scopes[0].removesuffix("/.default")
    resolved = _resolve_resource(tenant, resource)
    if resolved is None:
        raise _resource_not_found(resource, tenant)
    return resolved


def _parse_user_scopes(tenant: Tenant, raw_scope: str) -> _Scopes:
    oidc: set[str] = set()
    resources: set[str] = set()
    names: list[str] = []
    for scope in raw_scope.split():
        if scope.lower() in OIDC_SCOPES:
            oidc.add(scope.lower())
            continue
        prefix, _, name = scope.rpartition("/")
        # A bare permission name ("User.Read") is a Graph permission, as Entra reads it.
        resolved = _resolve_resource(tenant, prefix.rstrip("/")) if prefix else "graph"
        if resolved is None or not name:
            raise _resource_not_found(prefix or scope, tenant)
        resources.add(resolved)
        names.append(name)
    if len(resources) > 1:
        raise EntraError(
            400,
            "invalid_scope",
            28000,
            "Provided value for the input parameter scope is not valid because it contains more than one resource.",
        )
    resource = next(iter(resources), None)
    if ".default" in names and len(names) > 1:
        raise EntraError(
            400, "invalid_scope", 70011, "The scope .default cannot be combined with other scopes of the resource."
        )
    if resource is not None and resource != "graph":
        unknown = [n for n in names if n not in (".default", API_SCOPE)]
        if unknown:
            raise EntraError(
                400,
                "invalid_scope",
                650053,
                f"The application asked for scope '{unknown[0]}' that doesn't exist on the resource '{resource}'.",
            )
    return _Scopes(frozenset(oidc), resource, tuple(names))


# Token issuance ----------------------------------------------------------------------------------------


def _pairwise_subject(user_id: str, client_id: str) -> str:
    return b64url(hashlib.sha256(f"{user_id}:{client_id}".encode()).digest())


def _api_app_token(tenant: Tenant, base: str, client: _ClientAuth, resource_app_id: str) -> str:
    """A v2 app-only token for an API registered in the tenant (Steward's own)."""
    now = int(time.time())
    claims = {
        "aud": resource_app_id,
        "iss": v2_issuer(base, tenant.tenant_id),
        "iat": now,
        "nbf": now,
        "exp": now + ACCESS_TOKEN_LIFETIME_S,
        "azp": client.app.client_id,
        "azpacr": "2" if client.method == "certificate" else "1",
        "idtyp": "app",
        "oid": client.app.object_id,
        "sub": client.app.object_id,
        "tid": tenant.tenant_id,
        "uti": b64url(uuid.uuid4().bytes),
        "ver": "2.0",
    }
    return tenant.keys.sign(claims)


def _token_response(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, headers=NO_STORE)


def _client_credentials(
    request: Request, form: dict[str, str], tenant: Tenant, token_endpoints: set[str]
) -> JSONResponse:
    client = _authenticate_client(request, form, tenant, token_endpoints)
    resource = _client_credentials_resource(tenant, form.get("scope"))
    if resource == "graph":
        claims = app_access_token_claims(
            tenant_id=tenant.tenant_id,
            client_id=client.app.client_id,
            app_object_id=client.app.object_id,
            roles=sorted(client.app.graph_roles),
        )
        claims["appidacr"] = "2" if client.method == "certificate" else "1"
        access_token = tenant.keys.sign(claims)
    else:
        access_token = _api_app_token(tenant, public_base_url(request), client, resource)
    return _token_response(
        {
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME_S,
            "ext_expires_in": ACCESS_TOKEN_LIFETIME_S,
            "access_token": access_token,
        }
    )


def _user_access_token(tenant: Tenant, base: str, client: _ClientAuth, user: User, scopes: _Scopes) -> tuple[str, str]:
    """(access token, the granted scope string) for a signed-in user."""
    now = int(time.time())
    resource = scopes.resource
    if resource is None and client.app.exposed_roles:
        # Signing in with OIDC scopes only yields a token for the app's own API (what Steward's API validates).
        resource = client.app.client_id
    common = {
        "iat": now,
        "nbf": now,
        "exp": now + ACCESS_TOKEN_LIFETIME_S,
        "aio": b64url(uuid.uuid4().bytes),
        "name": user.display_name,
        "oid": user.id,
        "tid": tenant.tenant_id,
        "uti": b64url(uuid.uuid4().bytes),
        "rh": "0.emulated.",
    }
    oidc_granted = sorted(scopes.oidc - {"offline_access"})
    if resource is None or resource == "graph":
        names = [n for n in scopes.names if n != ".default"] or ["User.Read"]
        claims = {
            **common,
            "aud": GRAPH_RESOURCE,
            "iss": graph_issuer(tenant.tenant_id),
            "appid": client.app.client_id,
            "appidacr": "2" if client.method == "certificate" else "1",
            "idtyp": "user",
            "scp": " ".join(names),
            "sub": _pairwise_subject(user.id, GRAPH_APP_ID),
            "upn": user.user_principal_name,
            "unique_name": user.user_principal_name,
            "ver": "1.0",
        }
        return tenant.keys.sign(claims), " ".join([*names, *oidc_granted])
    resource_app = tenant.apps[resource]
    delegated = sorted({API_SCOPE if n == ".default" else n for n in scopes.names} or {API_SCOPE})
    claims = {
        **common,
        "aud": resource_app.client_id,
        "iss": v2_issuer(base, tenant.tenant_id),
        "azp": client.app.client_id,
        "azpacr": "2" if client.method == "certificate" else "1",
        "preferred_username": user.user_principal_name,
        "upn": user.user_principal_name,
        "scp": " ".join(delegated),
        "sub": _pairwise_subject(user.id, resource_app.client_id),
        "ver": "2.0",
    }
    roles = sorted(user.steward_roles & resource_app.exposed_roles)
    if roles:
        claims["roles"] = roles
    granted = [f"api://{resource_app.client_id}/{name}" for name in delegated]
    return tenant.keys.sign(claims), " ".join([*granted, *oidc_granted])


def _id_token(tenant: Tenant, base: str, app: AppRegistration, user: User, scopes: _Scopes, nonce: str | None) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": app.client_id,
        "iss": v2_issuer(base, tenant.tenant_id),
        "iat": now,
        "nbf": now,
        "exp": now + ID_TOKEN_LIFETIME_S,
        "name": user.display_name,
        "oid": user.id,
        "preferred_username": user.user_principal_name,
        "rh": "0.emulated.",
        "sub": _pairwise_subject(user.id, app.client_id),
        "tid": tenant.tenant_id,
        "uti": b64url(uuid.uuid4().bytes),
        "ver": "2.0",
    }
    if nonce:
        claims["nonce"] = nonce
    if "email" in scopes.oidc:
        claims["email"] = user.mail
    return tenant.keys.sign(claims)


def _user_token_response(
    request: Request,
    form: dict[str, str],
    tenant: Tenant,
    client: _ClientAuth,
    user: User,
    scopes: _Scopes,
    nonce: str | None,
) -> JSONResponse:
    base = public_base_url(request)
    access_token, granted = _user_access_token(tenant, base, client, user, scopes)
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "scope": granted,
        "expires_in": ACCESS_TOKEN_LIFETIME_S,
        "ext_expires_in": ACCESS_TOKEN_LIFETIME_S,
        "access_token": access_token,
    }
    if "offline_access" in scopes.oidc:
        body["refresh_token"] = _identity_state(tenant).issue_refresh_token(client.app.client_id, user.id, scopes)
    if "openid" in scopes.oidc:
        body["id_token"] = _id_token(tenant, base, client.app, user, scopes, nonce)
    if form.get("client_info") == "1":
        info = json.dumps({"uid": user.id, "utid": tenant.tenant_id}).encode()
        body["client_info"] = b64url(info)
    return _token_response(body)


# Authorization codes and refresh tokens ----------------------------------------------------------------


@dataclass(slots=True)
class _PendingCode:
    client_id: str
    user_id: str
    redirect_uri: str
    scopes: _Scopes
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float


@dataclass(slots=True)
class _RefreshGrant:
    client_id: str
    user_id: str
    scopes: _Scopes
    expires_at: float


@dataclass
class IdentityState:
    codes: dict[str, _PendingCode] = field(default_factory=dict)
    # Redeemed codes are remembered until they would have expired, to say "already redeemed" rather than "invalid".
    redeemed: dict[str, float] = field(default_factory=dict)
    refresh_tokens: dict[str, _RefreshGrant] = field(default_factory=dict)

    def _purge(self, now: float) -> None:
        for table in (self.codes, self.refresh_tokens):
            for key in [k for k, v in table.items() if v.expires_at < now]:
                del table[key]
        for key in [k for k, expires in self.redeemed.items() if expires < now]:
            del self.redeemed[key]

    def issue_code(self, pending: _PendingCode) -> str:
        self._purge(time.time())
        code = secrets.token_urlsafe(48)
        self.codes[code] = pending
        return code

    def redeem_code(self, code: str) -> _PendingCode:
        """Take a code out: it is single-use, whether or not the redemption then succeeds."""
        now = time.time()
        pending = self.codes.pop(code, None)
        if pending is None:
            if code in self.redeemed:
                raise EntraError(
                    400,
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an "
                    "existing refresh token.",
                )
            raise EntraError(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        self.redeemed[code] = pending.expires_at
        if pending.expires_at < now:
            raise EntraError(
                400, "invalid_grant", 70008, "The provided authorization code or refresh token has expired."
            )
        return pending

    def issue_refresh_token(self, client_id: str, user_id: str, scopes: _Scopes) -> str:
        now = time.time()
        if len(self.refresh_tokens) > 10_000:
            self._purge(now)
        token = secrets.token_urlsafe(64)
        self.refresh_tokens[token] = _RefreshGrant(client_id, user_id, scopes, now + REFRESH_TOKEN_LIFETIME_S)
        return token


def _identity_state(tenant: Tenant) -> IdentityState:
    state: IdentityState = tenant.extra.setdefault("identity", IdentityState())
    return state


def _pkce_matches(verifier: str, challenge: str, method: str) -> bool:
    if method == "S256":
        computed = b64url(hashlib.sha256(verifier.encode("ascii")).digest())
        return hmac.compare_digest(computed, challenge)
    return hmac.compare_digest(verifier, challenge)


def _signed_in_user(tenant: Tenant, user_id: str) -> User:
    user = tenant.users.get(user_id)
    if user is None or not user.account_enabled:
        raise EntraError(400, "invalid_grant", 50057, "The user account is disabled or no longer exists.")
    return user


def _authorization_code(
    request: Request, form: dict[str, str], tenant: Tenant, token_endpoints: set[str]
) -> JSONResponse:
    code = form.get("code")
    if not code:
        raise _missing("code")
    client = _authenticate_client(request, form, tenant, token_endpoints)
    pending = _identity_state(tenant).redeem_code(code)
    if pending.client_id != client.app.client_id:
        raise EntraError(400, "invalid_grant", 70000, "The provided authorization code was issued to another client.")
    if form.get("redirect_uri") != pending.redirect_uri:
        raise EntraError(
            400,
            "invalid_grant",
            70000,
            "The redirect_uri does not match the one used to obtain the authorization code.",
        )
    if pending.code_challenge is not None:
        verifier = form.get("code_verifier", "")
        method = pending.code_challenge_method or "plain"
        if not PKCE_VERIFIER.match(verifier) or not _pkce_matches(verifier, pending.code_challenge, method):
            raise EntraError(
                400,
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            )
    user = _signed_in_user(tenant, pending.user_id)
    return _user_token_response(request, form, tenant, client, user, pending.scopes, pending.nonce)


def _refresh_token(request: Request, form: dict[str, str], tenant: Tenant, token_endpoints: set[str]) -> JSONResponse:
    token = form.get("refresh_token")
    if not token:
        raise _missing("refresh_token")
    client = _authenticate_client(request, form, tenant, token_endpoints)
    grant = _identity_state(tenant).refresh_tokens.get(token)
    if grant is None:
        raise EntraError(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
    if grant.expires_at < time.time():
        raise EntraError(400, "invalid_grant", 70008, "The provided authorization code or refresh token has expired.")
    if grant.client_id != client.app.client_id:
        raise EntraError(400, "invalid_grant", 70000, "The refresh token was issued to a different client.")
    scopes = grant.scopes
    if form.get("scope"):
        requested = _parse_user_scopes(tenant, form["scope"])
        # A refresh may switch resource but never gains OIDC scopes (offline_access included) it was not given.
        scopes = _Scopes(requested.oidc & grant.scopes.oidc | {"offline_access"}, requested.resource, requested.names)
    user = _signed_in_user(tenant, grant.user_id)
    return _user_token_response(request, form, tenant, client, user, scopes, None)


@router.post("/{segment}/oauth2/v2.0/token")
async def token(request: Request, segment: str) -> JSONResponse:
    form = await _read_form(request)
    grant_type = form.get("grant_type")
    if not grant_type:
        raise _missing("grant_type")
    tenant = tenant_of(request)
    if segment.lower() in MULTI_TENANT_SEGMENTS:
        if grant_type == "client_credentials":
            raise EntraError(
                400,
                "invalid_request",
                50059,
                "No tenant-identifying information found in either the request or implied by any provided credentials.",
            )
    elif _resolve_tenant(request, segment) is None:
        raise _tenant_not_found(segment)
    # The assertion audience is the token endpoint the client was given: accept every spelling of this one.
    token_endpoints = {
        f"{base}/{name}/oauth2/v2.0/token"
        for base in {public_base_url(request), _request_base_url(request)}
        for name in {tenant.tenant_id, tenant.domain, segment}
    }
    if grant_type == "client_credentials":
        return _client_credentials(request, form, tenant, token_endpoints)
    if grant_type == "authorization_code":
        return _authorization_code(request, form, tenant, token_endpoints)
    if grant_type == "refresh_token":
        return _refresh_token(request, form, tenant, token_endpoints)
    raise EntraError(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")


# Sign-in (authorization endpoint) ----------------------------------------------------------------------

_PAGE_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#1b1b1b}"
    "label,input,button{display:block;width:100%;box-sizing:border-box;margin:.35rem 0}"
    "input{padding:.5rem}button{padding:.6rem;margin-top:1rem}.error{color:#a80000}.muted{color:#555}"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


def _page(title: str, body: str, status: int = 200, *, form_target: str | None = None) -> HTMLResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_PAGE_STYLE}</style></head><body>{body}</body></html>"
    )
    headers = dict(_PAGE_HEADERS)
    if form_target:
        # Browsers apply form-action to the redirect that follows the POST: allow the validated reply origin.
        target = urlsplit(form_target)
        headers["Content-Security-Policy"] += f" {target.scheme}://{target.netloc}"
    return HTMLResponse(document, status_code=status, headers=headers)


def _error_page(aadsts: int, message: str) -> HTMLResponse:
    body = (
        "<h1>Sorry, but we're having trouble signing you in.</h1>"
        f'<p class="error">AADSTS{aadsts}: {html.escape(message)}</p>'
        '<p class="muted">Emulated Microsoft Entra ID</p>'
    )
    return _page("Sign in error", body, status=400)


def _is_loopback(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost", "::1")


def _redirect_allowed(app: AppRegistration, uri: str) -> bool:
    parts = urlsplit(uri)
    if parts.fragment or parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    if uri in app.redirect_uris:
        return True
    return app.allow_loopback_redirects and _is_loopback(uri)


def _with_query(uri: str, params: dict[str, str]) -> str:
    return uri + ("&" if urlsplit(uri).query else "?") + urlencode(params)


@dataclass(frozen=True, slots=True)
class _AuthorizeRequest:
    app: AppRegistration
    redirect_uri: str
    params: dict[str, str]


class _AuthorizeFailure(Exception):
    """Ends an authorization request: an error page or an OAuth error redirect."""

    def __init__(self, response: Response) -> None:
        super().__init__("authorization request failed")
        self.response = response


def _oauth_error_redirect(redirect_uri: str, state: str | None, error: str, aadsts: int, message: str) -> Response:
    params = {"error": error, "error_description": f"AADSTS{aadsts}: {message}"}
    if state:
        params["state"] = state
    return RedirectResponse(_with_query(redirect_uri, params), status_code=302)


def _validate_authorize(tenant: Tenant, params: dict[str, str]) -> tuple[_AuthorizeRequest, _Scopes]:
    """Check an authorization request in OAuth's order: client and redirect first, and never redirect before."""
    client_id = params.get("client_id", "")
    if not client_id:
        raise _AuthorizeFailure(_error_page(900144, "The request must contain the 'client_id' parameter."))
    app = tenant.apps.get(client_id.lower()) or tenant.apps.get(client_id)
    if app is None:
        raise _AuthorizeFailure(_error_page(700016, _app_not_found(client_id, tenant).description))
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri:
        raise _AuthorizeFailure(_error_page(900144, "The request must contain the 'redirect_uri' parameter."))
    if not _redirect_allowed(app, redirect_uri):
        raise _AuthorizeFailure(
            _error_page(
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs "
                f"configured for the application '{app.client_id}'.",
            )
        )
    state = params.get("state")

    def fail(error: str, aadsts: int, message: str) -> _AuthorizeFailure:
        return _AuthorizeFailure(_oauth_error_redirect(redirect_uri, state, error, aadsts, message))

    if params.get("response_type") != "code":
        raise fail("unsupported_response_type", 700054, "Only response_type 'code' is enabled for the application.")
    if params.get("response_mode", "query") != "query":
        raise fail("invalid_request", 900144, "Only response_mode 'query' is supported by the emulator.")
    if not params.get("scope"):
        raise fail("invalid_request", 900144, "The request must contain the 'scope' parameter.")
    try:
        scopes = _parse_user_scopes(tenant, params["scope"])
    except EntraError as exc:
        raise fail(exc.error, exc.aadsts, exc.description) from None
    method = params.get("code_challenge_method")
    challenge = params.get("code_challenge")
    if method is not None and method not in ("plain", "S256"):
        raise fail("invalid_request", 5000541, "The code_challenge_method must be 'plain' or 'S256'.")
    if method is not None and not challenge:
        raise fail("invalid_request", 900144, "The request must contain the 'code_challenge' parameter.")
    if challenge is not None and not 43 <= len(challenge) <= 128:
        raise fail("invalid_request", 50148, "The code_challenge must be 43 to 128 characters long.")
    return _AuthorizeRequest(app, redirect_uri, params), scopes


def _sign_in_form(request: Request, segment: str, auth: _AuthorizeRequest, tenant: Tenant, error: str = "") -> Response:
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(auth.params[name], quote=True)}">'
        for name in AUTHORIZE_PARAMS
        if name in auth.params
    )
    username = auth.params.get("username") or auth.params.get("login_hint", "")
    error_html = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    action = html.escape(f"/{segment}/oauth2/v2.0/authorize", quote=True)
    body = (
        "<h1>Sign in</h1>"
        f'<p class="muted">to {html.escape(auth.app.display_name)} · {html.escape(tenant.domain)} '
        "(emulated Microsoft Entra ID)</p>"
        f"{error_html}"
        f'<form method="post" action="{action}">{hidden}'
        '<label for="username">Email or username</label>'
        f'<input id="username" name="username" type="text" autocomplete="username" required '
        f'value="{html.escape(username, quote=True)}">'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password" required>'
        '<button type="submit">Sign in</button></form>'
    )
    return _page("Sign in to your account", body, form_target=auth.redirect_uri)


def _authorize_params(pairs: list[tuple[str, str]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(name, value)
    return params


@router.get("/{segment}/oauth2/v2.0/authorize")
async def authorize(request: Request, segment: str) -> Response:
    tenant = _resolve_tenant(request, segment) if segment.lower() not in MULTI_TENANT_SEGMENTS else tenant_of(request)
    if tenant is None:
        return _error_page(90002, _tenant_not_found(segment).description)
    params = _authorize_params(list(request.query_params.multi_items()))
    try:
        auth, _ = _validate_authorize(tenant, params)
    except _AuthorizeFailure as failure:
        return failure.response
    return _sign_in_form(request, segment, auth, tenant)


@router.post("/{segment}/oauth2/v2.0/authorize")
async def authorize_submit(request: Request, segment: str) -> Response:
    tenant = _resolve_tenant(request, segment) if segment.lower() not in MULTI_TENANT_SEGMENTS else tenant_of(request)
    if tenant is None:
        return _error_page(90002, _tenant_not_found(segment).description)
    body = await request.body()
    try:
        pairs = parse_qsl(body[:MAX_FORM_BYTES].decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return _error_page(900144, "The sign-in form could not be read.")
    params = _authorize_params(pairs)
    try:
        auth, scopes = _validate_authorize(tenant, params)
    except _AuthorizeFailure as failure:
        return failure.response
    username = params.get("username", "").strip()
    password = params.get("password", "")
    user = tenant.user(username) if username else None
    known_password = user.password if user is not None and user.user_type == "Member" else None
    # Compare against something even for unknown users, so the answer takes as long either way.
    password_ok = hmac.compare_digest(password.encode(), (known_password or "\x00invalid").encode())
    if user is None or known_password is None or not password_ok or not user.account_enabled:
        auth_with_user = _AuthorizeRequest(auth.app, auth.redirect_uri, {**auth.params, "username": username})
        return _sign_in_form(
            request,
            segment,
            auth_with_user,
            tenant,
            error="AADSTS50126: Error validating credentials due to invalid username or password.",
        )
    code = _identity_state(tenant).issue_code(
        _PendingCode(
            client_id=auth.app.client_id,
            user_id=user.id,
            redirect_uri=auth.redirect_uri,
            scopes=scopes,
            nonce=params.get("nonce"),
            code_challenge=params.get("code_challenge"),
            code_challenge_method=params.get("code_challenge_method")
            or ("plain" if params.get("code_challenge") else None),
            expires_at=time.time() + AUTH_CODE_LIFETIME_S,
        )
    )
    result = {"code": code}
    if params.get("state"):
        result["state"] = params["state"]
    return RedirectResponse(_with_query(auth.redirect_uri, result), status_code=302)
