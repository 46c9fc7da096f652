import base64
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
import respx
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from connectors.base import AuthError, Transient
from connectors.graph.auth import ClientCertificate, ClientCredential, ClientSecret, MsalCredential, tls_context

AUTHORITY = "https://login.example.test"  # not a Microsoft host: MSAL must not run instance discovery
TENANT = "6f1d3c8e-2b7a-4e55-9a0c-1d2e3f405162"
CLIENT_ID = "0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b"
TOKEN_URL = f"{AUTHORITY}/{TENANT}/oauth2/v2.0/token"
SCOPE = "https://graph.microsoft.com/.default"
OPENID_CONFIGURATION = {
    "token_endpoint": TOKEN_URL,
    "authorization_endpoint": f"{AUTHORITY}/{TENANT}/oauth2/v2.0/authorize",
    "issuer": f"{AUTHORITY}/{TENANT}/v2.0",
}


def _credential(credential: ClientCredential) -> MsalCredential:
    return MsalCredential(tenant_id=TENANT, client_id=CLIENT_ID, credential=credential, authority_host=AUTHORITY)


@pytest.fixture
def entra() -> Iterator[respx.MockRouter]:
    # Unmatched requests fail the test, so a call to login.microsoftonline.com would be caught.
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{AUTHORITY}/{TENANT}/v2.0/.well-known/openid-configuration").respond(json=OPENID_CONFIGURATION)
        yield router


def _token_response() -> httpx.Response:
    return httpx.Response(200, json={"token_type": "Bearer", "expires_in": 3599, "access_token": "opaque-token"})


class TestClientSecret:
    async def test_token_is_cached_after_the_first_call(self, entra: respx.MockRouter) -> None:
        token_route = entra.post(TOKEN_URL).mock(return_value=_token_response())
        async with _credential(ClientSecret("s3cr3t")) as credential:
            first = await credential.get_token(SCOPE)
            second = await credential.get_token(SCOPE)
        assert first.token == second.token == "opaque-token"
        assert first.expires_on > dt.datetime.now(dt.UTC).timestamp() + 3000
        assert token_route.call_count == 1
        form = parse_qs(token_route.calls[0].request.content.decode())
        assert form["grant_type"] == ["client_credentials"]
        assert form["client_id"] == [CLIENT_ID]
        assert form["client_secret"] == ["s3cr3t"]
        assert form["scope"] == [SCOPE]

    async def test_refused_secret_raises_auth_error(self, entra: respx.MockRouter) -> None:
        entra.post(TOKEN_URL).respond(
            401,
            json={
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: t-1\r\n",
                "error_codes": [7000215],
                "correlation_id": "corr-42",
                "trace_id": "t-1",
            },
        )
        async with _credential(ClientSecret("wrong-secret")) as credential:
            with pytest.raises(AuthError) as raised:
                await credential.get_token(SCOPE)
        error = raised.value
        assert error.code == "invalid_client"
        assert error.request_id == "corr-42"
        assert "AADSTS7000215: Invalid client secret provided." in str(error)
        assert "Trace ID" not in error.message
        assert "wrong-secret" not in str(error)

    @pytest.mark.parametrize(
        "failure",
        [
            httpx.Response(503, json={"error": "temporarily_unavailable"}),
            httpx.Response(200, json={"error": "temporarily_unavailable", "error_description": "busy"}),
            httpx.Response(429, text="Too Many Requests"),
            httpx.ConnectError("connection refused"),
        ],
        ids=["http-503", "retryable-error-code", "non-json-429", "unreachable"],
    )
    async def test_temporary_failures_are_transient(
        self, entra: respx.MockRouter, failure: httpx.Response | Exception
    ) -> None:
        route = entra.post(TOKEN_URL)
        if isinstance(failure, Exception):
            route.mock(side_effect=failure)
        else:
            route.mock(return_value=failure)
        async with _credential(ClientSecret("s3cr3t")) as credential:
            with pytest.raises(Transient):
                await credential.get_token(SCOPE)

    async def test_unreachable_discovery_is_transient(self) -> None:
        with respx.mock() as router:
            router.get(url__startswith=AUTHORITY).mock(side_effect=httpx.ConnectTimeout("timed out"))
            async with _credential(ClientSecret("s3cr3t")) as credential:
                with pytest.raises(Transient, match="cannot reach the authority"):
                    await credential.get_token(SCOPE)

    async def test_empty_secret_is_refused_before_any_request(self) -> None:
        with respx.mock() as router:
            async with _credential(ClientSecret("")) as credential:
                with pytest.raises(AuthError, match="empty"):
                    await credential.get_token(SCOPE)
            assert router.calls.call_count == 0


