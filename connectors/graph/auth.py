"""App-only sign-in to Entra ID with MSAL, exposed as an azure-core AsyncTokenCredential for msgraph-sdk.

Build one `MsalCredential` per process and share it: MSAL's token cache belongs to the
ConfidentialClientApplication instance, so a new instance per call would fetch a new token per call.
"""

import asyncio
import json
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx
import msal
from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from msal.exceptions import MsalServiceError

from connectors.base import AuthError, ConnectorError, Transient

# Authorities MSAL validates through Microsoft's instance discovery. Any other host (the local tenant)
# must skip it, or MSAL calls login.microsoftonline.com from its constructor.
MICROSOFT_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login-us.microsoftonline.com",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
    }
)
# OAuth error codes that mean "try again later" rather than "your credential is wrong".
RETRYABLE_TOKEN_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
PEM_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?P<kind>[A-Z ]*)PRIVATE KEY-----.+?-----END (?P=kind)PRIVATE KEY-----", re.DOTALL
)


@dataclass(frozen=True)
class ClientSecret:
    value: str = field(repr=False)


@dataclass(frozen=True)
class ClientCertificate:
    """A .pem file holding the private key and its certificate, or a .pfx/.p12 file."""

    path: Path
    password: str | None = field(default=None, repr=False)


ClientCredential = ClientSecret | ClientCertificate


def tls_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """Trust `ca_bundle` instead of the system store when given (the local tenant's own CA)."""
    return ssl.create_default_context(cafile=str(ca_bundle)) if ca_bundle else ssl.create_default_context()


def build_confidential_client(
    *,
    tenant_id: str,
    client_id: str,
    credential: ClientCredential,
    authority_host: str = "https://login.microsoftonline.com",
    ca_bundle: Path | None = None,
    timeout_s: float = 30.0,
) -> msal.ConfidentialClientApplication:
    """Build the MSAL application. Blocking: MSAL fetches the OpenID configuration here."""
    host = urlsplit(authority_host).hostname
    client_credential = msal_client_credential(credential)
    # Our own client rather than MSAL's requests session with verify=...: requests lets REQUESTS_CA_BUNDLE
    # override verify, which breaks trust in the local tenant's CA.
    http_client = MsalHttpClient(httpx.Client(verify=tls_context(ca_bundle), timeout=timeout_s))
    try:
        return msal.ConfidentialClientApplication(
            client_id,
            client_credential=client_credential,
            authority=f"{authority_host.rstrip('/')}/{tenant_id}",
            instance_discovery=None if host in MICROSOFT_AUTHORITY_HOSTS else False,
            http_client=http_client,
        )
    except Exception as exc:
        http_client.close()
        raise _translate(exc, "cannot set up sign-in with the authority") from exc


