"""Delta and paging iterators against a scripted Graph: cursors, resume, resync, link checks."""

from collections.abc import Callable

import httpx
import pytest

from connectors.graph.budget import Scope
from connectors.graph.connector import GraphConnector
from connectors.graph.errors import UntrustedLink
from connectors.graph.paging import Cursor, InMemoryCursorStore
from tests.connectors.graph.conftest import GRAPH_BASE, ScriptedGraph, graph_error, page

MockGraph = Callable[..., tuple[GraphConnector, ScriptedGraph]]
DELTA = f"{GRAPH_BASE}/users/u1/mailFolders/inbox/messages/delta()"


def _mail_delta(request: httpx.Request) -> httpx.Response:
    """Three pages of 2 messages, then a deltaLink; the deltaLink answers one change."""
    token = request.url.params.get("$skiptoken")
    if request.url.params.get("$deltatoken") == "d1":
        return page([{"id": "m3", "@removed": {"reason": "deleted"}}], delta_link=f"{DELTA}?$deltatoken=d2")
    if token is None:
        return page([{"id": "m1"}, {"id": "m2"}], next_link=f"{DELTA}?$skiptoken=p2")
    if token == "p2":
        return page([{"id": "m3"}, {"id": "m4"}], next_link=f"{DELTA}?$skiptoken=p3")
    return page([{"id": "m5"}], delta_link=f"{DELTA}?$deltatoken=d1")


async def test_delta_pages_stream_with_a_cursor_each_and_resume_without_skips_or_repeats(mock_graph: MockGraph) -> None:
    graph, script = mock_graph(_mail_delta)
    store = InMemoryCursorStore()
    seen: list[str] = []
    # First run: store page 1 with its cursor, then "crash" before page 2 is stored.
    async for delta_page in graph.mail.message_delta("u1", "inbox", cursor=await store.load("inbox")):
        seen.extend(message.id for message in delta_page.items)
        await store.save("inbox", delta_page.cursor)
        break
    assert store.cursors["inbox"] == Cursor(f"{DELTA}?$skiptoken=p2", is_delta=False)
    # Restart from the stored cursor: the iterator continues exactly after the stored page.
    async for delta_page in graph.mail.message_delta("u1", "inbox", cursor=await store.load("inbox")):
        seen.extend(message.id for message in delta_page.items)
        await store.save("inbox", delta_page.cursor)
        assert not delta_page.is_resync
    assert seen == ["m1", "m2", "m3", "m4", "m5"]
    assert store.cursors["inbox"].is_delta
    # Later: the deltaLink yields only the changes since.
    changes = [p async for p in graph.mail.message_delta("u1", "inbox", cursor=store.cursors["inbox"])]
    assert [(m.id, m.is_removed) for p in changes for m in p.items] == [("m3", True)]
    assert all(r.headers["prefer"] for r in script.requests)
    assert {'IdType="ImmutableId"' in r.headers["prefer"] for r in script.requests} == {True}


async def test_F2_an_expired_delta_token_restarts_a_full_resync_flagged_as_such(mock_graph: MockGraph) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("$deltatoken") == "stale":
            return graph_error(400, "syncStateNotFound")
        return _mail_delta(request)

    graph, script = mock_graph(handler)
    stale = Cursor(f"{DELTA}?$deltatoken=stale", is_delta=True)
    pages = [p async for p in graph.mail.message_delta("u1", "inbox", cursor=stale)]
    assert [m.id for p in pages for m in p.items] == ["m1", "m2", "m3", "m4", "m5"]
    assert all(p.is_resync for p in pages)
    assert [p.cursor.is_resync for p in pages if p.cursor] == [True, True, False]  # the deltaLink is ordinary
    assert pages[-1].is_last
    assert script.requests[1].url.params.get("$skiptoken") is None  # restarted from the initial query


async def test_F1_a_drive_410_follows_graphs_location_and_charges_a_tokenless_delta_two_units(
    mock_graph: MockGraph,
) -> None:
    root = f"{GRAPH_BASE}/drives/d1/items/root/delta()"

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("token")
        if token == "old":
            return graph_error(410, "resyncRequired", headers={"Location": f"{root}?fresh=1"})
        if request.url.params.get("fresh") == "1":
            return page([{"id": "f1", "name": "a.docx"}], next_link=f"{root}?token=n2")
        return page([{"id": "f2", "deleted": {}}], delta_link=f"{root}?token=latest")

    graph, script = mock_graph(handler)
    pages = [p async for p in graph.files.drive_delta("d1", cursor=Cursor(f"{root}?token=old", is_delta=True))]
    assert [(i.id, i.is_deleted) for p in pages for i in p.items] == [("f1", False), ("f2", True)]
    assert [p.is_resync for p in pages] == [True, True]
    assert script.requests[1].url.params["fresh"] == "1"
    # 1 RU for the stale token, 2 RU for the tokenless restart, 1 RU for its token-bearing nextLink.
    assert graph.budget.stats(Scope.sharepoint()).units == 4


@pytest.mark.parametrize(
    "link",
    ["https://evil.example/v1.0/users?$skiptoken=x", "http://graph.test/v1.0/users?$skiptoken=x"],
)
async def test_a_next_link_off_the_allowed_https_hosts_is_refused(mock_graph: MockGraph, link: str) -> None:
    graph, script = mock_graph(lambda request: page([{"id": "u1"}], next_link=link))
    pages = graph.directory.users()
    first = await anext(pages)
    assert [u.id for u in first.items] == ["u1"]
    with pytest.raises(UntrustedLink, match="not an allowed host"):
        await anext(pages)
    assert len(script.requests) == 1


async def test_a_resync_location_to_a_foreign_host_is_refused(mock_graph: MockGraph) -> None:
    graph, script = mock_graph(
        lambda request: graph_error(410, "resyncRequired", headers={"Location": "https://evil.example/delta"})
    )
    with pytest.raises(UntrustedLink):
        async for _ in graph.files.drive_delta("d1", cursor=Cursor(f"{GRAPH_BASE}/drives/d1/x?token=t", True)):
            pass
    assert len(script.requests) == 1


async def test_resuming_mid_resync_keeps_the_resync_flag(mock_graph: MockGraph) -> None:
    graph, _ = mock_graph(_mail_delta)
    cursor = Cursor(f"{DELTA}?$skiptoken=p3", is_delta=False, is_resync=True)
    pages = [p async for p in graph.mail.message_delta("u1", "inbox", cursor=cursor)]
    assert [p.is_resync for p in pages] == [True]
    assert pages[0].cursor == Cursor(f"{DELTA}?$deltatoken=d1", is_delta=True)
