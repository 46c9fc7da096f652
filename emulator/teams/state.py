"""What the emulated Teams side remembers: the bot registration, the approvals team, conversations, webhooks.

The state is seeded on first use from the tenant's seed (so ids are stable for a given --seed) and kept in
`tenant.extra`, because nothing outside this package needs it. Member lists are not copied: a channel's roster
is the tenant's staff at the moment of asking, as a team backed by an "all staff" group would be.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from emulator.state import AppRegistration, Tenant, User, seeded_uuid
from emulator.tokens import KeySet, b64url

STATE_KEY = "teams"
TEAMS_CHANNEL_ID = "msteams"
BOT_FRAMEWORK_AUDIENCE = "https://api.botframework.com"
BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"
# The Bot Framework's own Entra tenant: multi-tenant bots get their connector tokens from it.
BOT_FRAMEWORK_TENANT = "botframework.com"
BOT_FRAMEWORK_TENANT_ID = "d6d49420-f39b-4df7-a1dc-d59a935871db"
ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
APPROVALS_CHANNEL_NAME = "Steward approvals"


def utc_timestamp(dt: datetime) -> str:
    """Bot Framework timestamps carry fractional seconds (Graph's `iso` drops them)."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class BotRegistration:
    """An Azure Bot resource: its Entra app id and secret, and where the channel delivers activities."""

    app_id: str
    secret: str
    name: str
    messaging_endpoint: str | None = None
    ca_bundle: str | None = None  # the CA the emulator trusts when it calls the messaging endpoint

    @property
    def account_id(self) -> str:
        return f"28:{self.app_id}"


@dataclass(slots=True)
class StoredActivity:
    id: str
    conversation_id: str  # the base conversation (a channel id never carries ";messageid=" here)
    thread_root_id: str | None
    reply_to_id: str | None
    sender_app_id: str
    created: datetime
    body: dict[str, Any]
    modified: datetime | None = None
    revision: int = 1
    deleted: bool = False

    def as_control(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "thread_root_id": self.thread_root_id,
            "reply_to_id": self.reply_to_id,
            "sender_app_id": self.sender_app_id,
            "created": utc_timestamp(self.created),
            "modified": utc_timestamp(self.modified) if self.modified else None,
            "revision": self.revision,
            "deleted": self.deleted,
            "activity": self.body,
        }


@dataclass(slots=True)
class Conversation:
    id: str
    conversation_type: str  # "channel" | "personal"
    name: str | None
    team_id: str | None = None
    # personal chats: the one user; None means the team's roster (all staff)
    member_user_ids: list[str] | None = None
    activities: dict[str, StoredActivity] = field(default_factory=dict)

    def has_member(self, user: User) -> bool:
        if self.member_user_ids is None:
            return user.user_type == "Member" and user.account_enabled
        return user.id in self.member_user_ids

    def members(self, tenant: Tenant) -> list[User]:
        if self.member_user_ids is None:
            return [u for u in tenant.staff if u.account_enabled]
        return [u for uid in self.member_user_ids if (u := tenant.users.get(uid)) is not None]


@dataclass(slots=True)
class WorkflowPost:
    """One accepted call of a Workflows webhook, and the cards the flow posted to the channel."""

    run_id: str
    workflow_id: str
    received: datetime
    cards: list[dict[str, Any]]
    warnings: list[str]

    def as_control(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "workflow_id": self.workflow_id,
            "received": utc_timestamp(self.received),
            "cards": self.cards,
            "warnings": self.warnings,
        }


@dataclass(slots=True)
class Workflow:
    """A Power Automate flow started by "When a Teams webhook request is received", posting to a channel."""

    id: str
    name: str
    signing_key: bytes
    channel_id: str
    owner_user_id: str | None
    posts: list[WorkflowPost] = field(default_factory=list)

    def signature(self, permissions: str, version: str) -> str:
        message = f"{self.id}\n{permissions}\n{version}".encode()
        return b64url(hmac.new(self.signing_key, message, hashlib.sha256).digest())


@dataclass(slots=True)
class InvokeRecord:
    at: datetime
    user_id: str
    conversation_id: str
    activity_id: str | None
    verb: str
    forge: str | None
    endpoint: str
    status: int | None
    response: Any

    def as_control(self) -> dict[str, Any]:
        return {
            "at": utc_timestamp(self.at),
            "user_id": self.user_id,
            "conversation_id": self.conversation_id,
            "activity_id": self.activity_id,
            "verb": self.verb,
            "forge": self.forge,
            "endpoint": self.endpoint,
            "status": self.status,
            "response": self.response,
        }


@dataclass
class TeamsState:
    bot: BotRegistration
    team_id: str  # a team's id is its General channel's conversation id
    team_group_id: str
    team_name: str
    channel_id: str
    conversations: dict[str, Conversation]
    workflows: dict[str, Workflow]
    rng: random.Random
    invokes: list[InvokeRecord] = field(default_factory=list)
    _channel_keys: KeySet | None = None
    _last_activity_ms: int = 0

    @property
    def channel_keys(self) -> KeySet:
        """The channel's (login.botframework.com's) signing keys; made on first use since RSA keys take time."""
        if self._channel_keys is None:
            self._channel_keys = KeySet()
        return self._channel_keys

    def next_activity_id(self) -> str:
        """Teams message ids are the post time in epoch milliseconds; kept strictly increasing here."""
        self._last_activity_ms = max(int(time.time() * 1000), self._last_activity_ms + 1)
        return str(self._last_activity_ms)

    def new_workflow(self, name: str, channel_id: str, owner_user_id: str | None) -> Workflow:
        workflow = Workflow(
            id=f"{self.rng.getrandbits(128):032x}",
            name=name,
            signing_key=self.rng.getrandbits(256).to_bytes(32, "big"),
            channel_id=channel_id,
            owner_user_id=owner_user_id,
        )
        self.workflows[workflow.id] = workflow
        return workflow


_seed_lock = threading.Lock()


def thread_id(rng: random.Random) -> str:
    return f"19:{rng.getrandbits(128):032x}@thread.tacv2"


def teams_user_id(tenant: Tenant, user_id: str) -> str:
    """The opaque, per-tenant "29:" id Teams gives a user in bot conversations (stable for a user)."""
    digest = hashlib.sha256(f"{tenant.tenant_id}:{user_id}".encode()).digest()
    return "29:1" + b64url(digest + digest[:12])


def personal_conversation_id(bot: BotRegistration, user_id: str) -> str:
    digest = hashlib.sha256(f"{bot.app_id}:{user_id}".encode()).digest()
    return "a:1" + b64url(digest + digest[:16])


def teams_state(tenant: Tenant) -> TeamsState:
    """The tenant's Teams side, seeded deterministically from the tenant's seed on first use."""
    existing = tenant.extra.get(STATE_KEY)
    if isinstance(existing, TeamsState):
        return existing
    with _seed_lock:
        existing = tenant.extra.get(STATE_KEY)
        if isinstance(existing, TeamsState):
            return existing
        state = _seed(tenant)
        tenant.extra[STATE_KEY] = state
        return state


def _seed(tenant: Tenant) -> TeamsState:
    rng = random.Random(f"{tenant.seed}:teams")
    bot = BotRegistration(
        app_id=seeded_uuid(rng),
        secret=f"bot~{seeded_uuid(rng).replace('-', '')}",
        name="Steward",
    )
    # The bot is an Entra app registration like any other, so the tenant's token endpoint knows it too.
    with tenant.lock:
        tenant.apps.setdefault(
            bot.app_id,
            AppRegistration(
                client_id=bot.app_id,
                object_id=seeded_uuid(rng),
                display_name="Steward approvals bot",
                secrets=[bot.secret],
            ),
        )
    team_id = thread_id(rng)
    channel_id = thread_id(rng)
    state = TeamsState(
        bot=bot,
        team_id=team_id,
        team_group_id=seeded_uuid(rng),
        team_name="Steward",
        channel_id=channel_id,
        conversations={
            team_id: Conversation(id=team_id, conversation_type="channel", name="General", team_id=team_id),
            channel_id: Conversation(
                id=channel_id, conversation_type="channel", name=APPROVALS_CHANNEL_NAME, team_id=team_id
            ),
        },
        workflows={},
        rng=rng,
    )
    staff = tenant.staff
    state.new_workflow("Steward notifications", channel_id, staff[0].id if staff else None)
    return state
