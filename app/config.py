"""Steward's settings: one validated class, read from STEWARD_* environment variables (and .env)."""

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

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        return to_async_url(value)

    @field_validator("authority_host", "graph_base_url")
    @classmethod
    def _https_only(cls, value: str, info: ValidationInfo) -> str:
        return _require_https(value, info.field_name or "url")

    @field_validator("graph_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [host.strip().lower() for host in value.split(",") if host.strip()]
        return value

    @field_validator("client_certificate_path", "ca_bundle")
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
