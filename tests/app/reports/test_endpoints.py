"""GET /v1/labels/coverage and /v1/reports/inactivity with real staff tokens."""

import httpx

from emulator.seed import registry_rows
from emulator.state import Tenant
from tests.app.customers.conftest import StaffTokens


async def test_reports_name_do_not_disclose_customers_by_id_for_auditors(
    steward: httpx.AsyncClient, staff_tokens: StaffTokens, api_tenant: Tenant
) -> None:
    rows = registry_rows(api_tenant)
    response = await steward.post("/v1/customers/import", json=rows, headers=await staff_tokens.admin())
    assert response.status_code == 200
    protected = next(c for c in api_tenant.customers if c.do_not_disclose)
    coverage = await steward.get("/v1/labels/coverage", headers=await staff_tokens.auditor())
    assert coverage.status_code == 200, coverage.text
    names = {c["customer_id"]: c["customer_name"] for c in coverage.json()["customers"]}
    assert names[protected.id] == f"{protected.id} (do-not-disclose)"
    assert coverage.json()["overall"]["items"] == 0
    inactivity = await steward.get("/v1/reports/inactivity", headers=await staff_tokens.legal())
    assert inactivity.status_code == 200, inactivity.text
    body = inactivity.json()
    assert body["inactivity_months"] == 12
    assert sum(bucket["customers"] for bucket in body["buckets"]) + body["never_active"] == len(rows)
    assert {row["customer_name"] for row in body["customers"]} >= {protected.legal_name}
    assert (await steward.get("/v1/reports/inactivity")).status_code == 401
