"""infra/azure/main.bicep, read as text: well-formed, every parameter used, and consistent with the app it runs.

No Bicep compiler runs here, so these checks catch what a careless edit breaks: unbalanced brackets, an
unused or misspelt parameter, a resource without a pinned API version, a setting or a command that does not
exist, a secret that leaks into an output.
"""

import re

import pytest

from app.config import Settings
from app.main import create_app
from app.teams.bot import MESSAGING_PATH
from tests.infra.conftest import INFRA, steward_command_exists

BICEP = (INFRA / "azure" / "main.bicep").read_text()


def without_strings_and_comments(source: str) -> str:
    """The template with string literals emptied and comments removed (brackets inside them do not count)."""
    result, index = [], 0
    while index < len(source):
        char = source[index]
        if source.startswith("//", index):
            index = source.find("\n", index)
            index = len(source) if index == -1 else index
            continue
        if char == "'":
            index += 1
            while index < len(source) and source[index] != "'":
                index += 2 if source[index] == "\\" else 1
            result.append("''")
            index += 1
            continue
        result.append(char)
        index += 1
    return "".join(result)


CODE = without_strings_and_comments(BICEP)
PARAMS = re.findall(r"^param (\w+) (\w+)", BICEP, flags=re.MULTILINE)
RESOURCES = re.findall(r"^resource (\w+) '([^']+)'", BICEP, flags=re.MULTILINE)


def test_brackets_balance_outside_strings() -> None:
    for opening, closing in ("{}", "[]", "()"):
        depth = 0
        for char in CODE:
            depth += (char == opening) - (char == closing)
            assert depth >= 0, f"unexpected {closing}"
        assert depth == 0, f"unclosed {opening}"


def test_indentation_is_two_spaces_and_no_tabs() -> None:
    assert "\t" not in BICEP
    assert all((len(line) - len(line.lstrip(" "))) % 2 == 0 for line in BICEP.splitlines())


def test_every_parameter_is_used() -> None:
    assert PARAMS
    for name, _type in PARAMS:
        uses = re.findall(rf"\b{name}\b", CODE)
        assert len(uses) >= 2, f"param {name} is declared but never used"


def test_every_identifier_used_is_declared() -> None:
    declared = {name for name, _ in PARAMS} | {name for name, _ in RESOURCES}
    declared |= set(re.findall(r"^var (\w+) =", BICEP, flags=re.MULTILINE))
    referenced = set(re.findall(r"\b([a-z]\w*)\.(?:id|name|properties)\b", CODE))
    assert referenced <= declared


def test_resources_pin_an_api_version() -> None:
    expected = {
        "Microsoft.App/containerApps",
        "Microsoft.App/managedEnvironments",
        "Microsoft.App/jobs",
        "Microsoft.DBforPostgreSQL/flexibleServers",
        "Microsoft.KeyVault/vaults",
        "Microsoft.ManagedIdentity/userAssignedIdentities",
    }
    types = set()
    for _name, reference in RESOURCES:
        resource_type, _, version = reference.partition("@")
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", version), reference
        types.add(resource_type)
    assert expected <= types


def test_the_database_password_is_secure_and_never_output() -> None:
    assert re.search(r"@secure\(\)\s*(?:@\w+\(\d+\)\s*)*param postgresAdminPassword string", BICEP)
    outputs = [line for line in BICEP.splitlines() if line.startswith("output ")]
    assert outputs
    assert not any("Password" in line or "secret" in line.lower() for line in outputs)


def test_key_vault_uses_rbac_and_purge_protection() -> None:
    assert "enableRbacAuthorization: true" in BICEP
    assert "enablePurgeProtection: true" in BICEP
    # Container apps read their secrets from Key Vault with the managed identity, never inline values.
    assert "keyVaultUrl:" in BICEP
    assert not re.search(r"^\s+value: postgres", BICEP, flags=re.MULTILINE)


def test_every_environment_variable_is_a_setting() -> None:
    names = set(re.findall(r"name: '(STEWARD_\w+)'", BICEP))
    fields = {f"STEWARD_{name.upper()}" for name in Settings.model_fields}
    assert names
    assert names <= fields, names - fields


def test_production_mode_with_a_certificate_not_a_secret() -> None:
    assert re.search(r"name: 'STEWARD_ENV'\s+value: 'production'", BICEP)
    assert "STEWARD_CLIENT_CERTIFICATE_PATH" in BICEP
    assert "STEWARD_CLIENT_SECRET" not in BICEP
    # The mounted file name keeps a suffix the certificate setting accepts.
    path = re.search(r"name: 'STEWARD_CLIENT_CERTIFICATE_PATH'\s+value: '([^']+)'", BICEP)
    assert path is not None
    assert path.group(1).endswith("/graph-certificate.pem")


def test_container_commands_exist() -> None:
    blocks = re.findall(r"args: \[(.*?)\]", BICEP, flags=re.DOTALL)
    assert len(blocks) == 3  # api, scheduler, migrate
    for block in blocks:
        argv = re.findall(r"'([^']*)'", block)
        assert steward_command_exists(argv), argv


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/v1/notifications/graph", "/v1/webhooks/admin"])
def test_paths_named_in_the_template_are_served(path: str) -> None:
    assert path in BICEP
    assert path in create_app(Settings(_env_file=None)).openapi()["paths"]


def test_the_bot_endpoint_is_the_bots_messaging_path() -> None:
    assert f"'${{publicBaseUrl}}{MESSAGING_PATH}'" in BICEP


def test_the_scheduler_is_a_single_replica() -> None:
    scheduler = BICEP[BICEP.index("resource scheduler") : BICEP.index("resource migrate")]
    assert re.search(r"minReplicas: 1\s+maxReplicas: 1", scheduler)
