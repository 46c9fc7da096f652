from pathlib import Path

import jwt
import pytest

from connectors.base import AuthError
from connectors.graph.permissions import (
    DEFAULT_MANIFEST,
    ManifestError,
    check_permissions,
    compare,
    load_manifest,
    token_roles,
)
from tests.connectors.graph.conftest import LiveGraph


def _token(roles: object) -> str:
    return jwt.encode(
        {"aud": "https://graph.microsoft.com", "roles": roles}, "test-signing-key-32-bytes-long!!", "HS256"
    )


def test_the_manifest_lists_the_permissions_steward_requests() -> None:
    required = load_manifest()
    assert {"Mail.ReadWrite", "Files.ReadWrite.All", "SensitivityLabel.Read", "eDiscovery.Read.All"} <= required
    assert not any(name.endswith("FullControl.All") for name in required)


def test_missing_and_excess_permissions_are_reported_separately() -> None:
    report = compare(
        frozenset({"Mail.ReadWrite", "Files.ReadWrite.All"}),
        token_roles(_token(["Mail.ReadWrite", "Directory.ReadWrite.All"])),
    )
    assert report.missing == {"Files.ReadWrite.All"}
    assert report.excess == {"Directory.ReadWrite.All"}
    assert not report.is_exact
    assert "missing: Files.ReadWrite.All" in report.summary()
    assert "excess (not in the manifest): Directory.ReadWrite.All" in report.summary()
    exact = compare(frozenset({"Mail.ReadWrite"}), frozenset({"Mail.ReadWrite"}))
    assert exact.is_exact
    assert "match" in exact.summary()


@pytest.mark.parametrize("token", ["not-a-jwt", _token("Mail.ReadWrite"), _token([1, 2])])
def test_a_token_without_readable_roles_is_an_auth_error(token: str) -> None:
    with pytest.raises(AuthError):
        token_roles(token)


def test_a_token_without_roles_has_none() -> None:
    assert token_roles(_token(None)) == frozenset()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "cannot read"),
        ("application_permissions: [", "not valid YAML"),
        ("resource: Microsoft Graph\n", "no 'application_permissions'"),
        ("application_permissions:\n  - why: because\n", "needs a 'name'"),
    ],
)
def test_a_broken_manifest_is_refused_with_the_reason(tmp_path: Path, content: str | None, reason: str) -> None:
    path = tmp_path / "graph-permissions.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ManifestError, match=reason):
        load_manifest(path)


async def test_the_granted_roles_of_the_local_tenants_app_are_compared_with_the_manifest(live_graph: LiveGraph) -> None:
    report = await check_permissions(live_graph.credential, manifest=DEFAULT_MANIFEST)
    app = live_graph.tenant.apps[live_graph.tenant.extra["steward_app_id"]]
    required = load_manifest()
    assert report.granted == frozenset(app.graph_roles)
    assert report.missing == required - app.graph_roles
    assert report.excess == app.graph_roles - required
