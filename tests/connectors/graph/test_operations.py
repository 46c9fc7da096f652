"""Typed operations against a scripted Graph: labels and monitors, the mail label, downloads, deletes,
subscriptions. Each test checks what went over the wire and what the caller gets back."""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from connectors.base import PreconditionFailed
from connectors.graph.connector import GraphConnector
from connectors.graph.errors import OutcomeUnknown, TooLarge
from connectors.graph.labels import LabelJob, MonitorPolicy
from connectors.graph.mail import parse_msip_labels
from connectors.graph.models import MSIP_LABELS_PROPERTY_ID
from tests.connectors.graph.conftest import FakeClock, ScriptedGraph, graph_error, json_body, page

MockGraph = Callable[..., tuple[GraphConnector, ScriptedGraph]]
LABEL = "4e2a3a4b-0000-4000-8000-00000000c0f1"
MONITOR = "https://monitor.test/_api/v2.0/monitor/job-1?tempAuth=abc"


def _labels_graph(monitor_states: list[str], *, assign: httpx.Response | None = None) -> Callable[..., Any]:
    states = list(monitor_states)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/assignSensitivityLabel"):
            return assign or httpx.Response(202, headers={"Location": MONITOR})
        if request.url.host == "monitor.test":
            state = states.pop(0)
            body: dict[str, Any] = {"status": state, "percentageComplete": 100.0 if state == "completed" else 40.0}
            if state == "failed":
                body["error"] = {"code": "fileDoubleKeyEncrypted", "message": "cannot"}
            return httpx.Response(200 if state == "completed" else 202, json=body)
        if request.url.path.endswith("/extractSensitivityLabels"):
            return httpx.Response(200, json={"value": {"labels": []}})
        return graph_error(404, "itemNotFound")

    return handler


async def test_F7_assigning_a_label_polls_the_monitor_with_backoff_and_without_our_token(
    mock_graph: MockGraph, clock: FakeClock
) -> None:
    graph, script = mock_graph(_labels_graph(["inProgress", "inProgress", "inProgress", "completed"]))
    outcome = await graph.labels.assign("d1", "i1", LABEL, justification="policy: customer data")
    assert outcome.status == "applied"
    assert outcome.is_applied
    post = script.requests[0]
    assert json_body(post) == {
        "assignmentMethod": "privileged",
        "justificationText": "policy: customer data",
        "sensitivityLabelId": LABEL,
    }
    polls = [r for r in script.requests if r.url.host == "monitor.test"]
    assert len(polls) == 4
    assert all("authorization" not in r.headers for r in polls)
    assert clock.sleeps == [1.0, 2.0, 4.0]


async def test_a_label_job_can_be_resumed_from_its_monitor_url_after_a_restart(mock_graph: MockGraph) -> None:
    graph, script = mock_graph(_labels_graph(["inProgress"] * 3 + ["completed"]))
    graph.labels.monitor = MonitorPolicy(first_poll_s=1, max_poll_s=1, max_wait_s=2)
    started = await graph.labels.start("d1", "i1", LABEL)
    assert isinstance(started, LabelJob)
    assert started.monitor_url == MONITOR
    pending = await graph.labels.wait(started)
    assert (pending.status, pending.monitor_url) == ("pending", MONITOR)
    # A new process: it only knows the stored job, and never assigns (or pays) again.
    resumed = await graph.labels.wait(LabelJob("d1", "i1", LABEL, pending.monitor_url))
    assert resumed.status == "applied"
    assert sum(r.url.path.endswith("/assignSensitivityLabel") for r in script.requests) == 1


@pytest.mark.parametrize(
    ("response", "status", "permanent"),
    [
        (graph_error(402, "paymentRequired"), "payment_required", True),
        (graph_error(423, "fileDoubleKeyEncrypted"), "locked", True),
        (graph_error(423, "fileDecryptionDeferred"), "deferred", False),
        (graph_error(400, "notSupported"), "not_supported", True),
    ],
)
async def test_F7_F8_refusals_are_per_item_outcomes_not_retries(
    mock_graph: MockGraph, response: httpx.Response, status: str, permanent: bool
) -> None:
    graph, script = mock_graph(_labels_graph([], assign=response))
    outcome = await graph.labels.assign("d1", "i1", LABEL)
    assert (outcome.status, outcome.is_permanent) == (status, permanent)
    assert outcome.code == response.json()["error"]["code"]
    assert len(script.requests) == 1


