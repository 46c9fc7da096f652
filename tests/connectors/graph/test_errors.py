import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from connectors.base import (
    AuthError,
    ConnectorError,
    Forbidden,
    Locked,
    NotFound,
    PaymentRequired,
    PreconditionFailed,
    Throttled,
    Transient,
)
from connectors.graph.errors import ResyncRequired, error_from_response, is_temporary_lock, parse_retry_after

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _body(code: str, inner_code: str | None = None) -> bytes:
    inner = {"request-id": "graph-req-1", "client-request-id": "ours-1", "date": "2026-11-25T09:00:00"}
    if inner_code:
        inner["code"] = inner_code
    return json.dumps({"error": {"code": code, "message": "it failed", "innerError": inner}}).encode()


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("2.128", 2.128),  # Graph's own documented sample is fractional
        ("41, 315", 41.0),
        (format_datetime(NOW + timedelta(seconds=315), usegmt=True), 315.0),
        (None, None),
        ("", None),
        ("0", None),  # not a wait: back off instead
        ("-3", None),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), None),  # a date in the past
        ("soon", None),
        ("nan", None),
    ],
)
def test_retry_after_accepts_seconds_and_http_dates(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (401, "InvalidAuthenticationToken", AuthError),
        (402, "paymentRequired", PaymentRequired),
        (403, "accessDenied", Forbidden),
        (404, "itemNotFound", NotFound),
        (412, "resourceModified", PreconditionFailed),
        (423, "resourceLocked", Locked),
        (429, "TooManyRequests", Throttled),
        (500, "generalException", Transient),
        (504, "UnknownError", Transient),
        (400, "invalidRequest", ConnectorError),
    ],
)
def test_statuses_map_to_one_error_tree_with_both_request_ids(
    status: int, code: str, expected: type[ConnectorError]
) -> None:
    error = error_from_response(status, {}, _body(code), client_request_id="ours-1", now=NOW)
    assert type(error) is expected
    assert (error.status_code, error.code) == (status, code)
    assert error.request_id == "graph-req-1"
    assert error.client_request_id == "ours-1"
    assert "graph-req-1" in str(error)


def test_a_503_with_retry_after_is_throttling_and_keeps_the_wait() -> None:
    error = error_from_response(
        503, {"retry-after": "12"}, _body("serviceNotAvailable"), client_request_id=None, now=NOW
    )
    assert isinstance(error, Throttled)
    assert error.retry_after_s == 12


@pytest.mark.parametrize(
    ("status", "code", "inner_code"),
    [
        (410, "resyncRequired", "resyncChangesApplyDifferences"),
        (410, "generalException", None),
        (400, "syncStateNotFound", None),
        (400, "invalidRequest", "syncStateNotFound"),
    ],
)
def test_expired_sync_state_is_resync_required_with_the_fresh_location(
    status: int, code: str, inner_code: str | None
) -> None:
    headers = {"location": "https://graph.test/v1.0/drives/d/root/delta"}
    error = error_from_response(status, headers, _body(code, inner_code), client_request_id="ours-2", now=NOW)
    assert isinstance(error, ResyncRequired)
    assert error.location == headers["location"]
    assert error.client_request_id == "ours-2"


@pytest.mark.parametrize(
    ("code", "inner_code", "temporary"),
    [
        ("fileDecryptionDeferred", None, True),
        ("locked", "fileDecryptionDeferred", True),
        ("fileDoubleKeyEncrypted", None, False),
        ("notAllowed", "fileDecryptionNotSupported", False),
    ],
)
def test_lock_codes_say_whether_waiting_helps(code: str, inner_code: str | None, temporary: bool) -> None:
    error = error_from_response(423, {}, _body(code, inner_code), client_request_id=None, now=NOW)
    assert isinstance(error, Locked)
    assert is_temporary_lock(error) is temporary


def test_a_gateway_page_instead_of_json_still_maps_by_status() -> None:
    error = error_from_response(
        502, {"request-id": "hdr-req"}, b"<html>Bad Gateway</html>", client_request_id="ours-3", now=NOW
    )
    assert isinstance(error, Transient)
    assert error.request_id == "hdr-req"
    assert error.code is None
