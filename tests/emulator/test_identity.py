"""Entra ID conformance: the real MSAL and azure-identity clients over HTTPS, then the edges in-process."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import msal
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from fastapi import APIRouter, Depends

from emulator.app import create_app
from emulator.auth import Caller, require_roles
from emulator.identity import JWT_BEARER, ensure_app_certificate, generate_client_certificate
from emulator.server import EmulatorServer
from emulator.state import Tenant, User
from emulator.tokens import GRAPH_RESOURCE, SigningKey

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
BASE = "https://login.emulator.test"
REDIRECT_URI = "http://127.0.0.1:8765/callback"
STATE = 'st<&">ate'  # must survive HTML escaping in the form and URL encoding in the redirect


def _split_pem(path: str) -> tuple[str, str]:
    pem = Path(path).read_text()
    start = pem.index("-----BEGIN CERTIFICATE-----")
    return pem[:start], pem[start:]


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def _token_posts(tenant: Tenant) -> list[str]:
    return [r.path for r in tenant.request_log if r.method == "POST" and r.path.endswith("/oauth2/v2.0/token")]


def _msal_app(
    live: EmulatorServer, credential: Any, http_client: Any, **kwargs: Any
) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        kwargs.pop("client_id", live.endpoints.client_id),
        client_credential=credential,
        authority=live.endpoints.authority,
        instance_discovery=kwargs.pop("instance_discovery", False),
        http_client=http_client,
        **kwargs,
    )


@pytest.fixture
def msal_http(live_tls: ssl.SSLContext) -> Iterator[httpx.Client]:
    """MSAL's HTTP client for secrets: httpx with the emulator's CA (immune to REQUESTS_CA_BUNDLE)."""
    with httpx.Client(verify=live_tls, timeout=10) as client:
        yield client


@pytest.fixture
def msal_session(live: EmulatorServer) -> Iterator[requests.Session]:
    """MSAL's HTTP client for certificates. MSAL hands the signed assertion over as bytes: requests form-encodes
    bytes as their content, httpx as their repr ("b'...'"), which Entra (and the emulator) rejects."""
    with requests.Session() as session:
        session.trust_env = False
        session.verify = live.endpoints.ca_bundle
        yield session


def _assert_aad_error(body: dict[str, Any], error: str, code: int) -> None:
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    for key in ("timestamp", "trace_id", "correlation_id"):
        assert body[key]


# Discovery over HTTPS ----------------------------------------------------------------------------------


async def test_openid_configuration_by_id_and_by_domain(live: EmulatorServer, live_tls: ssl.SSLContext, tenant: Tenant):
    base = live.endpoints.base_url
    async with httpx.AsyncClient(verify=live_tls) as client:
        by_id = (await client.get(f"{base}/{tenant.tenant_id}/v2.0/.well-known/openid-configuration")).json()
        by_domain = (await client.get(f"{base}/{tenant.domain}/v2.0/.well-known/openid-configuration")).json()
        unknown = await client.get(f"{base}/nobody.onmicrosoft.com/v2.0/.well-known/openid-configuration")
        jwks = (await client.get(by_id["jwks_uri"])).json()
    assert by_id["issuer"] == f"{base}/{tenant.tenant_id}/v2.0"
    assert by_id["token_endpoint"] == f"{base}/{tenant.tenant_id}/oauth2/v2.0/token"
    assert by_id["authorization_endpoint"] == f"{base}/{tenant.tenant_id}/oauth2/v2.0/authorize"
    assert by_id["device_authorization_endpoint"].startswith(f"{base}/{tenant.tenant_id}/")
    assert by_domain == by_id  # Entra names the tenant by id whichever way it was asked
    assert unknown.status_code == 400
    _assert_aad_error(unknown.json(), "invalid_tenant", 90002)
    assert [k["kid"] for k in jwks["keys"]] == [tenant.keys.current.kid]
    assert jwks["keys"][0]["issuer"] == by_id["issuer"]


# MSAL --------------------------------------------------------------------------------------------------


def test_msal_client_secret_second_call_served_from_cache(live: EmulatorServer, msal_http: httpx.Client):
    tenant = live.tenant
    app = _msal_app(live, live.endpoints.client_secret, msal_http)
    first = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    second = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert first["token_type"] == "Bearer"
    assert first["token_source"] == "identity_provider"
    assert second["token_source"] == "cache"
    assert second["access_token"] == first["access_token"]
    assert len(_token_posts(tenant)) == 1
    claims = _claims(first["access_token"])
    daemon = tenant.apps[tenant.extra["steward_app_id"]]
    assert claims["aud"] == GRAPH_RESOURCE
    assert claims["appid"] == daemon.client_id
    assert claims["tid"] == tenant.tenant_id
    assert claims["idtyp"] == "app"
    assert set(claims["roles"]) == daemon.graph_roles


def test_msal_with_instance_discovery_endpoint(live: EmulatorServer, msal_http: httpx.Client):
    discovery = f"{live.endpoints.base_url}/common/discovery/instance"
    app = _msal_app(live, live.endpoints.client_secret, msal_http, instance_discovery=discovery)
    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert "access_token" in result, result.get("error_description")
    paths = [r.path for r in live.tenant.request_log]
    assert paths[0] == "/common/discovery/instance"


@pytest.mark.parametrize("signing", ["PS256 public_certificate", "RS256 thumbprint"])
def test_msal_certificate_credential(live: EmulatorServer, msal_session: requests.Session, signing: str):
    key_pem, cert_pem = _split_pem(live.endpoints.client_certificate)
    if signing.startswith("PS256"):
        credential = {"private_key": key_pem, "public_certificate": cert_pem}
    else:
        certificate = x509.load_pem_x509_certificate(cert_pem.encode())
        credential = {"private_key": key_pem, "thumbprint": certificate.fingerprint(hashes.SHA1()).hex()}  # noqa: S303
    app = _msal_app(live, credential, msal_session)
    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert "access_token" in result, result.get("error_description")
    claims = _claims(result["access_token"])
    assert claims["appidacr"] == "2"  # certificate, not secret
    assert set(claims["roles"]) == live.tenant.apps[live.endpoints.client_id].graph_roles


def test_msal_bad_secret_is_invalid_client(live: EmulatorServer, msal_http: httpx.Client):
    app = _msal_app(live, "not-the-secret", msal_http)
    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    assert "access_token" not in result


def test_msal_assertion_signed_by_unknown_key_is_invalid_client(live: EmulatorServer, msal_session: requests.Session):
    key_pem, cert_pem = generate_client_certificate("not registered")
    credential = {"private_key": key_pem.decode(), "public_certificate": cert_pem.decode()}
    app = _msal_app(live, credential, msal_session)
    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [700027]


def test_msal_unknown_client_is_unauthorized_client(live: EmulatorServer, msal_http: httpx.Client):
    app = _msal_app(live, "whatever", msal_http, client_id=str(uuid.uuid4()))
    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert result["error"] == "unauthorized_client"
    assert result["error_codes"] == [700016]


@pytest.mark.parametrize(
    ("scopes", "error", "code"),
    [
        (["https://graph.microsoft.com/User.Read"], "invalid_scope", 1002012),
        ([GRAPH_SCOPE, "api://other/.default"], "invalid_scope", 70011),
        (["https://unknown.example/.default"], "invalid_resource", 500011),
    ],
)
def test_msal_bad_scope(live: EmulatorServer, msal_http: httpx.Client, scopes: list[str], error: str, code: int):
    app = _msal_app(live, live.endpoints.client_secret, msal_http)
    result = app.acquire_token_for_client(scopes=scopes)
    assert result["error"] == error
    assert result["error_codes"] == [code]


# azure-identity ----------------------------------------------------------------------------------------


async def test_azure_identity_aio_secret_and_certificate(live: EmulatorServer):
    from azure.identity.aio import CertificateCredential, ClientSecretCredential

    endpoints = live.endpoints
    common = {"authority": endpoints.base_url, "connection_verify": endpoints.ca_bundle}
    async with ClientSecretCredential(endpoints.tenant_id, endpoints.client_id, endpoints.client_secret, **common) as c:
        by_secret = await c.get_token(GRAPH_SCOPE)
        again = await c.get_token(GRAPH_SCOPE)
    async with CertificateCredential(
        endpoints.tenant_id, endpoints.client_id, certificate_path=endpoints.client_certificate, **common
    ) as c:
        by_certificate = await c.get_token(GRAPH_SCOPE)
    assert again.token == by_secret.token  # cached
    assert len(_token_posts(live.tenant)) == 2
    assert by_secret.expires_on > time.time() + 3000
    assert _claims(by_secret.token)["appidacr"] == "1"
    assert _claims(by_certificate.token)["appidacr"] == "2"
    assert set(_claims(by_certificate.token)["roles"]) == live.tenant.apps[endpoints.client_id].graph_roles


async def test_azure_identity_aio_bad_secret_raises(live: EmulatorServer):
    from azure.identity.aio import ClientSecretCredential

    endpoints = live.endpoints
    credential = ClientSecretCredential(
        endpoints.tenant_id,
        endpoints.client_id,
        "wrong",
        authority=endpoints.base_url,
        connection_verify=endpoints.ca_bundle,
    )
    async with credential:
        with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
            await credential.get_token(GRAPH_SCOPE)


def test_azure_identity_sync_secret(live: EmulatorServer):
    from azure.identity import ClientSecretCredential

    endpoints = live.endpoints
    credential = ClientSecretCredential(
        endpoints.tenant_id,
        endpoints.client_id,
        endpoints.client_secret,
        authority=endpoints.base_url,
        connection_verify=endpoints.ca_bundle,
        disable_instance_discovery=True,
    )
    first = credential.get_token(GRAPH_SCOPE)
    second = credential.get_token(GRAPH_SCOPE)
    assert first.token == second.token
    assert len(_token_posts(live.tenant)) == 1
    assert _claims(first.token)["appid"] == endpoints.client_id


# The token endpoint in-process: malformed requests and assertion checks ----------------------------------


@pytest.fixture
async def login(tenant: Tenant) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(tenant)
    app.state.base_url = BASE
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield client


def _token_url(tenant: Tenant) -> str:
    return f"/{tenant.tenant_id}/oauth2/v2.0/token"


def _daemon(tenant: Tenant) -> Any:
    return tenant.apps[tenant.extra["steward_app_id"]]


async def test_http_basic_client_secret(login: httpx.AsyncClient, tenant: Tenant):
    daemon = _daemon(tenant)
    response = await login.post(
        _token_url(tenant),
        data={"grant_type": "client_credentials", "scope": GRAPH_SCOPE},
        auth=(daemon.client_id, daemon.secrets[0]),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == body["ext_expires_in"] == 3599
    assert response.headers["cache-control"] == "no-store"


async def test_msal_extras_are_tolerated(login: httpx.AsyncClient, tenant: Tenant):
    daemon = _daemon(tenant)
    form = {
        "grant_type": "client_credentials",
        "scope": "00000003-0000-0000-c000-000000000000/.default",  # Graph by its app id
        "client_id": daemon.client_id,
        "client_secret": daemon.secrets[0],
        "client_info": "1",
        "claims": '{"access_token":{"xms_cc":{"values":["CP1"]}}}',
    }
    headers = {"x-client-sku": "MSAL.Python", "x-client-ver": "1.39.0", "x-ms-lib-capability": "retry-after, h429"}
    response = await login.post(f"/{tenant.domain}/oauth2/v2.0/token", data=form, headers=headers)
    assert response.status_code == 200
    assert _claims(response.json()["access_token"])["aud"] == GRAPH_RESOURCE


@pytest.mark.parametrize(
    ("content", "content_type", "status", "error", "code"),
    [
        (b'{"grant_type": "client_credentials"}', "application/json", 400, "invalid_request", 900144),
        (b"scope=x", "application/x-www-form-urlencoded", 400, "invalid_request", 900144),
        (b"grant_type=client_credentials&grant_type=password", "application/x-www-form-urlencoded", 400,
         "invalid_request", 9000411),
        (b"grant_type=password&client_id=x", "application/x-www-form-urlencoded", 400, "unsupported_grant_type",
         70003),
        (b"grant_type=client_credentials&scope=a", "application/x-www-form-urlencoded", 400, "invalid_request",
         900144),
        (b"\xff\xfe=\x00", "application/x-www-form-urlencoded", 400, "invalid_request", 900144),
    ],
)  # fmt: skip
async def test_malformed_token_requests(
    login: httpx.AsyncClient, tenant: Tenant, content: bytes, content_type: str, status: int, error: str, code: int
):
    response = await login.post(_token_url(tenant), content=content, headers={"content-type": content_type})
    assert response.status_code == status
    _assert_aad_error(response.json(), error, code)


async def test_token_errors_for_tenant_and_credentials(login: httpx.AsyncClient, tenant: Tenant):
    daemon = _daemon(tenant)
    base = {"grant_type": "client_credentials", "scope": GRAPH_SCOPE, "client_id": daemon.client_id}
    unknown_tenant = await login.post("/other.onmicrosoft.com/oauth2/v2.0/token", data=base)
    no_credential = await login.post(_token_url(tenant), data=base)
    common = await login.post("/common/oauth2/v2.0/token", data={**base, "client_secret": daemon.secrets[0]})
    no_scope = await login.post(
        _token_url(tenant), data={k: v for k, v in base.items() if k != "scope"} | {"client_secret": daemon.secrets[0]}
    )
    assert unknown_tenant.status_code == 400
    _assert_aad_error(unknown_tenant.json(), "invalid_request", 90002)
    assert no_credential.status_code == 401
    _assert_aad_error(no_credential.json(), "invalid_client", 7000218)
    _assert_aad_error(common.json(), "invalid_request", 50059)
    _assert_aad_error(no_scope.json(), "invalid_request", 900144)


def _assertion(
    tenant: Tenant,
    *,
    key_pem: bytes,
    cert_pem: bytes,
    algorithm: str = "PS256",
    audience: str | None = None,
    issuer: str | None = None,
    expires_in: int = 600,
    header_thumbprint: str = "x5t#S256",
    pad: bool = False,
) -> str:
    client_id = _daemon(tenant).client_id
    certificate = x509.load_pem_x509_certificate(cert_pem)
    digest = certificate.fingerprint(hashes.SHA256() if header_thumbprint == "x5t#S256" else hashes.SHA1())  # noqa: S303
    thumbprint = base64.urlsafe_b64encode(digest).decode()
    now = int(time.time())
    claims = {
        "aud": audience or f"{BASE}/{tenant.tenant_id}/oauth2/v2.0/token",
        "iss": issuer or client_id,
        "sub": issuer or client_id,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "iat": now,
        "exp": now + expires_in,
    }
    key = serialization.load_pem_private_key(key_pem, password=None)
    headers = {header_thumbprint: thumbprint if pad else thumbprint.rstrip("=")}
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)  # type: ignore[arg-type]


@pytest.fixture
def registered_certificate(tenant: Tenant) -> tuple[bytes, bytes]:
    pem = ensure_app_certificate(tenant, _daemon(tenant).client_id)
    start = pem.index(b"-----BEGIN CERTIFICATE-----")
    return pem[:start], pem[start:]


@pytest.mark.parametrize(
    ("overrides", "status", "error", "code"),
    [
        ({}, 200, None, None),
        ({"algorithm": "RS256", "header_thumbprint": "x5t", "pad": True}, 200, None, None),
        ({"audience": f"{BASE}/{uuid.uuid4()}/oauth2/v2.0/token"}, 401, "invalid_client", 700023),
        ({"expires_in": -3600}, 401, "invalid_client", 700024),
        ({"issuer": str(uuid.uuid4())}, 401, "invalid_client", 700021),
    ],
)
async def test_client_assertion_checks(
    login: httpx.AsyncClient,
    tenant: Tenant,
    registered_certificate: tuple[bytes, bytes],
    overrides: dict[str, Any],
    status: int,
    error: str | None,
    code: int | None,
):
    key_pem, cert_pem = registered_certificate
    assertion = _assertion(tenant, key_pem=key_pem, cert_pem=cert_pem, **overrides)
    form = {
        "grant_type": "client_credentials",
        "scope": GRAPH_SCOPE,
        "client_id": _daemon(tenant).client_id,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
    }
    response = await login.post(_token_url(tenant), data=form)
    assert response.status_code == status
    if error is None:
        assert _claims(response.json()["access_token"])["appidacr"] == "2"
    else:
        assert code is not None
        _assert_aad_error(response.json(), error, code)


async def test_client_assertion_with_forged_signature(
    login: httpx.AsyncClient, tenant: Tenant, registered_certificate: tuple[bytes, bytes]
):
    key_pem, cert_pem = registered_certificate
    other_key, _ = generate_client_certificate("impostor")
    # The header names the registered certificate, but another key signed it.
    assertion = _assertion(tenant, key_pem=other_key, cert_pem=cert_pem)
    form = {
        "grant_type": "client_credentials",
        "scope": GRAPH_SCOPE,
        "client_id": _daemon(tenant).client_id,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
    }
    response = await login.post(_token_url(tenant), data=form)
    assert response.status_code == 401
    _assert_aad_error(response.json(), "invalid_client", 700027)


# Graph authorisation with issued tokens ----------------------------------------------------------------


@pytest.fixture
async def graph_with_probe(tenant: Tenant) -> AsyncIterator[httpx.AsyncClient]:
    """The app plus one route guarded like a mail route, so permissions are tested whatever routes exist."""
    probe = APIRouter()

    @probe.get("/_probe/mail")
    async def mail_probe(caller: Caller = Depends(require_roles("Mail.Read", "Mail.ReadWrite", workload="mail"))):
        return {"appId": caller.client_id}

    app = create_app(tenant)
    app.state.base_url = BASE
    app.include_router(probe, prefix="/v1.0")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield client


async def _app_token(client: httpx.AsyncClient, tenant: Tenant, client_id: str) -> str:
    app = tenant.apps[client_id]
    form = {"grant_type": "client_credentials", "scope": GRAPH_SCOPE, "client_id": app.client_id}
    response = await client.post(_token_url(tenant), data=form | {"client_secret": app.secrets[0]})
    assert response.status_code == 200
    return str(response.json()["access_token"])


async def test_reader_app_is_forbidden_on_mail(graph_with_probe: httpx.AsyncClient, tenant: Tenant):
    reader = await _app_token(graph_with_probe, tenant, tenant.extra["reader_app_id"])
    daemon = await _app_token(graph_with_probe, tenant, tenant.extra["steward_app_id"])
    denied = await graph_with_probe.get("/v1.0/_probe/mail", headers={"Authorization": f"Bearer {reader}"})
    allowed = await graph_with_probe.get("/v1.0/_probe/mail", headers={"Authorization": f"Bearer {daemon}"})
    assert _claims(reader)["roles"] == ["User.Read.All"]
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "ErrorAccessDenied"
    assert allowed.status_code == 200
    assert allowed.json() == {"appId": tenant.extra["steward_app_id"]}


async def test_reader_app_token_is_forbidden_on_the_mail_route_over_https(
    live: EmulatorServer, live_tls: ssl.SSLContext
):
    from azure.identity.aio import ClientSecretCredential

    tenant = live.tenant
    reader = tenant.apps[tenant.extra["reader_app_id"]]
    endpoints = live.endpoints
    tokens = {}
    for app_id, secret in ((reader.client_id, reader.secrets[0]), (endpoints.client_id, endpoints.client_secret)):
        credential = ClientSecretCredential(
            endpoints.tenant_id, app_id, secret, authority=endpoints.base_url, connection_verify=endpoints.ca_bundle
        )
        async with credential:
            tokens[app_id] = (await credential.get_token(GRAPH_SCOPE)).token
    messages = f"{endpoints.graph_url}/users/{tenant.staff[0].id}/messages?$top=1"
    async with httpx.AsyncClient(verify=live_tls) as client:
        denied = await client.get(messages, headers={"Authorization": f"Bearer {tokens[reader.client_id]}"})
        allowed = await client.get(messages, headers={"Authorization": f"Bearer {tokens[endpoints.client_id]}"})
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "ErrorAccessDenied"
    assert allowed.status_code == 200


async def test_expired_and_forged_tokens_are_rejected(
    graph_with_probe: httpx.AsyncClient, tenant: Tenant, mint: Callable[..., str]
):
    past = int(time.time()) - 7200
    expired = mint(iat=past, nbf=past, exp=past + 600)
    impostor = SigningKey.generate()
    forged = jwt.encode(
        _claims(mint()), impostor.private_key, algorithm="RS256", headers={"kid": tenant.keys.current.kid}
    )
    for token, message in ((expired, "expired"), (forged, "validation failure"), ("not-a-jwt", "validation failure")):
        response = await graph_with_probe.get("/v1.0/_probe/mail", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["code"] == "InvalidAuthenticationToken"
        assert message in error["message"]
        assert error["innerError"]["request-id"]


# Authorization code + PKCE -----------------------------------------------------------------------------


def _pkce(method: str = "S256") -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    if method == "plain":
        return verifier, verifier
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def _web(tenant: Tenant) -> Any:
    return tenant.apps[tenant.extra["web_app_id"]]


def _approver(tenant: Tenant) -> User:
    return next(u for u in tenant.staff if "Steward.Approver" in u.steward_roles)


async def _sign_in(
    client: httpx.AsyncClient,
    tenant: Tenant,
    *,
    challenge: str,
    method: str = "S256",
    password: str | None = None,
    scope: str | None = None,
) -> httpx.Response:
    web = _web(tenant)
    params = {
        "client_id": web.client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": scope or f"openid profile offline_access api://{web.client_id}/.default",
        "state": STATE,
        "nonce": "n-0S6_WzA2Mj",
        "code_challenge": challenge,
        "code_challenge_method": method,
    }
    page = await client.get(f"/{tenant.tenant_id}/oauth2/v2.0/authorize", params=params)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    # Every forwarded parameter is a hidden field, escaped; the raw state never appears unescaped.
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    assert hidden["state"] == html.escape(STATE, quote=True)
    assert STATE not in page.text
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert action is not None
    user = _approver(tenant)
    form = {**params, "username": user.user_principal_name, "password": password or str(user.password)}
    return await client.post(action.group(1), data=form)


def _code_from(redirect: httpx.Response) -> dict[str, list[str]]:
    assert redirect.status_code == 302
    location = redirect.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    return parse_qs(urlsplit(location).query)


async def _redeem(client: httpx.AsyncClient, tenant: Tenant, code: str, verifier: str) -> httpx.Response:
    web = _web(tenant)
    form = {
        "grant_type": "authorization_code",
        "client_id": web.client_id,
        "client_secret": web.secrets[0],
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        "client_info": "1",
    }
    return await client.post(_token_url(tenant), data=form)


async def test_authorization_code_with_pkce_issues_tokens_steward_can_validate(
    live: EmulatorServer, live_tls: ssl.SSLContext
):
    tenant = live.tenant
    verifier, challenge = _pkce()
    async with httpx.AsyncClient(verify=live_tls, base_url=live.endpoints.base_url) as client:
        query = _code_from(await _sign_in(client, tenant, challenge=challenge))
        assert query["state"] == [STATE]
        tokens = await _redeem(client, tenant, query["code"][0], verifier)
        assert tokens.status_code == 200, tokens.text
        body = tokens.json()
        discovery = (await client.get(f"/{tenant.tenant_id}/v2.0/.well-known/openid-configuration")).json()
        jwks = (await client.get(discovery["jwks_uri"])).json()
        refreshed = await client.post(
            _token_url(tenant),
            data={
                "grant_type": "refresh_token",
                "refresh_token": body["refresh_token"],
                "client_id": _web(tenant).client_id,
                "client_secret": _web(tenant).secrets[0],
                "scope": f"openid offline_access api://{_web(tenant).client_id}/.default",
            },
        )
    web = _web(tenant)
    user = _approver(tenant)
    keys = {k["kid"]: jwt.PyJWK(k).key for k in jwks["keys"]}

    def validate(token: str) -> dict[str, Any]:
        # What Steward's API does: signature from the JWKS, issuer from discovery, audience = its client id.
        kid = jwt.get_unverified_header(token)["kid"]
        return jwt.decode(token, keys[kid], algorithms=["RS256"], audience=web.client_id, issuer=discovery["issuer"])

    access = validate(body["access_token"])
    assert access["roles"] == sorted(user.steward_roles)
    assert access["scp"] == "access_as_user"
    assert access["oid"] == user.id
    assert access["upn"] == access["preferred_username"] == user.user_principal_name
    assert access["tid"] == tenant.tenant_id
    identity = validate(body["id_token"])
    assert identity["nonce"] == "n-0S6_WzA2Mj"
    assert identity["name"] == user.display_name
    assert identity["preferred_username"] == user.user_principal_name
    assert body["client_info"]
    assert refreshed.status_code == 200, refreshed.text
    assert validate(refreshed.json()["access_token"])["oid"] == user.id


async def test_plain_pkce_and_openid_only_scope(login: httpx.AsyncClient, tenant: Tenant):
    verifier, challenge = _pkce("plain")
    query = _code_from(await _sign_in(login, tenant, challenge=challenge, method="plain", scope="openid profile"))
    response = await _redeem(login, tenant, query["code"][0], verifier)
    assert response.status_code == 200
    body = response.json()
    assert "refresh_token" not in body  # no offline_access, no refresh token (as Entra)
    assert _claims(body["access_token"])["aud"] == _web(tenant).client_id


async def test_wrong_verifier_and_code_reuse_are_invalid_grant(login: httpx.AsyncClient, tenant: Tenant):
    verifier, challenge = _pkce()
    first = _code_from(await _sign_in(login, tenant, challenge=challenge))["code"][0]
    wrong = await _redeem(login, tenant, first, _pkce()[0])
    assert wrong.status_code == 400
    _assert_aad_error(wrong.json(), "invalid_grant", 501481)

    second = _code_from(await _sign_in(login, tenant, challenge=challenge))["code"][0]
    assert (await _redeem(login, tenant, second, verifier)).status_code == 200
    reused = await _redeem(login, tenant, second, verifier)
    assert reused.status_code == 400
    _assert_aad_error(reused.json(), "invalid_grant", 54005)
    garbage = await _redeem(login, tenant, "not-a-code", verifier)
    _assert_aad_error(garbage.json(), "invalid_grant", 9002313)


async def test_wrong_password_shows_the_form_again(login: httpx.AsyncClient, tenant: Tenant):
    response = await _sign_in(login, tenant, challenge=_pkce()[1], password="wrong")
    assert response.status_code == 200
    assert "location" not in response.headers
    assert "AADSTS50126" in response.text
    assert 'type="password"' in response.text


async def test_authorize_never_redirects_to_an_unregistered_uri(login: httpx.AsyncClient, tenant: Tenant):
    web = _web(tenant)
    common = {"response_type": "code", "scope": "openid", "state": "s"}
    bad_redirect = await login.get(
        f"/{tenant.tenant_id}/oauth2/v2.0/authorize",
        params={**common, "client_id": web.client_id, "redirect_uri": "https://evil.example/cb"},
    )
    # The daemon app allows no loopback redirects and registers none.
    daemon_loopback = await login.get(
        f"/{tenant.tenant_id}/oauth2/v2.0/authorize",
        params={**common, "client_id": _daemon(tenant).client_id, "redirect_uri": REDIRECT_URI},
    )
    unknown_client = await login.get(
        f"/{tenant.tenant_id}/oauth2/v2.0/authorize",
        params={**common, "client_id": str(uuid.uuid4()), "redirect_uri": REDIRECT_URI},
    )
    for response, code in ((bad_redirect, "AADSTS50011"), (daemon_loopback, "AADSTS50011"), (unknown_client, "700016")):
        assert response.status_code == 400
        assert "location" not in response.headers
        assert code in response.text


async def test_authorize_errors_are_redirected_with_state(login: httpx.AsyncClient, tenant: Tenant):
    web = _web(tenant)
    base = {"client_id": web.client_id, "redirect_uri": REDIRECT_URI, "state": "xyz"}
    cases = [
        ({"response_type": "token", "scope": "openid"}, "unsupported_response_type"),
        ({"response_type": "code", "scope": "https://unknown.example/Read"}, "invalid_resource"),
        ({"response_type": "code", "scope": f"api://{web.client_id}/Nope.Write"}, "invalid_scope"),
        ({"response_type": "code", "scope": "openid", "code_challenge": "x" * 43, "code_challenge_method": "S512"},
         "invalid_request"),
    ]  # fmt: skip
    for extra, error in cases:
        response = await login.get(f"/{tenant.tenant_id}/oauth2/v2.0/authorize", params={**base, **extra})
        query = _code_from(response)
        assert query["error"] == [error]
        assert query["state"] == ["xyz"]
        assert query["error_description"][0].startswith("AADSTS")


async def test_web_app_client_credentials_for_its_own_api(login: httpx.AsyncClient, tenant: Tenant):
    web = _web(tenant)
    form = {
        "grant_type": "client_credentials",
        "scope": f"api://{web.client_id}/.default",
        "client_id": web.client_id,
        "client_secret": web.secrets[0],
    }
    response = await login.post(_token_url(tenant), data=form)
    assert response.status_code == 200
    claims = _claims(response.json()["access_token"])
    assert claims["aud"] == web.client_id
    assert claims["iss"] == f"{BASE}/{tenant.tenant_id}/v2.0"
    assert claims["idtyp"] == "app"
