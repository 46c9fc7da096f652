import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app import cli
from app.config import get_settings


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in [name for name in os.environ if name.startswith("STEWARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no developer .env
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_db_upgrade_migrates_the_configured_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    database = tmp_path / "steward.db"
    monkeypatch.setenv("STEWARD_DATABASE_URL", f"sqlite:///{database}")
    result = CliRunner().invoke(cli.app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"customer", "sync_cursor", "audit_record", "alembic_version"} <= tables


def test_invalid_settings_exit_2_without_a_traceback_or_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_ENV", "production")
    monkeypatch.setenv("STEWARD_CLIENT_SECRET", "s3cr3t-from-the-vault")
    result = CliRunner().invoke(cli.app, ["db", "upgrade"])
    assert result.exit_code == 2
    assert "STEWARD_TENANT_ID" in result.output or "tenant_id" in result.output
    assert "s3cr3t-from-the-vault" not in result.output
    assert "Traceback" not in result.output


def test_emulator_serve_hands_every_argument_to_the_emulator_process(monkeypatch: pytest.MonkeyPatch) -> None:
    executed: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(os, "execv", lambda path, argv: executed.append((path, argv)))
    arguments = ["--port", "8443", "--seed", "3", "--json", "--help", "--unknown-flag"]
    result = CliRunner().invoke(cli.app, ["emulator", "serve", *arguments])
    assert result.exit_code == 0, result.output
    assert executed == [(sys.executable, [sys.executable, "-m", "emulator", "serve", *arguments])]


def test_policy_check_names_the_line_of_a_bad_key(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("retention:\n  inactivity_monthz: 12\n", encoding="utf-8")
    result = CliRunner().invoke(cli.app, ["policy", "check", str(policy)])
    assert result.exit_code == 1
    assert f"{policy}:2:3" in result.output
    assert "inactivity_months" in result.output  # the suggestion


def test_policy_check_accepts_the_shipped_policy() -> None:
    shipped = Path(cli.__file__).parent / "policy" / "default.yaml"
    result = CliRunner().invoke(cli.app, ["policy", "check", str(shipped)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output
