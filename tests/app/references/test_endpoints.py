"""GET /v1/references on the seeded tenant's registry: JSON and CSV, name + products + consent only."""

import csv
import io
from collections.abc import AsyncIterator

import pytest

from tests.app.disclosures.live import Live, live_steward

KEYS = ["customer_name", "products", "consent_source", "consent_at"]


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    async with live_steward(tmp_path_factory.mktemp("references"), sync=False, teams_bot_app_id="") as running:
        yield running


def allowed_names(live: Live) -> list[str]:
    return sorted(
        c.legal_name for c in live.tenant.customers if not c.do_not_disclose and not c.marketing_opt_out and c.products
    )


async def test_json_lists_only_customers_who_allow_it(live: Live) -> None:
    # Published material: any signed-in member of staff may read it, whatever their Steward roles.
    response = await live.api.get("/v1/references", headers=live.headers(roles=set()))
    assert response.status_code == 200, response.text
    lines = response.json()
    assert sorted(line["customer_name"] for line in lines) == allowed_names(live)
    assert all(list(line) == KEYS for line in lines)
    flagged = [c for c in live.tenant.customers if c.do_not_disclose or c.marketing_opt_out]
    assert flagged, "the seed has customers who said no"
    text = response.text
    for customer in live.tenant.customers:
        assert not any(contact.email in text or contact.phone in text for contact in customer.contacts)
        assert customer.tax_code not in text
        assert not any(domain in text for domain in customer.domains)
    assert not any(c.legal_name in text for c in flagged)


@pytest.mark.parametrize(("query", "accept"), [("?format=csv", "application/json"), ("", "text/csv")])
async def test_csv_by_query_or_accept(live: Live, query: str, accept: str) -> None:
    response = await live.api.get(f"/v1/references{query}", headers={**live.headers(), "Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == KEYS
    assert sorted(row[0] for row in rows[1:]) == allowed_names(live)


async def test_a_token_is_required_and_a_bad_format_is_refused(live: Live) -> None:
    assert (await live.api.get("/v1/references")).status_code == 401
    assert (await live.api.get("/v1/references?format=xml", headers=live.headers())).status_code == 422


async def test_recorded_consent_shows_up_as_the_lines_provenance(live: Live) -> None:
    customer = next(c for c in live.tenant.customers if c.legal_name in allowed_names(live))
    body = {
        "customer_id": customer.id,
        "source": "Hợp đồng HĐ-2025/0007, điều 9",
        "obtained_at": "2025-03-01T00:00:00Z",
    }
    assert (
        await live.api.post("/v1/references/consents", json=body, headers=live.headers(live.auditor))
    ).status_code == 403
    recorded = await live.api.post("/v1/references/consents", json=body, headers=live.headers())
    assert recorded.status_code == 201, recorded.text
    lines = (await live.api.get("/v1/references", headers=live.headers())).json()
    [line] = [line for line in lines if line["customer_name"] == customer.legal_name]
    assert (line["consent_source"], line["consent_at"]) == (body["source"], "2025-03-01T00:00:00Z")
