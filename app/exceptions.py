"""Errors with an HTTP status. Domain errors subclass these next to the code that raises them."""

from collections.abc import Mapping


class AppError(Exception):
    """An error the API reports to the caller as {"error": <class name>, "detail": message}."""

    status_code = 500
    # Response headers the error calls for (WWW-Authenticate on a 401, Retry-After on a 503...).
    headers: Mapping[str, str] | None = None

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class BadRequest(AppError):
    status_code = 400


class Unauthorized(AppError):
    status_code = 401


class Forbidden(AppError):
    status_code = 403


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409
