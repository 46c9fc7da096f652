"""Acceptance on the seeded local tenant, through the API: a gagged and a non-gagged demand, an upheld objection
(no export, holds kept until closed, the deletion planner excludes the held items) and a rejected one (exported
after two legal approvals, the package's hashes checked against the tenant's own file content)."""

import hashlib
import io
import json
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.models import PlanStatus, TriggerKind
from app.plans.holds import PENDING_DISCLOSURE
from app.plans.service import PlanRequest, Requester, build_plan, plan_items
from emulator.files.content import content_bytes
from emulator.state import Customer
from tests.app.disclosures.live import Live, live_steward

ALL_TIME = {"date_from": "2000-01-01T00:00:00Z", "date_to": "2100-01-01T00:00:00Z"}


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    async with live_steward(tmp_path_factory.mktemp("disclosure-e2e")) as running:
        yield running


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def customers(live: Live, *, do_not_disclose: bool = False) -> list[Customer]:
    return [c for c in live.tenant.customers if c.do_not_disclose == do_not_disclose]


def demand_body(customer: Customer, reference: str, *, gagged: bool) -> dict[str, Any]:
    return {
        "customer_id": customer.id,
        "authority": "Cơ quan Cảnh sát điều tra Công an TP.HCM",
        "legal_basis": "Điều 88 Bộ luật Tố tụng hình sự 2015",
        "reference": reference,
        "data_description": "toàn bộ thư và tài liệu trao đổi với khách hàng",
        "scope": ALL_TIME,
        "deadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "gagged": gagged,
    }


async def receive(live: Live, customer: Customer, reference: str, *, gagged: bool) -> dict[str, Any]:
    response = await live.api.post(
        "/v1/disclosures", json=demand_body(customer, reference, gagged=gagged), headers=live.headers()
    )
    assert response.status_code == 201, response.text
    demand: dict[str, Any] = response.json()
    assert demand["items_in_scope"] > 0
    assert demand["holds_active"] == demand["items_frozen"] == demand["items_in_scope"]
    return demand


async def read(live: Live, demand_id: str) -> dict[str, Any]:
    response = await live.api.get(f"/v1/disclosures/{demand_id}", headers=live.headers())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def object_and_decide(live: Live, demand_id: str, outcome: str) -> dict[str, Any]:
    objection = {
        "objector": "Luật sư của khách hàng",
        "received_at": datetime.now(UTC).isoformat(),
        "grounds": "Yêu cầu vượt quá phạm vi vụ án",
        "evidence_ref": "Đơn phản đối số 12/2026",
    }
    response = await live.api.post(f"/v1/disclosures/{demand_id}/objections", json=objection, headers=live.headers())
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "objected"
    decision = {"outcome": outcome, "decided_by": "Tòa án nhân dân TP.HCM", "decided_at": datetime.now(UTC).isoformat()}
    response = await live.api.post(f"/v1/disclosures/{demand_id}/decisions", json=decision, headers=live.headers())
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_customer_is_told_unless_the_law_forbids_it(live: Live) -> None:
    told, untold = customers(live)[0], customers(live)[1]
    sent_before = len(await live.outbox())
    open_demand = await receive(live, told, "CV-001/2026", gagged=False)
    gagged_demand = await receive(live, untold, "CV-002/2026", gagged=True)
    await live.relay()

    new_mail = (await live.outbox())[sent_before:]
    told_addresses = sorted(contact.email.lower() for contact in told.contacts)
    [notice] = new_mail
    assert sorted(address.lower() for address in notice["to"]) == told_addresses
    assert notice["from"].lower() == live.settings.notification_mailbox.lower()
    assert "Thông báo về yêu cầu tiết lộ thông tin" in notice["subject"]
    assert "Notice of a compelled disclosure request" in notice["subject"]
    assert told.legal_name in notice["body"]
    assert "legal@vnreseller.example" in notice["body"]
    untold_addresses = {contact.email.lower() for contact in untold.contacts}
    assert not any(untold_addresses & {a.lower() for a in row["to"] + row["cc"] + row["bcc"]} for row in new_mail)

    assert (await read(live, open_demand["id"]))["notice_recipients"] == told_addresses
    gagged = await read(live, gagged_demand["id"])
    assert (gagged["notice_sent_at"], gagged["notice_recipients"]) == (None, [])

    cards = json.dumps(await live.channel_cards(), ensure_ascii=False)
    assert "Steward: compelled disclosure" in cards
    assert "CV-001/2026" in cards
    assert "CV-002/2026" in cards
    assert "forbidden by law (gagged)" in cards


