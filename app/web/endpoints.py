"""Steward's web pages: server-rendered HTML (Jinja2) with htmx for partial updates, no build step.

Every page needs a signed-in person (app.web.auth) with a Steward role that fits it; every POST also needs the
session's CSRF token. Pages read through the domain services (app.web.service); decisions go to the approval
rules with the identity from the session, which came from a verified token, never from the form.
"""

import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.approvals.service import ApprovalRefused, Approver, PlanClosed, StaleManifest, decide, record_refusal
from app.auth.dependencies import ADMIN, APPROVER, AUDITOR, LEGAL
from app.config import Settings
from app.db.base import utc_now
from app.db.engine import READ_ONLY_OPTION
from app.deps import SessionDep
from app.disclosures.context import DisclosureContext
from app.exceptions import AppError, BadRequest, NotFound
from app.models import Decision, DisclosureStatus
from app.plans.context import DeletionContext
from app.plans.service import Requester, exclude_item, get_plan
from app.privacy.dependencies import current_policy, guard_for_principal
from app.privacy.guard import DisclosureGuard
from app.web import service
from app.web.auth import (
    SESSION_COOKIE,
    SESSION_MAX_AGE_S,
    SIGNIN_COOKIE,
    SIGNIN_MAX_AGE_S,
    SignInRequired,
    WebUser,
    clear_cookie,
    current_user,
    require_user,
    safe_next,
    session_principal,
    set_cookie,
    verify_csrf,
    web_sign_in,
)

log = logging.getLogger(__name__)

TEMPLATES_DIR = FilePath(__file__).parent / "templates"
SECURITY_HEADERS = {
    # Scripts and styles come from /static only: no inline script can run, whatever a page ends up containing.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages carry customer information: never kept by the browser or a proxy.
    "Cache-Control": "no-store",
}
ERROR_TITLES = {
    400: "The request could not be used",
    401: "Sign-in failed",
    403: "Not allowed",
    404: "Not found",
    409: "Nothing changed",
    503: "Temporarily unavailable",
}
VIEWERS = (ADMIN, APPROVER, LEGAL, AUDITOR)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _day(moment: datetime | None) -> str:
    return "—" if moment is None else moment.strftime("%Y-%m-%d")


