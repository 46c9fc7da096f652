"""GET /v1/posture on the seeded tenant: staff who reach customer data without MFA are listed with the fix."""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.config import Settings
from app.posture.service import tls_checks
from app.privacy.graph import GraphAccess
from tests.app.disclosures.live import Live, live_steward


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    async with live_steward(tmp_path_factory.mktemp("posture"), sync=False, teams_bot_app_id="") as running:
        yield running


@pytest.fixture(scope="module")
async def report(live: Live) -> dict[str, Any]:
    response = await live.api.get("/v1/posture", headers=live.headers(live.clerk))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_staff_without_mfa_who_reach_customer_data_are_violations(live: Live, report: dict[str, Any]) -> None:
    unregistered = {user.id for user in live.tenant.staff if not user.is_mfa_registered}
    assert unregistered, "the seed leaves some staff without a second factor"
    violations = [v for v in report["violations"] if v["check"] == "mfa"]
    assert {v["user_id"] for v in violations} == unregistered
    for violation in violations:
        assert "aka.ms/mysecurityinfo" in violation["remedy"]
        assert violation["user_principal_name"] in violation["remedy"]
        assert any(reach["kind"] == "mailbox" for reach in violation["reaches"])
    assert report["promises_hold"] is False
    assert {row["user_id"] for row in report["staff"]} == {user.id for user in live.tenant.staff}
    assert {row["user_id"] for row in report["staff"] if row["mfa_registered"]} == (
        {user.id for user in live.tenant.staff} - unregistered
    )


async def test_customer_site_members_are_found_and_named_through_the_guard(live: Live, report: dict[str, Any]) -> None:
    sites = {c.site_id: c for c in live.tenant.customers if c.site_id}
    assert report["customer_sites"] == len(sites)
    site_reaches = [reach for row in report["staff"] for reach in row["reaches"] if reach["kind"] == "customer_site"]
    assert site_reaches, "the staff who work in customer sites are found"
    for customer in sites.values():
        for reach in site_reaches:
            if customer.id in reach["customer_ids"]:
                assert (customer.legal_name in reach["name"]) is not customer.do_not_disclose
    protected = [c for c in sites.values() if c.do_not_disclose]
    assert protected, "the seed has a do-not-disclose customer with a site"
    assert any(f"{protected[0].id} (do-not-disclose)" in reach["name"] for reach in site_reaches)


async def test_connections_are_tls_only(live: Live, report: dict[str, Any]) -> None:
    checks = {check["name"]: check for check in report["tls"]}
    assert {"graph_base_url", "authority_host", "settings_refuse_plain_http", "transport_refuses_plain_http"} <= set(
        checks
    )
    assert all(check["ok"] for check in checks.values()), checks
    assert [v for v in report["violations"] if v["check"] == "tls"] == []


async def test_a_plain_http_endpoint_is_a_violation(live: Live) -> None:
    settings = live.settings.model_copy(update={"teams_service_url": "http://smba.example/teams"})
    graph = GraphAccess(live.runtime.connector, live.runtime.client)
    [bad] = [check for check in tls_checks(settings, graph) if not check.ok]
    assert bad.name == "teams_service_url"
    assert isinstance(settings, Settings)


async def test_only_admins_and_auditors_read_it(live: Live) -> None:
    assert (await live.api.get("/v1/posture", headers=live.headers(live.auditor))).status_code == 200
    assert (await live.api.get("/v1/posture", headers=live.headers(live.lawyers[1]))).status_code == 403
