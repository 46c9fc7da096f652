"""The MFA registration report and eDiscovery hold status, checked against the seeded tenant's ground truth."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from emulator.app import create_app
from emulator.security import held_site_ids, held_user_ids
from emulator.state import Tenant

REPORT = "/reports/authenticationMethods/userRegistrationDetails"
CASES = "/security/cases/ediscoveryCases"
CONTROL = "https://emulator.test/_emulator/security"


async def client_with(tenant: Tenant, token: str | None) -> httpx.AsyncClient:
    app = create_app(tenant)
    app.state.base_url = "https://emulator.test"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://emulator.test/v1.0", headers=headers
    )


async def all_pages(
    graph: httpx.AsyncClient, url: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Follow @odata.nextLink as a client does: the query of the first request, then the links as given."""
    rows: list[dict[str, Any]] = []
    response = await graph.get(url, params=params, headers=headers)
    for _ in range(100):
        assert response.status_code == 200, response.text
        page = response.json()
        rows.extend(page["value"])
        if "@odata.nextLink" not in page:
            return rows
        response = await graph.get(page["@odata.nextLink"], headers=headers)
    raise AssertionError("paging did not end")


# MFA registration report ---------------------------------------------------------------------------------


async def test_report_matches_the_tenant_users(graph: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await graph.get(REPORT)
    assert response.status_code == 200
    page = response.json()
    assert page["@odata.context"] == (
        "https://emulator.test/v1.0/$metadata#reports/authenticationMethods/userRegistrationDetails"
    )
    rows = {row["id"]: row for row in page["value"]}
    assert set(rows) == set(tenant.users)
    for user in tenant.users.values():
        row = rows[user.id]
        assert row["userPrincipalName"] == user.user_principal_name
        assert row["userDisplayName"] == user.display_name
        assert row["userType"] == ("member" if user.user_type == "Member" else "guest")
        assert row["isAdmin"] is user.is_admin
        assert row["isMfaRegistered"] is user.is_mfa_registered
        assert row["isMfaCapable"] is user.is_mfa_registered
        assert row["methodsRegistered"] == [m for m in user.mfa_methods if m != "password"]
        assert row["lastUpdatedDateTime"].endswith("Z")
    # The seed gives most staff Authenticator push and a few nothing but a password: both kinds must show.
    staff_rows = [rows[u.id] for u in tenant.staff]
    assert any(r["isMfaRegistered"] for r in staff_rows)
    assert any(not r["isMfaRegistered"] for r in staff_rows)
    pushed = next(r for r in staff_rows if r["isMfaRegistered"])
    assert pushed["systemPreferredAuthenticationMethods"] == ["push"]
    assert pushed["userPreferredMethodForSecondaryAuthentication"] == "push"
    bare = next(r for r in staff_rows if not r["isMfaRegistered"])
    assert bare["methodsRegistered"] == []
    assert bare["systemPreferredAuthenticationMethods"] == []
    assert bare["isSsprRegistered"] is False


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        ("isMfaRegistered eq false", lambda u: not u.is_mfa_registered),
        ("isMfaRegistered eq true and userType eq 'member'", lambda u: u.is_mfa_registered and u.user_type == "Member"),
        ("userType eq 'guest'", lambda u: u.user_type == "Guest"),
        ("not (userType eq 'guest') and isAdmin eq false", lambda u: u.user_type == "Member" and not u.is_admin),
        ("isAdmin eq true or isMfaCapable ne true", lambda u: u.is_admin or not u.is_mfa_registered),
        ("methodsRegistered/any(m:m eq 'email')", lambda u: "email" in u.mfa_methods),
        ("systemPreferredAuthenticationMethods/any(x: x eq 'push')", lambda u: u.is_mfa_registered),
    ],
)
async def test_filters(graph: httpx.AsyncClient, tenant: Tenant, filter_text: str, expected: Callable) -> None:
    rows = await all_pages(graph, REPORT, params={"$filter": filter_text})
    wanted = {u.id for u in tenant.users.values() if expected(u)}
    assert wanted  # each filter selects someone in the seeded tenant, so an empty answer is a failure
    assert {row["id"] for row in rows} == wanted


async def test_startswith_and_string_equality(graph: httpx.AsyncClient, tenant: Tenant) -> None:
    someone = tenant.staff[1]
    prefix = someone.user_principal_name[:4].upper()
    rows = await all_pages(graph, REPORT, params={"$filter": f"startswith(userPrincipalName,'{prefix}')"})
    assert someone.id in {row["id"] for row in rows}
    assert all(row["userPrincipalName"].lower().startswith(prefix.lower()) for row in rows)
    exact = await all_pages(graph, REPORT, params={"$filter": f"userPrincipalName eq '{someone.user_principal_name}'"})
    assert [row["id"] for row in exact] == [someone.id]


