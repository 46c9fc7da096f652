"""The transport against a scripted Graph (httpx.MockTransport): headers, retries, parking, 401, writes."""

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime

import httpx
import pytest

from connectors.base import AuthError, NotFound, Throttled, Transient
from connectors.graph.budget import Scope
from connectors.graph.connector import GraphConnector
from connectors.graph.errors import OutcomeUnknown, Parked
from connectors.graph.park import InMemoryParkStore, parking_unit
from connectors.graph.transport import RetryPolicy
from tests.connectors.graph.conftest import (
    USER_AGENT,
    FakeClock,
    FakeCredential,
    ScriptedGraph,
    graph_error,
)

MockGraph = Callable[..., tuple[GraphConnector, ScriptedGraph]]
MESSAGE = {"id": "m1", "subject": "Hợp đồng", "parentFolderId": "inbox"}


def _sequence(*responses: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
    remaining = list(responses)
    return lambda request: remaining.pop(0)


async def test_requests_carry_our_user_agent_a_fresh_client_request_id_and_immutable_ids(mock_graph: MockGraph) -> None:
    graph, script = mock_graph(lambda request: httpx.Response(200, json=MESSAGE))
    await graph.mail.get_message("u1", "m1")
    await graph.mail.get_message("u1", "m1")
    first, second = script.requests
    assert first.headers["user-agent"] == USER_AGENT  # exactly ours: no kiota suffix
    assert first.headers["authorization"] == "Bearer token-1"
    assert first.headers["prefer"] == 'IdType="ImmutableId"'
    ids = {first.headers["client-request-id"], second.headers["client-request-id"]}
    assert len(ids) == 2
    assert all(uuid.UUID(value) for value in ids)
    assert "retry-attempt" not in first.headers  # the SDK's RetryHandler is off for our calls


async def test_L1_429_waits_retry_after_before_the_next_attempt(mock_graph: MockGraph, clock: FakeClock) -> None:
    sent_at: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent_at.append(clock.monotonic())
        if len(sent_at) < 3:
            return graph_error(429, "TooManyRequests", headers={"Retry-After": "7"})
        return httpx.Response(204)

    graph, script = mock_graph(handler)
    result = await graph.mail.delete("u1", "m1")
    assert result.status == "applied"
    assert [round(b - a, 3) for a, b in zip(sent_at, sent_at[1:], strict=False)] == [7, 7]
    assert graph.budget.stats(Scope.mailbox("u1")).throttled == 2


async def test_L3_retry_after_as_an_http_date_is_honoured(mock_graph: MockGraph, clock: FakeClock) -> None:
    date = format_datetime(clock.now() + timedelta(seconds=20), usegmt=True)
    graph, _ = mock_graph(
        _sequence(
            graph_error(503, "serviceNotAvailable", headers={"Retry-After": date}), httpx.Response(200, json=MESSAGE)
        )
    )
    await graph.mail.get_message("u1", "m1")
    assert clock.sleeps == [pytest.approx(20)]


@pytest.mark.parametrize("status", [503, 504])
async def test_L2_without_retry_after_the_backoff_is_exponential_jittered_and_bounded(
    mock_graph: MockGraph, clock: FakeClock, status: int
) -> None:
    graph, script = mock_graph(lambda request: graph_error(status, "UnknownError"), retry=RetryPolicy(max_attempts=5))
    with pytest.raises(Transient) as failed:
        await graph.mail.get_message("u1", "m1")
    assert failed.value.status_code == status
    assert len(script.requests) == 5
    assert len(clock.sleeps) == 4
    for attempt, slept in enumerate(clock.sleeps, start=1):
        base = 0.5 * 2 ** (attempt - 1)
        assert base <= slept <= base + 1.0  # never an immediate retry, never more than base + 1 s of jitter


async def test_L2_retries_stop_at_the_total_time_budget(mock_graph: MockGraph, clock: FakeClock) -> None:
    graph, script = mock_graph(
        lambda request: graph_error(429, "TooManyRequests", headers={"Retry-After": "40"}),
        retry=RetryPolicy(max_attempts=10, max_total_s=100),
    )
    with pytest.raises(Throttled) as throttled:
        await graph.mail.get_message("u1", "m1")
    assert len(script.requests) == 3  # 0 s, 40 s, 80 s; a fourth would start past 100 s
    assert throttled.value.retry_after_s == 40


async def test_L3_retry_after_315_parks_the_unit_instead_of_sleeping(
    mock_graph: MockGraph, clock: FakeClock, park_store: InMemoryParkStore
) -> None:
    graph, script = mock_graph(lambda request: graph_error(429, "activityLimitReached", headers={"Retry-After": "315"}))
    with parking_unit("plan-7/step-3"), pytest.raises(Parked) as parked:
        await graph.files.get_item("drive-1", "item-1")
    expected = clock.now() + timedelta(seconds=315)
    assert parked.value.not_before == expected
    assert parked.value.unit == "plan-7/step-3"
    assert await park_store.not_before("plan-7/step-3") == expected
    assert clock.sleeps == []
    # The whole SharePoint scope is paused: the next call parks too, without sending anything.
    with pytest.raises(Parked):
        await graph.files.get_item("drive-1", "item-2")
    assert len(script.requests) == 1
    assert await park_store.not_before("sharepoint") == expected


async def test_L5_a_throttled_mailbox_holds_back_its_other_workers_but_not_other_mailboxes(
    mock_graph: MockGraph, clock: FakeClock
) -> None:
    throttled_once: set[str] = set()
    log: list[tuple[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        mailbox = request.url.path.split("/")[3]
        log.append((mailbox, clock.monotonic()))
        if mailbox == "busy" and "busy" not in throttled_once:
            throttled_once.add("busy")
            return graph_error(429, "ApplicationThrottled", headers={"Retry-After": "30"})
        return httpx.Response(200, json=MESSAGE)

    graph, _ = mock_graph(handler)
    await graph.mail.get_message("busy", "m0")  # throttled once, then retried after 30 s
    await asyncio.gather(
        *(graph.mail.get_message("busy", f"m{i}") for i in range(1, 4)),
        *(graph.mail.get_message("calm", f"m{i}") for i in range(3)),
    )
    busy = [at for mailbox, at in log if mailbox == "busy"]
    calm = [at for mailbox, at in log if mailbox == "calm"]
    assert busy[1] - busy[0] == pytest.approx(30)
    assert len(busy) == 5  # 1 throttled + 4 successes: no worker retried into the pause
    assert graph.budget.stats(Scope.mailbox("calm")).paused_s == 0
    assert len(calm) == 3


async def test_F9_401_refreshes_the_token_once_and_retries_once(
    mock_graph: MockGraph, fake_credential: FakeCredential
) -> None:
    graph, script = mock_graph(
        _sequence(graph_error(401, "InvalidAuthenticationToken"), httpx.Response(200, json=MESSAGE))
    )
    message = await graph.mail.get_message("u1", "m1")
    assert message.id == "m1"
    assert fake_credential.refreshes == 1
    assert [r.headers["authorization"] for r in script.requests] == ["Bearer token-1", "Bearer token-2"]


async def test_F9_a_second_401_is_an_auth_error(mock_graph: MockGraph, fake_credential: FakeCredential) -> None:
    graph, script = mock_graph(lambda request: graph_error(401, "InvalidAuthenticationToken"))
    with pytest.raises(AuthError) as refused:
        await graph.mail.get_message("u1", "m1")
    assert fake_credential.refreshes == 1
    assert len(script.requests) == 2
    assert refused.value.client_request_id == script.requests[-1].headers["client-request-id"]


async def test_errors_carry_graphs_request_id_and_the_client_request_id_we_sent(mock_graph: MockGraph) -> None:
    graph, script = mock_graph(lambda request: graph_error(404, "ErrorItemNotFound"))
    with pytest.raises(NotFound) as missing:
        await graph.mail.get_message("u1", "gone")
    assert missing.value.request_id == "req-404-ErrorItemNotFound"
    assert missing.value.client_request_id == script.requests[0].headers["client-request-id"]


async def test_F4_a_non_idempotent_post_is_not_replayed_after_an_ambiguous_504(mock_graph: MockGraph) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return graph_error(504, "UnknownError")
        return graph_error(503, "serviceNotAvailable")  # the state cannot be read either

    graph, script = mock_graph(handler, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(OutcomeUnknown):
        await graph.mail.permanent_delete("u1", "m1")
    assert [r.method for r in script.requests].count("POST") == 1


async def test_a_throttled_post_is_retried_because_graph_did_not_run_it(mock_graph: MockGraph) -> None:
    graph, script = mock_graph(
        _sequence(graph_error(429, "TooManyRequests", headers={"Retry-After": "1"}), httpx.Response(204))
    )
    result = await graph.mail.permanent_delete("u1", "m1")
    assert result.status == "applied"
    assert [r.method for r in script.requests] == ["POST", "POST"]


async def test_connection_failures_are_retried_for_reads(mock_graph: MockGraph) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ReadTimeout("stalled", request=request)
        return httpx.Response(200, json=MESSAGE)

    graph, _ = mock_graph(handler)
    assert (await graph.mail.get_message("u1", "m1")).id == "m1"
    assert calls == 2


async def test_F4_a_reset_after_sending_a_write_is_ambiguous(mock_graph: MockGraph) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return graph_error(404, "ErrorItemNotFound")  # the message is gone: the purge happened

    graph, script = mock_graph(handler)
    result = await graph.mail.permanent_delete("u1", "m1")
    assert result.status == "already_applied"
    assert result.settled_by_read
    assert [r.method for r in script.requests] == ["POST", "GET"]
