"""Staff sign-in for the web pages: Entra ID authorization code + PKCE through MSAL, and a signed session cookie.

/auth/signin starts MSAL's auth code flow (state, nonce, PKCE verifier) and keeps the flow in a short-lived signed
cookie. Entra sends the browser back to /auth/callback, where MSAL checks the state and redeems the code with the
verifier and the client secret. The access token Entra issued for Steward's own API is then validated the way the
API validates bearer tokens (signature from the tenant's published keys, issuer, audience, tenant, expiry) and
its `roles` become the session's: nothing the browser sends is trusted for identity or roles.

The session cookie is signed (itsdangerous), HttpOnly, Secure, SameSite=Lax, and ends when that token does, so a
role removed in Entra stops working within the token's lifetime. It carries a random CSRF token that every POST
must echo, as a form field or as the X-CSRF-Token header (htmx sends the header).

The local tenant (emulator) in development and Entra ID in production go through exactly this code.
"""

import asyncio
import hmac
import logging
import secrets
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import msal
from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.responses import Response

from app.auth.dependencies import ROLES, Principal
from app.auth.tokens import SigningKeysUnavailable, TokenRejected, TokenValidator
from app.config import Settings
from app.exceptions import AppError, BadRequest, Forbidden, Unauthorized
from connectors.graph.auth import MICROSOFT_AUTHORITY_HOSTS, MsalHttpClient, tls_context

log = logging.getLogger(__name__)

# __Host-: the browser only accepts them over HTTPS, for the whole host, never shared with a parent domain.
SESSION_COOKIE = "__Host-steward-session"
SIGNIN_COOKIE = "__Host-steward-signin"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# The delegated permission Steward's API publishes; a token for it carries the user's Steward app roles.
API_SCOPE_NAME = "access_as_user"
# An unfinished sign-in is forgotten after this long (Entra's codes live about 10 minutes).
SIGNIN_MAX_AGE_S = 600
# Upper bound of a session, whatever the token says.
SESSION_MAX_AGE_S = 12 * 3600
_SESSION_SALT = "steward.web.session"
_SIGNIN_SALT = "steward.web.signin"


class SignInRequired(Unauthorized):
    """No valid session: pages answer with a redirect to sign-in rather than an error."""


class SignInFailed(AppError):
    """The sign-in could not be completed; the message is safe to show."""

    status_code = 401


class SignInUnavailable(AppError):
    """Sign-in is not configured, or the identity provider cannot be reached right now."""

    status_code = 503


@dataclass(frozen=True, slots=True)
class WebUser:
    """The signed-in person, as established from a verified token at sign-in."""

    subject: str  # Entra object id (oid)
    name: str  # display name
    username: str  # preferred_username (UPN)
    roles: frozenset[str]
    csrf: str
    expires_at: int  # epoch seconds

    def has_any(self, roles: frozenset[str]) -> bool:
        return bool(self.roles & roles)

    @property
    def principal(self) -> Principal:
        return Principal(subject=self.subject, name=self.username or self.name, roles=self.roles, is_service=False)


