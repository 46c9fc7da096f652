"""Acceptance tests of issue 3 against the local tenant over real HTTPS: real MSAL sign-in, real msgraph-sdk
client, the emulator's fault injection and request log. The layer's own waits use the fake clock, so a
Retry-After costs no wall time; the emulator decides what is throttled and records what was really sent."""

import asyncio
import re
from collections import Counter
from typing import Any

import pytest

from connectors.base import AuthError
from connectors.graph.batch import BatchStep
from connectors.graph.budget import Scope, ThrottleBudget
from connectors.graph.connector import GraphConnector
from connectors.graph.errors import Parked, UntrustedLink
from connectors.graph.models import Message
from connectors.graph.paging import Cursor, InMemoryCursorStore
from connectors.graph.park import parking_unit
from connectors.graph.requests import mail_request
from emulator.state import Tenant
from tests.connectors.graph.conftest import USER_AGENT, LiveGraph


def _mailboxes(tenant: Tenant) -> list[str]:
    with tenant.lock:
        return sorted(user_id for user_id in (u.id for u in tenant.staff) if tenant.mail.mailbox(user_id))


def _folder_ids(tenant: Tenant, user_id: str, folder: str = "inbox") -> set[str]:
    """Ground truth: the immutable ids of the messages in a folder."""
    with tenant.lock:
        mailbox = tenant.mail.mailbox(user_id)
        assert mailbox is not None
        found = mailbox.folder(folder)
        assert found is not None
        return {mailbox.immutable_id(message) for message in found.messages.values()}


def _message_ids(tenant: Tenant, user_id: str, count: int) -> list[str]:
    with tenant.lock:
        mailbox = tenant.mail.mailbox(user_id)
        assert mailbox is not None
        return sorted(mailbox.immutable_id(message) for message in mailbox.messages())[:count]


def _connector(live_graph: LiveGraph, **budget_args: Any) -> GraphConnector:
    """Another connector on the same client: what a restarted process (fresh budget, no memory) would build."""
    return GraphConnector(
        live_graph.connector.transport.client,
        budget=ThrottleBudget(clock=live_graph.clock, **budget_args),
        user_agent=USER_AGENT,
        allowed_hosts=["127.0.0.1"],
        park_store=live_graph.park_store,
        token_refresh=live_graph.credential.force_refresh,
        clock=live_graph.clock,
    )


async def test_L5_a_429_storm_on_one_mailbox_slows_only_that_mailbox_within_budget(live_graph: LiveGraph) -> None:
    stormy, calm = _mailboxes(live_graph.tenant)[:2]
    # Outlook limits on: any request past 4 concurrent or 40 per window on a mailbox would get a 429 of its own.
    await live_graph.profile(outlook_limits=True, outlook_concurrency=4, outlook_requests_per_window=40)
    await live_graph.fault(mailbox=stormy, path="/messages/", status=429, retry_after=1, times=6)
    graph = _connector(live_graph, mailbox_requests_per_window=40)
    stormy_ids, calm_ids = _message_ids(live_graph.tenant, stormy, 16), _message_ids(live_graph.tenant, calm, 16)

    messages = await asyncio.gather(
        *(graph.mail.get_message(stormy, message_id) for message_id in stormy_ids),
        *(graph.mail.get_message(calm, message_id) for message_id in calm_ids),
    )

    assert [m.id for m in messages] == stormy_ids + calm_ids
    stormy_log = await live_graph.requests(mailbox=stormy)
    calm_log = await live_graph.requests(mailbox=calm)
    # The 6 injected 429s and nothing else: no concurrency or window 429 from the emulator's Outlook limits.
    assert Counter(r["status"] for r in stormy_log) == {200: 16, 429: 6}
    assert Counter(r["status"] for r in calm_log) == {200: 16}
    assert len(stormy_log) == graph.budget.stats(Scope.mailbox(stormy)).requests <= 40
    assert graph.budget.stats(Scope.mailbox(stormy)).paused_s >= 1
    assert graph.budget.stats(Scope.mailbox(calm)).paused_s == 0
    assert graph.budget.stats(Scope.mailbox(stormy)).peak_in_flight <= 4


