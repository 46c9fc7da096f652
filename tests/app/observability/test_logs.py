"""Structured logs: one JSON object per line, with secrets, tokens, clientState and message content redacted."""

import io
import json
import logging
from collections.abc import Iterator

import pytest

from app.logs import REDACTED, JsonFormatter, TextFormatter, redact
from app.observability.request_id import bind_request_id

JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImFiYyJ9.eyJzdWIiOiIxMjMiLCJyb2xlcyI6WyJTdGV3YXJkLkFkbWluIl19.c2lnbmF0dXJlLWJ5dGVz"
SECRETS = [
    JWT,
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "stw~5f0c3a1e9b7d4c2a8e6f1b3d5a7c9e0f",  # a client secret
    "Dear An, the contract for Công ty Minh Phát is attached",  # a message body
    "clientstate-7fb1c2d3e4a5b6c7d8e9f0",
    "hunter2-password",
    "refresh-0.AXoA-rt-value",
    "auth-code-M.C507_BAY.2.U.1234",
]


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.observability.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_dict_full_of_secrets_is_logged_without_any(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    sensitive = {
        "headers": {"Authorization": f"Bearer {JWT}", "webhook-signature": "v1,abc=", "Cookie": "session=xyz"},
        "client_secret": SECRETS[2],
        "webhook_secrets": [SECRETS[1]],
        "notification": {"subscriptionId": "sub-1", "clientState": SECRETS[4], "resource": "Users/u/Messages/m"},
        "message": {"subject": "Q1", "body": {"contentType": "html", "content": SECRETS[3]}, "bodyPreview": SECRETS[3]},
        "form": {"password": SECRETS[5], "refresh_token": SECRETS[6], "authorization_code": SECRETS[7]},
    }
    logger.info("graph.debug_dump", extra={"payload": sensitive, "access_token": JWT})
    logger.info("as an argument: %s", sensitive)
    output = stream.getvalue()
    for secret in SECRETS:
        assert secret not in output
    logger.info("graph.error", extra={"code": "paymentRequired", "status": 402})
    first, second, third = lines(stream)
    assert (third["code"], third["status"]) == ("paymentRequired", 402)  # error codes stay readable
    assert first["event"] == "graph.debug_dump"
    payload = first["payload"]
    assert isinstance(payload, dict)
    # What is not secret survives, so the line is still useful.
    assert payload["notification"] == {
        "subscriptionId": "sub-1",
        "clientState": REDACTED,
        "resource": "Users/u/Messages/m",
    }
    assert payload["message"]["subject"] == "Q1"
    assert first["access_token"] == REDACTED
    assert "sub-1" in str(second["event"])


@pytest.mark.parametrize(
    "text",
    [
        f"calling Graph with Authorization: Bearer {JWT}",
        f"token endpoint said {{'access_token': '{JWT}', 'token_type': 'Bearer'}}",
        "POST https://login.test/token?client_secret=stw~5f0c3a1e9b7d4c2a8e6f1b3d5a7c9e0f&grant_type=client_credentials",
        "redirect to https://steward.test/callback?code=auth-code-M.C507_BAY.2.U.1234&state=s",
        "postgresql://steward:hunter2-password@db.internal:5432/steward",
        'notification {"clientState": "clientstate-7fb1c2d3e4a5b6c7d8e9f0", "changeType": "updated"}',
        "secret configured: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ],
)
def test_secrets_in_free_text_are_scrubbed(captured: tuple[logging.Logger, io.StringIO], text: str) -> None:
    logger, stream = captured
    logger.warning(text)
    [line] = lines(stream)
    event = str(line["event"])
    assert REDACTED in event
    for secret in SECRETS:
        assert secret not in event


def test_tracebacks_are_scrubbed_too(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    try:
        raise RuntimeError(f"token refused: Bearer {JWT}")
    except RuntimeError:
        logger.exception("graph.call_failed")
    [line] = lines(stream)
    assert "RuntimeError" in str(line["exception"])
    assert JWT not in stream.getvalue()


def test_one_line_per_event_with_level_logger_and_request_id(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    with bind_request_id("req-42"):
        logger.info("plans.created", extra={"plan_id": 7, "items": 3})
    logger.error("multi\nline\nmessage")
    assert len(stream.getvalue().splitlines()) == 2
    first, second = lines(stream)
    assert first["level"] == "info"
    assert first["logger"] == "tests.observability.redaction"
    assert first["request_id"] == "req-42"
    assert (first["plan_id"], first["items"]) == (7, 3)
    assert "request_id" not in second


def test_the_text_format_redacts_the_same_way() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "login with %s", (f"Bearer {JWT}",), None)
    record.client_state = SECRETS[4]
    formatted = TextFormatter().format(record)
    assert JWT not in formatted
    assert SECRETS[4] not in formatted
    assert "client_state=" in formatted


def test_redact_leaves_plain_values_alone() -> None:
    value = {"customer_id": "c-1", "count": 3, "ratio": 0.5, "flag": True, "none": None, "ids": ["a", "b"]}
    assert redact(value) == value