def safe_next(path: str | None) -> str:
    """A local path to return to after sign-in; anything else (another host, a scheme) means the dashboard."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    parts = urlsplit(path)
    if parts.scheme or parts.netloc:
        return "/"
    return path


class _NoTokenCache(msal.TokenCache):
    """Sign-in only needs the tokens once: nobody's tokens accumulate in the process's memory."""

    def add(self, event: dict[str, Any], **kwargs: Any) -> None:
        return None


class WebSignIn:
    """One per app: the MSAL application (built on first use: its constructor fetches Entra's metadata)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._msal: msal.ConfidentialClientApplication | None = None
        self._http: MsalHttpClient | None = None
        secret = settings.session_secret.get_secret_value()
        if not secret:
            # Only development gets here with sign-in configured (settings refuse an empty secret elsewhere).
            if self.configured:
                log.warning("web.session_secret_generated", extra={"reason": "STEWARD_SESSION_SECRET is empty"})
            secret = secrets.token_urlsafe(32)
        self._sessions = URLSafeTimedSerializer(secret, salt=_SESSION_SALT)
        self._signins = URLSafeTimedSerializer(secret, salt=_SIGNIN_SALT)

    @property
    def configured(self) -> bool:
        settings = self.settings
        return bool(settings.web_client_id and settings.web_client_secret.get_secret_value() and settings.tenant_id)

    @property
    def scope(self) -> str:
        return f"api://{self.settings.web_client_id}/{API_SCOPE_NAME}"

    def _application(self) -> msal.ConfidentialClientApplication:
        with self._lock:
            if self._msal is None:
                settings = self.settings
                host = urlsplit(settings.authority_host).hostname
                http = MsalHttpClient(
                    httpx.Client(verify=tls_context(settings.ca_bundle), timeout=settings.http_timeout_s)
                )
                try:
                    self._msal = msal.ConfidentialClientApplication(
                        settings.web_client_id,
                        client_credential=settings.web_client_secret.get_secret_value(),
                        authority=f"{settings.authority_host}/{settings.tenant_id}",
                        instance_discovery=None if host in MICROSOFT_AUTHORITY_HOSTS else False,
                        http_client=http,
                        token_cache=_NoTokenCache(),
                        # No refresh token: the session ends with the access token and the person signs in again.
                        exclude_scopes=["offline_access"],
                    )
                except Exception:
                    http.close()
                    raise
                self._http = http
            return self._msal

    def _initiate(self, application: msal.ConfidentialClientApplication) -> dict[str, Any]:
        with warnings.catch_warnings():
            # MSAL recommends form_post; the code comes back in the query on purpose: a cross-site POST from
            # Entra would not carry the SameSite=Lax sign-in cookie, and the code is useless without the PKCE
            # verifier and the client secret, which never leave the server and the browser's signed cookie.
            warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended")
            flow: dict[str, Any] = application.initiate_auth_code_flow(
                scopes=[self.scope], redirect_uri=self.settings.web_redirect_uri, response_mode="query"
            )
        return flow

    async def start(self, next_path: str) -> tuple[str, str]:
        next_path = safe_next(next_path)
        """(Entra's authorization URL, the signed flow to keep in the sign-in cookie)."""
        if not self.configured:
            raise SignInUnavailable("web sign-in is not configured: set STEWARD_WEB_CLIENT_ID and its secret")
        try:
            application = await asyncio.to_thread(self._application)
            flow = await asyncio.to_thread(self._initiate, application)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("web.signin_unavailable", extra={"error": type(exc).__name__})
            raise SignInUnavailable("the identity provider cannot be reached; try again in a moment") from None
        pending = {"flow": {name: value for name, value in flow.items() if name != "auth_uri"}, "next": next_path}
        return flow["auth_uri"], self._signins.dumps(pending)

    def pending(self, cookie: str | None) -> tuple[dict[str, Any], str]:
        """(MSAL's flow, the page to return to) of the sign-in this browser started."""
        expired = SignInFailed("this sign-in was not started here or took too long; please sign in again")
        if not cookie:
            raise expired
        try:
            pending = self._signins.loads(cookie, max_age=SIGNIN_MAX_AGE_S)
        except BadSignature:  # SignatureExpired is one
            raise expired from None
        if not isinstance(pending, dict) or not isinstance(pending.get("flow"), dict):
            raise expired
        return pending["flow"], safe_next(pending.get("next"))

    async def finish(self, flow: dict[str, Any], response: Mapping[str, str], validator: TokenValidator) -> WebUser:
        """Redeem the code Entra sent back and establish who signed in, from verified tokens only."""
        if "error" in response:
            # Entra's own words (AADSTS code and description) are what the person needs to fix it.
            description = response.get("error_description") or response["error"]
            raise SignInFailed(f"Entra ID refused the sign-in: {description[:300]}")
        application = await asyncio.to_thread(self._application)
        try:
            result: dict[str, Any] = await asyncio.to_thread(
                application.acquire_token_by_auth_code_flow, dict(flow), dict(response)
            )
        except ValueError:
            # MSAL raises on a state mismatch: the response was not meant for this browser's sign-in.
            raise SignInFailed("the sign-in response does not match the sign-in this browser started") from None
        except httpx.HTTPError as exc:
            log.warning("web.token_redemption_unavailable", extra={"error": type(exc).__name__})
            raise SignInUnavailable("the identity provider cannot be reached; try again in a moment") from None
        if "error" in result:
            log.info("web.signin_refused", extra={"error": result.get("error")})
            raise SignInFailed(f"Entra ID refused the sign-in: {str(result.get('error_description', ''))[:300]}")
        try:
            claims = await validator.validate(str(result.get("access_token", "")))
        except TokenRejected as rejected:
            raise SignInFailed(f"the token Entra ID issued was refused: {rejected.reason}") from None
        except SigningKeysUnavailable:
            raise SignInUnavailable("the identity provider's signing keys cannot be fetched right now") from None
        identity = result.get("id_token_claims") or {}
        if str(identity.get("oid", "")).lower() != str(claims["oid"]).lower():
            raise SignInFailed("the ID token and the access token name different people")
        if claims.get("idtyp") == "app" or "scp" not in claims:
            raise SignInFailed("only people sign in to the web pages")
        roles = claims.get("roles") or []
        return WebUser(
            subject=str(claims["oid"]),
            name=str(claims.get("name") or identity.get("name") or ""),
            username=str(claims.get("preferred_username") or identity.get("preferred_username") or ""),
            roles=frozenset(str(role) for role in roles if role in ROLES) if isinstance(roles, list) else frozenset(),
            csrf=secrets.token_urlsafe(32),
            expires_at=min(int(claims["exp"]), int(time.time()) + SESSION_MAX_AGE_S),
        )

    def validator(self, request: Request) -> TokenValidator:
        """The API's validation (shared key cache), with this app registration as the audience."""
        api: TokenValidator = request.app.state.token_validator
        client_id = self.settings.web_client_id
        return TokenValidator(
            api.keys,
            issuer=self.settings.api_issuer,
            audiences=[client_id, f"api://{client_id}"],
            tenant_id=self.settings.tenant_id,
        )

    # Session cookie ----------------------------------------------------------------------------------------

    def session_cookie(self, user: WebUser) -> str:
        return self._sessions.dumps(
            {
                "sub": user.subject,
                "name": user.name,
                "upn": user.username,
                "roles": sorted(user.roles),
                "csrf": user.csrf,
                "exp": user.expires_at,
            }
        )

    def read_session(self, cookie: str | None) -> WebUser | None:
        if not cookie:
            return None
        try:
            data = self._sessions.loads(cookie, max_age=SESSION_MAX_AGE_S)
        except BadSignature:
            return None
        try:
            user = WebUser(
                subject=str(data["sub"]),
                name=str(data["name"]),
                username=str(data["upn"]),
                roles=frozenset(str(role) for role in data["roles"]),
                csrf=str(data["csrf"]),
                expires_at=int(data["exp"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        return user if user.expires_at > time.time() else None

    def close(self) -> None:
        if self._http is not None:
            self._http.close()


def set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="lax")


def clear_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", secure=True, httponly=True, samesite="lax")


def web_sign_in(request: Request) -> WebSignIn:
    signin: WebSignIn = request.app.state.web_sign_in
    return signin


def current_user(request: Request) -> WebUser | None:
    cached: WebUser | None = getattr(request.state, "web_user", None)
    if cached is None:
        cached = web_sign_in(request).read_session(request.cookies.get(SESSION_COOKIE))
        request.state.web_user = cached
    return cached


def require_user(*any_of: str) -> Callable[[Request], Awaitable[WebUser]]:
    """A signed-in person holding one of the roles (any Steward role when none is named)."""
    unknown = set(any_of) - ROLES
    if unknown:
        raise ValueError(f"unknown Steward roles: {', '.join(sorted(unknown))}")
    required = frozenset(any_of) or ROLES

    async def dependency(request: Request) -> WebUser:
        user = current_user(request)
        if user is None:
            raise SignInRequired("please sign in")
        if not user.has_any(required):
            raise Forbidden(f"this page needs one of the roles: {', '.join(sorted(required))}")
        return user

    return dependency


async def session_principal(request: Request) -> Principal:
    """The signed-in person as a Principal (for dependencies shared with the API, like the disclosure guard)."""
    user = current_user(request)
    if user is None:
        raise SignInRequired("please sign in")
    return user.principal


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


async def verify_csrf(request: Request, user: WebUser) -> None:
    """Refuse a state-changing request that does not come from one of our own pages."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise Forbidden("cross-site form submissions are refused")
    origin = request.headers.get("origin")
    allowed = {_origin(str(request.base_url)), _origin(web_sign_in(request).settings.public_base_url)}
    if origin is not None and origin.lower() not in allowed:
        raise Forbidden("form submitted from another origin")
    presented = request.headers.get(CSRF_HEADER)
    if presented is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        presented = field if isinstance(field, str) else None
    if not presented or not hmac.compare_digest(presented.encode(), user.csrf.encode()):
        raise BadRequest("the form has expired or did not come from this site; reload the page and try again")
