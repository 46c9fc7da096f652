"""/v1/customers over HTTP with real staff tokens: import, list, read (through the disclosure guard), PATCH."""

import json
from pathlib import Path

import httpx
import pytest

from emulator.seed import registry_rows, write_registry
from emulator.state import Tenant
from tests.app.customers.conftest import StaffTokens


@pytest.fixture
async def imported(steward: httpx.AsyncClient, staff_tokens: StaffTokens, api_tenant: Tenant, tmp_path: Path) -> None:
    files = write_registry(api_tenant, tmp_path)
    with files["csv"].open("rb") as upload:
        response = await steward.post(
            "/v1/customers/import",
            files={"file": ("customers.csv", upload, "text/csv")},
            headers=await staff_tokens.admin(),
        )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == len(api_tenant.customers)


async def test_a_multipart_upload_imports_and_pages_through_the_registry(
    steward: httpx.AsyncClient, staff_tokens: StaffTokens, api_tenant: Tenant, imported: None
) -> None:
    seen: list[str] = []
    after = None
    while True:
        params = {"limit": 4, **({"after": after} if after else {})}
        page = await steward.get("/v1/customers", params=params, headers=await staff_tokens.legal())
        assert page.status_code == 200, page.text
        body = page.json()
        seen.extend(item["id"] for item in body["items"])
        after = body["next_after"]
        if after is None:
            break
    assert seen == sorted(customer.id for customer in api_tenant.customers)
    ended = await steward.get("/v1/customers", params={"status": "ended"}, headers=await staff_tokens.legal())
    assert [item["id"] for item in ended.json()["items"]] == [
        customer.id for customer in api_tenant.customers if customer.service_status == "ended"
    ]


async def test_a_json_body_import_reports_bad_rows_and_keeps_good_ones(
    steward: httpx.AsyncClient, staff_tokens: StaffTokens, api_tenant: Tenant
) -> None:
    rows = registry_rows(api_tenant)[:2]
    rows[1] = {**rows[1], "tax_code": "0100109107", "contacts": [{"email": "not-an-address"}]}
    response = await steward.post("/v1/customers/import", json=rows, headers=await staff_tokens.admin())
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["created"] == 1
    assert [(p["row"], p["id"]) for p in report["rejected"]] == [(2, rows[1]["id"])]
    assert any("contacts.0.email" in error for error in report["rejected"][0]["errors"])


UNREADABLE = [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "application/octet-stream", "not UTF-8"),
    (b"{not json", "application/json", "invalid JSON"),
    (b"", "text/csv", "the body is empty"),
]


async def test_an_unreadable_registry_is_a_400(steward: httpx.AsyncClient, staff_tokens: StaffTokens) -> None:
    admin = await staff_tokens.admin()
    for content, content_type, detail in UNREADABLE:
        response = await steward.post(
            "/v1/customers/import", content=content, headers={**admin, "Content-Type": content_type}
        )
        assert response.status_code == 400, content_type
        assert response.json()["error"] == "ImportFileError"
        assert detail in response.json()["detail"]


async def test_a_multipart_body_without_the_file_part_is_a_400(
    steward: httpx.AsyncClient, staff_tokens: StaffTokens
) -> None:
    response = await steward.post(
        "/v1/customers/import", files={"other": ("a.csv", b"id\n1\n")}, headers=await staff_tokens.admin()
    )
    assert response.status_code == 400
    assert "'file' part" in response.json()["detail"]


