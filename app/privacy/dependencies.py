"""The guard as a FastAPI dependency, and how to tell from a route whether its output goes through it.

A route that returns customer information declares `guard: GuardDep` (the audience follows the caller's roles),
`guard: PublicGuardDep` (published output such as marketing references), or, for callers identified another way
(the web UI's session), a dependency made by `guard_for_principal`, and renders customers through it.
tests/app/privacy/test_routes.py walks every route of the app and fails when one that returns customer fields
lacks such a dependency.
"""

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any, get_args, get_origin

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel

from app.auth.dependencies import ADMIN, APPROVER, LEGAL, Principal, authenticate
from app.config import Settings
from app.policy import Policy, default_policy, load_policy
from app.privacy.guard import CUSTOMER_INFO_FIELDS, Audience, DisclosureGuard

# Roles whose work is customer data; anyone else with a valid token (auditors) sees only what is public.
STAFF_ROLES = frozenset({ADMIN, LEGAL, APPROVER})


def current_policy(request: Request) -> Policy:
    """The policy the app runs with: loaded once per app (the file is validated at load)."""
    policy: Policy | None = getattr(request.app.state, "policy", None)
    if policy is None:
        settings: Settings = request.app.state.settings
        policy = load_policy(settings.policy_path) if settings.policy_path else default_policy()
        request.app.state.policy = policy
    return policy


def audience_for(principal: Principal) -> Audience:
    return Audience.STAFF if principal.roles & STAFF_ROLES else Audience.AUDIT


async def output_guard(request: Request) -> DisclosureGuard:
    principal = await authenticate(request)
    return DisclosureGuard(current_policy(request), audience_for(principal))


async def public_output_guard(request: Request) -> DisclosureGuard:
    return DisclosureGuard(current_policy(request), Audience.PUBLIC)


# Dependencies that hand a route the guard; `is_guarded` looks for one of them in a route's dependency tree.
_GUARD_DEPENDENCIES: set[Callable[..., Any]] = {output_guard, public_output_guard}


def guard_for_principal(
    principal_of: Callable[..., Awaitable[Principal]],
) -> Callable[..., Awaitable[DisclosureGuard]]:
    """A guard dependency for callers identified another way (the web UI's session): registered as a guard."""

    async def guard(request: Request, principal: Annotated[Principal, Depends(principal_of)]) -> DisclosureGuard:
        return DisclosureGuard(current_policy(request), audience_for(principal))

    _GUARD_DEPENDENCIES.add(guard)
    return guard


PolicyDep = Annotated[Policy, Depends(current_policy)]
GuardDep = Annotated[DisclosureGuard, Depends(output_guard)]
PublicGuardDep = Annotated[DisclosureGuard, Depends(public_output_guard)]


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def api_routes(app: FastAPI) -> Iterator[RouteContext]:
    """Every API route as the app serves it (prefixes and router-level dependencies applied)."""
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context


def is_guarded(route: RouteContext) -> bool:
    dependant: Dependant = route.dependant
    return any(call in _GUARD_DEPENDENCIES for call in _calls(dependant))


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    if get_origin(annotation) is not None or get_args(annotation):
        for argument in get_args(annotation):
            yield from _models(argument)


def customer_fields_in(annotation: Any) -> set[str]:
    """Field names in a response model (nested models, lists and unions included) that carry customer info."""
    found: set[str] = set()
    seen: set[type[BaseModel]] = set()
    pending = list(_models(annotation))
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            if name in CUSTOMER_INFO_FIELDS or (field.alias or "") in CUSTOMER_INFO_FIELDS:
                found.add(name)
            pending.extend(_models(field.annotation))
    return found
