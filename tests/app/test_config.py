import os
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.config import Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
REAL = {
    "tenant_id": "6f1d3c8e-2b7a-4e55-9a0c-1d2e3f405162",
    "client_id": "0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b",
    "client_secret": "s3cr3t-from-the-vault",
}


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Neither the developer's shell nor a .env in the working directory may leak into these tests.
    for name in [name for name in os.environ if name.startswith("STEWARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_defaults_are_valid_for_development() -> None:
    current = settings()
    assert current.env == "development"
    assert current.database_url == "sqlite+aiosqlite:///./steward.db"
    assert current.graph_base_url == "https://graph.microsoft.com/v1.0"
    assert current.graph_allowed_hosts == ["graph.microsoft.com"]


@pytest.mark.parametrize("env", ["development", "testing"])
def test_placeholders_are_accepted_while_developing(env: str) -> None:
    current = settings(env=env, tenant_id="00000000-0000-0000-0000-000000000000", client_secret="changethis")
    assert current.client_secret.get_secret_value() == "changethis"


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"tenant_id": ""}, "tenant_id"),
        ({"tenant_id": "00000000-0000-0000-0000-000000000000"}, "tenant_id"),
        ({"client_id": "changethis"}, "client_id"),
        ({"client_secret": "changethis"}, "no credential"),
        ({"client_secret": ""}, "no credential"),
    ],
)
def test_production_refuses_placeholders(override: dict[str, str], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        settings(env="production", **(REAL | override))


def test_production_accepts_real_values() -> None:
    assert settings(env="production", **REAL).env == "production"


def test_production_accepts_a_certificate_instead_of_a_secret(tmp_path: Path) -> None:
    certificate = tmp_path / "steward.pem"
    certificate.write_text("placeholder: the file is only opened when signing in")
    current = settings(env="production", **(REAL | {"client_secret": ""}), client_certificate_path=str(certificate))
    assert current.client_certificate_path == certificate


def test_secret_and_certificate_together_are_refused(tmp_path: Path) -> None:
    certificate = tmp_path / "steward.pfx"
    certificate.write_bytes(b"\0")
    with pytest.raises(ValidationError, match="either client_secret or client_certificate_path"):
        settings(client_secret="s", client_certificate_path=str(certificate))


def test_secret_is_not_shown_in_repr() -> None:
    assert "s3cr3t" not in repr(settings(**REAL))


@pytest.mark.parametrize("field", ["graph_base_url", "authority_host"])
@pytest.mark.parametrize("url", ["http://graph.example.com/v1.0", "ftp://example.com", "graph.microsoft.com"])
def test_endpoints_must_be_https(field: str, url: str) -> None:
    with pytest.raises(ValidationError, match="https"):
        settings(**{field: url}, graph_allowed_hosts=["graph.example.com", "graph.microsoft.com"])


def test_graph_base_url_loses_its_trailing_slash() -> None:
    assert settings(graph_base_url="https://graph.microsoft.com/v1.0/").graph_base_url == (
        "https://graph.microsoft.com/v1.0"
    )


@pytest.mark.parametrize("field", ["client_certificate_path", "ca_bundle"])
def test_missing_files_are_refused(field: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="file not found"):
        settings(**{field: str(tmp_path / "absent.pem")})


def test_certificate_must_be_pem_or_pfx(tmp_path: Path) -> None:
    key = tmp_path / "steward.key"
    key.write_text("x")
    with pytest.raises(ValidationError, match=r"\.pem, \.pfx or \.p12"):
        settings(client_certificate_path=str(key))


def test_allowed_hosts_are_read_comma_separated_and_must_cover_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_GRAPH_BASE_URL", "https://127.0.0.1:8443/v1.0")
    monkeypatch.setenv("STEWARD_GRAPH_ALLOWED_HOSTS", "127.0.0.1, Graph.Microsoft.com")
    assert settings().graph_allowed_hosts == ["127.0.0.1", "graph.microsoft.com"]
    monkeypatch.setenv("STEWARD_GRAPH_ALLOWED_HOSTS", "graph.microsoft.com")
    with pytest.raises(ValidationError, match="must include the host of graph_base_url"):
        settings()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://root@db.example.com:5432/steward", "postgresql+asyncpg://root@db.example.com:5432/steward"),
        ("sqlite:///./x.db", "sqlite+aiosqlite:///./x.db"),
    ],
)
def test_database_url_gets_the_async_driver(url: str, expected: str) -> None:
    assert settings(database_url=url).database_url == expected


@pytest.mark.parametrize("url", ["mysql://db.example.com/steward", "postgresql+psycopg2://h/d", "not a url"])
def test_unsupported_databases_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="database|backend|driver"):
        settings(database_url=url)


def test_every_field_is_documented_in_env_example() -> None:
    assignment = re.compile(r"^#?\s*STEWARD_([A-Z0-9_]+)=")
    explained: dict[str, bool] = {}
    previous = ""
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := assignment.match(line):
            # The first mention of a variable must follow a comment that explains it.
            is_explanation = previous.startswith("#") and not assignment.match(previous)
            explained.setdefault(match.group(1), is_explanation)
        previous = line
    fields = {name.upper() for name in Settings.model_fields}
    assert [name for name, info in Settings.model_fields.items() if not info.description] == []
    assert fields - explained.keys() == set(), "add these to .env.example"
    assert explained.keys() - fields == set(), "these in .env.example are not settings"
    assert [name for name, ok in explained.items() if not ok] == [], "explain these with a comment"


def test_env_example_loads_as_development_settings() -> None:
    current = Settings(_env_file=ENV_EXAMPLE)
    assert current.env == "development"
    assert current.tenant_id == "00000000-0000-0000-0000-000000000000"


def test_validation_errors_do_not_quote_secrets() -> None:
    with pytest.raises(ValidationError) as raised:
        settings(env="production", **(REAL | {"tenant_id": ""}))
    assert "s3cr3t-from-the-vault" not in str(raised.value)
