"""infra/RUNBOOK.md: the commands and files it tells an administrator to use exist."""

import re

import yaml

from tests.infra.conftest import INFRA, ROOT, steward_command_exists

RUNBOOK = (INFRA / "RUNBOOK.md").read_text()


def test_every_steward_command_it_names_exists() -> None:
    commands = re.findall(r"`steward ([a-z][a-z -]*?)(?: <[^`]*)?`", RUNBOOK)
    assert commands
    for command in commands:
        assert steward_command_exists(command.split()), command


def test_every_repository_file_it_names_exists() -> None:
    paths = set(re.findall(r"`?((?:infra|app)/[\w./-]+\.(?:yaml|bicep|json|md|py)|infra/Dockerfile)`?", RUNBOOK))
    assert "infra/graph-permissions.yaml" in paths
    assert "infra/azure/main.bicep" in paths
    for path in paths:
        assert (ROOT / path).exists(), path


def test_it_covers_every_setup_step() -> None:
    for topic in (
        "graph-permissions.yaml",
        "admin-consent",
        "certificate",
        "graph-services account create",  # metered API billing for assignSensitivityLabel
        "Sensitivity labels",
        "Azure Bot",
        "Workflows",
        "az deployment group create",
        "## 9. Verify",
    ):
        assert topic in RUNBOOK, topic


def test_the_permission_manifest_it_relies_on_has_application_permissions() -> None:
    manifest = yaml.safe_load((INFRA / "graph-permissions.yaml").read_text())
    assert manifest["application_permissions"]
    assert all(permission["name"] for permission in manifest["application_permissions"])