def _key_and_certificate() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "steward-test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _pem(key: rsa.RSAPrivateKey, certificate: x509.Certificate, password: str | None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return key_pem + certificate.public_bytes(serialization.Encoding.PEM)


def _pfx(key: rsa.RSAPrivateKey, certificate: x509.Certificate, password: str | None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    return pkcs12.serialize_key_and_certificates(b"steward", key, certificate, None, encryption)


class TestClientCertificate:
    @pytest.mark.parametrize(
        ("suffix", "password"),
        [(".pem", None), (".pem", "pem-pass"), (".pfx", "pfx-pass"), (".p12", None)],
    )
    async def test_signs_a_ps256_assertion_with_the_certificate_thumbprint(
        self, entra: respx.MockRouter, tmp_path: Path, suffix: str, password: str | None
    ) -> None:
        key, certificate = _key_and_certificate()
        path = tmp_path / f"steward{suffix}"
        path.write_bytes((_pem if suffix == ".pem" else _pfx)(key, certificate, password))
        token_route = entra.post(TOKEN_URL).mock(return_value=_token_response())

        async with _credential(ClientCertificate(path, password)) as credential:
            await credential.get_token(SCOPE)
            await credential.get_token(SCOPE)

        assert token_route.call_count == 1
        form = parse_qs(token_route.calls[0].request.content.decode())
        assert "client_secret" not in form
        assert form["client_assertion_type"] == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
        assertion = form["client_assertion"][0]
        header = jwt.get_unverified_header(assertion)
        thumbprint = base64.urlsafe_b64encode(certificate.fingerprint(hashes.SHA256())).decode().rstrip("=")
        assert header["alg"] == "PS256"
        assert header["x5t#S256"].rstrip("=") == thumbprint
        claims = jwt.decode(assertion, key.public_key(), algorithms=["PS256"], audience=TOKEN_URL)
        assert claims["iss"] == claims["sub"] == CLIENT_ID

    @pytest.mark.parametrize("suffix", [".pem", ".pfx"])
    async def test_wrong_password_is_an_auth_error(self, tmp_path: Path, suffix: str) -> None:
        key, certificate = _key_and_certificate()
        path = tmp_path / f"steward{suffix}"
        path.write_bytes((_pem if suffix == ".pem" else _pfx)(key, certificate, "right"))
        with respx.mock() as router:
            async with _credential(ClientCertificate(path, "wrong")) as credential:
                with pytest.raises(AuthError, match="password"):
                    await credential.get_token(SCOPE)
            assert router.calls.call_count == 0

    async def test_certificate_of_another_key_is_refused(self, tmp_path: Path) -> None:
        key, _ = _key_and_certificate()
        _, foreign_certificate = _key_and_certificate()
        path = tmp_path / "steward.pem"
        path.write_bytes(_pem(key, foreign_certificate, None))
        async with _credential(ClientCertificate(path)) as credential:
            with pytest.raises(AuthError, match="does not belong to its private key"):
                await credential.get_token(SCOPE)

    @pytest.mark.parametrize(
        ("content", "complaint"),
        [
            (b"", "no PEM private key"),
            (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "certificate"),
        ],
    )
    async def test_incomplete_pem_is_refused(self, tmp_path: Path, content: bytes, complaint: str) -> None:
        path = tmp_path / "steward.pem"
        path.write_bytes(content)
        async with _credential(ClientCertificate(path)) as credential:
            with pytest.raises(AuthError, match=complaint):
                await credential.get_token(SCOPE)

    async def test_missing_file_is_refused(self, tmp_path: Path) -> None:
        async with _credential(ClientCertificate(tmp_path / "absent.pfx")) as credential:
            with pytest.raises(AuthError, match="cannot read client certificate"):
                await credential.get_token(SCOPE)


def test_tls_context_trusts_the_given_ca_bundle(tmp_path: Path) -> None:
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    trusted = tls_context(bundle).get_ca_certs()
    assert len(trusted) == 1, "the bundle replaces the system store"
    expected = x509.load_pem_x509_certificate(ca.cert_pem.bytes()).subject
    unit = expected.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
    assert ("organizationalUnitName", unit) in [item[0] for item in trusted[0]["subject"]]
