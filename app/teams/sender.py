"""Outbound to Teams: the bot posting through the Bot Connector, or the Workflows webhook when there is no bot.

The bot's token comes from client credentials at the configured token endpoint (Entra's in production); the
Teams SDK's own MSAL path would first call login.microsoftonline.com for instance discovery, which an
offline deployment or the local tenant cannot answer (teams-notes.md, pitfall 17). Everything else is the
Teams SDK's ApiClient. The same code serves production and the local tenant; only settings differ.
The SDK's HTTP clients trust the system store, or the bundle SSL_CERT_FILE names (as for a local tenant's CA).
"""

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from app.config import Settings

BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"
# Renew this long before the token expires, so a token never dies mid-request.
TOKEN_MARGIN_S = 300


class TeamsError(Exception):
    """Teams (connector, token endpoint or webhook) refused or failed; worth retrying later."""


def _verify(settings: Settings) -> str | bool:
    return str(settings.ca_bundle) if settings.ca_bundle else True


def bot_token_endpoint(settings: Settings) -> str:
    return settings.teams_bot_token_endpoint or f"{settings.authority_host}/{settings.tenant_id}/oauth2/v2.0/token"


class BotToken:
    """Client-credentials tokens for the bot, cached until shortly before they expire."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def __call__(self, scope: str | list[str] | None = None, tenant_id: str | None = None) -> str:
        async with self._lock:
            if self._token is None or time.monotonic() >= self._expires:
                await self._fetch()
            assert self._token is not None
            return self._token

    async def _fetch(self) -> None:
        settings = self._settings
        form = {
            "grant_type": "client_credentials",
            "client_id": settings.teams_bot_app_id,
            "client_secret": settings.teams_bot_app_secret.get_secret_value(),
            "scope": BOT_FRAMEWORK_SCOPE,
        }
        try:
            async with httpx.AsyncClient(verify=_verify(settings), timeout=settings.http_timeout_s) as client:
                response = await client.post(bot_token_endpoint(settings), data=form)
        except httpx.HTTPError as exc:
            raise TeamsError(f"bot token endpoint unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            # Entra's error body names the problem without echoing the secret.
            raise TeamsError(f"bot token refused: HTTP {response.status_code} {response.text[:300]}")
        body = response.json()
        self._token = str(body["access_token"])
        self._expires = time.monotonic() + max(60, int(body.get("expires_in", 3600)) - TOKEN_MARGIN_S)


@dataclass(frozen=True, slots=True)
class Posted:
    conversation_id: str
    activity_id: str | None  # None for a webhook post: Workflows returns no message id


class CardSender(Protocol):
    async def post(self, card: dict[str, Any]) -> Posted: ...

    async def update(self, conversation_id: str, activity_id: str, card: dict[str, Any]) -> None: ...

    async def reply(self, conversation_id: str, activity_id: str | None, text: str) -> None: ...

    async def aclose(self) -> None: ...


def bot_configured(settings: Settings) -> bool:
    return bool(settings.teams_bot_app_id and settings.teams_channel_conversation_id)


class BotSender:
    """Posts and updates cards in the approvals channel as the bot (proactive messages)."""

    mode = "bot"

    def __init__(self, settings: Settings) -> None:
        from microsoft_teams.api import ApiClient
        from microsoft_teams.api.auth.cloud_environment import PUBLIC, with_overrides
        from microsoft_teams.common import ClientOptions

        self._settings = settings
        self._conversation_id = settings.teams_channel_conversation_id
        cloud = with_overrides(
            PUBLIC,
            openid_metadata_url=settings.teams_openid_metadata_url,
            token_issuer=settings.teams_channel_issuer,
        )
        self._api = ApiClient(
            settings.teams_service_url,
            ClientOptions(token=BotToken(settings), timeout=settings.http_timeout_s, headers={"Connection": "close"}),
            cloud=cloud,
        )

    def _activity(self, card: dict[str, Any]) -> Any:
        from microsoft_teams.api.activities.message.message import MessageActivityInput
        from microsoft_teams.api.models.attachment.attachment import Attachment

        return MessageActivityInput(
            attachments=[Attachment(content_type="application/vnd.microsoft.card.adaptive", content=card)]
        )

    async def post(self, card: dict[str, Any]) -> Posted:
        try:
            sent = await self._api.conversations.activities(self._conversation_id).create(self._activity(card))
        except TeamsError:
            raise
        except Exception as exc:  # the SDK raises httpx and its own errors; all mean "not posted"
            raise TeamsError(f"posting the card failed ({type(exc).__name__}: {exc})") from None
        return Posted(self._conversation_id, sent.id)

    async def update(self, conversation_id: str, activity_id: str, card: dict[str, Any]) -> None:
        try:
            await self._api.conversations.activities(conversation_id).update(activity_id, self._activity(card))
        except TeamsError:
            raise
        except Exception as exc:
            raise TeamsError(f"updating the card failed ({type(exc).__name__}: {exc})") from None

    async def reply(self, conversation_id: str, activity_id: str | None, text: str) -> None:
        from microsoft_teams.api.activities.message.message import MessageActivityInput

        activities = self._api.conversations.activities(conversation_id)
        try:
            if activity_id:
                await activities.reply(activity_id, MessageActivityInput(text=text))
            else:
                await activities.create(MessageActivityInput(text=text))
        except TeamsError:
            raise
        except Exception as exc:
            raise TeamsError(f"posting the reminder failed ({type(exc).__name__}: {exc})") from None

    async def aclose(self) -> None:
        return None


class WebhookSender:
    """Posts cards to a Workflows 'When a Teams webhook request is received' URL (links only, no updates)."""

    mode = "webhook"

    def __init__(self, settings: Settings) -> None:
        self._url = settings.teams_webhook_url.get_secret_value()
        self._client = httpx.AsyncClient(verify=_verify(settings), timeout=settings.http_timeout_s)

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            response = await self._client.post(self._url, json=message)
        except httpx.HTTPError as exc:
            raise TeamsError(f"the Workflows webhook is unreachable ({type(exc).__name__})") from None
        if response.status_code not in (200, 202):
            raise TeamsError(f"the Workflows webhook answered HTTP {response.status_code}")

    async def post(self, card: dict[str, Any]) -> Posted:
        from app.teams.cards import message_activity

        await self._send(message_activity(card))
        return Posted("webhook", None)

    async def update(self, conversation_id: str, activity_id: str, card: dict[str, Any]) -> None:
        # A flow-bot post cannot be edited; the next post carries the new state.
        await self.post(card)

    async def reply(self, conversation_id: str, activity_id: str | None, text: str) -> None:
        from app.teams.cards import message_activity, notice_card

        card = notice_card("Steward", text)
        card["version"] = "1.4"
        await self._send(message_activity(card))

    async def aclose(self) -> None:
        await self._client.aclose()


def card_sender(settings: Settings) -> CardSender | None:
    """The bot when one is configured, else the Workflows webhook, else nothing (cards wait in the outbox)."""
    if bot_configured(settings):
        return BotSender(settings)
    if settings.teams_webhook_url.get_secret_value():
        return WebhookSender(settings)
    return None
