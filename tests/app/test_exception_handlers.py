from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from app.exception_handlers import add_exception_handlers
from app.exceptions import AppError, BadRequest, Conflict, Forbidden, NotFound, Unauthorized


class ApprovalAlreadyDecided(Conflict):
    pass


class Item(BaseModel):
    name: str
    quantity: int


def _app() -> FastAPI:
    app = FastAPI()
    add_exception_handlers(app)
    errors: dict[str, AppError] = {
        "bad-request": BadRequest("the date range is reversed"),
        "unauthorized": Unauthorized("sign in first"),
        "forbidden": Forbidden("approvers only"),
        "not-found": NotFound("no such customer"),
        "conflict": ApprovalAlreadyDecided("this approval was already decided"),
        "teapot": AppError("custom status", status_code=418),
    }

    @app.get("/errors/{kind}")
    async def raise_error(kind: str) -> None:
        raise errors[kind]

    @app.post("/items")
    async def create_item(item: Item, limit: int = 10) -> Item:
        return item

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret-connection-string=postgres://user:pw@db")

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.mark.parametrize(
    ("kind", "status", "error", "detail"),
    [
        ("bad-request", 400, "BadRequest", "the date range is reversed"),
        ("unauthorized", 401, "Unauthorized", "sign in first"),
        ("forbidden", 403, "Forbidden", "approvers only"),
        ("not-found", 404, "NotFound", "no such customer"),
        ("conflict", 409, "ApprovalAlreadyDecided", "this approval was already decided"),
        ("teapot", 418, "AppError", "custom status"),
    ],
)
async def test_app_errors(client: httpx.AsyncClient, kind: str, status: int, error: str, detail: str) -> None:
    response = await client.get(f"/errors/{kind}")
    assert response.status_code == status
    assert response.json() == {"error": error, "detail": detail}


async def test_validation_errors_name_each_field_without_echoing_input(client: httpx.AsyncClient) -> None:
    response = await client.post("/items?limit=many", json={"quantity": "hunter2"})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "RequestValidationError"
    fields = {reason["field"]: reason["reason"] for reason in body["detail"]}
    assert set(fields) == {"query.limit", "body.name", "body.quantity"}
    assert fields["body.name"] == "Field required"
    assert "hunter2" not in response.text


async def test_malformed_json_is_a_422_not_a_crash(client: httpx.AsyncClient) -> None:
    response = await client.post("/items", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"] == "RequestValidationError"


async def test_framework_http_errors_use_the_same_shape(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json() == {"error": "NotFound", "detail": "Not Found"}
    wrong_method = await client.delete("/items")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "MethodNotAllowed"
    assert wrong_method.headers["allow"] == "POST"


async def test_unhandled_errors_reveal_nothing(client: httpx.AsyncClient) -> None:
    response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"error": "InternalServerError", "detail": "internal server error"}
    assert "secret" not in response.text
    assert "Traceback" not in response.text