class MsalHttpClient:
    """The requests-style client MSAL expects, over httpx.

    MSAL passes the signed client assertion as bytes; requests form-encodes bytes as their content, httpx as
    their repr ("b'eyJ...'"), which Entra rejects. Form values are decoded here before httpx sees them.
    """

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def post(
        self,
        url: str,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        if data is not None:
            data = {name: value.decode() if isinstance(value, bytes) else value for name, value in data.items()}
        return self._client.post(url, params=params, data=data, headers=headers, **kwargs)

    def get(
        self, url: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        return self._client.get(url, params=params, headers=headers, **kwargs)

    def close(self) -> None:
        self._client.close()


def msal_client_credential(credential: ClientCredential) -> str | dict[str, Any]:
    """MSAL's `client_credential` argument, after checking the certificate file is usable."""
    if isinstance(credential, ClientSecret):
        if not credential.value:
            raise AuthError("client secret is empty")
        return credential.value
    path, password = credential.path, credential.password
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuthError(f"cannot read client certificate {path}: {exc.strerror}") from None
    if path.suffix.lower() in {".pfx", ".p12"}:
        _check_pfx(data, password, path)
        return {"private_key_pfx_path": str(path), "passphrase": password}
    key_pem, certificate_pem = _split_pem(data, password, path)
    # With public_certificate MSAL signs PS256 with an x5t#S256 header, as Entra recommends.
    pem_credential: dict[str, Any] = {"private_key": key_pem, "public_certificate": certificate_pem}
    if password:
        pem_credential["passphrase"] = password
    return pem_credential


def _check_pfx(data: bytes, password: str | None, path: Path) -> None:
    try:
        key, certificate, _ = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
    except ValueError:
        raise AuthError(f"cannot open {path}: wrong password or not a PKCS#12 file") from None
    if key is None or certificate is None:
        raise AuthError(f"{path} must contain both the private key and the certificate")
    _check_pair(key, certificate, path)


def _split_pem(data: bytes, password: str | None, path: Path) -> tuple[str, str]:
    text = data.decode("ascii", errors="replace")
    key_match = PEM_PRIVATE_KEY.search(text)
    if key_match is None:
        raise AuthError(f"{path} holds no PEM private key")
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise AuthError(f"{path} holds no PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_match.group().encode(), password.encode() if password else None)
    except (TypeError, ValueError):
        raise AuthError(f"cannot load the private key in {path}: missing or wrong password") from None
    _check_pair(key, certificates[0], path)
    return key_match.group(), certificates[0].public_bytes(serialization.Encoding.PEM).decode()


def _check_pair(key: Any, certificate: x509.Certificate, path: Path) -> None:
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != certificate.public_key().public_bytes(*spki):
        raise AuthError(f"the certificate in {path} does not belong to its private key")


class MsalCredential:
    """azure-core AsyncTokenCredential backed by one ConfidentialClientApplication.

    The application is built on first use, in a worker thread, because MSAL is synchronous and does
    network I/O in its constructor; every token call also runs in a thread so the event loop never blocks.
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        credential: ClientCredential,
        authority_host: str = "https://login.microsoftonline.com",
        ca_bundle: Path | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self._build_args: dict[str, Any] = {
            "tenant_id": tenant_id,
            "client_id": client_id,
            "credential": credential,
            "authority_host": authority_host,
            "ca_bundle": ca_bundle,
            "timeout_s": timeout_s,
        }
        self._app: msal.ConfidentialClientApplication | None = None
        self._app_lock = threading.Lock()

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        if not scopes:
            raise ValueError("at least one scope is required")
        result = await asyncio.to_thread(self._acquire, list(scopes), claims)
        return AccessToken(result["access_token"], int(time.time()) + int(result["expires_in"]))

    def _application(self) -> msal.ConfidentialClientApplication:
        with self._app_lock:
            if self._app is None:
                self._app = build_confidential_client(**self._build_args)
            return self._app

    def _acquire(self, scopes: list[str], claims: str | None) -> dict[str, Any]:
        app = self._application()
        try:
            # Served from MSAL's cache until shortly before expiry; a claims challenge bypasses the cache.
            result: dict[str, Any] = app.acquire_token_for_client(scopes=scopes, claims_challenge=claims)
        except Exception as exc:
            raise _translate(exc, "token request failed") from exc
        if "access_token" not in result:
            raise _from_error_response(result)
        return result

    async def force_refresh(self) -> None:
        """Drop the cached access tokens, so the next get_token asks Entra ID (Graph answered 401 to the old one)."""
        await asyncio.to_thread(self._forget_access_tokens)

    def _forget_access_tokens(self) -> None:
        cache = self._application().token_cache
        for token in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
            cache.remove_at(token)

    async def close(self) -> None:
        if self._app is not None:
            # MSAL wraps the client we gave it; the original is reachable for closing.
            self._app.http_client.close()

    async def __aenter__(self) -> "MsalCredential":
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.close()


def _from_error_response(result: dict[str, Any]) -> ConnectorError:
    error = str(result.get("error", "unknown_error"))
    # The description's first line carries the AADSTS code and text; the rest is trace metadata.
    description = str(result.get("error_description") or "").strip().splitlines()
    message = f"token request refused: {error}" + (f": {description[0]}" if description else "")
    request_id = result.get("correlation_id") or result.get("trace_id")
    if error in RETRYABLE_TOKEN_ERRORS:
        return Transient(message, code=error, request_id=request_id)
    return AuthError(message, code=error, request_id=request_id)


def _translate(exc: Exception, context: str) -> ConnectorError:
    if isinstance(exc, httpx.TransportError):
        return Transient(f"{context}: cannot reach the authority ({type(exc).__name__})")
    if isinstance(exc, MsalServiceError):
        # MSAL raises this for 5xx answers ("HTTP Error: 503"); 4xx come back as error dicts instead.
        return Transient(f"{context}: {exc}")
    if isinstance(exc, json.JSONDecodeError):
        # A 429 or a proxy's error page; the OAuth spec requires JSON even for errors.
        return Transient(f"{context}: the authority answered with something other than JSON")
    if isinstance(exc, ValueError):
        # MSAL reports a bad authority, a refused discovery or an unusable credential as ValueError.
        return AuthError(f"{context}: {exc}")
    return AuthError(f"{context}: {type(exc).__name__}: {exc}")
