"""Steward's settings: one validated class, read from STEWARD_* environment variables (and .env)."""

import base64
import binascii
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.db.url import to_async_url

Environment = Literal["development", "testing", "production"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

# Values copied from .env.example or left empty: accepted while developing, refused in production so a
# half-configured deployment fails at start instead of at its first Graph call.
PLACEHOLDERS = frozenset({"", "changethis", "00000000-0000-0000-0000-000000000000"})
CERTIFICATE_SUFFIXES = frozenset({".pem", ".pfx", ".p12"})
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


def is_standard_webhook_secret(value: str) -> bool:
    """whsec_ + base64 of 24 to 64 bytes, as the Standard Webhooks spec serialises symmetric secrets."""
    if not value.startswith(WEBHOOK_SECRET_PREFIX):
        return False
    try:
        key = base64.b64decode(value.removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)
    except binascii.Error:
        return False
    return 24 <= len(key) <= 64


def _require_https(value: str, field: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"{field} must be an https:// URL with a host, got {value!r}")
    return value.rstrip("/")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STEWARD_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # Validation errors would otherwise quote the offending input, secrets included.
        hide_input_in_errors=True,
    )

    env: Environment = Field(
        default="development",
        description="Deployment mode. 'production' refuses placeholder or missing credentials.",
    )
    database_url: str = Field(
        default="sqlite+aiosqlite:///./steward.db",
        description="SQLAlchemy URL of the store. SQLite (aiosqlite) or PostgreSQL; "
        "postgresql:// is rewritten to postgresql+asyncpg://.",
    )
    tenant_id: str = Field(default="", description="Entra ID tenant (directory) id that Steward manages.")
    client_id: str = Field(default="", description="Application (client) id of Steward's app registration.")
    client_secret: SecretStr = Field(
        default=SecretStr(""),
        description="Client secret of the app registration. Leave empty when a certificate is configured.",
    )
    client_certificate_path: Path | None = Field(
        default=None,
        description="Certificate credential: a .pem file holding the private key and certificate, "
        "or a .pfx/.p12 file. Preferred over a client secret in production.",
    )
    client_certificate_password: SecretStr | None = Field(
        default=None, description="Password of the certificate's private key, if it is encrypted."
    )
    authority_host: str = Field(
        default="https://login.microsoftonline.com",
        description="Entra ID authority host (https). The local tenant (emulator) prints its own.",
    )
    graph_base_url: str = Field(
        default="https://graph.microsoft.com/v1.0",
        description="Microsoft Graph base URL including the version segment, without a trailing slash.",
    )
    graph_scope: str = Field(
        default="https://graph.microsoft.com/.default",
        description="Token scope requested with client credentials; always the Graph resource's /.default.",
    )
    ca_bundle: Path | None = Field(
        default=None,
        description="PEM CA bundle trusted for Entra ID and Graph calls instead of the system store "
        "(used for the local tenant's self-generated CA).",
    )
    graph_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default=["graph.microsoft.com"],
        description="Comma-separated hosts that may receive Steward's Graph token; paging and "
        "monitor URLs pointing elsewhere are refused.",
    )
    log_level: LogLevel = Field(default="INFO", description="Root log level.")
    http_timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="Timeout in seconds for each outbound HTTP request."
    )
    user_agent: str = Field(
        default="ISV|Steward|Steward/0.1.0",
        min_length=1,
        description="User-Agent sent to Graph; Microsoft asks ISVs to decorate traffic as ISV|Company|App/Version.",
    )
    # Deletion, approvals and Teams (app/plans, app/approvals, app/teams, app/disposal, jobs/) --------------
    policy_path: Path | None = Field(default=None, description="Policy YAML file; the embedded default when unset.")
    public_base_url: str = Field(
        default="https://localhost:8000",
        description="https URL where people reach Steward's web pages (plan review links in Teams cards).",
    )
    approvers: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Comma-separated Entra object ids of the people allowed to approve deletion plans "
        "(the approvers group); they must also hold Steward.Approver when approving on the web.",
    )
    automation_owner: str = Field(
        default="",
        description="Entra object id of the person answerable for automated (inactivity) plans; "
        "like a requester, they cannot approve them.",
    )
    teams_bot_app_id: str = Field(
        default="", description="Azure Bot app id. Empty: no bot; cards go to the Workflows webhook instead."
    )
    teams_bot_app_secret: SecretStr = Field(default=SecretStr(""), description="Client secret of the bot's app.")
    teams_bot_token_endpoint: str = Field(
        default="",
        description=(
            "Token endpoint for the bot's client credentials; empty: <authority_host>/<tenant_id>/oauth2/v2.0/token."
        ),
    )
    teams_openid_metadata_url: str = Field(
        default="https://login.botframework.com/v1/.well-known/openidconfiguration",
        description="OpenID metadata of the Bot Framework channel that signs what Teams sends the bot.",
    )
    teams_channel_issuer: str = Field(
        default="https://api.botframework.com", description="Issuer of the channel's tokens (iss claim)."
    )
    teams_service_url: str = Field(
        default="https://smba.trafficmanager.net/teams",
        description="Bot Connector service URL for proactive messages (regional; Teams sends it with each activity).",
    )
    teams_channel_conversation_id: str = Field(
        default="", description="Conversation id of the Teams channel where approval cards are posted (19:...)."
    )
    teams_webhook_url: SecretStr = Field(
        default=SecretStr(""),
        description="Workflows 'When a Teams webhook request is received' URL, used when no bot is configured.",
    )
    notification_mailbox: str = Field(
        default="", description="Mailbox (UPN or object id) that sends deletion confirmations to customers."
    )
    audit_signing_key_path: Path | None = Field(
        default=None, description="Ed25519 private key (PEM) that signs audit checkpoints; unset: no checkpoints."
    )
    scheduler_tick_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Interval of the frequent scheduler jobs (outbox relay, execution, expiry), in seconds.",
    )
    scheduler_lease_s: float = Field(
        default=30.0, gt=0, le=600, description="Leader lease on SQLite: a dead leader is replaced after this long."
    )

    # API platform: bearer tokens, request limits, admin webhooks, logs (app/auth, app/webhooks, app/observability)
    api_audience: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Comma-separated audiences accepted in bearer tokens for Steward's API: the client id of the "
        "'Steward web' app registration and/or its Application ID URI (api://...). Empty: every API call is refused.",
    )
    api_issuer: str = Field(
        default="",
        description="Issuer accepted in API bearer tokens. Empty: derived as {authority_host}/{tenant_id}/v2.0.",
    )
    jwks_cache_ttl_s: float = Field(
        default=3600.0,
        gt=0,
        le=86_400,
        description="Seconds Entra ID's signing keys are cached; a token naming an unknown key refreshes sooner.",
    )
    max_request_body_bytes: int = Field(
        default=1_048_576, gt=0, description="Largest request body accepted, in bytes; larger ones get 413."
    )
    webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default=[],
        description="Comma-separated Standard Webhooks secrets (whsec_<base64>) accepted on admin webhooks; "
        "several during a rotation. Empty: admin webhooks are refused.",
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="json: one JSON object per line (production); text: for a terminal."
    )
    # Data map, classification and labeling (app/datamap, app/labeling, jobs/sync.py) -----------------------
    identifier_hash_key: SecretStr = Field(
        default=SecretStr(""),
        description="Secret key of the keyed hashes stored for identifiers found in content (tax codes, phones). "
        "Keep it stable: a new key makes stored findings unmatchable until items are read again. Required in "
        "production; empty in development uses a fixed development key.",
    )
    sync_discovery_interval_s: float = Field(
        default=3600.0,
        ge=0,
        description="Seconds between rediscovering mailboxes, mail folders, drives and guest accounts; in between, "
        "sync cycles send only delta requests.",
    )
    # Compelled disclosure, references, storage posture (app/disclosures, app/references, app/posture) ----------
    legal_approvers: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Comma-separated Entra object ids of the legal approvers who release compelled-disclosure "
        "exports (two distinct ones, never the person who took the demand in); they must also hold Steward.Legal.",
    )
    disclosure_objection_days: int = Field(
        default=7,
        ge=1,
        le=90,
        description="Default length of a disclosure's objection window, in days (never past the authority's deadline).",
    )
    disclosure_export_dir: Path = Field(
        default=Path("disclosure-exports"),
        description="Directory where disclosure packages are written; a package is removed when its demand closes.",
    )
    disclosure_contact_email: str = Field(
        default="",
        description="Address the disclosure notice tells customers to object to; empty: STEWARD_NOTIFICATION_MAILBOX.",
    )
    # Web UI (app/web): staff sign in with Entra ID (authorization code + PKCE) ---------------------------------
    web_client_id: str = Field(
        default="",
        description="Client id of the 'Steward web' app registration staff sign in to. Empty: nobody can sign in "
        "to the web pages.",
    )
    web_client_secret: SecretStr = Field(
        default=SecretStr(""),
        description="Client secret of the 'Steward web' app registration (a confidential client).",
    )
    web_redirect_uri: str = Field(
        default="",
        description="Reply URL registered on the web app registration; empty: {public_base_url}/auth/callback.",
    )
    session_secret: SecretStr = Field(
        default=SecretStr(""),
        description="Key that signs web session cookies (32+ random characters). Outside development a placeholder "
        "is refused once the web app is configured; empty in development: a new random key at each start.",
    )

    @field_validator("legal_approvers", mode="before")
    @classmethod
    def _split_object_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip().lower() for item in value.split(",") if item.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        return to_async_url(value)

    @field_validator(
        "authority_host", "graph_base_url", "teams_openid_metadata_url", "teams_channel_issuer", "teams_service_url"
    )
    @classmethod
    def _https_only(cls, value: str, info: ValidationInfo) -> str:
        return _require_https(value, info.field_name or "url")

    @field_validator("public_base_url")
    @classmethod
    def _public_https(cls, value: str) -> str:
        return _require_https(value, "public_base_url")

    @field_validator("graph_allowed_hosts", "approvers", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [host.strip().lower() for host in value.split(",") if host.strip()]
        return value

    @field_validator("client_certificate_path", "ca_bundle", "policy_path", "audit_signing_key_path")
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file not found: {value}")
        return value

    @field_validator("client_certificate_path")
    @classmethod
    def _certificate_format(cls, value: Path | None) -> Path | None:
        if value is not None and value.suffix.lower() not in CERTIFICATE_SUFFIXES:
            raise ValueError("client certificate must be a .pem, .pfx or .p12 file")
        return value

    @field_validator("api_audience", "webhook_secrets", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("webhook_secrets")
    @classmethod
    def _standard_webhook_secrets(cls, value: list[SecretStr]) -> list[SecretStr]:
        for index, secret in enumerate(value):
            # The message names the position only: the value is a secret.
            if not is_standard_webhook_secret(secret.get_secret_value()):
                raise ValueError(
                    f"webhook secret #{index + 1} is not 'whsec_' followed by base64 of 24 to 64 random bytes"
                )
        return value

    @model_validator(mode="after")
    def _derive_api_issuer(self) -> Self:
        if not self.api_issuer and self.tenant_id:
            self.api_issuer = f"{self.authority_host}/{self.tenant_id}/v2.0"
        return self

    @model_validator(mode="after")
    def _web_sign_in(self) -> Self:
        if not self.web_redirect_uri:
            self.web_redirect_uri = f"{self.public_base_url}/auth/callback"
        elif urlsplit(self.web_redirect_uri).scheme != "https" and urlsplit(self.web_redirect_uri).hostname not in (
            "localhost",
            "127.0.0.1",
        ):
            raise ValueError("web_redirect_uri must be https:// (plain http only for localhost)")
        secret = self.session_secret.get_secret_value()
        if self.web_client_id and self.env != "development" and (secret in PLACEHOLDERS or len(secret) < 32):
            # A guessable key lets anyone forge a session, roles included.
            raise ValueError("session_secret is missing, a placeholder or shorter than 32 characters")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        graph_host = urlsplit(self.graph_base_url).hostname
        if graph_host not in self.graph_allowed_hosts:
            # The Graph SDK silently drops the Authorization header for hosts outside this list.
            raise ValueError(f"graph_allowed_hosts must include the host of graph_base_url ({graph_host})")
        secret = self.client_secret.get_secret_value()
        if secret and self.client_certificate_path is not None:
            raise ValueError("set either client_secret or client_certificate_path, not both")
        if self.env == "production":
            self._refuse_placeholders(secret)
        return self

    def _refuse_placeholders(self, secret: str) -> None:
        for name in ("tenant_id", "client_id"):
            if getattr(self, name) in PLACEHOLDERS:
                raise ValueError(f"{name} is missing or a placeholder; set STEWARD_{name.upper()}")
        if self.client_certificate_path is None and secret in PLACEHOLDERS:
            raise ValueError("no credential: set STEWARD_CLIENT_CERTIFICATE_PATH or a real STEWARD_CLIENT_SECRET")


@lru_cache
def get_settings() -> Settings:
    return Settings()