def _filesize(size: int | None) -> str:
    value = float(size or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def _words(value: str | None) -> str:
    return (value or "").replace("_", " ")


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters.update(when=_when, day=_day, filesize=_filesize, words=_words)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(request: Request, template: str, user: WebUser | None, status_code: int = 200, **context: Any) -> Response:
    nav = {
        "dashboard": bool(user and user.roles),
        "customers": bool(user and user.has_any(service.CUSTOMER_READERS)),
        "disclosures": bool(user and user.has_any(service.DISCLOSURE_READERS)),
        "audit": bool(user and user.has_any(service.AUDIT_READERS)),
    }
    values = {"user": user, "roles": sorted(user.roles) if user else [], "nav": nav, **context}
    response = templates.TemplateResponse(request, template, values, status_code)
    response.headers["Vary"] = "HX-Request"
    return response


def error_page(request: Request, status_code: int, message: str) -> Response:
    return render(
        request,
        "error.html",
        current_user(request),
        status_code=status_code,
        title=ERROR_TITLES.get(status_code, "Something went wrong"),
        message=message,
        status=status_code,
    )


def sign_in_redirect(request: Request) -> Response:
    if request.method == "GET":
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    else:
        here = urlsplit(request.headers.get("hx-current-url", "")).path or "/"
    target = f"/auth/signin?{urlencode({'next': safe_next(here)})}"
    if is_htmx(request):
        # htmx swaps nothing on a 401 but follows HX-Redirect: the whole page goes to sign-in.
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


class PageRoute(APIRoute):
    """Pages answer errors with an HTML page (or a sign-in redirect), and always send the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired:
                response = sign_in_redirect(request)
            except AppError as error:
                response = error_page(request, error.status_code, error.message)
            except RequestValidationError as invalid:
                fields = ", ".join(sorted({str(error["loc"][-1]) for error in invalid.errors()}))
                response = error_page(request, 400, f"These values are not valid: {fields}.")
            response.headers.update(SECURITY_HEADERS)
            return response

        return page_handler


router = APIRouter(route_class=PageRoute, include_in_schema=False)


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A read-only session: pages never queue behind writers on SQLite."""
    async with request.app.state.sessionmaker() as session:
        await session.connection(execution_options={READ_ONLY_OPTION: True})
        yield session


ReadSession = Annotated[AsyncSession, Depends(read_session)]
Staff = Annotated[WebUser, Depends(require_user(*VIEWERS))]
CustomerReaders = Annotated[WebUser, Depends(require_user(*service.CUSTOMER_READERS))]
Deciders = Annotated[WebUser, Depends(require_user(APPROVER))]
Editors = Annotated[WebUser, Depends(require_user(*service.PLAN_EDITORS))]
DisclosureReaders = Annotated[WebUser, Depends(require_user(*service.DISCLOSURE_READERS))]
Auditors = Annotated[WebUser, Depends(require_user(*service.AUDIT_READERS))]
# Customer information on a page goes through the do-not-disclose guard, for the signed-in person's audience.
Guard = Annotated[DisclosureGuard, Depends(guard_for_principal(session_principal))]
DemandId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
PlanId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
FilterValue = Annotated[str, Query(max_length=100, pattern=r"^[a-z_]*$")]


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def deletion_context(request: Request) -> DeletionContext:
    return DeletionContext(settings=settings_of(request), policy=current_policy(request))


# Sign-in -----------------------------------------------------------------------------------------------


@router.get("/auth/signin")
async def sign_in(request: Request, next: Annotated[str, Query(max_length=2000)] = "/") -> Response:
    auth_uri, pending = await web_sign_in(request).start(next)
    response = RedirectResponse(auth_uri, status_code=303)
    set_cookie(response, SIGNIN_COOKIE, pending, SIGNIN_MAX_AGE_S)
    return response


@router.get("/auth/callback")
async def sign_in_callback(request: Request) -> Response:
    signin = web_sign_in(request)
    flow, next_path = signin.pending(request.cookies.get(SIGNIN_COOKIE))
    try:
        user = await signin.finish(flow, dict(request.query_params), signin.validator(request))
    except AppError as failed:
        # The flow is spent either way (Entra's codes are single-use): a retry starts over.
        response = error_page(request, failed.status_code, failed.message)
        clear_cookie(response, SIGNIN_COOKIE)
        return response
    log.info("web.signed_in", extra={"subject": user.subject, "roles": sorted(user.roles)})
    response = RedirectResponse(next_path, status_code=303)
    clear_cookie(response, SIGNIN_COOKIE)
    set_cookie(response, SESSION_COOKIE, signin.session_cookie(user), SESSION_MAX_AGE_S)
    return response


@router.post("/auth/signout")
async def sign_out(request: Request) -> Response:
    user = current_user(request)
    if user is not None:
        await verify_csrf(request, user)
    response = RedirectResponse("/auth/signed-out", status_code=303)
    clear_cookie(response, SESSION_COOKIE)
    return response


@router.get("/auth/signed-out", response_class=HTMLResponse)
async def signed_out(request: Request) -> Response:
    return render(request, "signed_out.html", None)


# Dashboard and customers -------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request, user: Staff, guard: Guard, session: ReadSession) -> Response:
    data = await service.dashboard(session, user=user, policy=current_policy(request), guard=guard, now=utc_now())
    return render(request, "dashboard.html", user, active="dashboard", dashboard=data)


@router.get("/customers", response_class=HTMLResponse)
async def customers(
    request: Request,
    user: CustomerReaders,
    guard: Guard,
    session: ReadSession,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    page = await service.customer_list(session, after=after, guard=guard)
    return render(request, "customers.html", user, active="customers", page=page)


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
async def customer(
    request: Request,
    customer_id: Annotated[str, Path(max_length=64)],
    user: CustomerReaders,
    guard: Guard,
    session: ReadSession,
) -> Response:
    page = await service.customer_page(session, customer_id, policy=current_policy(request), guard=guard, now=utc_now())
    return render(request, "customer.html", user, active="customers", page=page)


# Plans -------------------------------------------------------------------------------------------------


@router.get("/plans/{plan_id}", response_class=HTMLResponse)
async def plan(
    request: Request,
    plan_id: PlanId,
    user: Staff,
    guard: Guard,
    session: ReadSession,
    action: FilterValue = "",
    kind: FilterValue = "",
    reason: FilterValue = "",
    state: FilterValue = "",
    q: Annotated[str, Query(max_length=300)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    decision: Annotated[str, Query(max_length=16)] = "",
    done: Annotated[str, Query(max_length=16)] = "",
) -> Response:
    wanted = service.ManifestFilter(action=action, kind=kind, reason=reason, state=state, query=q, page=page)
    if is_htmx(request) and request.headers.get("hx-target") == "manifest":
        manifest = await service.plan_manifest(session, plan_id, user=user, wanted=wanted)
        return render(request, "_manifest.html", user, manifest=manifest)
    data = await service.plan_page(
        session,
        deletion_context(request),
        plan_id,
        user=user,
        guard=guard,
        wanted=wanted,
        suggested=decision,
    )
    return render(request, "plan.html", user, active="plans", page=data, done=done)


@router.post("/plans/{plan_id}/decision")
async def plan_decision(
    request: Request,
    plan_id: PlanId,
    user: Deciders,
    decision: Annotated[Decision, Form()],
    manifest_hash: Annotated[str, Form(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")],
    reviewed: Annotated[bool, Form()] = False,
) -> Response:
    await verify_csrf(request, user)
    if decision is Decision.approve and not reviewed:
        raise BadRequest("tick 'I have reviewed this manifest' before approving")
    maker = request.app.state.sessionmaker
    # The decision has a transaction of its own, so that a refusal can be audited after it rolled back.
    try:
        async with maker() as session, session.begin():
            result = await decide(
                session,
                deletion_context(request),
                plan_id=plan_id,
                manifest_hash=manifest_hash,
                approver=Approver(subject=user.subject, name=user.name or user.username),
                decision=decision,
                channel="web",
            )
    except (ApprovalRefused, StaleManifest, PlanClosed, NotFound) as refused:
        await record_refusal(
            maker, plan_id=plan_id, actor=user.subject, action=f"approval.{type(refused).__name__}", why=refused.message
        )
        raise
    done = decision.value if result.counted else "repeat"
    return RedirectResponse(f"/plans/{quote(plan_id)}?done={done}", status_code=303)


@router.post("/plans/{plan_id}/items/{item_id}/exclude")
async def plan_exclude_item(
    request: Request,
    plan_id: PlanId,
    item_id: Annotated[int, Path(ge=1)],
    user: Editors,
    session: SessionDep,
    reason: Annotated[str, Form(min_length=1, max_length=500)],
) -> Response:
    await verify_csrf(request, user)
    plan = await get_plan(session, plan_id)
    await exclude_item(
        session,
        deletion_context(request),
        plan,
        item_id,
        reason=reason,
        by=Requester(subject=user.subject, name=user.name or user.username),
    )
    return RedirectResponse(f"/plans/{quote(plan_id)}?done=excluded", status_code=303)


# Disclosures and audit ---------------------------------------------------------------------------------


@router.get("/disclosures", response_class=HTMLResponse)
async def disclosures(
    request: Request,
    user: DisclosureReaders,
    guard: Guard,
    session: ReadSession,
    status: DisclosureStatus | None = None,
) -> Response:
    found = await service.demands(session, status=status, guard=guard)
    return render(
        request, "disclosures.html", user, active="disclosures", demands=found, status=status, statuses=DisclosureStatus
    )


@router.get("/disclosures/{demand_id}", response_class=HTMLResponse)
async def disclosure(
    request: Request, demand_id: DemandId, user: DisclosureReaders, guard: Guard, session: ReadSession
) -> Response:
    context = DisclosureContext(settings=settings_of(request), policy=current_policy(request))
    found = await service.demand(session, context, demand_id, guard)
    return render(request, "disclosure.html", user, active="disclosures", demand=found)


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request, user: Auditors, session: ReadSession, run: Annotated[bool, Query()] = False
) -> Response:
    check = None
    if run:
        check = await service.audit_check(session, key_path=settings_of(request).audit_signing_key_path, now=utc_now())
    if is_htmx(request) and request.headers.get("hx-target") == "verification":
        return render(request, "_verification.html", user, check=check)
    return render(request, "audit.html", user, active="audit", check=check)
