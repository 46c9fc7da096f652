"""`steward customers import FILE`."""

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app import cli
from app.config import get_settings
from app.db.migrate import upgrade
from emulator.seed import SeedConfig, build_tenant, write_registry

SEED = SeedConfig(seed=9, customers=4, staff=1, threads_per_customer=0, files_per_customer=0)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    for name in [name for name in os.environ if name.startswith("STEWARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no developer .env
    database = tmp_path / "steward.db"
    monkeypatch.setenv("STEWARD_DATABASE_URL", f"sqlite:///{database}")
    get_settings.cache_clear()
    upgrade(get_settings().database_url)
    yield database
    get_settings.cache_clear()


def test_importing_the_seed_registry_twice_creates_then_changes_nothing(store: Path, tmp_path: Path) -> None:
    files = write_registry(build_tenant(SEED), tmp_path / "registry")
    first = CliRunner().invoke(cli.app, ["customers", "import", str(files["json"]), "--json"])
    assert first.exit_code == 0, first.output
    assert (json.loads(first.output)["created"], json.loads(first.output)["rejected"]) == (4, [])
    second = CliRunner().invoke(cli.app, ["customers", "import", str(files["csv"])])
    assert second.exit_code == 0, second.output
    assert "unchanged 4" in " ".join(second.output.replace("│", " ").split())


def test_rejected_rows_are_listed_and_an_unreadable_file_exits_1(store: Path, tmp_path: Path) -> None:
    registry = tmp_path / "customers.csv"
    registry.write_text("id,legal_name\nK1,Good Co\nK2,\n", encoding="utf-8")
    result = CliRunner().invoke(cli.app, ["customers", "import", str(registry)])
    assert result.exit_code == 0, result.output
    assert "row 3 (K2): legal_name" in result.output
    missing = CliRunner().invoke(cli.app, ["customers", "import", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 1
    binary = tmp_path / "customers.json"
    binary.write_bytes(b"\xff\xfe garbage")
    refused = CliRunner().invoke(cli.app, ["customers", "import", str(binary)])
    assert (refused.exit_code, "not UTF-8" in refused.output) == (1, True)