async def test_a_monitor_reporting_failure_is_a_failed_outcome_with_its_code(mock_graph: MockGraph) -> None:
    graph, _ = mock_graph(_labels_graph(["failed"]))
    outcome = await graph.labels.assign("d1", "i1", LABEL)
    assert (outcome.status, outcome.code) == ("locked", "fileDoubleKeyEncrypted")


async def test_an_ambiguous_assignment_is_settled_by_reading_the_files_labels(mock_graph: MockGraph) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/assignSensitivityLabel"):
            raise httpx.ReadTimeout("stalled", request=request)
        labels = [{"sensitivityLabelId": LABEL, "assignmentMethod": "privileged", "tenantId": "t"}]
        return httpx.Response(200, json={"value": {"labels": labels}})

    graph, script = mock_graph(handler)
    outcome = await graph.labels.assign("d1", "i1", LABEL)
    assert outcome.status == "already_applied"
    assert [r.url.path.rsplit("/", 1)[-1] for r in script.requests] == [
        "assignSensitivityLabel",
        "extractSensitivityLabels",
    ]


async def test_the_mail_label_is_written_as_header_and_category_then_read_back(
    mock_graph: MockGraph, clock: FakeClock
) -> None:
    stored: dict[str, Any] = {"id": "m1", "categories": ["Khách hàng VIP", "Steward: General"]}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH":
            patch = json_body(request)
            stored["categories"] = patch["categories"]
            stored["singleValueExtendedProperties"] = patch["singleValueExtendedProperties"]
            return httpx.Response(200, json=stored)
        return httpx.Response(200, json=stored)

    graph, script = mock_graph(handler)
    label = await graph.mail.write_label("u1", "m1", label_id=LABEL, label_name="Confidential", tenant_id="tenant-1")
    assert (label.label_id, label.name, label.category) == (LABEL, "Confidential", "Steward: Confidential")
    assert stored["categories"] == ["Khách hàng VIP", "Steward: Confidential"]  # the user's category survives
    header = stored["singleValueExtendedProperties"][0]
    assert header["id"] == MSIP_LABELS_PROPERTY_ID
    attributes = parse_msip_labels(header["value"])[LABEL]
    assert attributes == {
        "Enabled": "true",
        "SetDate": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Method": "Privileged",
        "Name": "Confidential",
        "SiteId": "tenant-1",
        "ContentBits": "0",
    }
    read_back = script.requests[-1]
    assert read_back.method == "GET"
    assert "singleValueExtendedProperties" in read_back.url.params["$expand"]
    assert await graph.mail.read_label("u1", "m1") == label


async def test_downloads_stop_at_the_cap_whether_declared_or_streamed(mock_graph: MockGraph) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        item_id = request.url.path.split("/")[-1]
        if request.url.host == "download.test":
            return httpx.Response(200, content=b"x" * 5_000)  # more than the item said
        sizes = {"big": 10_000, "liar": 100, "ok": 3_000}
        return httpx.Response(
            200,
            json={
                "id": item_id,
                "size": sizes[item_id],
                "@microsoft.graph.downloadUrl": f"https://download.test/{item_id}",
            },
        )

    graph, script = mock_graph(handler)
    with pytest.raises(TooLarge, match="10000 bytes"):
        [chunk async for chunk in graph.files.download("d1", "big", max_bytes=4_096)]
    assert not any(r.url.host == "download.test" for r in script.requests)  # never started reading
    with pytest.raises(TooLarge, match="more than"):
        [chunk async for chunk in graph.files.download("d1", "liar", max_bytes=4_096)]
    content = b"".join([chunk async for chunk in graph.files.download("d1", "ok", max_bytes=8_192)])
    assert len(content) == 5_000
    assert all("authorization" not in r.headers for r in script.requests if r.url.host == "download.test")


