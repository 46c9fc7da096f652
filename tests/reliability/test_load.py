"""Load cases (reliability-matrix.md 3.1) not covered by the feature suites. Timing itself is the benchmark's job
(`python -m bench --scenario notify`); here: what must hold whatever the speed."""

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.base import Transient
from connectors.graph.budget import ThrottleBudget
from connectors.graph.client import build_graph_client
from connectors.graph.connector import GraphConnector
from connectors.graph.transport import RetryPolicy
from emulator.state import Tenant
from tests.app.webhooks.test_graph_notifications import CHANGES, change, stored_for, subscribe
from tests.connectors.graph.conftest import USER_AGENT, LiveGraph


async def test_L7_a_thousand_notifications_in_a_burst_are_all_acknowledged_and_queued(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    subscription_id, client_state = await subscribe(engine)
    batches = [[change(subscription_id, client_state) for _ in range(10)] for _ in range(100)]
    gate = asyncio.Semaphore(20)  # twenty deliveries in flight at once, as Graph's fan-out would send them

    async def deliver(batch: list[dict[str, object]]) -> int:
        async with gate:
            return (await client.post(CHANGES, json={"value": batch})).status_code

    statuses = await asyncio.gather(*(deliver(batch) for batch in batches))

    assert Counter(statuses) == {202: 100}
    stored = await stored_for(engine, subscription_id)
    # Acknowledged means durable, and nothing was processed inline: every one waits as a work item.
    assert len(stored) == 1_000
    assert {notification.state for notification in stored} == {"pending"}
    sent = {n["resourceData"]["id"] for batch in batches for n in batch}
    assert {notification.resource_id for notification in stored} == sent


def _message_of(tenant: Tenant) -> tuple[str, str]:
    with tenant.lock:
        mailbox = next(m for m in tenant.mail.mailboxes.values() if any(True for _ in m.messages()))
        return mailbox.user_id, mailbox.immutable_id(next(iter(mailbox.messages())))


async def test_L8_a_stalled_response_times_out_and_the_retries_stay_bounded(live_graph: LiveGraph) -> None:
    endpoints = live_graph.server.endpoints
    client = build_graph_client(
        live_graph.credential,
        base_url=endpoints.graph_url,
        allowed_hosts=["127.0.0.1"],
        ca_bundle=Path(endpoints.ca_bundle),
        timeout_s=0.5,
    )
    graph = GraphConnector(
        client,
        budget=ThrottleBudget(clock=live_graph.clock),
        user_agent=USER_AGENT,
        allowed_hosts=["127.0.0.1"],
        retry=RetryPolicy(max_attempts=3),
        clock=live_graph.clock,
    )
    user_id, message_id = _message_of(live_graph.tenant)
    fault = await live_graph.fault(kind="slow", delay_ms=1_500, path="/messages/")
    try:
        with pytest.raises(Transient):
            await graph.mail.get_message(user_id, message_id)
    finally:
        await client.aclose()
    # Each attempt was cut off by the read timeout, and the attempts stopped at the policy's bound.
    [seen] = [f for f in (await live_graph.control.get("/faults")).json()["value"] if f["id"] == fault["id"]]
    assert seen["matched"] == 3
    assert len(live_graph.clock.sleeps) == 2  # backoff between attempts, never an immediate retry
    assert all(slept > 0 for slept in live_graph.clock.sleeps)


async def test_L8_every_graph_call_has_connect_and_read_timeouts(live_graph: LiveGraph) -> None:
    timeout = live_graph.connector.transport.client.http.timeout
    assert None not in (timeout.connect, timeout.read, timeout.write, timeout.pool)
    # The whole retry chain of one call may take longer than any single wait Steward sleeps through.
    policy = live_graph.connector.transport.retry
    assert policy.max_total_s > live_graph.connector.budget.park_threshold_s
