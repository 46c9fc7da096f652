"""PATCH, move, DELETE, permanentDelete and sendMail in-process, with the change events they publish."""

from __future__ import annotations

import httpx
import pytest

from emulator.mail.store import MSIP_LABELS_PROPERTY, Mailbox
from emulator.state import ChangeEvent, Tenant, User
from tests.emulator.mail.conftest import customer_message

LABEL = (
    "MSIP_Label_2096f6a2-d2f7-48be-b329-b73aaa526e5d_Enabled=true; "
    "MSIP_Label_2096f6a2-d2f7-48be-b329-b73aaa526e5d_Method=Privileged; "
    "MSIP_Label_2096f6a2-d2f7-48be-b329-b73aaa526e5d_Name=Confidential"
)
EXPAND_LABELS = f"singleValueExtendedProperties($filter=id eq '{MSIP_LABELS_PROPERTY}')"


async def test_patch_label_and_category_then_read_back(
    graph: httpx.AsyncClient, owner: User, mailbox: Mailbox, events: list[ChangeEvent]
):
    message = customer_message(mailbox)
    path = f"/users/{owner.id}/messages/{mailbox.rest_id(message)}"
    before = (await graph.get(path)).json()
    unlabelled = await graph.get(path, params={"$expand": EXPAND_LABELS})
    assert "singleValueExtendedProperties" not in unlabelled.json()

    response = await graph.patch(
        path,
        json={
            "@odata.type": "#microsoft.graph.message",  # what msgraph-sdk sends with every message body
            "categories": ["Khách hàng", "Steward: reviewed"],
            "singleValueExtendedProperties": [{"id": MSIP_LABELS_PROPERTY, "value": LABEL}],
        },
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["categories"] == ["Khách hàng", "Steward: reviewed"]
    assert updated["changeKey"] != before["changeKey"]
    assert updated["@odata.etag"] == f'W/"{updated["changeKey"]}"' != before["@odata.etag"]
    assert updated["id"] == before["id"]  # an update keeps the id; only a move changes it

    # The Name part of a PS_INTERNET_HEADERS property id compares case-insensitively.
    other_casing = MSIP_LABELS_PROPERTY.replace("msip_labels", "MSIP_Labels").replace("C000", "c000")
    read_back = await graph.get(
        path, params={"$expand": f"singleValueExtendedProperties($filter=id eq '{other_casing}')"}
    )
    assert read_back.json()["singleValueExtendedProperties"] == [{"id": MSIP_LABELS_PROPERTY, "value": LABEL}]
    assert read_back.json()["categories"] == ["Khách hàng", "Steward: reviewed"]
    listed = await graph.get(
        f"/users/{owner.id}/mailFolders/inbox/messages",
        params={"$select": "categories", "$expand": EXPAND_LABELS, "$top": 1000},
    )
    labelled = [m for m in listed.json()["value"] if "singleValueExtendedProperties" in m]
    assert [m["id"] for m in labelled] == [before["id"]]
    headers = await graph.get(path, params={"$select": "internetMessageHeaders"})
    assert {"name": "msip_labels", "value": LABEL} in headers.json()["internetMessageHeaders"]

    assert [(e.change_type, e.resource_id, e.owner) for e in events] == [("updated", before["id"], owner.id)]
    assert events[0].resource == f"users/{owner.id}/messages/{before['id']}"
    assert events[0].data["folderWellKnownName"] == "inbox"


async def test_patch_is_read_updates_folder_counts(graph: httpx.AsyncClient, owner: User, mailbox: Mailbox):
    inbox = mailbox.by_name["inbox"]
    unread = next(m for m in inbox.newest_first() if not m.is_read)
    before = inbox.unread
    response = await graph.patch(f"/users/{owner.id}/messages/{mailbox.rest_id(unread)}", json={"isRead": True})
    assert response.json()["isRead"] is True
    folder = (await graph.get(f"/users/{owner.id}/mailFolders/inbox")).json()
    assert folder["unreadItemCount"] == before - 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"shoeSize": 42}, "RequestBodyRead"),
        ({"receivedDateTime": "2020-01-01T00:00:00Z"}, "ErrorInvalidPropertySet"),
        ({"subject": "changed"}, "ErrorInvalidPropertyUpdateSentMessage"),
        ({"isRead": "yes"}, "RequestBodyRead"),
        ({"categories": "not a list"}, "RequestBodyRead"),
        ({"importance": "urgent"}, "RequestBodyRead"),
        ({"flag": {"flagStatus": "waving"}}, "RequestBodyRead"),
        (
            {"singleValueExtendedProperties": [{"id": "String nonsense", "value": "x"}]},
            "ErrorInvalidExtendedPropertyValue",
        ),
        (
            {"singleValueExtendedProperties": [{"id": MSIP_LABELS_PROPERTY, "value": 7}]},
            "ErrorInvalidExtendedPropertyValue",
        ),
    ],
)
async def test_patch_rejects_bad_fields_without_writing(
    graph: httpx.AsyncClient, owner: User, mailbox: Mailbox, body: dict[str, object], code: str
):
    message = customer_message(mailbox)
    seq = message.seq
    response = await graph.patch(
        f"/users/{owner.id}/messages/{mailbox.rest_id(message)}", json={"categories": ["x"], **body}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code
    assert message.categories != ("x",)  # validated in full before anything is applied
    assert message.seq == seq


async def test_patch_bad_json_is_400(graph: httpx.AsyncClient, owner: User, mailbox: Mailbox):
    path = f"/users/{owner.id}/messages/{mailbox.rest_id(customer_message(mailbox))}"
    for content in (b"", b"{not json", b"[1, 2]"):
        response = await graph.patch(path, content=content, headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "BadRequest"


async def test_move_gives_201_new_rest_id_and_keeps_immutable_id(
    graph: httpx.AsyncClient, owner: User, mailbox: Mailbox, events: list[ChangeEvent]
):
    message = customer_message(mailbox)
    old_rest, immutable = mailbox.rest_id(message), mailbox.immutable_id(message)
    response = await graph.post(f"/users/{owner.id}/messages/{old_rest}/move", json={"destinationId": "archive"})
    assert response.status_code == 201
    moved = response.json()
    assert moved["id"] != old_rest
    assert moved["parentFolderId"] == mailbox.by_name["archive"].id
    assert (await graph.get(f"/users/{owner.id}/messages/{old_rest}")).status_code == 404
    by_immutable = await graph.get(f"/users/{owner.id}/messages/{immutable}")
    assert by_immutable.json()["id"] == moved["id"]
    again = await graph.post(
        f"/users/{owner.id}/mailFolders/archive/messages/{moved['id']}/move",
        json={"destinationId": mailbox.by_name["inbox"].id},
        headers={"Prefer": 'IdType="ImmutableId"'},
    )
    assert again.json()["id"] == immutable
    assert [(e.change_type, e.data["folderWellKnownName"]) for e in events] == [
        ("deleted", "inbox"),
        ("created", "archive"),
        ("deleted", "archive"),
        ("created", "inbox"),
    ]


async def test_move_errors(graph: httpx.AsyncClient, owner: User, mailbox: Mailbox):
    path = f"/users/{owner.id}/messages/{mailbox.rest_id(customer_message(mailbox))}/move"
    missing = await graph.post(path, json={})
    assert missing.status_code == 400
    unknown = await graph.post(path, json={"destinationId": "nowhere"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "ErrorItemNotFound"


async def test_delete_is_a_soft_delete_into_recoverable_items(graph: httpx.AsyncClient, owner: User, mailbox: Mailbox):
    message = customer_message(mailbox)
    rest, immutable = mailbox.rest_id(message), mailbox.immutable_id(message)
    response = await graph.delete(f"/users/{owner.id}/messages/{rest}")
    assert response.status_code == 204
    assert response.content == b""
    assert (await graph.get(f"/users/{owner.id}/messages/{rest}")).status_code == 404
    kept = (await graph.get(f"/users/{owner.id}/messages/{immutable}")).json()
    assert kept["parentFolderId"] == mailbox.by_name["recoverableitemsdeletions"].id
    visible = await graph.get(f"/users/{owner.id}/messages", params={"$top": 1000, "$select": "id"})
    assert kept["id"] not in {m["id"] for m in visible.json()["value"]}
    # Deleting from Recoverable Items purges for good.
    assert (await graph.delete(f"/users/{owner.id}/messages/{immutable}")).status_code == 204
    assert (await graph.get(f"/users/{owner.id}/messages/{immutable}")).status_code == 404


async def test_permanent_delete_and_holds(graph: httpx.AsyncClient, tenant: Tenant, owner: User, mailbox: Mailbox):
    message = customer_message(mailbox)
    immutable = mailbox.immutable_id(message)
    response = await graph.post(f"/users/{owner.id}/mailFolders/inbox/messages/{immutable}/permanentDelete")
    assert response.status_code == 204
    assert (await graph.get(f"/users/{owner.id}/messages/{immutable}")).status_code == 404
    assert mailbox.purges == []  # not on hold: gone for good
    assert message not in mailbox.messages()

    # The seeded eDiscovery case holds one custodian's mailbox: purged items stay, invisible to Graph.
    custodian = tenant.hold_cases[0].custodian_user_ids[0]
    held = tenant.mail.mailboxes[custodian]
    victim = held.by_name["inbox"].newest_first()[0]
    held_id = held.immutable_id(victim)
    assert (await graph.post(f"/users/{custodian}/messages/{held_id}/permanentDelete")).status_code == 204
    assert (await graph.get(f"/users/{custodian}/messages/{held_id}")).status_code == 404
    assert held.purges == [victim]


async def test_send_mail_delivers_internally_and_records_external(
    graph: httpx.AsyncClient, tenant: Tenant, owner: User, mailbox: Mailbox, events: list[ChangeEvent]
):
    colleague = next(u for u in tenant.staff if u.id != owner.id)
    customer = tenant.customers[0]
    contact = customer.contacts[0]
    sent_before = mailbox.by_name["sentitems"].total
    inbox_before = tenant.mail.mailboxes[colleague.id].by_name["inbox"].total
    response = await graph.post(
        f"/users/{owner.user_principal_name}/sendMail",
        json={
            "message": {
                "subject": "Thông báo xóa dữ liệu",
                "body": {"contentType": "Text", "content": "Dữ liệu của quý công ty đã được xóa."},
                "toRecipients": [{"emailAddress": {"address": contact.email, "name": contact.name}}],
                "ccRecipients": [{"emailAddress": {"address": colleague.mail}}],
                "internetMessageHeaders": [{"name": "x-steward-case", "value": "42"}],
            },
            "saveToSentItems": "true",
        },
    )
    assert response.status_code == 202
    assert response.content == b""
    sent = mailbox.by_name["sentitems"].newest_first()[0]
    assert mailbox.by_name["sentitems"].total == sent_before + 1
    assert tenant.mail.mailboxes[colleague.id].by_name["inbox"].total == inbox_before + 1
    delivered = tenant.mail.mailboxes[colleague.id].by_name["inbox"].newest_first()[0]
    assert delivered.is_read is False
    assert sent.truth_customers == delivered.truth_customers == (customer.id,)
    record = tenant.mail.outbox[-1]
    assert record.external == (contact.email,)
    assert record.customers == (customer.id,)
    assert record.body == "Dữ liệu của quý công ty đã được xóa."
    assert record.sent_copy_id == mailbox.immutable_id(sent)
    path = f"/users/{owner.id}/messages/{record.sent_copy_id}"
    as_html = await graph.get(path, params={"$select": "subject,body"})
    assert as_html.json()["subject"] == "Thông báo xóa dữ liệu"
    assert "<p>Dữ liệu của quý công ty đã được xóa.</p>" in as_html.json()["body"]["content"]  # HTML by default
    as_text = await graph.get(path, headers={"Prefer": 'outlook.body-content-type="text"'})
    assert as_text.json()["body"] == {"contentType": "text", "content": "Dữ liệu của quý công ty đã được xóa."}
    assert {(e.owner, e.change_type) for e in events} == {(owner.id, "created"), (colleague.id, "created")}


async def test_send_mail_without_saving_and_bad_requests(
    graph: httpx.AsyncClient, tenant: Tenant, owner: User, mailbox: Mailbox
):
    sent_before = mailbox.by_name["sentitems"].total
    ok = await graph.post(
        f"/users/{owner.id}/sendMail",
        json={
            "message": {"subject": "hi", "toRecipients": [{"emailAddress": {"address": "someone@outside.example"}}]},
            "saveToSentItems": False,
        },
    )
    assert ok.status_code == 202
    assert mailbox.by_name["sentitems"].total == sent_before
    assert tenant.mail.outbox[-1].sent_copy_id is None
    assert tenant.mail.outbox[-1].customers == ()

    cases = [
        ({}, "ErrorInvalidParameter"),
        ({"message": {"subject": "nobody"}}, "ErrorInvalidRecipients"),
        ({"message": {"toRecipients": [{"emailAddress": {"address": "not-an-address"}}]}}, "ErrorInvalidRecipients"),
        (
            {
                "message": {
                    "toRecipients": [{"emailAddress": {"address": "a@b.example"}}],
                    "internetMessageHeaders": [{"name": "Subject", "value": "x"}],
                }
            },
            "InvalidInternetMessageHeader",
        ),
        ({"message": {"toRecipients": [], "shoeSize": 1}}, "RequestBodyRead"),
        ({"message": {"toRecipients": [{"emailAddress": {"address": "a@b.example"}}]}, "saveToSentItems": 3}, None),
    ]
    for body, code in cases:
        response = await graph.post(f"/users/{owner.id}/sendMail", json=body)
        assert response.status_code == 400, body
        if code:
            assert response.json()["error"]["code"] == code, body
    spoof = await graph.post(
        f"/users/{owner.id}/sendMail",
        json={
            "message": {
                "toRecipients": [{"emailAddress": {"address": "a@b.example"}}],
                "from": {"emailAddress": {"address": tenant.staff[-1].mail}},
            }
        },
    )
    assert spoof.status_code == 403