async def test_L3_retry_after_315_parks_the_step_without_sleeping(live_graph: LiveGraph) -> None:
    user = _mailboxes(live_graph.tenant)[0]
    await live_graph.fault(mailbox=user, path="/messages/delta", status=429, retry_after=315, times=1)
    with parking_unit(f"sync-mail/{user}/inbox"), pytest.raises(Parked) as parked:
        async for _ in live_graph.connector.mail.message_delta(user, "inbox"):
            pass
    expected = live_graph.clock.now().timestamp() + 315
    stored = await live_graph.park_store.not_before(f"sync-mail/{user}/inbox")
    assert stored is not None
    assert stored.timestamp() == pytest.approx(expected, abs=1)
    assert parked.value.not_before == stored
    assert live_graph.clock.sleeps == []
    assert len(await live_graph.requests(mailbox=user)) == 1


async def test_L6_a_batch_of_20_with_3_throttled_sub_requests_resends_only_those_3(live_graph: LiveGraph) -> None:
    tenant = live_graph.tenant
    graph = live_graph.connector
    sdk = graph.transport.client.sdk
    steps: list[BatchStep] = []
    expected: dict[str, str] = {}
    for user in _mailboxes(tenant)[:5]:
        for message_id in _message_ids(tenant, user, 4):
            request = sdk.users.by_user_id(user).messages.by_message_id(message_id).to_get_request_information()
            step_id = str(len(steps))
            steps.append(BatchStep(step_id, mail_request(request), Scope.mailbox(user)))
            expected[step_id] = message_id
    throttled = {"2", "9", "17"}
    for step_id in throttled:
        await live_graph.fault(
            path=re.escape(f"/messages/{expected[step_id]}") + "$", status=429, retry_after=1, times=1
        )

    results = await graph.batch.run(steps)

    assert {step_id: result.parse(Message).id for step_id, result in results.items()} == expected
    sub_requests = [r for r in await live_graph.requests() if r["batchId"]]
    by_batch = Counter(r["batchId"] for r in sub_requests)
    assert sorted(by_batch.values()) == [3, 20]
    resent_batch = next(batch_id for batch_id, size in by_batch.items() if size == 3)
    resent = {r["path"].rsplit("/", 1)[-1] for r in sub_requests if r["batchId"] == resent_batch}
    assert resent == {expected[step_id] for step_id in throttled}
    assert len(await live_graph.requests(path_prefix="/v1.0/$batch")) == 2


async def test_kill_and_restart_mid_delta_skips_and_repeats_nothing(live_graph: LiveGraph) -> None:
    tenant = live_graph.tenant
    user = max(_mailboxes(tenant), key=lambda u: len(_folder_ids(tenant, u)))
    truth = _folder_ids(tenant, user)
    assert len(truth) > 6
    cursors = InMemoryCursorStore()
    key = f"mail:{user}:inbox"
    stored: list[str] = []  # what the "database" holds: items committed together with their cursor

    # First process: commits two pages, then dies before committing the third.
    pages_done = 0
    async for page in live_graph.connector.mail.message_delta(user, "inbox", page_size=3):
        if pages_done == 2:
            break  # killed: this page's items and cursor are never committed
        stored.extend(m.id for m in page.items)
        await cursors.save(key, page.cursor)
        pages_done += 1
    assert not cursors.cursors[key].is_delta

    # Second process: a fresh connector resumes from the stored cursor.
    restarted = _connector(live_graph)
    async for page in restarted.mail.message_delta(user, "inbox", cursor=await cursors.load(key), page_size=3):
        stored.extend(m.id for m in page.items)
        await cursors.save(key, page.cursor)
    assert len(stored) == len(set(stored))  # nothing repeated
    assert set(stored) == truth  # nothing skipped
    assert cursors.cursors[key].is_delta

    # The deltaLink then brings exactly what changed since.
    gone = sorted(truth)[0]
    response = await live_graph.control.delete(f"/mail/mailboxes/{user}/messages/{gone}")
    assert response.status_code == 204
    added = await live_graph.control.post(f"/mail/mailboxes/{user}/messages", json={"subject": "Báo giá mới"})
    assert added.status_code == 201
    changes = [
        m async for page in restarted.mail.message_delta(user, "inbox", cursor=cursors.cursors[key]) for m in page.items
    ]
    assert {m.id for m in changes if m.is_removed} == {gone}
    assert {m.id for m in changes if not m.is_removed} == _folder_ids(tenant, user) - truth


