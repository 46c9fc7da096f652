"""infra/Dockerfile and infra/compose.yaml: one non-root image, and every command they run exists."""

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.config import Settings
from tests.infra.conftest import INFRA, ROOT, steward_command_exists

DOCKERFILE = INFRA / "Dockerfile"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    result = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            result.append((keyword.upper(), arguments.strip()))
    return result


def stages(path: Path) -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, arguments in instructions(path):
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, arguments))
    return found


class TestDockerfile:
    def test_every_stage_is_python_3_11_slim(self) -> None:
        bases = [arguments.split()[0] for keyword, arguments in instructions(DOCKERFILE) if keyword == "FROM"]
        assert bases
        assert set(bases) == {"python:3.11-slim"}

    def test_the_final_stage_runs_as_a_non_root_user(self) -> None:
        final = stages(DOCKERFILE)[-1]
        users = [arguments for keyword, arguments in final if keyword == "USER"]
        assert users, "the runtime stage must switch to an unprivileged user"
        user = users[-1].split(":")[0]
        assert user not in {"root", "0"}
        # Nothing after USER may need root again.
        after = final[[keyword for keyword, _ in final].index("USER") :]
        assert all(keyword != "RUN" or "useradd" not in arguments for keyword, arguments in after)
        created = next(arguments for keyword, arguments in final if keyword == "RUN" and "useradd" in arguments)
        assert f"--uid {user}" in created

    def test_the_entrypoint_is_the_steward_script_and_the_default_command_exists(self) -> None:
        final = dict(stages(DOCKERFILE)[-1])
        assert json.loads(final["ENTRYPOINT"]) == ["steward"]
        scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
        assert scripts["steward"] == "app.cli:main"
        default = json.loads(final["CMD"])
        assert steward_command_exists(default), default
        # Bound to all interfaces inside the container, or nothing outside could reach it.
        assert default[default.index("--host") + 1] == "0.0.0.0"  # noqa: S104 - inside the container, on purpose

    def test_copied_sources_exist_and_survive_the_dockerignore(self) -> None:
        lines = (INFRA / "Dockerfile.dockerignore").read_text().splitlines()
        ignore = [line for line in lines if line.strip() and not line.startswith("#")]
        included = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
        assert ignore[0] == "*", "the context must be an allow-list (no .env, no local store)"
        for keyword, arguments in stages(DOCKERFILE)[0]:
            if keyword == "COPY":
                *sources, _destination = shlex.split(arguments)
                for source in sources:
                    assert (ROOT / source).exists(), source
                    assert source.rstrip("/") in included, f"{source} is excluded by Dockerfile.dockerignore"

    def test_the_image_contains_every_package_the_project_ships(self) -> None:
        packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
        copied = {
            shlex.split(arguments)[0].rstrip("/") for keyword, arguments in stages(DOCKERFILE)[0] if keyword == "COPY"
        }
        assert {pattern.rstrip("*") for pattern in packages["include"]} <= copied


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((INFRA / "compose.yaml").read_text())
    return loaded


STEWARD_SERVICES = ("migrate", "api", "scheduler")


class TestCompose:
    def test_postgres_15_with_a_healthcheck(self, compose: dict[str, Any]) -> None:
        db = compose["services"]["db"]
        assert db["image"] == "postgres:15"
        assert "pg_isready" in " ".join(db["healthcheck"]["test"])
        assert db["volumes"], "the store must outlive the container"

    @pytest.mark.parametrize("service", STEWARD_SERVICES)
    def test_steward_services_share_the_image_and_run_existing_commands(
        self, compose: dict[str, Any], service: str
    ) -> None:
        definition = compose["services"][service]
        assert definition["build"] == {"context": "..", "dockerfile": "infra/Dockerfile"}
        assert definition["image"] == "steward:latest"
        assert steward_command_exists(definition["command"]), definition["command"]
        assert definition["read_only"] is True
        assert definition["cap_drop"] == ["ALL"]

    @pytest.mark.parametrize("service", STEWARD_SERVICES)
    def test_their_environment_names_real_settings(self, compose: dict[str, Any], service: str) -> None:
        environment = compose["services"][service]["environment"]
        fields = {f"STEWARD_{name.upper()}" for name in Settings.model_fields}
        assert set(environment) <= fields
        url = environment["STEWARD_DATABASE_URL"]
        assert url.startswith("postgresql://")
        assert "@db:5432/" in url

    def test_migrations_run_before_the_api_and_the_scheduler(self, compose: dict[str, Any]) -> None:
        services = compose["services"]
        assert services["migrate"]["command"] == ["db", "upgrade"]
        assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
        for service in ("api", "scheduler"):
            assert services[service]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}

    def test_the_api_is_published_on_loopback_and_probed_for_readiness(self, compose: dict[str, Any]) -> None:
        api = compose["services"]["api"]
        assert api["ports"] == ["127.0.0.1:8000:8000"]
        assert "/readyz" in " ".join(api["healthcheck"]["test"])
