"""Bearer tokens for Steward's API, from the local tenant's real sign-in (authorization code + PKCE) and forged."""

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.auth.dependencies import ADMIN, APPROVER
from emulator.server import EmulatorServer
from emulator.state import Tenant, User
from tests.app.apps import RunningApp, app_settings
from tests.app.auth.conftest import staff_with_roles
from tests.app.auth.flows import client_credentials, sign_in


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assert_rejected(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == {"error": "InvalidBearerToken", "detail": reason}
    assert response.headers["www-authenticate"] == f'Bearer error="invalid_token", error_description="{reason}"'


class TestSignedInStaff:
    async def test_an_admin_signed_in_with_pkce_is_recognised(
        self, api: httpx.AsyncClient, emulator: EmulatorServer, admin: User
    ) -> None:
        assert admin.password is not None
        token = await sign_in(emulator.endpoints, admin.user_principal_name, admin.password)
        response = await api.get("/v1/auth/me", headers=bearer(token))
        assert response.status_code == 200, response.text
        assert response.json() == {
            "subject": admin.id,
            "name": admin.user_principal_name,
            "roles": [ADMIN],
            "is_service": False,
        }
        assert (await api.get("/v1/probe/admin", headers=bearer(token))).status_code == 200

    async def test_a_missing_role_is_403_not_401(
        self, api: httpx.AsyncClient, emulator: EmulatorServer, tenant: Tenant, nobody: User
    ) -> None:
        approver = staff_with_roles(tenant, {APPROVER})
        assert approver.password is not None
        assert nobody.password is not None
        approver_token = await sign_in(emulator.endpoints, approver.user_principal_name, approver.password)
        nobody_token = await sign_in(emulator.endpoints, nobody.user_principal_name, nobody.password)

        refused = await api.get("/v1/probe/admin", headers=bearer(approver_token))
        assert refused.status_code == 403
        assert refused.json() == {"error": "Forbidden", "detail": "requires one of the roles: Steward.Admin"}
        assert "www-authenticate" not in refused.headers
        assert (await api.get("/v1/probe/approve", headers=bearer(approver_token))).status_code == 200
        # A valid token with no Steward role: known, but allowed nothing that needs a role.
        assert (await api.get("/v1/auth/me", headers=bearer(nobody_token))).json()["roles"] == []
        assert (await api.get("/v1/probe/approve", headers=bearer(nobody_token))).status_code == 403

    async def test_an_app_token_for_the_api_is_a_service_principal(
        self, api: httpx.AsyncClient, emulator: EmulatorServer
    ) -> None:
        token = await client_credentials(emulator.endpoints, f"api://{emulator.endpoints.web_client_id}/.default")
        response = await api.get("/v1/auth/me", headers=bearer(token))
        assert response.status_code == 200, response.text
        assert response.json()["is_service"] is True
        assert (await api.get("/v1/probe/admin", headers=bearer(token))).status_code == 403


class TestRefusedTokens:
    async def test_no_token_is_401_with_a_bare_challenge(self, api: httpx.AsyncClient) -> None:
        response = await api.get("/v1/auth/me")
        assert response.status_code == 401
        assert response.json() == {"error": "InvalidBearerToken", "detail": "a bearer token is required"}
        assert response.headers["www-authenticate"] == "Bearer"

    @pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "token abc"])
    async def test_a_malformed_authorization_header_is_401(self, api: httpx.AsyncClient, header: str) -> None:
        response = await api.get("/v1/auth/me", headers={"Authorization": header})
        assert_rejected(response, "the Authorization header must be 'Bearer <token>'")

    async def test_a_graph_token_is_not_for_this_api(self, api: httpx.AsyncClient, emulator: EmulatorServer) -> None:
        token = await client_credentials(emulator.endpoints, "https://graph.microsoft.com/.default")
        assert_rejected(await api.get("/v1/auth/me", headers=bearer(token)), "the token was not issued by this tenant")

    async def test_a_tampered_payload_fails_the_signature(
        self, api: httpx.AsyncClient, emulator: EmulatorServer, nobody: User
    ) -> None:
        assert nobody.password is not None
        token = await sign_in(emulator.endpoints, nobody.user_principal_name, nobody.password)
        header, payload, signature = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["roles"] = [ADMIN]  # privilege escalation attempt
        forged = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
        assert_rejected(await api.get("/v1/probe/admin", headers=bearer(forged)), "the token signature is invalid")


