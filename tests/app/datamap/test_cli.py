"""`steward sync` against the local tenant: the configured settings, one cycle, a JSON report."""

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app import cli
from app.config import get_settings
from emulator.seed import build_tenant, write_registry
from emulator.server import EmulatorServer
from tests.jobs.live import TINY_SEED


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[EmulatorServer]:
    for name in [name for name in os.environ if name.startswith("STEWARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    tenant = build_tenant(TINY_SEED)
    tenant.files.label_delay_seconds = 0
    write_registry(tenant, tmp_path)
    with EmulatorServer(tenant) as server:
        endpoints = server.endpoints
        environment = {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'steward.db'}",
            "TENANT_ID": endpoints.tenant_id,
            "CLIENT_ID": endpoints.client_id,
            "CLIENT_SECRET": endpoints.client_secret,
            "AUTHORITY_HOST": endpoints.base_url,
            "GRAPH_BASE_URL": endpoints.graph_url,
            "GRAPH_ALLOWED_HOSTS": "127.0.0.1",
            "CA_BUNDLE": endpoints.ca_bundle,
            "IDENTIFIER_HASH_KEY": "cli-test-key",
        }
        for name, value in environment.items():
            monkeypatch.setenv(f"STEWARD_{name}", value)
        get_settings.cache_clear()
        yield server
    get_settings.cache_clear()


def test_one_sync_cycle_from_the_command_line(configured: EmulatorServer, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli.app, ["db", "upgrade"]).exit_code == 0
    imported = runner.invoke(cli.app, ["customers", "import", str(tmp_path / "customers.json")])
    assert imported.exit_code == 0, imported.output
    result = runner.invoke(cli.app, ["sync", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["discovered"], report["errors"], report["parked"]) == (True, [], [])
    assert report["datamap"]["created"] > 0
    assert report["labels"]["applied"] > 0
    with configured.tenant.lock:
        labelled = [item for item in configured.tenant.files.items.values() if item.label is not None]
    assert labelled


def test_a_policy_naming_a_label_the_tenant_lacks_stops_the_sync(
    configured: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("labels:\n  names:\n    confidential: Secret\n", encoding="utf-8")
    monkeypatch.setenv("STEWARD_POLICY_PATH", str(policy))
    get_settings.cache_clear()
    runner = CliRunner()
    assert runner.invoke(cli.app, ["db", "upgrade"]).exit_code == 0
    result = runner.invoke(cli.app, ["sync"])
    assert result.exit_code == 1
    assert "no sensitivity label named 'Secret'" in " ".join(result.output.split())
