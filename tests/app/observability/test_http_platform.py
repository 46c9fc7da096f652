"""The HTTP platform every endpoint shares: request ids, metrics, the body size limit, errors in one shape."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Request

from app.kit.schemas import RequestSchema
from app.observability.request_id import current_request_id, graph_client_request_id
from tests.app.apps import RunningApp, app_settings


class Thing(RequestSchema):
    name: str
    quantity: int = 1


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    running = RunningApp(app_settings(max_request_body_bytes=1_000))

    async def echo_request_id(request: Request) -> dict[str, str | None]:
        return {"request_id": current_request_id(), "graph": graph_client_request_id()}

    async def create_thing(thing: Thing) -> Thing:
        return thing

    async def read_body(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    async def things_by_id(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    async def boom() -> None:
        raise RuntimeError("database password is hunter2")

    running.app.add_api_route("/v1/probe/request-id", echo_request_id)
    running.app.add_api_route("/v1/probe/things", create_thing, methods=["POST"])
    running.app.add_api_route("/v1/probe/raw", read_body, methods=["POST"])
    running.app.add_api_route("/v1/probe/things/{thing_id}", things_by_id)
    running.app.add_api_route("/v1/probe/boom", boom)
    async with running as client:
        yield client


class TestRequestIds:
    async def test_a_new_guid_when_the_caller_sends_none(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/probe/request-id")
        request_id = response.headers["x-request-id"]
        assert uuid.UUID(request_id)
        # The same id is what logs and Graph's client-request-id see while the request runs.
        assert response.json() == {"request_id": request_id, "graph": request_id}

    async def test_the_callers_id_is_kept(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/probe/request-id", headers={"X-Request-ID": "portal-7f3a:42"})
        assert response.headers["x-request-id"] == "portal-7f3a:42"
        body = response.json()
        assert body["request_id"] == "portal-7f3a:42"
        assert uuid.UUID(body["graph"])  # Graph wants a GUID: a fresh one rather than the caller's free text

    @pytest.mark.parametrize("sent", ["a" * 129, "bad id with spaces", "line\\nbreak", ""])
    async def test_an_unsafe_id_is_replaced(self, client: httpx.AsyncClient, sent: str) -> None:
        response = await client.get("/v1/probe/request-id", headers={"X-Request-ID": sent})
        assert response.headers["x-request-id"] != sent
        assert uuid.UUID(response.headers["x-request-id"])

    async def test_errors_carry_the_id_too(self, client: httpx.AsyncClient) -> None:
        for response in (await client.get("/nowhere"), await client.get("/v1/probe/boom")):
            assert uuid.UUID(response.headers["x-request-id"])


class TestErrors:
    async def test_404_and_405_use_the_error_shape(self, client: httpx.AsyncClient) -> None:
        missing = await client.get("/v1/nowhere")
        assert missing.status_code == 404
        assert missing.json() == {"error": "NotFound", "detail": "Not Found"}
        wrong_method = await client.delete("/v1/probe/things")
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error"] == "MethodNotAllowed"

    async def test_a_crash_reveals_nothing(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/probe/boom")
        assert response.status_code == 500
        assert response.json() == {"error": "InternalServerError", "detail": "internal server error"}
        assert "hunter2" not in response.text
        assert "Traceback" not in response.text

    async def test_unknown_fields_are_refused_not_ignored(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/probe/things", json={"name": "x", "status": "approved"})
        assert response.status_code == 422
        assert response.json()["detail"] == [{"field": "body.status", "reason": "Extra inputs are not permitted"}]
        assert (await client.post("/v1/probe/things", json={"name": "x"})).json() == {"name": "x", "quantity": 1}


class TestBodySizeLimit:
    async def test_a_declared_oversize_body_is_413_before_it_is_read(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/v1/probe/things", content=b"x" * 1_001, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json() == {"error": "ContentTooLarge", "detail": "the request body exceeds 1000 bytes"}

    @pytest.mark.parametrize("path", ["/v1/probe/things", "/v1/probe/raw"])
    async def test_a_streamed_oversize_body_is_413_too(self, client: httpx.AsyncClient, path: str) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(20):
                yield b"y" * 100

        # No Content-Length: the limit is enforced while the body arrives.
        response = await client.post(path, content=chunks(), headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert response.json()["error"] == "ContentTooLarge"

    async def test_a_body_at_the_limit_passes(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/probe/raw", content=b"z" * 1_000)
        assert response.json() == {"bytes": 1_000}


class TestMetrics:
    async def test_requests_are_counted_by_route_template(self, client: httpx.AsyncClient) -> None:
        await client.get(f"/v1/probe/things/{uuid.uuid4()}")
        await client.get(f"/v1/probe/things/{uuid.uuid4()}")
        await client.get("/v1/no-such-route")
        exposition = (await client.get("/metrics")).text
        assert (
            'steward_http_requests_total{method="GET",route="/v1/probe/things/{thing_id}",status="200"}' in exposition
        )
        assert 'route="unmatched",status="404"' in exposition
        assert "steward_http_request_duration_seconds_bucket" in exposition
        # Concrete ids never become label values.
        assert "/v1/probe/things/" + "{" in exposition
        assert "things/0" not in exposition

    async def test_every_domain_metric_is_exported(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/metrics")
        assert response.headers["content-type"].startswith("text/plain")
        for name in (
            "steward_graph_requests_total",
            "steward_graph_throttle_wait_seconds",
            "steward_items_synced_total",
            "steward_items_labeled_total",
            "steward_items_deleted_total",
            "steward_plans",
            "steward_job_duration_seconds",
            "steward_job_runs_total",
            "steward_api_token_validations_total",
            "steward_admin_webhooks_total",
            "steward_graph_notifications_total",
        ):
            assert f"# TYPE {name} " in response.text
