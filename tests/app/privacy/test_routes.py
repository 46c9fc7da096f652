"""Every route of the app that can return customer information goes through the do-not-disclose guard.

A route returns customer information when its response model (nested models included) has a customer field
(legal name, contacts, address, phone...), or when it answers with a raw response (HTML, CSV, a file) whose
content the framework cannot see: such a route must either take the guard or be listed below with the reason
its output holds no customer information. A new route that returns customers without the guard fails here.
"""

from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from app.auth.dependencies import Principal
from app.main import create_app
from app.privacy.dependencies import (
    GuardDep,
    api_routes,
    customer_fields_in,
    guard_for_principal,
    is_guarded,
)
from app.privacy.guard import DisclosureGuard
from tests.app.apps import app_settings

# (method, path) of raw responses that hold no customer information, and why.
NO_CUSTOMER_INFORMATION = {
    ("GET", "/metrics"): "Prometheus counters",
    ("POST", "/v1/notifications/graph"): "202 or the validation token echoed to Graph",
    ("POST", "/v1/notifications/graph/lifecycle"): "202 or the validation token echoed to Graph",
    ("GET", "/v1/plans/{plan_id}/manifest"): "item ids, eTags, sizes, name hashes and customer ids only",
    ("GET", "/v1/plans/{plan_id}/disposal-records"): "proof of disposal: ids, hashes and outcomes only",
    ("GET", "/auth/signin"): "a redirect to Entra ID",
    ("GET", "/auth/callback"): "a redirect after sign-in",
    ("POST", "/auth/signout"): "a redirect",
    ("GET", "/auth/signed-out"): "a static page",
    ("GET", "/audit"): "audit chain verification: record counts, sequence numbers and problems",
    ("POST", "/plans/{plan_id}/decision"): "a 303 redirect back to the plan page",
    ("POST", "/plans/{plan_id}/items/{item_id}/exclude"): "a 303 redirect back to the plan page",
}


def returns_customer_information(route: object) -> bool:
    model = getattr(route, "response_model", None)
    if model is None:
        methods: set[str] = getattr(route, "methods", None) or set()
        return not any((method, getattr(route, "path", "")) in NO_CUSTOMER_INFORMATION for method in methods)
    return bool(customer_fields_in(model))


def unguarded_customer_routes(app: FastAPI) -> list[str]:
    return sorted(
        f"{','.join(sorted(route.methods or ()))} {route.path}"
        for route in api_routes(app)
        if returns_customer_information(route) and not is_guarded(route)
    )


def test_every_route_that_returns_customers_goes_through_the_guard() -> None:
    app = create_app(app_settings())
    offenders = unguarded_customer_routes(app)
    assert offenders == [], (
        f"{offenders} return customer information without the do-not-disclose guard: declare `guard: GuardDep` "
        "(or PublicGuardDep, or a dependency from app.privacy.dependencies.guard_for_principal) and render "
        "customers through it, or list a raw route above with the reason it holds no customer information"
    )


def test_the_allow_list_names_only_routes_that_exist() -> None:
    app = create_app(app_settings())
    served = {(method, route.path) for route in api_routes(app) for method in route.methods or ()}
    assert set(NO_CUSTOMER_INFORMATION) <= served, "remove entries for routes that are gone"


def test_the_guard_routes_of_this_feature_are_seen_as_customer_output() -> None:
    """The check is not vacuous: the disclosure, reference and posture routes are found and are guarded."""
    app = create_app(app_settings())
    routes = {(method, route.path): route for route in api_routes(app) for method in route.methods or ()}
    for key in [("GET", "/v1/references"), ("GET", "/v1/disclosures/{demand_id}"), ("POST", "/v1/disclosures")]:
        assert returns_customer_information(routes[key]), key
        assert is_guarded(routes[key]), key
    assert is_guarded(routes[("GET", "/v1/posture")])


class Leaky(BaseModel):
    class Contact(BaseModel):
        email: str

    id: str
    contacts: list[Contact]


class Nested(BaseModel):
    items: list[Leaky]


async def principal_from_somewhere() -> Principal:
    return Principal(subject="x", name="x", roles=frozenset(), is_service=False)


web_guard = guard_for_principal(principal_from_somewhere)


@pytest.mark.parametrize("model", [Leaky, Nested, list[Leaky], Leaky | None])
def test_a_new_route_returning_customers_without_the_guard_is_caught(model: object) -> None:
    app = create_app(app_settings())

    async def leak() -> None:
        return None

    before = set(unguarded_customer_routes(app))
    app.add_api_route("/v1/leak", leak, response_model=model)
    assert set(unguarded_customer_routes(app)) - before == {"GET /v1/leak"}


def test_raw_pages_must_take_the_guard_too() -> None:
    app = create_app(app_settings())

    async def page() -> HTMLResponse:
        return HTMLResponse("<p>Công ty TNHH Minh Phát</p>")

    async def guarded_page(guard: Annotated[DisclosureGuard, Depends(web_guard)]) -> HTMLResponse:
        return HTMLResponse("")

    before = set(unguarded_customer_routes(app))
    app.add_api_route("/leaky-page", page, response_class=HTMLResponse)
    app.add_api_route("/guarded-page", guarded_page, response_class=HTMLResponse)
    assert set(unguarded_customer_routes(app)) - before == {"GET /leaky-page"}


def test_routes_with_the_guard_pass() -> None:
    app = create_app(app_settings())

    async def fine(request: Request, guard: GuardDep) -> Response:
        return Response()

    before = set(unguarded_customer_routes(app))
    app.add_api_route("/v1/fine", fine, response_model=Leaky)
    assert set(unguarded_customer_routes(app)) == before