async def test_F1_an_expired_drive_delta_token_triggers_a_flagged_full_resync(live_graph: LiveGraph) -> None:
    graph = live_graph.connector
    user = _mailboxes(live_graph.tenant)[0]
    drive = await graph.files.user_drive(user)
    assert drive is not None
    first = [page async for page in graph.files.drive_delta(drive.id)]
    enumerated = {item.id for page in first for item in page.items}
    delta_link = first[-1].cursor
    assert delta_link is not None
    assert delta_link.is_delta
    assert not any(page.is_resync for page in first)

    expired = await live_graph.control.post(f"/files/drives/{drive.id}/expireDeltaTokens")
    assert expired.status_code == 204
    resync = [page async for page in graph.files.drive_delta(drive.id, cursor=delta_link)]

    assert all(page.is_resync for page in resync)
    assert resync[-1].is_last
    assert {item.id for page in resync for item in page.items} == enumerated
    assert resync[-1].cursor == Cursor(resync[-1].cursor.url, is_delta=True, is_resync=False)
    statuses = [r["status"] for r in await live_graph.requests(path_prefix=f"/v1.0/drives/{drive.id}")]
    assert 410 in statuses


async def test_F2_an_evicted_mail_delta_token_triggers_a_flagged_full_resync(live_graph: LiveGraph) -> None:
    graph = live_graph.connector
    user = _mailboxes(live_graph.tenant)[0]
    first = [page async for page in graph.mail.message_delta(user, "inbox", page_size=50)]
    evicted = await live_graph.control.post(f"/mail/mailboxes/{user}/evict-delta-tokens")
    assert evicted.status_code == 200
    resync = [page async for page in graph.mail.message_delta(user, "inbox", cursor=first[-1].cursor)]
    assert all(page.is_resync for page in resync)
    assert {m.id for page in resync for m in page.items} == _folder_ids(live_graph.tenant, user)


async def test_a_next_link_to_a_foreign_host_is_refused_before_anything_is_sent(live_graph: LiveGraph) -> None:
    user = _mailboxes(live_graph.tenant)[0]
    port = live_graph.server.endpoints.base_url.rsplit(":", 1)[-1]
    # The emulator now writes its links for another host: a token must never follow them there.
    live_graph.server.app.state.base_url = f"https://localhost:{port}"
    pages = live_graph.connector.mail.message_delta(user, "inbox", page_size=2)
    await anext(pages)
    with pytest.raises(UntrustedLink, match="localhost"):
        await anext(pages)
    assert len(await live_graph.requests(mailbox=user)) == 1


async def test_F9_a_401_refreshes_the_token_once(live_graph: LiveGraph) -> None:
    tenant_id = live_graph.tenant.tenant_id
    await live_graph.fault(path="^/v1.0/users", status=401, code="InvalidAuthenticationToken", times=1)
    users = [user async for user in live_graph.connector.directory.staff_mailboxes()]
    assert {user.id for user in users} == set(_mailboxes(live_graph.tenant))
    token_requests = await live_graph.requests(path_prefix=f"/{tenant_id}/oauth2/v2.0/token")
    assert len(token_requests) == 2
    assert [r["status"] for r in await live_graph.requests(path_prefix="/v1.0/users")] == [401, 200]


async def test_F9_a_second_401_fails_after_exactly_one_refresh(live_graph: LiveGraph) -> None:
    tenant_id = live_graph.tenant.tenant_id
    await live_graph.fault(path="^/v1.0/users", status=401, code="InvalidAuthenticationToken", times=2)
    with pytest.raises(AuthError, match="InvalidAuthenticationToken"):
        [user async for user in live_graph.connector.directory.staff_mailboxes()]
    assert len(await live_graph.requests(path_prefix=f"/{tenant_id}/oauth2/v2.0/token")) == 2