async def test_auditors_see_what_is_public_and_do_not_disclose_customers_as_ids(
    steward: httpx.AsyncClient, staff_tokens: StaffTokens, api_tenant: Tenant, imported: None
) -> None:
    protected = next(c for c in api_tenant.customers if c.do_not_disclose)
    ordinary = next(c for c in api_tenant.customers if not c.do_not_disclose)
    auditor = await staff_tokens.auditor()
    hidden = (await steward.get(f"/v1/customers/{protected.id}", headers=auditor)).json()
    assert (hidden["confidential"], hidden["legal_name"], hidden["contacts"], hidden["address"]) == (
        True,
        None,
        None,
        None,
    )
    public = (await steward.get(f"/v1/customers/{ordinary.id}", headers=auditor)).json()
    assert public["legal_name"] == ordinary.legal_name
    assert [contact["name"] for contact in public["contacts"]] == [c.name for c in ordinary.contacts]
    assert {contact["email"] for contact in public["contacts"]} == {None}
    assert (public["domains"], public["tax_codes"]) == (None, None)
    full = (await steward.get(f"/v1/customers/{protected.id}", headers=await staff_tokens.admin())).json()
    assert full["legal_name"] == protected.legal_name
    assert full["tax_codes"] == [protected.tax_code]


async def test_reading_needs_a_token_and_importing_needs_the_admin_role(
    steward: httpx.AsyncClient, staff_tokens: StaffTokens
) -> None:
    assert (await steward.get("/v1/customers")).status_code == 401
    response = await steward.post("/v1/customers/import", json=[], headers=await staff_tokens.auditor())
    assert response.status_code == 403
    response = await steward.patch(
        "/v1/customers/C0001", json={"do_not_disclose": True}, headers=await staff_tokens.legal()
    )
    assert response.status_code == 403


async def test_patch_changes_flags_and_adds_and_releases_named_holds(
    steward: httpx.AsyncClient, staff_tokens: StaffTokens, api_tenant: Tenant, imported: None
) -> None:
    admin = await staff_tokens.admin()
    customer = next(c for c in api_tenant.customers if not c.do_not_disclose and c.service_status == "active")
    url = f"/v1/customers/{customer.id}"
    body = {"do_not_disclose": True, "add_legal_holds": [{"reference": "Case 12", "reason": "court order 12/2026"}]}
    changed = await steward.patch(url, json=body, headers=admin)
    assert changed.status_code == 200, changed.text
    assert changed.json()["do_not_disclose"] is True
    assert [hold["reference"] for hold in changed.json()["legal_holds"]] == ["Case 12"]
    unknown = await steward.patch(url, json={"release_legal_holds": ["Case 99"]}, headers=admin)
    assert unknown.status_code == 400
    assert "no active legal hold 'Case 99'" in unknown.json()["detail"]
    released = await steward.patch(url, json={"release_legal_holds": ["Case 12"]}, headers=admin)
    assert released.json()["legal_holds"] == []
    ended = await steward.patch(url, json={"service_status": "ended"}, headers=admin)
    assert ended.status_code == 400
    assert "service_ended_at is required" in ended.json()["detail"]
    ended = await steward.patch(
        url, json={"service_status": "ended", "service_ended_at": "2026-01-31T00:00:00Z"}, headers=admin
    )
    assert (ended.json()["service_status"], ended.json()["service_ended_at"]) == ("ended", "2026-01-31T00:00:00Z")


BAD_PATCHES = [{}, {"do_not_disclose": None}, {"colour": "red"}, {"service_ended_at": "2026-01-31T00:00:00"}]


async def test_bad_patch_bodies_are_422(steward: httpx.AsyncClient, staff_tokens: StaffTokens, imported: None) -> None:
    admin = await staff_tokens.admin()
    for body in BAD_PATCHES:
        response = await steward.patch("/v1/customers/C0001", json=body, headers=admin)
        assert response.status_code == 422, (body, response.text)


async def test_unknown_customers_are_404_and_bad_ids_422(steward: httpx.AsyncClient, staff_tokens: StaffTokens) -> None:
    admin = await staff_tokens.admin()
    assert (await steward.get("/v1/customers/C9999", headers=admin)).status_code == 404
    assert (await steward.get("/v1/customers/bad id!", headers=admin)).status_code == 422
    response = await steward.patch(
        "/v1/customers/C9999",
        content=json.dumps({"marketing_opt_out": True}),
        headers={**admin, "Content-Type": "application/json"},
    )
    assert response.status_code == 404
