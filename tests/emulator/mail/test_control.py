"""The /_emulator/mail control plane: ground truth, summaries, outbox, run-time changes, holds, token eviction."""

from __future__ import annotations

import httpx

from emulator.mail.store import Mailbox
from emulator.state import ChangeEvent, Tenant, User

CONTROL = "https://emulator.test/_emulator/mail"


async def test_truth_per_customer(graph: httpx.AsyncClient, tenant: Tenant):
    everything = (await graph.get(f"{CONTROL}/truth")).json()
    assert set(everything) == {c.id for c in tenant.customers}
    for customer in tenant.customers:
        rows = (await graph.get(f"{CONTROL}/truth/{customer.id}")).json()
        assert rows == everything[customer.id]
        assert len(rows) == len(tenant.mail.truth(customer.id))
        for row in rows:
            assert customer.id in row["customers"]
            mailbox = tenant.mail.mailboxes[row["mailbox"]]
            assert mailbox.resolve(row["immutableId"]) is mailbox.resolve(row["id"]) is not None
    with_identifiers = [r for rows in everything.values() for r in rows if r["identifiers"]]
    assert with_identifiers
    assert {i["kind"] for r in with_identifiers for i in r["identifiers"]} >= {"phone", "contract"}
    assert (await graph.get(f"{CONTROL}/truth/C9999")).status_code == 404


async def test_mailbox_summary_and_holds(graph: httpx.AsyncClient, tenant: Tenant, owner: User, mailbox: Mailbox):
    summary = {row["userId"]: row for row in (await graph.get(f"{CONTROL}/mailboxes")).json()}
    assert set(summary) == set(tenant.mail.mailboxes)
    assert summary[owner.id]["folders"]["inbox"] == {
        "total": mailbox.by_name["inbox"].total,
        "unread": mailbox.by_name["inbox"].unread,
    }
    custodian = tenant.hold_cases[0].custodian_user_ids[0]
    assert summary[custodian]["onHold"] is True  # the seeded eDiscovery case
    assert summary[owner.id]["onHold"] is (owner.id == custodian)

    held = await graph.put(f"{CONTROL}/mailboxes/{owner.user_principal_name}/hold", json={"enabled": True})
    assert held.json() == {"userId": owner.id, "hold": True, "onHold": True}
    message = mailbox.by_name["inbox"].newest_first()[0]
    await graph.post(f"/users/{owner.id}/messages/{mailbox.rest_id(message)}/permanentDelete")
    purges = (await graph.get(f"{CONTROL}/mailboxes/{owner.id}/purges")).json()
    assert [p["immutableId"] for p in purges] == [mailbox.immutable_id(message)]
    bad = await graph.put(f"{CONTROL}/mailboxes/{owner.id}/hold", content=b"nope")
    assert bad.status_code == 400


async def test_add_change_delete_at_run_time(
    graph: httpx.AsyncClient, tenant: Tenant, owner: User, mailbox: Mailbox, events: list[ChangeEvent]
):
    customer = tenant.customers[1]
    added = await graph.post(
        f"{CONTROL}/mailboxes/{owner.id}/messages",
        json={
            "folder": "inbox",
            "subject": "Hỏi về hợp đồng",
            "body": "Số hợp đồng HĐ-2025/0042",
            "from": {"name": customer.contacts[0].name, "address": customer.contacts[0].email},
        },
    )
    assert added.status_code == 201
    row = added.json()
    assert row["customers"] == [customer.id]  # inferred from the sender's domain
    graph_view = (await graph.get(f"/users/{owner.id}/messages/{row['id']}")).json()
    assert graph_view["subject"] == "Hỏi về hợp đồng"
    assert graph_view["isRead"] is False

    changed = await graph.patch(
        f"{CONTROL}/mailboxes/{owner.id}/messages/{row['immutableId']}", json={"subject": "Đổi tiêu đề", "isRead": True}
    )
    assert changed.json()["subject"] == "Đổi tiêu đề"
    seeded = mailbox.by_name["sentitems"].newest_first()[0]
    renamed = await graph.patch(
        f"{CONTROL}/mailboxes/{owner.id}/messages/{mailbox.rest_id(seeded)}", json={"subject": "X"}
    )
    assert renamed.json()["subject"] == "X"
    assert (await graph.get(f"/users/{owner.id}/messages/{mailbox.rest_id(seeded)}")).json()["subject"] == "X"

    trashed = await graph.delete(
        f"{CONTROL}/mailboxes/{owner.id}/messages/{row['id']}", params={"mode": "deleteditems"}
    )
    assert trashed.status_code == 204
    trashed_message = mailbox.resolve(row["immutableId"])
    assert trashed_message is not None
    assert trashed_message.folder.well_known == "deleteditems"
    purged = await graph.delete(
        f"{CONTROL}/mailboxes/{owner.id}/messages/{row['immutableId']}", params={"mode": "purge"}
    )
    assert purged.status_code == 204
    assert mailbox.resolve(row["immutableId"]) is None
    assert [e.change_type for e in events] == ["created", "updated", "updated", "deleted", "created", "deleted"]

    for bad in (
        graph.post(f"{CONTROL}/mailboxes/{owner.id}/messages", json={"folder": "nowhere"}),
        graph.post(f"{CONTROL}/mailboxes/{owner.id}/messages", json={"to": "not-a-list"}),
        graph.post(f"{CONTROL}/mailboxes/{owner.id}/messages", json={"customerIds": ["C9999"]}),
        graph.patch(f"{CONTROL}/mailboxes/{owner.id}/messages/{row['id']}", json={"isRead": True}),
        graph.patch(f"{CONTROL}/mailboxes/{owner.id}/messages/{mailbox.rest_id(seeded)}", json={"colour": "red"}),
        graph.delete(f"{CONTROL}/mailboxes/{owner.id}/messages/{mailbox.rest_id(seeded)}", params={"mode": "shred"}),
        graph.post(f"{CONTROL}/mailboxes/nobody/evict-delta-tokens"),
    ):
        response = await bad
        assert response.status_code in (400, 404), response.text


async def test_evict_and_outbox(graph: httpx.AsyncClient, tenant: Tenant, owner: User, mailbox: Mailbox):
    await graph.get(f"/users/{owner.id}/mailFolders/inbox/messages/delta")
    evicted = await graph.post(f"{CONTROL}/mailboxes/{owner.id}/evict-delta-tokens")
    assert evicted.json() == {"evicted": 1}
    assert mailbox.sync_states == {}

    assert (await graph.get(f"{CONTROL}/outbox")).json() == []
    contact = tenant.customers[0].contacts[0]
    await graph.post(
        f"/users/{owner.id}/sendMail",
        json={"message": {"subject": "s", "bccRecipients": [{"emailAddress": {"address": contact.email}}]}},
    )
    outbox = (await graph.get(f"{CONTROL}/outbox")).json()
    assert [(r["external"], r["bcc"], r["customers"]) for r in outbox] == [
        ([contact.email], [contact.email], [tenant.customers[0].id])
    ]
