"""The one mapping from Graph's HTTP answers to the connector error tree, plus the Graph-specific errors.

Every failed Graph call surfaces as a `connectors.base.ConnectorError` subclass carrying the status, Graph's
error code, Graph's request-id and the client-request-id we sent, so an operator can quote both to Microsoft.
"""

from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.base import ConnectorError, Gone, Locked, Throttled, Transient, error_for_status

# Graph codes that mean "your sync state is gone, enumerate again" whatever the status (Outlook answers
# syncStateNotFound with 400 or 410; drives answer 410 with one of the resync codes).
RESYNC_CODES = frozenset(
    {
        "syncStateNotFound",
        "syncStateInvalid",
        "resyncRequired",
        "resyncChangesApplyDifferences",
        "resyncChangesUploadDifferences",
        "resyncApplyDifferences",
        "resyncUploadDifferences",
    }
)
# 423 codes after which trying again later can succeed; the other lock codes are permanent for the item.
TEMPORARY_LOCK_CODES = frozenset({"fileDecryptionDeferred"})
RETRYABLE_STATUSES = frozenset({429, 503, 504})


class Parked(Throttled):
    """Graph asked for a wait too long to sleep through (Retry-After >= the park threshold).

    The unit of work must be rescheduled for `not_before`; the layer has already recorded that time in the
    ParkStore under `unit`, and no worker sleeps or spins in the meantime.
    """

    def __init__(
        self,
        message: str,
        *,
        not_before: datetime,
        unit: str,
        retry_after_s: float | None = None,
        status_code: int | None = 429,
        code: str | None = None,
        request_id: str | None = None,
        client_request_id: str | None = None,
    ) -> None:
        super().__init__(
            message,
            retry_after_s=retry_after_s,
            status_code=status_code,
            code=code,
            request_id=request_id,
            client_request_id=client_request_id,
        )
        self.not_before = not_before
        self.unit = unit


class ResyncRequired(Gone):
    """The delta/sync state expired (410 Gone, syncStateNotFound): enumerate again, from `location` if Graph
    gave one (a fresh initial-query URL), else from the initial request."""

    def __init__(self, message: str, *, location: str | None = None, **ids: Any) -> None:
        super().__init__(message, **ids)
        self.location = location


class OutcomeUnknown(Transient):
    """A non-idempotent write failed ambiguously (timeout, reset, 5xx): it may or may not have happened.

    Raised only when reading the state back could not settle the question either; never retried blindly.
    """


class UntrustedLink(ConnectorError):
    """Graph (or something pretending to be Graph) pointed us at a host outside the allowed list."""


class TooLarge(ConnectorError):
    """The content is bigger than the caller's cap; nothing beyond the cap was read."""


class _InnerError(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    code: str | None = None
    request_id: str | None = Field(default=None, alias="request-id")
    client_request_id: str | None = Field(default=None, alias="client-request-id")


class _ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    code: str | None = None
    message: str | None = None
    inner_error: _InnerError | None = Field(default=None, alias="innerError")


class _ErrorBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    error: _ErrorDetail | None = None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds (integer, or fractional as Graph's own sample
    shows) or an HTTP-date. None when absent, unparsable, zero or in the past: the caller backs off instead."""
    if not value:
        return None
    # A repeated header arrives joined as "a, b" (take the first); an HTTP-date has a comma of its own.
    first = value.split(",", 1)[0].strip()
    try:
        seconds = float(first)
    except ValueError:
        try:
            when = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - now).total_seconds()
    if seconds != seconds or seconds <= 0:  # NaN or not a wait at all
        return None
    return seconds


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    client_request_id: str | None,
    now: datetime,
) -> ConnectorError:
    """The connector error for a failed Graph response. `headers` must answer lower-case names."""
    detail = _parse_error(content)
    inner = detail.inner_error if detail is not None else None
    code = detail.code if detail is not None else None
    inner_code = inner.code if inner is not None else None
    message = (detail.message if detail is not None else None) or f"Graph answered HTTP {status}"
    ids = {
        "request_id": (inner.request_id if inner is not None else None) or headers.get("request-id"),
        "client_request_id": client_request_id
        or (inner.client_request_id if inner is not None else None)
        or headers.get("client-request-id"),
    }
    if status == 410 or code in RESYNC_CODES or inner_code in RESYNC_CODES:
        return ResyncRequired(
            message, location=headers.get("location"), status_code=status, code=code or inner_code, **ids
        )
    if status == 423:
        # The useful code (fileDoubleKeyEncrypted, ...) may sit in either level depending on the service.
        return Locked(message, status_code=status, code=_specific(code, inner_code), **ids)
    return error_for_status(
        status,
        message,
        code=code,
        retry_after_s=parse_retry_after(headers.get("retry-after"), now),
        **ids,
    )


def is_temporary_lock(error: Locked) -> bool:
    return error.code in TEMPORARY_LOCK_CODES


def _specific(code: str | None, inner_code: str | None) -> str | None:
    generic = {None, "", "locked", "Locked", "resourceLocked", "notAllowed"}
    if inner_code not in generic:
        return inner_code
    return code or inner_code


def _parse_error(content: bytes) -> _ErrorDetail | None:
    if not content:
        return None
    try:
        return _ErrorBody.model_validate_json(content).error
    except ValidationError:
        # Gateways answer with HTML or plain text; the status alone then decides the error class.
        return None
