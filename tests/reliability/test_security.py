"""Security cases (reliability-matrix.md 3.4 and 3.6) not covered by the feature suites."""

import asyncio
import logging

from app.logs import JsonFormatter, TextFormatter
from tests.connectors.graph.conftest import LiveGraph


async def test_S9_a_signed_in_connector_serves_many_graph_calls_from_its_token_cache(live_graph: LiveGraph) -> None:
    tenant = live_graph.tenant
    with tenant.lock:
        mailbox = next(m for m in tenant.mail.mailboxes.values() if sum(1 for _ in m.messages()) >= 5)
        ids = [mailbox.immutable_id(message) for message in list(mailbox.messages())[:5]]
    await live_graph.connector.mail.get_message(mailbox.user_id, ids[0])  # signs in
    await live_graph.clear_requests()

    for _ in range(5):  # five rounds of five concurrent calls: the cache must hold across rounds and under load
        await asyncio.gather(*(live_graph.connector.mail.get_message(mailbox.user_id, i) for i in ids))

    logged = await live_graph.requests()
    assert len([r for r in logged if r["path"].startswith("/v1.0/")]) == 25
    assert [r for r in logged if "/oauth2/" in r["path"] or "openid-configuration" in r["path"]] == []


FORGED = 'evil\r\n{"level": "info", "event": "admin.approved"}\n\x1b[2K\x1b[1Gfake line'


def _record(**fields: object) -> logging.LogRecord:
    record = logging.LogRecord("app.customers", logging.INFO, __file__, 1, "customer renamed to %s", (FORGED,), None)
    record.__dict__.update(fields)
    return record


def test_U3_crlf_and_ansi_in_a_json_log_line_cannot_forge_another_line() -> None:
    line = JsonFormatter().format(_record(legal_name=FORGED))
    assert line.count("\n") == 0
    assert "\r" not in line
    assert "\x1b" not in line  # encoded as \\u001b: a terminal shows it, it does not run it


def test_U3_fields_of_a_text_log_line_are_encoded_too() -> None:
    record = logging.LogRecord("app.customers", logging.INFO, __file__, 1, "customer.renamed", (), None)
    record.__dict__["legal_name"] = FORGED
    line = TextFormatter().format(record)
    assert "\n" not in line
    assert "\r" not in line
    assert "\x1b" not in line
