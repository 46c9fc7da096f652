"""The error tree every connector raises, so callers never see vendor exception types."""


class ConnectorError(Exception):
    """A call to an outside system failed. `request_id` is the vendor's id for the failed request
    (Graph's request-id, Entra's correlation id) to quote to the vendor's support; `client_request_id` is the
    id we sent with it (Graph's client-request-id header), to find the call in our own logs."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        client_request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.client_request_id = client_request_id

    def __str__(self) -> str:
        details = [f"status {self.status_code}" if self.status_code else "", self.code or ""]
        if self.request_id:
            details.append(f"request-id {self.request_id}")
        if self.client_request_id:
            details.append(f"client-request-id {self.client_request_id}")
        shown = ", ".join(part for part in details if part)
        return f"{self.message} ({shown})" if shown else self.message


class AuthError(ConnectorError):
    """The credential was refused or no token could be obtained (wrong secret, unknown app, bad cert)."""


class Forbidden(ConnectorError):
    """Authenticated but not allowed: usually a missing application permission or admin consent."""


class NotFound(ConnectorError):
    pass


class Gone(ConnectorError):
    """The resource or sync state no longer exists (e.g. an expired delta token): resync."""


class PreconditionFailed(ConnectorError):
    """The item changed since it was read (If-Match mismatch)."""


class PaymentRequired(ConnectorError):
    """The tenant lacks the billing or licence the operation needs (e.g. metered APIs not enabled)."""


class Locked(ConnectorError):
    """The item is locked (checked out, open for editing) and cannot be changed now."""


class Transient(ConnectorError):
    """A failure worth retrying later: 5xx, timeout, connection reset."""


class Throttled(Transient):
    """The service asked us to slow down; wait `retry_after_s` seconds if it said how long."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float | None = None,
        status_code: int | None = 429,
        code: str | None = None,
        request_id: str | None = None,
        client_request_id: str | None = None,
    ) -> None:
        super().__init__(
            message, status_code=status_code, code=code, request_id=request_id, client_request_id=client_request_id
        )
        self.retry_after_s = retry_after_s


_BY_STATUS: dict[int, type[ConnectorError]] = {
    401: AuthError,
    403: Forbidden,
    404: NotFound,
    410: Gone,
    412: PreconditionFailed,
    402: PaymentRequired,
    423: Locked,
}


def error_for_status(
    status_code: int,
    message: str,
    *,
    code: str | None = None,
    request_id: str | None = None,
    retry_after_s: float | None = None,
    client_request_id: str | None = None,
) -> ConnectorError:
    """The connector error for an HTTP failure status."""
    ids = {"request_id": request_id, "client_request_id": client_request_id}
    if status_code == 429 or (status_code == 503 and retry_after_s is not None):
        return Throttled(message, retry_after_s=retry_after_s, status_code=status_code, code=code, **ids)
    if status_code >= 500 or status_code == 408:
        return Transient(message, status_code=status_code, code=code, **ids)
    error_class = _BY_STATUS.get(status_code, ConnectorError)
    return error_class(message, status_code=status_code, code=code, **ids)