@pytest.mark.parametrize(
    "filter_text",
    [
        "isMfaRegistered eq 'yes'",
        "userType eq true",
        "favouriteColour eq 'blue'",
        "isAdmin gt false",
        "startswith(userType,'m')",
        "methodsRegistered/all(m:m eq 'email')",
        "isAdmin eq true and",
        "(isAdmin eq true",
        "isAdmin eq true)",
        "userType eq 'guest",
        "isAdmin eq true; drop",
    ],
)
async def test_bad_filters_are_400(graph: httpx.AsyncClient, filter_text: str) -> None:
    response = await graph.get(REPORT, params={"$filter": filter_text})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "BadRequest"


async def test_paging_and_ordering(graph: httpx.AsyncClient, tenant: Tenant) -> None:
    headers = {"Prefer": "odata.maxpagesize=3"}
    first = (await graph.get(REPORT, params={"$orderby": "userDisplayName desc"}, headers=headers)).json()
    assert len(first["value"]) == 3
    assert first["@odata.nextLink"].startswith("https://emulator.test/v1.0" + REPORT + "?")
    assert "%24orderby" in first["@odata.nextLink"] or "$orderby" in first["@odata.nextLink"]
    rows = await all_pages(graph, REPORT + "?$orderby=userDisplayName desc", headers=headers)
    names = [row["userDisplayName"].lower() for row in rows]
    assert names == sorted(names, reverse=True)
    assert len(rows) == len(tenant.users)
    assert len({row["id"] for row in rows}) == len(rows)

    filtered = await all_pages(graph, REPORT, params={"$filter": "userType eq 'member'"}, headers=headers)
    assert {row["id"] for row in filtered} == {u.id for u in tenant.staff}


