"""Validation of Entra ID access tokens for Steward's API (Microsoft's claims-validation guidance).

Checked: the RS256 signature against the tenant's published keys, `iss` (the tenant's v2 issuer), `aud` (Steward's
API), `tid` (Steward's own tenant), `exp`/`nbf` with a small leeway, and the presence of `oid`. Only RS256 is
accepted, whatever the token header claims, so neither `none` nor an HMAC keyed with the public key can pass.

Keys come from the tenant's JWKS over HTTPS (the configured CA bundle, if any) and are cached: refetched after a
TTL, and at once when a token names a key id we do not know (Entra rotates its keys), but such refreshes are
rate-limited so that tokens with made-up key ids cannot turn Steward into a flood against Entra ID.
"""

import asyncio
import logging
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt

from app.config import Settings

log = logging.getLogger(__name__)

ALGORITHM = "RS256"
# Clock skew tolerated on exp/nbf. Small on purpose: an expired token must stop working.
LEEWAY_S = 60.0
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "tid", "oid")
# At most this many refreshes for unknown key ids per window: enough for a real rotation, useless for a flood.
UNKNOWN_KID_REFRESHES = 3
UNKNOWN_KID_WINDOW_S = 300.0
# After a failed fetch, keep the keys we have and try again no sooner than this.
FAILED_FETCH_RETRY_S = 30.0


class TokenRejected(Exception):
    """The token is not acceptable; `reason` is safe to tell the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SigningKeysUnavailable(Exception):
    """The JWKS could not be fetched and no keys are cached: no token can be checked right now."""


class SigningKeys:
    """The issuer's public signing keys by key id, cached with a TTL and refreshed on unknown key ids."""

    def __init__(
        self,
        jwks_url: str,
        http: httpx.AsyncClient,
        *,
        ttl_s: float,
        unknown_kid_refreshes: int = UNKNOWN_KID_REFRESHES,
        unknown_kid_window_s: float = UNKNOWN_KID_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jwks_url = jwks_url
        self._http = http
        self._ttl_s = ttl_s
        self._unknown_kid_refreshes = unknown_kid_refreshes
        self._unknown_kid_window_s = unknown_kid_window_s
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._next_fetch_at = 0.0
        self._fetches = 0
        self._recent_unknown_kid_refreshes: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> Any:
        """The public key for `kid`; raises TokenRejected if the issuer does not publish it."""
        if self._clock() >= self._next_fetch_at:
            await self._refresh(self._fetches)
        key = self._keys.get(kid)
        if key is None and self._may_refresh_for_unknown_kid():
            await self._refresh(self._fetches)
            key = self._keys.get(kid)
        if key is None:
            raise TokenRejected("the token is signed with an unknown key")
        return key

    def _may_refresh_for_unknown_kid(self) -> bool:
        now = self._clock()
        window = self._recent_unknown_kid_refreshes
        while window and now - window[0] >= self._unknown_kid_window_s:
            window.popleft()
        if len(window) >= self._unknown_kid_refreshes:
            return False
        window.append(now)
        return True

    async def _refresh(self, seen_fetches: int) -> None:
        async with self._lock:
            if self._fetches != seen_fetches:
                return  # another request refreshed while this one waited for the lock
            self._fetches += 1
            try:
                self._keys = await self._fetch()
                self._next_fetch_at = self._clock() + self._ttl_s
                log.info("auth.jwks_refreshed", extra={"keys": len(self._keys)})
            except (httpx.HTTPError, ValueError) as exc:
                self._next_fetch_at = self._clock() + min(self._ttl_s, FAILED_FETCH_RETRY_S)
                log.warning(
                    "auth.jwks_refresh_failed",
                    extra={"error": type(exc).__name__, "cached_keys": len(self._keys)},
                )
                if not self._keys:
                    raise SigningKeysUnavailable("the identity provider's signing keys cannot be fetched") from None

    async def _fetch(self) -> dict[str, Any]:
        response = await self._http.get(self.jwks_url)
        response.raise_for_status()
        document = response.json()
        published = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(published, list):
            raise ValueError("the JWKS document has no 'keys' list")
        keys: dict[str, Any] = {}
        for entry in published:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
                continue
            kid = entry.get("kid")
            if not isinstance(kid, str) or not kid:
                continue
            try:
                keys[kid] = jwt.PyJWK(entry, algorithm=ALGORITHM).key
            except jwt.PyJWTError:
                continue  # one unusable key must not hide the others
        if not keys:
            raise ValueError("the JWKS document has no usable RSA signing key")
        return keys


class TokenValidator:
    def __init__(
        self,
        keys: SigningKeys,
        *,
        issuer: str,
        audiences: Sequence[str],
        tenant_id: str,
        leeway_s: float = LEEWAY_S,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audiences = list(audiences)
        self.tenant_id = tenant_id.lower()
        self.leeway_s = leeway_s

    @property
    def configured(self) -> bool:
        return bool(self.issuer and self.audiences and self.tenant_id)

    async def validate(self, token: str) -> dict[str, Any]:
        """The token's claims once every check passed; raises TokenRejected (or SigningKeysUnavailable)."""
        if not self.configured:
            raise TokenRejected("API token validation is not configured on this server")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise TokenRejected("the token is malformed") from None
        if header.get("alg") != ALGORITHM:
            raise TokenRejected(f"the token must be signed with {ALGORITHM}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("the token names no signing key")
        key = await self.keys.get(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audiences,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected("the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected("the token is not meant for this API") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected("the token was not issued by this tenant") from None
        except jwt.MissingRequiredClaimError as missing:
            raise TokenRejected(f"the token lacks the '{missing.claim}' claim") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("the token signature is invalid") from None
        except jwt.InvalidTokenError:
            raise TokenRejected("the token is malformed") from None
        if str(claims["tid"]).lower() != self.tenant_id:
            raise TokenRejected("the token was not issued by this tenant")
        return claims


def jwks_url(settings: Settings) -> str:
    return f"{settings.authority_host}/{settings.tenant_id}/discovery/v2.0/keys"


@asynccontextmanager
async def token_validator(settings: Settings) -> AsyncIterator[TokenValidator]:
    """The validator for this deployment, with the HTTPS client that fetches the keys (closed on exit)."""
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(settings.ca_bundle)) if settings.ca_bundle is not None else True
    )
    async with httpx.AsyncClient(
        verify=verify, timeout=settings.http_timeout_s, headers={"User-Agent": settings.user_agent}
    ) as http:
        keys = SigningKeys(jwks_url(settings), http, ttl_s=settings.jwks_cache_ttl_s)
        yield TokenValidator(
            keys, issuer=settings.api_issuer, audiences=settings.api_audience, tenant_id=settings.tenant_id
        )
