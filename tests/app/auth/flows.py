"""Signing in to the local tenant the way the web UI will: authorization code + PKCE, driven with httpx."""

import base64
import hashlib
import re
import secrets
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx

from emulator.server import Endpoints

REDIRECT_URI = "http://localhost:8765/auth/callback"
_HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def _pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def sign_in(endpoints: Endpoints, username: str, password: str, *, scope: str = "openid profile") -> str:
    """An access token for Steward's API, obtained through the emulator's real sign-in page."""
    verifier, challenge = _pkce_pair()
    state = secrets.token_urlsafe(16)
    authorize = f"{endpoints.authority}/oauth2/v2.0/authorize"
    async with httpx.AsyncClient(verify=endpoints.ca_bundle, follow_redirects=False) as http:
        page = await http.get(
            authorize,
            params={
                "client_id": endpoints.web_client_id,
                "response_type": "code",
                "redirect_uri": REDIRECT_URI,
                "scope": scope,
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        )
        assert page.status_code == 200, page.text
        form = {name: unescape(value) for name, value in _HIDDEN_INPUT.findall(page.text)}
        submitted = await http.post(authorize, data={**form, "username": username, "password": password})
        assert submitted.status_code == 302, submitted.text
        query = parse_qs(urlsplit(submitted.headers["location"]).query)
        assert query["state"] == [state]
        token = await http.post(
            f"{endpoints.authority}/oauth2/v2.0/token",
            data={
                "grant_type": "authorization_code",
                "client_id": endpoints.web_client_id,
                "client_secret": endpoints.web_client_secret,
                "code": query["code"][0],
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
        )
        assert token.status_code == 200, token.text
        access_token: str = token.json()["access_token"]
        return access_token


async def client_credentials(endpoints: Endpoints, scope: str) -> str:
    """An app-only token for Steward's daemon app registration."""
    async with httpx.AsyncClient(verify=endpoints.ca_bundle) as http:
        response = await http.post(
            f"{endpoints.authority}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": endpoints.client_id,
                "client_secret": endpoints.client_secret,
                "scope": scope,
            },
        )
        assert response.status_code == 200, response.text
        access_token: str = response.json()["access_token"]
        return access_token
