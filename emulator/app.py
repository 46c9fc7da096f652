"""The emulator's ASGI app: Entra ID, Graph v1.0, the Teams peers and the /_emulator control plane."""

from __future__ import annotations

import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from emulator import batch, control, directory, identity, limits, security, subscriptions, teams
from emulator.errors import EntraError, GraphError, graph_error_response, handle_entra_error, handle_graph_error
from emulator.files import routes as file_routes
from emulator.mail import routes as mail_routes
from emulator.state import Tenant

GRAPH_PREFIX = "/v1.0"


def _is_graph(request: Request) -> bool:
    return request.url.path.startswith((GRAPH_PREFIX + "/", "/beta/"))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    reasons = "; ".join(
        f"{'.'.join(str(p) for p in err.get('loc', ()) if p != 'body')}: {err.get('msg')}" for err in exc.errors()
    )
    if _is_graph(request):
        return graph_error_response(request, 400, "BadRequest", f"Invalid request. {reasons}")
    return JSONResponse({"error": "invalid_request", "error_description": reasons}, status_code=400)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if _is_graph(request):
        if exc.status_code == 404:
            segment = request.url.path.rstrip("/").rsplit("/", 1)[-1]
            return graph_error_response(request, 400, "BadRequest", f"Resource not found for the segment '{segment}'.")
        if exc.status_code == 405:
            return graph_error_response(
                request, 405, "Request_BadRequest", "The requested HTTP method is not supported for this resource."
            )
        return graph_error_response(request, exc.status_code, "BadRequest", str(exc.detail))
    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # A crash here is an emulator bug; answer like Graph does so clients still see a documented shape.
    return graph_error_response(request, 500, "generalException", f"An internal error occurred ({type(exc).__name__}).")


def create_app(tenant: Tenant) -> FastAPI:
    app = FastAPI(title="Steward local Microsoft 365 tenant", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.tenant = tenant

    @app.middleware("http")
    async def assign_request_id(request: Request, call_next):  # type: ignore[no-untyped-def]
        request.state.request_id = str(uuid.uuid4())
        response = await call_next(request)
        response.headers.setdefault("request-id", request.state.request_id)
        client_request_id = request.headers.get("client-request-id")
        response.headers.setdefault("client-request-id", client_request_id or request.state.request_id)
        return response

    app.add_exception_handler(GraphError, handle_graph_error)
    app.add_exception_handler(EntraError, handle_entra_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)

    app.include_router(identity.router)
    app.include_router(control.router)
    app.include_router(teams.router)
    for area in (directory, mail_routes, file_routes, batch, subscriptions, security, teams):
        app.include_router(area.control_router, prefix="/_emulator")
    for graph_router in (
        directory.router,
        mail_routes.router,
        file_routes.router,
        batch.router,
        subscriptions.router,
        security.router,
    ):
        app.include_router(graph_router, prefix=GRAPH_PREFIX)
    app.include_router(file_routes.beta_router, prefix="/beta")
    limits.install(app)
    return app
