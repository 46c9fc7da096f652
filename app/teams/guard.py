"""Authenticating what Teams sends the bot, before the Teams SDK sees it.

The Teams SDK validates the channel's JWT too, but it also accepts Entra tokens on an Agent 365 path this bot
does not use, and it does not check key endorsements. This guard accepts exactly the Bot Framework's
documented channel token: issuer = the channel's, audience = our bot app id, signature by a key from the
channel's published JWKS that is endorsed for the activity's channel, expiry with 5 minutes of clock skew, and
a `serviceurl` claim equal to the activity's serviceUrl. Then it checks the tenant. Anything else is answered
401/403 here, audited, and never reaches a handler, so no state can change.
"""

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

CLOCK_SKEW_S = 300
MAX_BODY_BYTES = 256 * 1024
# Unknown kids trigger a key refresh at most this often (Microsoft rolls keys; forgers invent kids).
KEY_REFRESH_MIN_S = 60.0
JWKS_CACHE_S = 3600.0


class ChannelTokenError(Exception):
    pass


class ChannelKeys:
    """The channel's published keys, from its OpenID metadata, cached and refreshed on an unknown kid."""

    def __init__(self, metadata_url: str, *, verify: str | bool, timeout_s: float) -> None:
        self._metadata_url = metadata_url
        self._verify = verify
        self._timeout = timeout_s
        self._keys: dict[str, dict[str, Any]] = {}
        self._algorithms: list[str] = ["RS256"]
        self._fetched = 0.0
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> tuple[dict[str, Any], list[str]]:
        async with self._lock:
            age = time.monotonic() - self._fetched
            if age > JWKS_CACHE_S or (kid not in self._keys and age > KEY_REFRESH_MIN_S):
                await self._refresh()
        entry = self._keys.get(kid)
        if entry is None:
            raise ChannelTokenError("signing key not published by the channel")
        return entry, self._algorithms

    async def _refresh(self) -> None:
        try:
            async with httpx.AsyncClient(verify=self._verify, timeout=self._timeout) as client:
                metadata = (await client.get(self._metadata_url)).raise_for_status().json()
                published = (await client.get(metadata["jwks_uri"])).raise_for_status().json()
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise ChannelTokenError(f"channel keys unavailable ({type(exc).__name__})") from None
        self._keys = {key["kid"]: key for key in published.get("keys", []) if "kid" in key}
        algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        # Never let metadata widen the algorithms to "none" or HMAC.
        self._algorithms = [alg for alg in algorithms if alg.startswith(("RS", "PS", "ES"))] or ["RS256"]
        self._fetched = time.monotonic()


class ChannelTokenVerifier:
    def __init__(self, *, keys: ChannelKeys, issuer: str, app_id: str, tenant_id: str) -> None:
        self._keys = keys
        self._issuer = issuer
        self._app_id = app_id
        self._tenant_id = tenant_id.lower()

    async def verify(self, authorization: str, activity: dict[str, Any]) -> dict[str, Any]:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ChannelTokenError("no bearer token")
        token = token.strip()
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise ChannelTokenError("malformed token") from None
        if not isinstance(kid, str):
            raise ChannelTokenError("token names no signing key")
        entry, algorithms = await self._keys.key(kid)
        channel = activity.get("channelId")
        if not isinstance(channel, str) or channel not in entry.get("endorsements", []):
            raise ChannelTokenError("signing key not endorsed for the activity's channel")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                jwt.PyJWK(entry).key,
                algorithms=algorithms,
                audience=self._app_id,
                issuer=self._issuer,
                leeway=CLOCK_SKEW_S,
                options={"require": ["exp", "iss", "aud", "serviceurl"]},
            )
        except jwt.PyJWTError as exc:
            raise ChannelTokenError(type(exc).__name__) from None
        service_url = activity.get("serviceUrl")
        if not isinstance(service_url, str) or claims["serviceurl"].rstrip("/") != service_url.rstrip("/"):
            raise ChannelTokenError("serviceurl claim does not match the activity")
        return claims

    def tenant_allowed(self, activity: dict[str, Any]) -> bool:
        conversation = activity.get("conversation") or {}
        channel_data = activity.get("channelData") or {}
        tenants = {
            str(conversation.get("tenantId") or "").lower(),
            str((channel_data.get("tenant") or {}).get("id") or "").lower(),
        } - {""}
        return tenants == {self._tenant_id}


Refusal = Callable[[str, dict[str, Any]], Awaitable[None]]


class BotChannelGuard:
    """ASGI middleware for the bot's messaging endpoint only; every other route passes untouched."""

    def __init__(self, app: ASGIApp, *, path: str, verifier: ChannelTokenVerifier, on_refusal: Refusal) -> None:
        self.app = app
        self.path = path
        self.verifier = verifier
        self.on_refusal = on_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        body = await self._read_body(receive)
        if body is None:
            await self._answer(send, 413, "request body too large")
            return
        try:
            activity = json.loads(body)
            if not isinstance(activity, dict):
                raise ValueError
        except ValueError:
            await self._answer(send, 400, "the body must be a JSON activity")
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        try:
            await self.verifier.verify(headers.get("authorization", ""), activity)
        except ChannelTokenError as exc:
            await self._refuse(send, 401, "unauthorized", str(exc), activity)
            return
        if not self.verifier.tenant_allowed(activity):
            await self._refuse(send, 403, "forbidden", "activity from another tenant", activity)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _refuse(self, send: Send, status: int, error: str, why: str, activity: dict[str, Any]) -> None:
        log.warning("bot request refused (%s): %s", status, why)
        try:
            await self.on_refusal(why, activity)
        except Exception:  # auditing must not turn a refusal into an acceptance or a 500
            log.exception("could not audit a refused bot request")
        await self._answer(send, status, error, why)

    @staticmethod
    async def _answer(send: Send, status: int, error: str, detail: str | None = None) -> None:
        payload = json.dumps({"error": error, "detail": detail or error}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})
