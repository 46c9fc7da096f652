"""The Bot Framework's two token services, as a bot sees them.

- Channel -> bot: login.botframework.com publishes OpenID metadata and a JWKS whose keys carry `endorsements`;
  the channel signs each activity it delivers with them (`iss` = the channel issuer, `aud` = the bot's app id,
  `serviceurl` = where the bot must answer). Here the issuer is `{base}/botframework`, with the metadata at
  `{base}/botframework/v1/.well-known/openidconfiguration` so SDKs derive the keys URL exactly as they do for
  Microsoft's (…/openidconfiguration -> …/keys).
- Bot -> connector: the bot gets a client-credentials token from Entra ID with scope
  https://api.botframework.com/.default. That token is Entra's (the tenant's signing keys, v1 issuer), not the
  channel's; it is served at `{base}/botframework/{tenant}/oauth2/v2.0/token` so it never collides with the
  tenant's own token endpoint, and the tenant endpoint may issue the same tokens for the bot registration.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from emulator.errors import EntraError
from emulator.state import Tenant
from emulator.teams.http import TeamsRoute, base_url, tenant_of
from emulator.teams.state import (
    BOT_FRAMEWORK_AUDIENCE,
    BOT_FRAMEWORK_SCOPE,
    BOT_FRAMEWORK_TENANT,
    BOT_FRAMEWORK_TENANT_ID,
    TEAMS_CHANNEL_ID,
    teams_state,
)
from emulator.tokens import ACCESS_TOKEN_LIFETIME_S, KeySet, app_access_token_claims, graph_issuer

ISSUER_PATH = "/botframework"
OPENID_METADATA_PATH = f"{ISSUER_PATH}/v1/.well-known/openidconfiguration"
JWKS_PATH = f"{ISSUER_PATH}/v1/.well-known/keys"
CHANNEL_TOKEN_LIFETIME_S = 3600

router = APIRouter(route_class=TeamsRoute)


def channel_issuer(base: str) -> str:
    return f"{base}{ISSUER_PATH}"


def token_endpoint(base: str, tenant_id: str) -> str:
    return f"{base}{ISSUER_PATH}/{tenant_id}/oauth2/v2.0/token"


def channel_token_claims(*, base: str, app_id: str, service_url: str, now: float | None = None) -> dict[str, Any]:
    """The claims of the JWT the channel attaches to an activity it delivers to a bot."""
    issued = int(now if now is not None else time.time())
    return {
        "serviceurl": service_url,
        "nbf": issued - 5,
        "exp": issued + CHANNEL_TOKEN_LIFETIME_S,
        "iss": channel_issuer(base),
        "aud": app_id,
    }


def channel_jwks(keys: KeySet) -> dict[str, Any]:
    published = keys.jwks()
    for key in published["keys"]:
        key["endorsements"] = [TEAMS_CHANNEL_ID]
    return published


def connector_token_issuers(tenant: Tenant) -> frozenset[str]:
    """Issuers whose Entra tokens the connector accepts: the bot's own tenant, and the Bot Framework tenant."""
    return frozenset(
        {
            graph_issuer(tenant.tenant_id),
            f"https://login.microsoftonline.com/{tenant.tenant_id}/v2.0",
            graph_issuer(BOT_FRAMEWORK_TENANT_ID),
            f"https://login.microsoftonline.com/{BOT_FRAMEWORK_TENANT_ID}/v2.0",
        }
    )


@router.get(OPENID_METADATA_PATH)
async def openid_metadata(request: Request) -> JSONResponse:
    base = base_url(request)
    return JSONResponse(
        {
            "issuer": channel_issuer(base),
            # Microsoft publishes a deliberately unusable authorization endpoint: the channel never signs users in.
            "authorization_endpoint": "https://invalid.botframework.com",
            "jwks_uri": f"{base}{JWKS_PATH}",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }
    )


@router.get(JWKS_PATH)
async def keys(request: Request) -> JSONResponse:
    state = teams_state(tenant_of(request))
    return JSONResponse(channel_jwks(state.channel_keys))


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
    """client_id/client_secret from the form, or from HTTP Basic as RFC 6749 allows."""
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() == "basic" and encoded:
        try:
            client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise EntraError(401, "invalid_client", 7000216, "The Authorization header is malformed.") from None
        return client_id, secret
    return form.get("client_id"), form.get("client_secret")


@router.post(f"{ISSUER_PATH}/{{tenant}}/oauth2/v2.0/token")
async def bot_token(tenant: str, request: Request) -> JSONResponse:
    emulated = tenant_of(request)
    if tenant.lower() not in {emulated.tenant_id, emulated.domain.lower(), BOT_FRAMEWORK_TENANT}:
        raise EntraError(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
    raw = (await request.body()).decode("utf-8", errors="replace")
    form = {key: values[0] for key, values in parse_qs(raw, keep_blank_values=True).items()}
    grant_type = form.get("grant_type")
    if not grant_type:
        raise EntraError(
            400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."
        )
    if grant_type != "client_credentials":
        raise EntraError(
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant_type}'.",
        )
    client_id, secret = _client_credentials(request, form)
    if not client_id:
        raise EntraError(
            400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'."
        )
    scope = form.get("scope")
    if not scope:
        raise EntraError(
            400, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'."
        )
    state = teams_state(emulated)
    if client_id != state.bot.app_id:
        raise EntraError(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. "
            "This can happen if the application has not been installed by the administrator of the tenant.",
        )
    if not secret:
        raise EntraError(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    if not hmac.compare_digest(secret.encode(), state.bot.secret.encode()):
        raise EntraError(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
            f"value, not the client secret ID, for a secret added to app '{client_id}'.",
        )
    if scope.split() != [BOT_FRAMEWORK_SCOPE]:
        raise EntraError(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value "
            f"with /.default suffixed to the resource identifier (application ID URI); this issuer serves "
            f"only {BOT_FRAMEWORK_SCOPE}.",
        )
    issuing_tenant = BOT_FRAMEWORK_TENANT_ID if tenant.lower() == BOT_FRAMEWORK_TENANT else emulated.tenant_id
    registration = emulated.apps.get(client_id)
    claims = app_access_token_claims(
        tenant_id=issuing_tenant,
        client_id=client_id,
        app_object_id=registration.object_id if registration else client_id,
        roles=[],
        audience=BOT_FRAMEWORK_AUDIENCE,
    )
    return JSONResponse(
        {
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME_S,
            "ext_expires_in": ACCESS_TOKEN_LIFETIME_S,
            "access_token": emulated.keys.sign(claims),
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )
