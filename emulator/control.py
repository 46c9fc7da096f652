"""The emulator's control plane (/_emulator): health, state counts, the request log, limits, faults, keys, billing.

Not part of Microsoft's contract: tests and the demo drive the emulated tenant through it. Bad input gets a 400
with the reasons, in the same {"error": "invalid_request", "error_description": ...} shape as body validation.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from emulator.auth import tenant_of
from emulator.identity import public_base_url
from emulator.limits import PROFILES, FaultSpec, limits_of
from emulator.state import RequestRecord

router = APIRouter(prefix="/_emulator")

MAX_PAGE = 1_000


def _bad_request(reason: str) -> JSONResponse:
    return JSONResponse({"error": "invalid_request", "error_description": reason}, status_code=400)


def _reasons(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors())


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    return {"status": "ok", "tenantId": tenant_of(request).tenant_id}


@router.get("/state")
async def state(request: Request) -> dict[str, Any]:
    tenant = tenant_of(request)
    limits = limits_of(request.app)
    with tenant.lock:
        users = list(tenant.users.values())
        logged = len(tenant.request_log)
    return {
        "tenantId": tenant.tenant_id,
        "domain": tenant.domain,
        "seed": tenant.seed,
        "counts": {
            "users": len(users),
            "staff": sum(1 for u in users if u.user_type == "Member"),
            "guests": sum(1 for u in users if u.user_type == "Guest"),
            "customers": len(tenant.customers),
            "apps": len(tenant.apps),
            "sensitivityLabels": len(tenant.labels),
            "retentionLabels": len(tenant.retention_labels),
            "holdCases": len(tenant.hold_cases),
            "mailboxes": len(tenant.mail.mailboxes),
            "drives": len(tenant.files.drives),
            "sites": len(tenant.files.sites),
            "signingKeys": len(tenant.keys.keys),
            "requestsLogged": logged,
            "faults": len(limits.faults),
        },
        "profile": limits.profile.name,
        "meteredBillingEnabled": tenant.metered_billing_enabled,
        "limits": limits.usage(),
    }


# Request log -------------------------------------------------------------------------------------------


def _record_json(record: RequestRecord) -> dict[str, Any]:
    return {
        "seq": record.seq,
        "at": record.at,
        "method": record.method,
        "path": record.path,
        "query": record.query,
        "status": record.status,
        "clientId": record.client_id,
        "mailbox": record.mailbox,
        "batchId": record.batch_id,
        "requestId": record.request_id,
        "durationMs": record.duration_ms,
    }


@router.get("/requests")
async def list_requests(
    request: Request,
    path_prefix: str | None = Query(None, max_length=1_000),
    method: str | None = Query(None, max_length=10),
    mailbox: str | None = Query(None, max_length=320),
    client_id: str | None = Query(None, max_length=100),
    status: int | None = Query(None, ge=0, le=599),
    since: int = Query(0, ge=0, description="only records with a larger seq"),
    top: int = Query(100, ge=1, le=MAX_PAGE),
) -> dict[str, Any]:
    """The request log, oldest first, filtered; page on with `nextLink` (which carries `since`)."""
    tenant = tenant_of(request)
    mailbox_id = None
    if mailbox is not None:
        user = tenant.user(mailbox)
        mailbox_id = user.id if user is not None else mailbox.lower()
    wanted_method = method.upper() if method else None
    page: list[dict[str, Any]] = []
    more = False
    with tenant.lock:
        for record in tenant.request_log:
            if record.seq <= since:
                continue
            if path_prefix is not None and not record.path.startswith(path_prefix):
                continue
            if wanted_method is not None and record.method != wanted_method:
                continue
            if mailbox_id is not None and record.mailbox != mailbox_id:
                continue
            if client_id is not None and record.client_id != client_id:
                continue
            if status is not None and record.status != status:
                continue
            if len(page) == top:
                more = True
                break
            page.append(_record_json(record))
    body: dict[str, Any] = {"value": page}
    if more:
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "since"]
        query.append(("since", str(page[-1]["seq"])))
        body["nextLink"] = f"{public_base_url(request)}{request.url.path}?{urlencode(query)}"
    return body


@router.delete("/requests", status_code=204)
async def clear_requests(request: Request) -> Response:
    tenant = tenant_of(request)
    with tenant.lock:
        tenant.request_log.clear()
    return Response(status_code=204)


# Profile -----------------------------------------------------------------------------------------------


@router.get("/profile")
async def get_profile(request: Request) -> dict[str, Any]:
    return {**limits_of(request.app).profile.model_dump(), "presets": sorted(PROFILES)}


@router.put("/profile", response_model=None)
async def put_profile(request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any] | JSONResponse:
    """Select a preset with {"profile": name}, change fields of the current one, or both."""
    limits = limits_of(request.app)
    overrides = dict(body)
    preset = overrides.pop("profile", None)
    if preset is not None and not isinstance(preset, str):
        return _bad_request("profile: must be the name of a preset")
    try:
        profile = limits.profile_with(preset, overrides)
    except ValidationError as exc:
        return _bad_request(_reasons(exc))
    except ValueError as exc:
        return _bad_request(str(exc))
    limits.profile = profile
    return {**profile.model_dump(), "presets": sorted(PROFILES)}


# Faults ------------------------------------------------------------------------------------------------


@router.post("/faults", status_code=201)
async def add_fault(request: Request, spec: FaultSpec) -> dict[str, Any]:
    return limits_of(request.app).add_fault(spec).as_dict()


@router.get("/faults")
async def list_faults(request: Request) -> dict[str, Any]:
    return {"value": [fault.as_dict() for fault in limits_of(request.app).faults]}


@router.delete("/faults", status_code=204)
async def clear_faults(request: Request) -> Response:
    limits_of(request.app).clear_faults()
    return Response(status_code=204)


@router.delete("/faults/{fault_id}", status_code=204, response_model=None)
async def delete_fault(request: Request, fault_id: str) -> Response:
    if not limits_of(request.app).remove_fault(fault_id):
        return JSONResponse({"error": "not_found", "error_description": f"No fault '{fault_id}'."}, status_code=404)
    return Response(status_code=204)


# Keys and billing --------------------------------------------------------------------------------------


@router.post("/keys/rotate")
async def rotate_keys(request: Request) -> dict[str, Any]:
    """A new signing key signs from now on; the previous one stays published so issued tokens still verify."""
    tenant = tenant_of(request)
    with tenant.lock:
        current = tenant.keys.rotate()
        kids = [key.kid for key in tenant.keys.keys]
    return {"kid": current.kid, "published": kids}


class BillingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metered: bool


@router.put("/billing")
async def put_billing(request: Request, update: BillingUpdate) -> dict[str, Any]:
    tenant = tenant_of(request)
    tenant.metered_billing_enabled = update.metered
    return {"metered": tenant.metered_billing_enabled}
