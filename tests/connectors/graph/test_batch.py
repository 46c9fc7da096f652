"""$batch against a scripted Graph: packing rules, wire format, retrying only what failed."""

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from connectors.graph.batch import BatchStep
from connectors.graph.budget import Scope
from connectors.graph.connector import GraphConnector
from connectors.graph.errors import OutcomeUnknown, Parked
from connectors.graph.models import Message
from connectors.graph.requests import mail_request
from tests.connectors.graph.conftest import ScriptedGraph

MockGraph = Callable[..., tuple[GraphConnector, ScriptedGraph]]


def _get(graph: GraphConnector, user: str, message: str, step_id: str, **kwargs: Any) -> BatchStep:
    sdk = graph.transport.client.sdk
    request = mail_request(sdk.users.by_user_id(user).messages.by_message_id(message).to_get_request_information())
    return BatchStep(step_id, request, Scope.mailbox(user), **kwargs)


def _batch_graph(decide: Callable[[dict[str, Any], int], dict[str, Any]]) -> Callable[[httpx.Request], httpx.Response]:
    """A $batch endpoint answering each item through `decide(item, times_seen)`, in reverse order."""
    seen: Counter[str] = Counter()

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1.0/$batch"
        responses = []
        for item in json.loads(request.content)["requests"]:
            seen[item["id"]] += 1
            responses.append({"id": item["id"], **decide(item, seen[item["id"]])})
        return httpx.Response(200, json={"responses": list(reversed(responses))})

    return handler


def _ok(item: dict[str, Any]) -> dict[str, Any]:
    return {"status": 200, "headers": {"Content-Type": "application/json"}, "body": {"id": item["url"].split("/")[-1]}}


def _sent_ids(script: ScriptedGraph) -> list[list[str]]:
    return [[item["id"] for item in json.loads(r.content)["requests"]] for r in script.requests]


async def test_L6_twenty_requests_with_three_throttled_resend_only_those_three(mock_graph: MockGraph) -> None:
    throttled = {"3", "11", "17"}

    def decide(item: dict[str, Any], times: int) -> dict[str, Any]:
        if item["id"] in throttled and times == 1:
            return {"status": 429, "headers": {"Retry-After": "5"}, "body": {"error": {"code": "TooManyRequests"}}}
        return _ok(item)

    graph, script = mock_graph(_batch_graph(decide))
    steps = [_get(graph, f"user{i % 5}", f"m{i}", str(i)) for i in range(20)]  # 5 mailboxes x 4
    results = await graph.batch.run(steps)
    assert _sent_ids(script)[0] == [str(i) for i in range(20)]
    assert sorted(_sent_ids(script)[1], key=int) == ["3", "11", "17"]
    assert len(script.requests) == 2
    assert all(result.ok for result in results.values())
    assert results["11"].parse(Message).id == "m11"  # matched by id although answered in reverse order
    assert results["11"].attempts == 2
    assert results["12"].attempts == 1
    assert graph.budget.stats(Scope.mailbox("user1")).paused_s == pytest.approx(5)


async def test_L4_no_more_than_twenty_per_batch_and_four_per_mailbox(mock_graph: MockGraph) -> None:
    graph, script = mock_graph(_batch_graph(lambda item, times: _ok(item)))
    steps = [_get(graph, "one-mailbox", f"m{i}", f"a{i}") for i in range(6)]
    steps += [_get(graph, f"user{i}", f"m{i}", f"b{i}") for i in range(30)]
    results = await graph.batch.run(steps)
    assert len(results) == 36
    for request in script.requests:
        items = json.loads(request.content)["requests"]
        assert len(items) <= 20
        per_mailbox = Counter(item["url"].split("/")[2] for item in items)
        assert max(per_mailbox.values()) <= 4
    assert graph.budget.stats(Scope.mailbox("one-mailbox")).requests == 2  # two batches: 4 + 2


async def test_the_wire_format_uses_depends_on_relative_urls_and_headers(mock_graph: MockGraph) -> None:
    graph, script = mock_graph(_batch_graph(lambda item, times: {"status": 204}))
    sdk = graph.transport.client.sdk
    purge = sdk.users.by_user_id("u1").messages.by_message_id("m1").permanent_delete.to_post_request_information()
    steps = [
        _get(graph, "u1", "m1", "read"),
        BatchStep("purge", mail_request(purge), Scope.mailbox("u1"), depends_on=("read",), idempotent=False),
    ]
    await graph.batch.run(steps)
    items = json.loads(script.requests[0].content)["requests"]
    assert items[0] == {
        "id": "read",
        "method": "GET",
        "url": "/users/u1/messages/m1",
        "headers": {"accept": "application/json", "prefer": 'IdType="ImmutableId"'},
    }
    assert items[1]["dependsOn"] == ["read"]
    assert "depends_on" not in items[1]
    assert items[1]["url"] == "/users/u1/messages/m1/permanentDelete"
    assert items[1]["body"] == {}
    assert items[1]["headers"]["content-type"] == "application/json"


async def test_a_failed_dependency_is_resent_with_the_step_it_waits_for(mock_graph: MockGraph) -> None:
    def decide(item: dict[str, Any], times: int) -> dict[str, Any]:
        if item["id"] == "first" and times == 1:
            return {"status": 503, "headers": {"Retry-After": "2"}}
        if item["id"] == "second" and times == 1:
            return {"status": 424, "body": {"error": {"code": "failedDependency"}}}
        return _ok(item)

    graph, script = mock_graph(_batch_graph(decide))
    steps = [_get(graph, "u1", "m1", "first"), _get(graph, "u1", "m2", "second", depends_on=("first",))]
    results = await graph.batch.run(steps)
    assert all(result.ok for result in results.values())
    assert _sent_ids(script) == [["first", "second"], ["first", "second"]]


async def test_an_ambiguous_failure_of_a_batched_write_is_not_resent(mock_graph: MockGraph) -> None:
    graph, script = mock_graph(_batch_graph(lambda item, times: {"status": 504}))
    sdk = graph.transport.client.sdk
    purge = sdk.users.by_user_id("u1").messages.by_message_id("m1").permanent_delete.to_post_request_information()
    results = await graph.batch.run([BatchStep("purge", purge, Scope.mailbox("u1"), idempotent=False)])
    assert isinstance(results["purge"].error, OutcomeUnknown)
    assert len(script.requests) == 1


async def test_a_long_retry_after_parks_the_sub_request(mock_graph: MockGraph, park_store: Any) -> None:
    def decide(item: dict[str, Any], times: int) -> dict[str, Any]:
        if item["id"] == "slow":
            return {"status": 429, "headers": {"Retry-After": "315"}}
        return _ok(item)

    graph, script = mock_graph(_batch_graph(decide))
    results = await graph.batch.run([_get(graph, "u1", "m1", "slow"), _get(graph, "u2", "m2", "fine")])
    assert isinstance(results["slow"].error, Parked)
    assert results["fine"].ok
    assert len(script.requests) == 1
    assert await park_store.not_before("mailbox:u1") is not None


async def test_duplicate_ids_are_refused_before_sending(mock_graph: MockGraph) -> None:
    graph, script = mock_graph(_batch_graph(lambda item, times: _ok(item)))
    with pytest.raises(ValueError, match="unique"):
        await graph.batch.run([_get(graph, "u1", "m1", "A"), _get(graph, "u1", "m2", "a")])
    assert script.requests == []