async def test_an_upheld_objection_stops_the_export_and_holds_stay_until_closed(live: Live) -> None:
    customer = customers(live)[2]
    demand = await receive(live, customer, "CV-003/2026", gagged=False)
    stayed = await object_and_decide(live, demand["id"], "upheld")
    assert stayed["status"] == "stayed"

    refused = await live.api.post(f"/v1/disclosures/{demand['id']}/export", headers=live.headers())
    assert refused.status_code == 409, refused.text
    approval = {"decision": "approve", "scope_hash": stayed["scope_hash"]}
    for lawyer in live.lawyers:
        answer = await live.api.post(
            f"/v1/disclosures/{demand['id']}/approvals", json=approval, headers=live.headers(lawyer)
        )
        assert answer.status_code == 409, answer.text
    assert (await read(live, demand["id"]))["holds_active"] == demand["items_frozen"]

    # The deletion planner, building from the synced data map, excludes every item the demand froze.
    items = await live.api.get(f"/v1/disclosures/{demand['id']}/items", headers=live.headers())
    frozen = {item["item_id"] for item in items.json()}
    async with live.runtime.sessionmaker() as session, session.begin():
        plan = await build_plan(
            session,
            live.runtime.context(),
            PlanRequest(
                TriggerKind.company_decision, (customer.id,), Requester("oid-officer", "officer"), reason="test"
            ),
            dry_run=True,
        )
        assert plan.status == PlanStatus.dry_run
        reasons = {item.item_id: item.exclusion_reason for item in await plan_items(session, plan.id)}
    assert frozen <= set(reasons)
    assert {item_id for item_id in frozen if reasons[item_id] != PENDING_DISCLOSURE} == set()

    closed = await live.api.post(
        f"/v1/disclosures/{demand['id']}/close", json={"reason": "stayed by the court"}, headers=live.headers()
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["holds_active"] == 0


async def test_a_rejected_objection_exports_after_two_legal_approvals(live: Live) -> None:
    customer = customers(live)[3]
    demand = await receive(live, customer, "CV-004/2026", gagged=False)
    released = await object_and_decide(live, demand["id"], "rejected")
    assert released["status"] == "released"
    url = f"/v1/disclosures/{demand['id']}"
    approval = {"decision": "approve", "scope_hash": released["scope_hash"]}

    self_approval = await live.api.post(f"{url}/approvals", json=approval, headers=live.headers(live.clerk))
    assert self_approval.status_code == 403, self_approval.text
    first = await live.api.post(f"{url}/approvals", json=approval, headers=live.headers(live.lawyers[0]))
    assert first.json()["approvals"] == 1
    too_early = await live.api.post(f"{url}/export", headers=live.headers())
    assert too_early.status_code == 409, too_early.text
    second = await live.api.post(f"{url}/approvals", json=approval, headers=live.headers(live.lawyers[1]))
    assert second.json()["approvals"] == 2

    exported = await live.api.post(f"{url}/export", headers=live.headers(live.lawyers[0]))
    assert exported.status_code == 201, exported.text
    body = exported.json()
    assert body["status"] == "exported"
    [record] = body["exports"]
    assert record["item_count"] == demand["items_in_scope"]

    package = await live.api.get(f"{url}/exports/{record['id']}/package", headers=live.headers(live.lawyers[1]))
    assert package.status_code == 200, package.text
    assert sha(package.content) == record["package_sha256"] == package.headers["x-package-sha256"]
    items = {item.id: item for item in live.tenant.files.items.values()}
    with zipfile.ZipFile(io.BytesIO(package.content)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        lines = [line for line in manifest["items"] if line["status"] == "exported"]
        assert {line["item_id"] for line in lines} == {line["item_id"] for line in record["items"]}
        files = [line for line in lines if line["kind"] == "file"]
        messages = [line for line in lines if line["kind"] == "message"]
        assert files, "the customer has files in the tenant"
        assert messages, "the customer has mail in the tenant"
        for line in files:
            expected = content_bytes(live.tenant, items[line["item_id"]])
            assert sha(archive.read(line["path"])) == line["sha256"] == sha(expected)
        for line in messages:
            message = json.loads(archive.read(line["path"]))
            assert sha(archive.read(line["path"])) == line["sha256"]
            assert message["id"] == line["item_id"]
            assert message["body"]["content"]
        sums = archive.read("SHA256SUMS").decode().splitlines()
        assert sorted(sums) == sorted(f"{line['sha256']}  {line['path']}" for line in lines)
    assert {a["id"] for a in manifest["approved_by"]} == {lawyer.id for lawyer in live.lawyers}
    assert manifest["demand"]["customer"] == {"id": customer.id, "name": customer.legal_name}

    again = await live.api.post(f"{url}/export", headers=live.headers(live.lawyers[0]))
    assert again.status_code == 409
    assert (await read(live, demand["id"]))["holds_active"] == demand["items_frozen"], "holds stay until closed"


async def test_bad_requests_get_clear_errors_and_roles_are_enforced(live: Live) -> None:
    customer = customers(live)[4]
    body = demand_body(customer, "CV-005/2026", gagged=False)
    del body["gagged"]
    missing_gag = await live.api.post("/v1/disclosures", json=body, headers=live.headers())
    assert missing_gag.status_code == 422
    assert any(reason["field"] == "body.gagged" for reason in missing_gag.json()["detail"])
    both_scopes = demand_body(customer, "CV-005/2026", gagged=False) | {
        "scope": {**ALL_TIME, "items": [{"kind": "file", "container_id": "d", "item_id": "i"}]}
    }
    assert (await live.api.post("/v1/disclosures", json=both_scopes, headers=live.headers())).status_code == 422
    as_auditor = await live.api.post(
        "/v1/disclosures", json=demand_body(customer, "CV-005/2026", gagged=False), headers=live.headers(live.auditor)
    )
    assert as_auditor.status_code == 403
    assert (await live.api.get("/v1/disclosures/" + "0" * 32, headers=live.headers())).status_code == 404
    assert (await live.api.get("/v1/disclosures/not-an-id", headers=live.headers())).status_code == 422
    assert (await live.api.get("/v1/disclosures")).status_code == 401


async def test_auditors_see_a_do_not_disclose_customer_by_id_only(live: Live) -> None:
    [protected] = customers(live, do_not_disclose=True)[:1]
    demand = await receive(live, protected, "CV-006/2026", gagged=False)
    await live.relay()
    as_staff = await read(live, demand["id"])
    assert as_staff["customer"] == {"id": protected.id, "confidential": True, "legal_name": protected.legal_name}
    as_auditor = await live.api.get(f"/v1/disclosures/{demand['id']}", headers=live.headers(live.auditor))
    assert as_auditor.status_code == 200, as_auditor.text
    shown = as_auditor.json()
    assert shown["customer"] == {"id": protected.id, "confidential": True, "legal_name": None}
    assert shown["notice_recipients"] == []
    assert protected.legal_name not in as_auditor.text
    assert not any(contact.email in as_auditor.text for contact in protected.contacts)
    history = await live.api.get(f"/v1/disclosures/{demand['id']}/history", headers=live.headers(live.auditor))
    assert [entry["action"] for entry in history.json()][:2] == ["disclosure.received", "disclosure.notice_sent"]