async def test_F6_a_file_delete_carries_if_match_and_a_changed_file_is_kept(mock_graph: MockGraph) -> None:
    graph, script = mock_graph(lambda request: graph_error(412, "resourceModified"))
    with pytest.raises(PreconditionFailed):
        await graph.files.delete("d1", "i1", etag='"{ABC},3"')
    assert script.requests[0].headers["if-match"] == '"{ABC},3"'
    assert len(script.requests) == 1


async def test_F4_a_repeated_message_delete_counts_as_done_only_after_a_confirming_read(mock_graph: MockGraph) -> None:
    graph, script = mock_graph(
        lambda request: graph_error(
            403 if request.method == "DELETE" else 404,
            "ErrorCannotDeleteObject" if request.method == "DELETE" else "ErrorItemNotFound",
        )
    )
    result = await graph.mail.delete("u1", "m1")
    assert (result.status, result.settled_by_read) == ("already_applied", True)
    assert [r.method for r in script.requests] == ["DELETE", "GET"]


async def test_a_message_still_there_after_an_ambiguous_purge_is_purged_again_once(mock_graph: MockGraph) -> None:
    posts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal posts
        if request.method == "POST":
            posts += 1
            return graph_error(504, "UnknownError") if posts == 1 else httpx.Response(204)
        return httpx.Response(200, json={"id": "m1"})

    graph, script = mock_graph(handler)
    result = await graph.mail.permanent_delete("u1", "m1")
    assert (result.status, result.settled_by_read) == ("applied", True)
    assert [r.method for r in script.requests] == ["POST", "GET", "POST"]


async def test_an_ambiguous_subscription_create_adopts_the_one_that_was_made(
    mock_graph: MockGraph, clock: FakeClock
) -> None:
    expires = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    existing: dict[str, Any] = {
        "id": "sub-1",
        "resource": "users/u1/mailFolders('inbox')/messages",
        "changeType": "created,updated",
        "notificationUrl": "https://steward.test/hooks/graph",
        "expirationDateTime": "2026-11-27T09:00:00Z",
        "clientState": None,
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return graph_error(503, "serviceNotAvailable")
        return page([existing])

    graph, script = mock_graph(handler)
    subscription = await graph.subscriptions.create(
        resource=existing["resource"],
        change_types=["updated", "created"],
        notification_url=existing["notificationUrl"],
        expires_at=expires,
        client_state="s3cret-state",
    )
    assert subscription.id == "sub-1"
    assert [r.method for r in script.requests] == ["POST", "GET"]
    post = json_body(script.requests[0])
    assert post["clientState"] == "s3cret-state"
    assert script.requests[0].headers["prefer"] == 'IdType="ImmutableId"'
    assert not hasattr(subscription, "client_state")


async def test_a_subscription_create_whose_state_cannot_be_read_is_reported_unknown(mock_graph: MockGraph) -> None:
    graph, script = mock_graph(lambda request: graph_error(503, "serviceNotAvailable"))
    with pytest.raises(OutcomeUnknown, match="reading the state back failed"):
        await graph.subscriptions.create(
            resource="users/u1/messages",
            change_types=["created"],
            notification_url="https://steward.test/hooks/graph",
            expires_at=datetime.now(UTC) + timedelta(days=2),
            client_state="s3cret-state",
        )
    assert [r.method for r in script.requests].count("POST") == 1


async def test_mail_folders_include_child_folders(mock_graph: MockGraph) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/childFolders"):
            return page([{"id": "f-projects-2024", "displayName": "2024", "childFolderCount": 0}])
        return page(
            [
                {"id": "inbox", "displayName": "Inbox", "childFolderCount": 0},
                {"id": "f-projects", "displayName": "Projects", "childFolderCount": 1},
            ]
        )

    graph, script = mock_graph(handler)
    folders = await graph.mail.mail_folders("u1")
    assert {f.id for f in folders} == {"inbox", "f-projects", "f-projects-2024"}
    assert all(json.dumps(dict(r.headers)).count("ImmutableId") == 1 for r in script.requests)
