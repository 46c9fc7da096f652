"""Message delta in-process: rounds, @removed, changeType, $select in tokens, id forms, 410 on lost sync state."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from emulator.mail.service import add_message
from emulator.mail.store import Mailbox
from emulator.state import Tenant, User
from tests.emulator.mail.conftest import customer_message


async def sync(
    graph: httpx.AsyncClient, url: str, *, page_size: int = 4, headers: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], str, int]:
    """Follow nextLinks to the end of a round: (items, deltaLink, pages)."""
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        response = await graph.get(url, headers={"Prefer": f"odata.maxpagesize={page_size}", **(headers or {})})
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        assert body["@odata.context"] == "https://emulator.test/v1.0/$metadata#Collection(message)"
        assert len(body["value"]) <= page_size
        items += body["value"]
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return items, body["@odata.deltaLink"], pages
        url = body["@odata.nextLink"]
        assert "$skiptoken=" in url


async def test_initial_round_enumerates_the_folder(graph: httpx.AsyncClient, owner: User, mailbox: Mailbox):
    inbox = mailbox.by_name["inbox"]
    items, delta_link, pages = await sync(graph, f"/users/{owner.id}/mailFolders/inbox/messages/delta")
    assert sorted(i["id"] for i in items) == sorted(mailbox.rest_id(m) for m in inbox.messages.values())
    assert pages == -(-inbox.total // 4)
    assert all(i["@odata.type"] == "#microsoft.graph.message" and "@removed" not in i for i in items)
    assert delta_link.startswith(
        f"https://emulator.test/v1.0/users/{owner.id}/mailFolders('{inbox.id}')/messages/delta"
    )
    assert "$deltatoken" in parse_qs(urlsplit(delta_link).query)
    # Nothing changed: the next round is empty and hands out a fresh deltaLink.
    again, next_link, _ = await sync(graph, delta_link)
    assert again == []
    assert next_link != delta_link


async def test_next_round_reports_exactly_the_changes(
    graph: httpx.AsyncClient, tenant: Tenant, owner: User, mailbox: Mailbox
):
    _, delta_link, _ = await sync(graph, f"/users/{owner.id}/mailFolders('inbox')/messages/delta()")
    inbox = mailbox.by_name["inbox"].newest_first()
    updated, moved, deleted = inbox[0], inbox[1], inbox[2]
    moved_id, deleted_id = mailbox.rest_id(moved), mailbox.rest_id(deleted)
    assert (
        await graph.patch(f"/users/{owner.id}/messages/{mailbox.rest_id(updated)}", json={"isRead": False})
    ).is_success
    assert (
        await graph.post(f"/users/{owner.id}/messages/{moved_id}/move", json={"destinationId": "archive"})
    ).is_success
    assert (await graph.delete(f"/users/{owner.id}/messages/{deleted_id}")).status_code == 204
    arrived = add_message(
        tenant,
        mailbox,
        mailbox.by_name["inbox"],
        subject="Mới",
        body="Tin nhắn mới",
        sender=("Khách", "khach@example.com"),
        to=((owner.display_name, owner.mail),),
    )
    items, new_link, _ = await sync(graph, delta_link, page_size=2)
    removed = sorted(i["id"] for i in items if "@removed" in i)
    assert removed == sorted([moved_id, deleted_id])
    assert all(
        i == {"@odata.type": "#microsoft.graph.message", "id": i["id"], "@removed": {"reason": "deleted"}}
        for i in items
        if "@removed" in i
    )
    present = {i["id"]: i for i in items if "@removed" not in i}
    assert set(present) == {mailbox.rest_id(updated), mailbox.rest_id(arrived)}
    assert present[mailbox.rest_id(updated)]["isRead"] is False
    assert new_link != delta_link
    assert (await sync(graph, new_link))[0] == []

    # The archive folder's own round would show the moved message as present, under its new id.
    archive, _, _ = await sync(graph, f"/users/{owner.id}/mailFolders/archive/messages/delta")
    assert [i["id"] for i in archive] == [mailbox.rest_id(moved)]


async def test_change_type_and_select_are_kept_in_tokens(
    graph: httpx.AsyncClient, tenant: Tenant, owner: User, mailbox: Mailbox
):
    first, delta_link, _ = await sync(
        graph, f"/users/{owner.id}/mailFolders/inbox/messages/delta?changeType=created&$select=subject,isRead"
    )
    assert all(set(i) == {"@odata.type", "@odata.etag", "id", "subject", "isRead"} for i in first)
    # Both options live in the token, not in the link.
    assert "select" not in delta_link.lower()
    assert "changetype" not in delta_link.lower()
    existing = customer_message(mailbox)
    await graph.patch(f"/users/{owner.id}/messages/{mailbox.rest_id(existing)}", json={"categories": ["a"]})
    created = add_message(
        tenant,
        mailbox,
        mailbox.by_name["inbox"],
        subject="Created",
        body="",
        sender=("x", "x@example.com"),
        to=((owner.display_name, owner.mail),),
    )
    await graph.delete(f"/users/{owner.id}/messages/{mailbox.rest_id(mailbox.by_name['inbox'].newest_first()[-1])}")
    items, _, _ = await sync(graph, delta_link)
    assert [(i["id"], set(i)) for i in items] == [
        (mailbox.rest_id(created), {"@odata.type", "@odata.etag", "id", "subject", "isRead"})
    ]


async def test_immutable_ids_in_mailbox_wide_delta(graph: httpx.AsyncClient, owner: User, mailbox: Mailbox):
    prefer = {"Prefer": 'IdType="ImmutableId"'}
    items, delta_link, _ = await sync(graph, f"/users/{owner.id}/messages/delta", page_size=50, headers=prefer)
    visible = [m for f in mailbox.folders.values() if f.ipm for m in f.messages.values()]
    assert sorted(i["id"] for i in items) == sorted(mailbox.immutable_id(m) for m in visible)
    message = customer_message(mailbox)
    await graph.post(f"/users/{owner.id}/messages/{mailbox.rest_id(message)}/move", json={"destinationId": "archive"})
    # Moving within the mailbox keeps the immutable id: no removal, just the message in its new folder.
    moved, _, _ = await sync(graph, delta_link, headers=prefer)
    assert [(i["id"], i["parentFolderId"]) for i in moved] == [
        (mailbox.immutable_id(message), mailbox.by_name["archive"].id)
    ]
    # A soft delete takes it out of every visible folder: removed, under the same immutable id.
    _, link, _ = await sync(graph, delta_link, headers=prefer)
    await graph.delete(f"/users/{owner.id}/messages/{mailbox.immutable_id(message)}")
    removed, _, _ = await sync(graph, link, headers=prefer)
    assert removed == [
        {
            "@odata.type": "#microsoft.graph.message",
            "id": mailbox.immutable_id(message),
            "@removed": {"reason": "deleted"},
        }
    ]


async def test_filter_on_received_date_in_delta(graph: httpx.AsyncClient, owner: User, mailbox: Mailbox):
    inbox = mailbox.by_name["inbox"].newest_first()
    bound = inbox[len(inbox) // 2]
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(bound.received, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    items, _, _ = await sync(
        graph, f"/users/{owner.id}/mailFolders/inbox/messages/delta?$filter=receivedDateTime ge {stamp}"
    )
    assert sorted(i["id"] for i in items) == sorted(mailbox.rest_id(m) for m in inbox if m.received >= bound.received)


@pytest.mark.parametrize(
    "query",
    [
        "$filter=receivedDateTime le 2024-01-01",
        "$filter=isRead eq false",
        "$orderby=subject",
        "changeType=renamed",
    ],
)
async def test_unsupported_delta_options_are_400(graph: httpx.AsyncClient, owner: User, query: str):
    response = await graph.get(f"/users/{owner.id}/mailFolders/inbox/messages/delta?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ErrorInvalidUrlQuery"


async def test_lost_sync_state_is_410(graph: httpx.AsyncClient, owner: User, mailbox: Mailbox):
    made_up = await graph.get(f"/users/{owner.id}/mailFolders/inbox/messages/delta?$deltatoken=made-up")
    assert made_up.status_code == 410
    assert made_up.json()["error"]["code"] == "SyncStateNotFound"

    _, delta_link, _ = await sync(graph, f"/users/{owner.id}/mailFolders/inbox/messages/delta")
    wrong_folder = delta_link.replace(f"mailFolders('{mailbox.by_name['inbox'].id}')", "mailFolders('sentitems')")
    assert (await graph.get(wrong_folder)).status_code == 410
    page = await graph.get(
        f"/users/{owner.id}/mailFolders/inbox/messages/delta", headers={"Prefer": "odata.maxpagesize=2"}
    )
    next_link = page.json()["@odata.nextLink"]
    assert mailbox.evict_sync_states() >= 2
    for link in (delta_link, next_link):
        gone = await graph.get(link)
        assert gone.status_code == 410
        assert gone.json()["error"]["code"] == "SyncStateNotFound"
    fresh, _, _ = await sync(graph, f"/users/{owner.id}/mailFolders/inbox/messages/delta")
    assert len(fresh) == mailbox.by_name["inbox"].total  # a full resync still works