@pytest.mark.parametrize(
    "params", [{"$skiptoken": "garbage!"}, {"$orderby": "isAdmin"}, {"$orderby": "userDisplayName up"}]
)
async def test_bad_paging_or_ordering_is_400(graph: httpx.AsyncClient, params: dict[str, str]) -> None:
    response = await graph.get(REPORT, params=params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


async def test_single_record_and_unknown_user(graph: httpx.AsyncClient, tenant: Tenant) -> None:
    user = tenant.staff[0]
    response = await graph.get(f"{REPORT}/{user.id}")
    assert response.status_code == 200
    assert response.json()["userPrincipalName"] == user.user_principal_name
    assert response.json()["@odata.context"].endswith("userRegistrationDetails/$entity")
    missing = await graph.get(f"{REPORT}/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404


async def test_report_needs_auditlog_permission(tenant: Tenant, mint: Callable[..., str]) -> None:
    async with await client_with(tenant, mint(roles=["User.Read.All"])) as weak:
        response = await weak.get(REPORT)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Authorization_RequestDenied"
    async with await client_with(tenant, None) as anonymous:
        assert (await anonymous.get(REPORT)).status_code == 401


async def test_registering_a_method_changes_the_report(graph: httpx.AsyncClient, tenant: Tenant) -> None:
    bare = next(u for u in tenant.staff if not u.is_mfa_registered)
    response = await graph.put(
        f"{CONTROL}/users/{bare.id}/authenticationMethods",
        json={"methods": ["password", "fido2", "mobilePhone"]},
    )
    assert response.status_code == 200
    row = (await graph.get(f"{REPORT}/{bare.id}")).json()
    assert row["isMfaRegistered"] is True
    assert row["isPasswordlessCapable"] is True
    assert row["methodsRegistered"] == ["fido2", "mobilePhone"]
    assert row["systemPreferredAuthenticationMethods"] == ["sms"]
    bad = await graph.put(f"{CONTROL}/users/{bare.id}/authenticationMethods", json={"methods": ["carrierPigeon"]})
    assert bad.status_code == 400
    assert (await graph.put(f"{CONTROL}/users/nobody/authenticationMethods", json={"methods": []})).status_code == 404


# eDiscovery cases and holds --------------------------------------------------------------------------------


async def test_seeded_case_and_its_custodians(graph: httpx.AsyncClient, tenant: Tenant) -> None:
    (seeded,) = tenant.hold_cases
    cases = (await graph.get(CASES)).json()
    assert cases["@odata.context"] == "https://emulator.test/v1.0/$metadata#security/cases/ediscoveryCases"
    assert [c["id"] for c in cases["value"]] == [seeded.id]
    case = cases["value"][0]
    assert case["displayName"] == seeded.display_name
    assert case["status"] == "active"
    assert (await graph.get(f"{CASES}/{seeded.id}")).json()["id"] == seeded.id

    custodians = (await graph.get(f"{CASES}/{seeded.id}/custodians")).json()["value"]
    assert [c["email"] for c in custodians] == [tenant.users[u].mail for u in seeded.custodian_user_ids]
    custodian = custodians[0]
    assert custodian["holdStatus"] == "applied"
    assert custodian["status"] == "active"
    assert len(custodian["id"]) == 32
    assert (await graph.get(f"{CASES}/{seeded.id}/custodians/{custodian['id']}")).json()["email"] == custodian["email"]

    sources = (await graph.get(f"{CASES}/{seeded.id}/custodians/{custodian['id']}/userSources")).json()["value"]
    assert len(sources) == 1
    assert sources[0]["email"] == custodian["email"]
    assert sources[0]["includedSources"] == "mailbox,site"
    assert sources[0]["holdStatus"] == "applied"
    assert sources[0]["siteWebUrl"].startswith("https://")
    site_sources = await graph.get(f"{CASES}/{seeded.id}/custodians/{custodian['id']}/siteSources")
    assert site_sources.json()["value"] == []
    assert held_user_ids(tenant) == set(seeded.custodian_user_ids)


async def test_holds_added_and_removed_at_run_time(graph: httpx.AsyncClient, tenant: Tenant) -> None:
    custodian = tenant.staff[0]
    added = await graph.post(
        f"{CONTROL}/holds",
        json={"displayName": "Thanh tra thuế 2026", "custodianUserIds": [custodian.id], "siteIds": ["site-kh-001"]},
    )
    assert added.status_code == 201, added.text
    case_id = added.json()["id"]
    assert custodian.id in held_user_ids(tenant)
    assert held_site_ids(tenant) == {"site-kh-001"}

    sources = (await graph.get(f"{CASES}/{case_id}/noncustodialDataSources", params={"$expand": "dataSource"})).json()
    (source,) = sources["value"]
    assert source["holdStatus"] == "applied"
    assert source["dataSource"]["@odata.type"] == "#microsoft.graph.security.siteSource"
    assert source["dataSource"]["id"] == "site-kh-001"
    assert source["dataSource"]["@odata.id"] == "https://emulator.test/v1.0/sites/site-kh-001"
    assert source["dataSource"]["site"]["webUrl"].startswith("https://")
    plain = (await graph.get(f"{CASES}/{case_id}/noncustodialDataSources")).json()["value"][0]
    assert "dataSource" not in plain
    single = await graph.get(f"{CASES}/{case_id}/noncustodialDataSources/{source['id']}/dataSource")
    assert single.json()["id"] == "site-kh-001"

    listed = (await graph.get(f"{CONTROL}/holds")).json()
    assert "site-kh-001" in listed["heldSiteIds"]

    assert (await graph.delete(f"{CONTROL}/holds/{case_id}")).status_code == 204
    assert held_site_ids(tenant) == set()
    assert (await graph.get(f"{CASES}/{case_id}")).status_code == 404
    assert (await graph.delete(f"{CONTROL}/holds/{case_id}")).status_code == 404


async def test_hold_status_override_and_closed_cases(graph: httpx.AsyncClient, tenant: Tenant) -> None:
    user = tenant.staff[1]
    removing = (
        await graph.post(f"{CONTROL}/holds", json={"custodianUserIds": [user.id], "holdStatus": "removing"})
    ).json()
    custodians = (await graph.get(f"{CASES}/{removing['id']}/custodians")).json()["value"]
    assert custodians[0]["holdStatus"] == "removing"
    assert user.id not in held_user_ids(tenant)

    closed = (await graph.post(f"{CONTROL}/holds", json={"custodianUserIds": [user.id], "status": "closed"})).json()
    case = (await graph.get(f"{CASES}/{closed['id']}")).json()
    assert case["status"] == "closed"
    assert case["closedDateTime"] is not None
    custodian = (await graph.get(f"{CASES}/{closed['id']}/custodians")).json()["value"][0]
    assert custodian["holdStatus"] == "notApplied"
    assert custodian["status"] == "released"
    assert user.id not in held_user_ids(tenant)


@pytest.mark.parametrize(
    "path",
    [
        f"{CASES}/no-such-case",
        f"{CASES}/no-such-case/custodians",
        f"{CASES}/{{case}}/custodians/ffffffffffffffffffffffffffffffff",
        f"{CASES}/{{case}}/custodians/ffffffffffffffffffffffffffffffff/userSources",
        f"{CASES}/{{case}}/noncustodialDataSources/ffff",
    ],
)
async def test_unknown_ediscovery_objects_are_404(graph: httpx.AsyncClient, tenant: Tenant, path: str) -> None:
    response = await graph.get(path.format(case=tenant.hold_cases[0].id))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ResourceNotFound"


async def test_ediscovery_needs_its_permission(tenant: Tenant, mint: Callable[..., str]) -> None:
    async with await client_with(tenant, mint(roles=["Mail.ReadWrite"])) as weak:
        response = await weak.get(CASES)
    assert response.status_code == 403
    assert set(response.json()["error"]) == {"code", "message", "innerError"}
    async with await client_with(tenant, mint(roles=["eDiscovery.ReadWrite.All"])) as writer:
        assert (await writer.get(CASES)).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"custodianUserIds": ["nobody"]},
        {"custodianUserIds": "one"},
        {"siteIds": [1]},
        {"status": "paused"},
        {"holdStatus": "maybe"},
        {"displayName": ""},
    ],
)
async def test_bad_hold_control_input_is_400(graph: httpx.AsyncClient, body: dict[str, Any]) -> None:
    assert (await graph.post(f"{CONTROL}/holds", json=body)).status_code == 400
