"""One place that turns errors into {"error": code, "detail": ...} responses. No stack traces leave."""

import logging
from collections.abc import Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app.exceptions import AppError
from app.observability.request_id import REQUEST_ID_HEADER

log = logging.getLogger(__name__)


def _error(status_code: int, code: str, detail: object, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status_code, headers=headers)


def _status_code_name(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase.title().replace(" ", "").replace("-", "")
    except ValueError:
        return "Error"


async def app_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return _error(exc.status_code, type(exc).__name__, exc.message, exc.headers)


async def http_exception_handler(_request: Request, exc: Exception) -> JSONResponse:
    # Raised by the framework itself (unknown route, wrong method) and by dependencies.
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, _status_code_name(exc.status_code), exc.detail, exc.headers)


async def validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # The offending input is left out on purpose: it may be a secret or personal data.
    reasons = [
        {"field": ".".join(str(part) for part in error["loc"]), "reason": error["msg"]} for error in exc.errors()
    ]
    return _error(422, "RequestValidationError", reasons)


async def unhandled_error_handler(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    # This response is sent from outside the middleware that stamps X-Request-ID on the others.
    request_id = getattr(request.state, "request_id", None)
    headers = {REQUEST_ID_HEADER: request_id} if request_id else None
    return _error(500, "InternalServerError", "internal server error", headers)


def add_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, app_error_handler)
    app.add_exception_handler(HTTPException, http_exception_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(Exception, unhandled_error_handler)
