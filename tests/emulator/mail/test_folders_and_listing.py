"""mailFolders and message listing in-process: paging, $select/$filter/$orderby, Prefer headers, permissions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from emulator.mail.store import Mailbox
from emulator.state import Tenant, User

WELL_KNOWN_TOP = ("archive", "deleteditems", "drafts", "inbox", "junkemail", "outbox", "sentitems")


async def test_list_mail_folders_top_level_only(graph: httpx.AsyncClient, owner: User, mailbox: Mailbox):
    response = await graph.get(f"/users/{owner.user_principal_name}/mailFolders", params={"$top": 50})
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"] == (
        f"https://emulator.test/v1.0/$metadata#users('{owner.user_principal_name}')/mailFolders"
    )
    ids = {f["id"] for f in body["value"]}
    assert ids == {mailbox.by_name[name].id for name in WELL_KNOWN_TOP}
    inbox = next(f for f in body["value"] if f["id"] == mailbox.by_name["inbox"].id)
    assert inbox == {
        "id": mailbox.by_name["inbox"].id,
        "displayName": "Hộp thư đến",
        "parentFolderId": mailbox.by_name["msgfolderroot"].id,
        "childFolderCount": 1,
        "unreadItemCount": mailbox.by_name["inbox"].unread,
        "totalItemCount": mailbox.by_name["inbox"].total,
        "isHidden": False,
    }
    assert inbox["totalItemCount"] > 0
    # Recoverable Items lives outside the IPM subtree: not listed even with hidden folders included.
    hidden = await graph.get(f"/users/{owner.id}/mailFolders", params={"includeHiddenFolders": "true", "$top": 50})
    assert {f["id"] for f in hidden.json()["value"]} == ids


async def test_folder_paging_select_and_filter(graph: httpx.AsyncClient, owner: User, mailbox: Mailbox):
    first = (await graph.get(f"/users/{owner.id}/mailFolders", params={"$top": 3, "$select": "displayName"})).json()
    assert len(first["value"]) == 3
    assert set(first["value"][0]) == {"id", "displayName"}
    next_link = first["@odata.nextLink"]
    assert parse_qs(urlsplit(next_link).query) == {"$select": ["displayName"], "$top": ["3"], "$skip": ["3"]}
    rest: list[str] = []
    url: str | None = next_link
    while url:
        page = (await graph.get(url)).json()
        rest += [f["id"] for f in page["value"]]
        url = page.get("@odata.nextLink")
    assert len(rest) + 3 == len(WELL_KNOWN_TOP)

    named = await graph.get(f"/users/{owner.id}/mailFolders", params={"$filter": "displayName eq 'Mục đã Gửi'"})
    assert [f["id"] for f in named.json()["value"]] == [mailbox.by_name["sentitems"].id]


async def test_folder_by_well_known_name_and_by_id(graph: httpx.AsyncClient, owner: User, mailbox: Mailbox):
    by_name = await graph.get(f"/users/{owner.id}/mailFolders/SentItems")
    by_id = await graph.get(f"/users/{owner.id}/mailFolders/{mailbox.by_name['sentitems'].id}")
    assert by_name.status_code == by_id.status_code == 200
    assert {k: v for k, v in by_name.json().items() if k != "@odata.context"} == {
        k: v for k, v in by_id.json().items() if k != "@odata.context"
    }
    deletions = (await graph.get(f"/users/{owner.id}/mailFolders/recoverableitemsdeletions")).json()
    assert deletions["isHidden"] is True
    children = (await graph.get(f"/users/{owner.id}/mailFolders/inbox/childFolders")).json()
    assert [f["displayName"] for f in children["value"]] in (["Khách hàng"], ["Customers"])
    assert children["value"][0]["totalItemCount"] == mailbox.by_name["inbox"].children[0].total

    missing = await graph.get(f"/users/{owner.id}/mailFolders/nosuchfolder")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ErrorItemNotFound"


async def test_list_messages_default_page_and_next_links(graph: httpx.AsyncClient, owner: User, mailbox: Mailbox):
    inbox = mailbox.by_name["inbox"]
    assert inbox.total > 10
    first = await graph.get(f"/users/{owner.id}/mailFolders/inbox/messages")
    body = first.json()
    assert len(body["value"]) == 10  # documented default page size
    assert body["@odata.context"].endswith(f"#users('{owner.id}')/mailFolders('inbox')/messages")
    received = [m["receivedDateTime"] for m in body["value"]]
    assert received == sorted(received, reverse=True)
    assert body["@odata.nextLink"].startswith(
        f"https://emulator.test/v1.0/users/{owner.id}/mailFolders/inbox/messages?"
    )

    ids: list[str] = []
    url: str | None = f"/users/{owner.id}/mailFolders/inbox/messages?$select=subject,receivedDateTime&$top=4"
    while url:
        page = (await graph.get(url)).json()
        for message in page["value"]:
            assert set(message) == {"@odata.etag", "id", "subject", "receivedDateTime"}
        ids += [m["id"] for m in page["value"]]
        url = page.get("@odata.nextLink")
        if url:
            assert parse_qs(urlsplit(url).query)["$select"] == ["subject,receivedDateTime"]
    assert len(ids) == len(set(ids)) == inbox.total


async def test_all_messages_span_visible_folders_only(graph: httpx.AsyncClient, owner: User, mailbox: Mailbox):
    response = await graph.get(f"/users/{owner.id}/messages", params={"$top": 1000, "$select": "parentFolderId"})
    folders = {m["parentFolderId"] for m in response.json()["value"]}
    visible = sum(f.total for f in mailbox.folders.values() if f.ipm)
    assert len(response.json()["value"]) == visible
    assert mailbox.by_name["sentitems"].id in folders
    assert mailbox.by_name["inbox"].children[0].id in folders


async def test_filter_orderby_count_and_inefficient_filter(graph: httpx.AsyncClient, owner: User, mailbox: Mailbox):
    everything = mailbox.by_name["inbox"].newest_first()
    middle = everything[len(everything) // 2].received
    bound = datetime.fromtimestamp(middle, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = await graph.get(
        f"/users/{owner.id}/mailFolders/inbox/messages",
        params={
            "$filter": f"receivedDateTime ge {bound} and receivedDateTime lt 2100-01-01",
            "$orderby": "receivedDateTime asc",
            "$top": 1000,
            "$count": "true",
            "$select": "receivedDateTime",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    expected = sorted(m.received for m in everything if m.received >= middle)
    assert body["@odata.count"] == len(expected)
    got = [m["receivedDateTime"] for m in body["value"]]
    assert got == [datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in expected]

    inefficient = await graph.get(
        f"/users/{owner.id}/messages",
        params={"$filter": f"receivedDateTime ge {bound}", "$orderby": "sentDateTime desc"},
    )
    assert inefficient.status_code == 400
    assert inefficient.json()["error"] == {
        **inefficient.json()["error"],
        "code": "InefficientFilter",
        "message": "The restriction or sort order is too complex for this operation.",
    }


@pytest.mark.parametrize(
    "params",
    [
        {"$filter": "isRead eq false"},
        {"$filter": "receivedDateTime ge '2024-01-01T00:00:00Z'"},  # DateTimeOffset literals are not quoted
        {"$filter": "receivedDateTime ge 2024-13-45"},
        {"$top": "0"},
        {"$top": "1001"},
        {"$skip": "-1"},
        {"$select": "subject,shoeSize"},
        {"$orderby": "receivedDateTime sideways"},
        {"$expand": "attachments"},
        {"$expand": "singleValueExtendedProperties($filter=id eq 'not an id')"},
    ],
)
async def test_bad_query_options_are_400(graph: httpx.AsyncClient, owner: User, params: dict[str, str]):
    response = await graph.get(f"/users/{owner.id}/messages", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"]


async def test_prefer_max_page_size_and_body_type(graph: httpx.AsyncClient, owner: User):
    response = await graph.get(
        f"/users/{owner.id}/mailFolders/inbox/messages",
        headers={"Prefer": 'odata.maxpagesize=3, outlook.body-content-type="text"'},
    )
    assert len(response.json()["value"]) == 3
    assert response.headers["Preference-Applied"] == 'odata.maxpagesize=3, outlook.body-content-type="text"'
    body = response.json()["value"][0]["body"]
    assert body["contentType"] == "text"
    assert "<html>" not in body["content"]
    html = (await graph.get(f"/users/{owner.id}/mailFolders/inbox/messages", params={"$top": 1})).json()
    assert html["value"][0]["body"]["contentType"] == "html"
    assert "uniqueBody" not in html["value"][0]  # only with $select
    assert "internetMessageHeaders" not in html["value"][0]


async def test_immutable_ids_are_honoured_and_both_forms_resolve(
    graph: httpx.AsyncClient, owner: User, mailbox: Mailbox
):
    prefer = {"Prefer": 'IdType="ImmutableId"'}
    listed = await graph.get(f"/users/{owner.id}/mailFolders/inbox/messages", params={"$top": 2}, headers=prefer)
    assert listed.headers["Preference-Applied"] == 'IdType="ImmutableId"'
    first = listed.json()["value"][0]
    message = mailbox.resolve(first["id"])
    assert message is not None
    assert first["id"] == mailbox.immutable_id(message) != mailbox.rest_id(message)

    by_immutable = await graph.get(f"/users/{owner.id}/messages/{mailbox.immutable_id(message)}")
    by_rest = await graph.get(f"/users/{owner.id}/messages/{mailbox.rest_id(message)}", headers=prefer)
    assert by_immutable.json()["id"] == mailbox.rest_id(message)  # no header: REST form
    assert by_rest.json()["id"] == mailbox.immutable_id(message)
    assert (
        by_rest.json()["@odata.context"] == f"https://emulator.test/v1.0/$metadata#users('{owner.id}')/messages/$entity"
    )


async def test_parenthesised_folder_keys(graph: httpx.AsyncClient, owner: User, mailbox: Mailbox):
    response = await graph.get(f"/users/{owner.id}/mailFolders('inbox')/messages", params={"$top": 1})
    assert response.status_code == 200
    assert response.json()["value"][0]["parentFolderId"] == mailbox.by_name["inbox"].id


async def test_unknown_users_ids_and_mailboxes(graph: httpx.AsyncClient, tenant: Tenant, owner: User, mailbox: Mailbox):
    unknown = await graph.get("/users/nobody@vnreseller.onmicrosoft.com/messages")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "ErrorInvalidUser"

    guest = next(u for u in tenant.users.values() if u.user_type == "Guest")
    no_mailbox = await graph.get(f"/users/{guest.id}/messages")
    assert no_mailbox.status_code == 404
    assert no_mailbox.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"

    malformed = await graph.get(f"/users/{owner.id}/messages/not-an-id")
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "ErrorInvalidIdMalformed"

    other = next(m for m in tenant.mail.mailboxes.values() if m is not mailbox)
    foreign_id = other.rest_id(other.by_name["inbox"].newest_first()[0])
    foreign = await graph.get(f"/users/{owner.id}/messages/{foreign_id}")
    assert foreign.status_code == 404
    assert foreign.json()["error"] == {
        **foreign.json()["error"],
        "code": "ErrorItemNotFound",
        "message": "The specified object was not found in the store.",
    }


async def test_mail_permissions(graph: httpx.AsyncClient, owner: User, mint: Callable[..., str]):
    def auth(*roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(roles=list(roles))}"}

    none = await graph.get(f"/users/{owner.id}/messages", headers=auth("User.Read.All"))
    assert none.status_code == 403
    assert none.json()["error"]["code"] == "ErrorAccessDenied"

    basic = await graph.get(f"/users/{owner.id}/messages", params={"$top": 2}, headers=auth("Mail.ReadBasic.All"))
    assert basic.status_code == 200
    for message in basic.json()["value"]:
        assert "body" not in message
        assert "bodyPreview" not in message
        assert "subject" in message
    for params in ({"$select": "subject,body"}, {"$expand": "singleValueExtendedProperties($filter=id eq 'x')"}):
        refused = await graph.get(f"/users/{owner.id}/messages", params=params, headers=auth("Mail.ReadBasic.All"))
        assert refused.status_code == 403

    message_id = basic.json()["value"][0]["id"]
    write = await graph.patch(
        f"/users/{owner.id}/messages/{message_id}", json={"isRead": True}, headers=auth("Mail.Read")
    )
    assert write.status_code == 403
    send = await graph.post(
        f"/users/{owner.id}/sendMail",
        json={"message": {"toRecipients": [{"emailAddress": {"address": "x@example.com"}}]}},
        headers=auth("Mail.ReadWrite"),
    )
    assert send.status_code == 403
