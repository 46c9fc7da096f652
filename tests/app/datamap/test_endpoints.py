"""GET /v1/customers/{id}/datamap with real staff tokens."""

import httpx

from app.db.base import utc_now
from app.db.engine import create_sessionmaker
from app.models import DatamapItem, DatamapLink, LabelState
from emulator.seed import registry_rows
from emulator.state import Tenant
from tests.app.customers.conftest import StaffTokens
from tests.conftest import Database


def _item(item_id: str, kind: str, category: str, state: str) -> DatamapItem:
    return DatamapItem(
        kind=kind,
        container_id="user-1" if kind == "message" else "b!drive",
        item_id=item_id,
        folder_id="inbox",
        etag='W/"1"',
        name_hash="0" * 64,
        scan_status="scanned",
        findings=[],
        category=category,
        category_reason="customer data",
        label_state=state,
        first_seen_at=utc_now(),
        synced_at=utc_now(),
    )


async def test_a_customers_data_map_has_counts_and_pages_of_items_with_their_reasons(
    steward: httpx.AsyncClient, staff_tokens: StaffTokens, api_tenant: Tenant, empty_database: Database
) -> None:
    admin = await staff_tokens.admin()
    rows = registry_rows(api_tenant)[:2]
    assert (await steward.post("/v1/customers/import", json=rows, headers=admin)).status_code == 200
    mine, other = rows[0]["id"], rows[1]["id"]
    engine = empty_database.engine()
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            items = [
                _item("m1", "message", "confidential", LabelState.labeled),
                _item("m2", "message", "confidential", LabelState.pending),
                _item("f1", "file", "highly_confidential", LabelState.kept_higher),
                _item("f2", "file", "confidential", LabelState.labeled),
            ]
            session.add_all(items)
            await session.flush()
            reasons = [{"rule": "participant.domain", "detail": "example.com"}]
            session.add_all(DatamapLink(item_pk=item.id, customer_id=mine, reasons=reasons) for item in items[:3])
            session.add(DatamapLink(item_pk=items[3].id, customer_id=other, reasons=reasons))
    finally:
        await engine.dispose()
    url = f"/v1/customers/{mine}/datamap"
    first = await steward.get(url, params={"limit": 2}, headers=await staff_tokens.auditor())
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["counts"] == {
        "items": 3,
        "by_kind": {"message": 2, "file": 1},
        "by_category": {"confidential": 2, "highly_confidential": 1},
        "by_label_state": {"labeled": 1, "pending": 1, "kept_higher": 1},
    }
    assert [item["item_id"] for item in body["items"]] == ["m1", "m2"]
    assert body["items"][0]["reasons"] == reasons
    rest = await steward.get(url, params={"limit": 2, "after": body["next_after"]}, headers=admin)
    assert ([item["item_id"] for item in rest.json()["items"]], rest.json()["next_after"]) == (["f1"], None)
    files = await steward.get(url, params={"kind": "file"}, headers=admin)
    assert [item["item_id"] for item in files.json()["items"]] == ["f1"]
    assert (await steward.get(url, params={"kind": "folder"}, headers=admin)).status_code == 422
    assert (await steward.get("/v1/customers/C9999/datamap", headers=admin)).status_code == 404
    assert (await steward.get(url)).status_code == 401
