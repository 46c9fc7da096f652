"""The id of the request being served, for logs and for correlating outbound calls.

Set by app.middleware.RequestContextMiddleware for every HTTP request; jobs may set their own with
`bind_request_id`. Graph asks for a GUID in `client-request-id`: `current_request_id()` is one unless the caller
sent an X-Request-ID of its own, so use `graph_client_request_id()` for Graph. (connectors/ cannot import app/:
the app hands this function to the connector as a factory.)
"""

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

REQUEST_ID_HEADER = "X-Request-ID"
# Accepted from callers as is: short, and nothing that could break a log line or a header.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_request_id: ContextVar[str | None] = ContextVar("steward_request_id", default=None)


def new_request_id() -> str:
    return str(uuid.uuid4())


def acceptable_request_id(value: str | None) -> str | None:
    """The caller's X-Request-ID if it is safe to reuse, else None."""
    return value if value is not None and _ACCEPTABLE.match(value) else None


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str) -> None:
    _request_id.set(value)


def graph_client_request_id() -> str:
    """A GUID for Graph's client-request-id: the current request id when it is one, else a fresh GUID."""
    current = _request_id.get()
    if current is not None:
        try:
            return str(uuid.UUID(current))
        except ValueError:
            pass
    return new_request_id()


@contextmanager
def bind_request_id(value: str | None = None) -> Iterator[str]:
    """Run a block (a job, a CLI command) under a request id of its own."""
    request_id = value or new_request_id()
    token = _request_id.set(request_id)
    try:
        yield request_id
    finally:
        _request_id.reset(token)