def _user_claims(tenant: Tenant, emulator: EmulatorServer, user: User, **overrides: Any) -> dict[str, Any]:
    """The claims the emulator puts in a user's access token for Steward's API (emulator/identity.py)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": emulator.endpoints.web_client_id,
        "iss": f"{emulator.endpoints.base_url}/{tenant.tenant_id}/v2.0",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "oid": user.id,
        "tid": tenant.tenant_id,
        "sub": b64url(hashlib.sha256(user.id.encode()).digest()),
        "preferred_username": user.user_principal_name,
        "scp": "access_as_user",
        "roles": sorted(user.steward_roles),
        "ver": "2.0",
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def _stranger_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class TestForgedTokens:
    @pytest.mark.parametrize(
        ("overrides", "reason"),
        [
            ({"exp": int(time.time()) - 600, "iat": int(time.time()) - 4200}, "the token has expired"),
            ({"nbf": int(time.time()) + 900}, "the token is not valid yet"),
            ({"aud": "https://graph.microsoft.com"}, "the token is not meant for this API"),
            (
                {"iss": "https://login.microsoftonline.com/another-tenant/v2.0"},
                "the token was not issued by this tenant",
            ),
            ({"tid": str(uuid.uuid4())}, "the token was not issued by this tenant"),
            ({"oid": None}, "the token lacks the 'oid' claim"),
            ({"exp": None}, "the token lacks the 'exp' claim"),
        ],
        ids=["expired", "not-yet-valid", "wrong-audience", "wrong-issuer", "other-tenant", "no-oid", "no-exp"],
    )
    async def test_tenant_signed_but_wrong_claims(
        self,
        api: httpx.AsyncClient,
        tenant: Tenant,
        emulator: EmulatorServer,
        admin: User,
        overrides: dict[str, Any],
        reason: str,
    ) -> None:
        token = tenant.keys.sign(_user_claims(tenant, emulator, admin, **overrides))
        assert_rejected(await api.get("/v1/auth/me", headers=bearer(token)), reason)

    async def test_the_leeway_is_small(
        self, api: httpx.AsyncClient, tenant: Tenant, emulator: EmulatorServer, admin: User
    ) -> None:
        just_expired = tenant.keys.sign(_user_claims(tenant, emulator, admin, exp=int(time.time()) - 30))
        assert (await api.get("/v1/auth/me", headers=bearer(just_expired))).status_code == 200
        long_expired = tenant.keys.sign(_user_claims(tenant, emulator, admin, exp=int(time.time()) - 120))
        assert_rejected(await api.get("/v1/auth/me", headers=bearer(long_expired)), "the token has expired")

    async def test_a_foreign_key_under_the_tenant_kid_fails_the_signature(
        self, api: httpx.AsyncClient, tenant: Tenant, emulator: EmulatorServer, admin: User
    ) -> None:
        claims = _user_claims(tenant, emulator, admin)
        forged = jwt.encode(claims, _stranger_key(), algorithm="RS256", headers={"kid": tenant.keys.current.kid})
        assert_rejected(await api.get("/v1/auth/me", headers=bearer(forged)), "the token signature is invalid")

    async def test_an_unknown_kid_is_refused(
        self, api: httpx.AsyncClient, tenant: Tenant, emulator: EmulatorServer, admin: User
    ) -> None:
        claims = _user_claims(tenant, emulator, admin)
        forged = jwt.encode(claims, _stranger_key(), algorithm="RS256", headers={"kid": "made-up-kid"})
        assert_rejected(await api.get("/v1/auth/me", headers=bearer(forged)), "the token is signed with an unknown key")

    async def test_alg_none_and_hmac_with_the_public_key_are_refused(
        self, api: httpx.AsyncClient, tenant: Tenant, emulator: EmulatorServer, admin: User
    ) -> None:
        claims = _user_claims(tenant, emulator, admin)
        payload = b64url(json.dumps(claims).encode())
        kid = tenant.keys.current.kid
        unsigned = f"{b64url(json.dumps({'alg': 'none', 'kid': kid}).encode())}.{payload}."
        public_pem = tenant.keys.current.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        signing_input = f"{b64url(json.dumps({'alg': 'HS256', 'kid': kid}).encode())}.{payload}"
        confused = f"{signing_input}.{b64url(hmac.new(public_pem, signing_input.encode(), 'sha256').digest())}"
        for token in (unsigned, confused):
            assert_rejected(await api.get("/v1/auth/me", headers=bearer(token)), "the token must be signed with RS256")

    async def test_garbage_is_malformed(self, api: httpx.AsyncClient) -> None:
        assert_rejected(await api.get("/v1/auth/me", headers=bearer("not.a.jwt")), "the token is malformed")


class TestSigningKeys:
    async def test_a_rotated_key_is_fetched_and_old_tokens_still_verify(
        self, api: httpx.AsyncClient, emulator: EmulatorServer, tenant: Tenant, admin: User
    ) -> None:
        assert admin.password is not None
        endpoints = emulator.endpoints
        before = await sign_in(endpoints, admin.user_principal_name, admin.password)
        assert (await api.get("/v1/auth/me", headers=bearer(before))).status_code == 200  # keys now cached

        async with httpx.AsyncClient(verify=endpoints.ca_bundle) as control:
            rotated = (await control.post(f"{endpoints.control_url}/keys/rotate")).json()
        after = await sign_in(endpoints, admin.user_principal_name, admin.password)
        assert jwt.get_unverified_header(after)["kid"] == rotated["kid"] != jwt.get_unverified_header(before)["kid"]

        assert (await api.get("/v1/auth/me", headers=bearer(after))).status_code == 200
        assert (await api.get("/v1/auth/me", headers=bearer(before))).status_code == 200

    async def test_made_up_kids_cannot_flood_the_identity_provider(
        self, api: httpx.AsyncClient, emulator: EmulatorServer, tenant: Tenant, admin: User
    ) -> None:
        endpoints = emulator.endpoints
        keys_path = f"/{tenant.tenant_id}/discovery/v2.0/keys"
        async with httpx.AsyncClient(verify=endpoints.ca_bundle, base_url=endpoints.control_url) as control:
            assert (await control.delete("/requests")).status_code == 204
            claims = _user_claims(tenant, emulator, admin)
            for attempt in range(12):
                forged = jwt.encode(claims, _stranger_key(), algorithm="RS256", headers={"kid": f"kid-{attempt}"})
                response = await api.get("/v1/auth/me", headers=bearer(forged))
                assert response.status_code == 401
            fetched = (await control.get("/requests", params={"path_prefix": keys_path})).json()["value"]
        # One fetch to fill the cache, then at most three unknown-kid refreshes per five minutes.
        assert len(fetched) == 4

    async def test_an_unreachable_identity_provider_is_503_not_401(
        self, tenant: Tenant, emulator: EmulatorServer, admin: User
    ) -> None:
        settings = app_settings(
            tenant_id=tenant.tenant_id,
            authority_host="https://127.0.0.1:1",  # nothing listens there
            api_audience=[emulator.endpoints.web_client_id],
            http_timeout_s=5,
        )
        token = tenant.keys.sign(
            _user_claims(tenant, emulator, admin, iss=f"https://127.0.0.1:1/{tenant.tenant_id}/v2.0")
        )
        async with RunningApp(settings) as client:
            response = await client.get("/v1/auth/me", headers=bearer(token))
        assert response.status_code == 503
        assert response.json()["error"] == "IdentityProviderUnavailable"
        assert response.headers["retry-after"] == "30"

    async def test_without_an_audience_nothing_is_accepted(
        self, tenant: Tenant, emulator: EmulatorServer, admin: User
    ) -> None:
        settings = app_settings(
            tenant_id=tenant.tenant_id,
            authority_host=emulator.endpoints.base_url,
            ca_bundle=emulator.endpoints.ca_bundle,
        )
        token = tenant.keys.sign(_user_claims(tenant, emulator, admin))
        async with RunningApp(settings) as client:
            response = await client.get("/v1/auth/me", headers=bearer(token))
        assert_rejected(response, "API token validation is not configured on this server")
