"""The MFA registration report and eDiscovery (Premium) hold status, shaped as Graph v1.0 documents them.

- `GET /reports/authenticationMethods/userRegistrationDetails[/{id}]` (AuditLog.Read.All): one record per user,
  derived from `User.mfa_methods`; `$filter` (eq/ne on the booleans and strings, startswith on the names,
  `any` on the method collections, combined with and/or/not) and `$orderby` on the names, as the resource page
  lists; paged with `$skiptoken` (page size from `Prefer: odata.maxpagesize`, default 1000).
- `GET /security/cases/ediscoveryCases` and their custodians (userSources, siteSources) and
  noncustodialDataSources (eDiscovery.Read.All or eDiscovery.ReadWrite.All), built from `Tenant.hold_cases`:
  each custodian user is a custodian with one userSource (mailbox and OneDrive), each held site a
  non-custodial siteSource. holdStatus is `applied` while the case is active unless the control plane set it.

Control plane (/_emulator/security/...): add/remove hold cases and change a user's registered methods at run
time; the held user and site ids are ground truth for tests (`held_user_ids`, `held_site_ids`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from emulator.auth import Caller, require_roles, tenant_of
from emulator.errors import GraphError
from emulator.state import HoldCase, Tenant, User, iso, utc_now

router = APIRouter()
# Test and demo controls for this area, mounted under /_emulator (no Graph prefix).
control_router = APIRouter()

read_report = require_roles("AuditLog.Read.All", workload="directory")
read_ediscovery = require_roles("eDiscovery.Read.All", "eDiscovery.ReadWrite.All")

DEFAULT_PAGE_SIZE = 1000
HOLD_STATUSES = frozenset({"notApplied", "applied", "applying", "removing", "partial"})
CASE_STATUSES = frozenset({"active", "pendingDelete", "closing", "closed", "closedWithError"})
# Graph's "never happened" timestamp, as the eDiscovery examples show for unset dates.
NEVER = "0001-01-01T00:00:00Z"

# Method names as the report lists them (userRegistrationDetails.methodsRegistered).
KNOWN_METHODS = frozenset(
    {
        "password",
        "email",
        "mobilePhone",
        "alternateMobilePhone",
        "officePhone",
        "microsoftAuthenticatorPush",
        "microsoftAuthenticatorPasswordless",
        "softwareOneTimePasscode",
        "hardwareOneTimePasscode",
        "fido2",
        "passKeyDeviceBound",
        "passKeyDeviceBoundAuthenticator",
        "windowsHelloForBusiness",
        "securityQuestion",
        "temporaryAccessPass",
        "appPassword",
    }
)
PASSWORDLESS_METHODS = frozenset(
    {
        "fido2",
        "passKeyDeviceBound",
        "passKeyDeviceBoundAuthenticator",
        "windowsHelloForBusiness",
        "microsoftAuthenticatorPasswordless",
    }
)
SSPR_METHODS = frozenset(
    {
        "email",
        "mobilePhone",
        "alternateMobilePhone",
        "officePhone",
        "microsoftAuthenticatorPush",
        "softwareOneTimePasscode",
        "hardwareOneTimePasscode",
        "securityQuestion",
    }
)
# Second-factor choices in the order the system prefers them (userDefaultAuthenticationMethod values).
SECOND_FACTORS = (
    ("push", ("microsoftAuthenticatorPush", "microsoftAuthenticatorPasswordless")),
    ("oath", ("softwareOneTimePasscode", "hardwareOneTimePasscode")),
    ("sms", ("mobilePhone",)),
    ("voiceAlternateMobile", ("alternateMobilePhone",)),
    ("voiceOffice", ("officePhone",)),
)
BOOLEAN_FIELDS = frozenset(
    {
        "isAdmin",
        "isMfaCapable",
        "isMfaRegistered",
        "isPasswordlessCapable",
        "isSsprCapable",
        "isSsprEnabled",
        "isSsprRegistered",
        "isSystemPreferredAuthenticationMethodEnabled",
    }
)
STRING_FIELDS = frozenset(
    {"id", "userPrincipalName", "userDisplayName", "userType", "userPreferredMethodForSecondaryAuthentication"}
)
STARTSWITH_FIELDS = frozenset({"userPrincipalName", "userDisplayName"})
COLLECTION_FIELDS = frozenset({"methodsRegistered", "systemPreferredAuthenticationMethods"})
ORDERABLE_FIELDS = frozenset({"userPrincipalName", "userDisplayName"})


def _base_url(request: Request) -> str:
    configured = getattr(request.app.state, "base_url", None)
    return str(configured or request.base_url).rstrip("/")


def _state(tenant: Tenant) -> dict[str, Any]:
    state: dict[str, Any] | None = tenant.extra.get("security")
    if state is None:
        state = {"hold_status": {}, "registration_updated": {}}
        tenant.extra["security"] = state
    return state


# MFA registration report -----------------------------------------------------------------------------------


def registration_details(tenant: Tenant, user: User) -> dict[str, Any]:
    """The report record for one user, derived from the methods the seed (or the control plane) gave them."""
    methods = [m for m in user.mfa_methods if m != "password"]
    member = user.user_type == "Member"
    mfa_registered = user.is_mfa_registered
    sspr_registered = any(m in SSPR_METHODS for m in methods)
    preferred = next((name for name, sources in SECOND_FACTORS if any(m in sources for m in methods)), None)
    updated: datetime = _state(tenant)["registration_updated"].get(user.id, tenant.now)
    return {
        "id": user.id,
        "userPrincipalName": user.user_principal_name,
        "userDisplayName": user.display_name,
        "userType": "member" if member else "guest",
        "isAdmin": user.is_admin,
        "isSsprRegistered": sspr_registered,
        # The emulated tenant enables self-service password reset for all members, never for guests.
        "isSsprEnabled": member,
        "isSsprCapable": member and sspr_registered,
        "isMfaRegistered": mfa_registered,
        # Every method is allowed by the emulated tenant's authentication methods policy.
        "isMfaCapable": mfa_registered,
        "isPasswordlessCapable": any(m in PASSWORDLESS_METHODS for m in methods),
        "lastUpdatedDateTime": iso(updated),
        "methodsRegistered": methods,
        "isSystemPreferredAuthenticationMethodEnabled": True,
        "systemPreferredAuthenticationMethods": [preferred] if preferred else [],
        "userPreferredMethodForSecondaryAuthentication": preferred or "",
    }


Predicate = Callable[[dict[str, Any]], bool]
FILTER_TOKEN = re.compile(
    r"\s*(?:(?P<lparen>\()|(?P<rparen>\))|(?P<comma>,)|(?P<colon>:)|(?P<string>'(?:[^']|'')*')|"
    r"(?P<word>[A-Za-z_][A-Za-z0-9_./]*))"
)


def _invalid_filter(detail: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Invalid filter clause: {detail}")


class _FilterParser:
    """OData $filter for this report: and/or/not, eq/ne, startswith(), collection/any(x: x eq '...')."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        text = text.strip()
        while position < len(text):
            match = FILTER_TOKEN.match(text, position)
            if match is None:
                raise _invalid_filter(f"unexpected text at position {position}.")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.index = 0

    def parse(self) -> Predicate:
        predicate = self._or()
        if self.index != len(self.tokens):
            raise _invalid_filter(f"unexpected '{self.tokens[self.index][1]}'.")
        return predicate

    def _peek_word(self) -> str | None:
        if self.index < len(self.tokens) and self.tokens[self.index][0] == "word":
            return self.tokens[self.index][1].lower()
        return None

    def _take(self, kind: str) -> str:
        if self.index >= len(self.tokens) or self.tokens[self.index][0] != kind:
            raise _invalid_filter(f"expected {kind}.")
        value = self.tokens[self.index][1]
        self.index += 1
        return value

    def _or(self) -> Predicate:
        left = self._and()
        while self._peek_word() == "or":
            self.index += 1
            right = self._and()
            left = (lambda a, b: lambda row: a(row) or b(row))(left, right)
        return left

    def _and(self) -> Predicate:
        left = self._unary()
        while self._peek_word() == "and":
            self.index += 1
            right = self._unary()
            left = (lambda a, b: lambda row: a(row) and b(row))(left, right)
        return left

    def _unary(self) -> Predicate:
        if self._peek_word() == "not":
            self.index += 1
            inner = self._unary()
            return lambda row: not inner(row)
        if self.index < len(self.tokens) and self.tokens[self.index][0] == "lparen":
            self.index += 1
            inner = self._or()
            self._take("rparen")
            return inner
        return self._primary()

    def _literal(self) -> Any:
        if self.index < len(self.tokens) and self.tokens[self.index][0] == "string":
            return self._take("string")[1:-1].replace("''", "'")
        word = self._take("word").lower()
        if word in ("true", "false"):
            return word == "true"
        if word == "null":
            return None
        raise _invalid_filter(f"'{word}' is not a literal.")

    def _primary(self) -> Predicate:
        name = self._take("word")
        if name.lower() == "startswith":
            self._take("lparen")
            field = self._take("word")
            self._take("comma")
            prefix = self._literal()
            self._take("rparen")
            if field not in STARTSWITH_FIELDS or not isinstance(prefix, str):
                raise _invalid_filter(f"startswith is not supported on '{field}'.")
            lowered = prefix.lower()
            return lambda row: str(row[field]).lower().startswith(lowered)
        if "/" in name:
            collection, _, function = name.partition("/")
            if collection not in COLLECTION_FIELDS or function.lower() != "any":
                raise _invalid_filter(f"'{name}' is not supported.")
            self._take("lparen")
            variable = self._take("word")
            self._take("colon")
            if self._take("word") != variable or self._peek_word() != "eq":
                raise _invalid_filter("any() supports only 'x: x eq value'.")
            self.index += 1
            wanted = self._literal()
            self._take("rparen")
            return lambda row: wanted in row[collection]
        operator = self._peek_word()
        if operator not in ("eq", "ne"):
            raise _invalid_filter(f"expected eq or ne after '{name}'.")
        self.index += 1
        value = self._literal()
        if name in BOOLEAN_FIELDS:
            if not isinstance(value, bool):
                raise _invalid_filter(f"'{name}' is compared with true or false.")
        elif name in STRING_FIELDS:
            if not isinstance(value, str):
                raise _invalid_filter(f"'{name}' is compared with a string.")
        else:
            raise _invalid_filter(f"'{name}' cannot be filtered.")
        if operator == "eq":
            return lambda row: _equal(row[name], value)
        return lambda row: not _equal(row[name], value)


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        return actual.lower() == expected.lower()
    return bool(actual == expected)


def _page_size(request: Request) -> int:
    prefer = request.headers.get("prefer", "")
    match = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", prefer, re.IGNORECASE)
    if match and int(match.group(1)) > 0:
        return min(int(match.group(1)), DEFAULT_PAGE_SIZE)
    return DEFAULT_PAGE_SIZE


def _decode_skiptoken(token: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["o"]
    except (ValueError, KeyError, TypeError):
        raise GraphError(400, "BadRequest", "The $skiptoken is invalid.") from None
    if not isinstance(offset, int) or offset < 0:
        raise GraphError(400, "BadRequest", "The $skiptoken is invalid.")
    return offset


def _encode_skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def _order(rows: list[dict[str, Any]], orderby: str) -> list[dict[str, Any]]:
    parts = orderby.split()
    if not parts or len(parts) > 2 or parts[0] not in ORDERABLE_FIELDS:
        raise GraphError(400, "BadRequest", f"Invalid $orderby: '{orderby}'.")
    direction = parts[1].lower() if len(parts) == 2 else "asc"
    if direction not in ("asc", "desc"):
        raise GraphError(400, "BadRequest", f"Invalid $orderby: '{orderby}'.")
    return sorted(rows, key=lambda row: str(row[parts[0]]).lower(), reverse=direction == "desc")


REPORT_PATH = "/reports/authenticationMethods/userRegistrationDetails"


@router.get(REPORT_PATH)
async def list_user_registration_details(request: Request, caller: Caller = Depends(read_report)) -> dict[str, Any]:
    tenant = tenant_of(request)
    query = request.query_params
    with tenant.lock:
        rows = [registration_details(tenant, user) for user in tenant.users.values()]
    filter_text = query.get("$filter")
    if filter_text:
        predicate = _FilterParser(filter_text).parse()
        rows = [row for row in rows if predicate(row)]
    orderby = query.get("$orderby") or query.get("$orderBy")
    if orderby:
        rows = _order(rows, orderby)
    offset = _decode_skiptoken(query["$skiptoken"]) if "$skiptoken" in query else 0
    size = _page_size(request)
    base = _base_url(request)
    page: dict[str, Any] = {
        "@odata.context": f"{base}/v1.0/$metadata#reports/authenticationMethods/userRegistrationDetails",
        "value": rows[offset : offset + size],
    }
    if offset + size < len(rows):
        kept = {k: v for k, v in (("$filter", filter_text), ("$orderby", orderby)) if v}
        kept["$skiptoken"] = _encode_skiptoken(offset + size)
        page["@odata.nextLink"] = f"{base}/v1.0{REPORT_PATH}?{urlencode(kept, safe='$,()')}"
    return page


@router.get(REPORT_PATH + "/{user_id}")
async def get_user_registration_details(
    user_id: str, request: Request, caller: Caller = Depends(read_report)
) -> dict[str, Any]:
    tenant = tenant_of(request)
    with tenant.lock:
        user = tenant.users.get(user_id)
        if user is None:
            raise GraphError(404, "ResourceNotFound", f"The user registration details of '{user_id}' were not found.")
        record = registration_details(tenant, user)
    context = f"{_base_url(request)}/v1.0/$metadata#reports/authenticationMethods/userRegistrationDetails/$entity"
    return {"@odata.context": context, **record}


# eDiscovery cases and holds ----------------------------------------------------------------------------------


def _digest(*parts: str) -> str:
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:32]


def hold_status(tenant: Tenant, case: HoldCase) -> str:
    override: str | None = _state(tenant)["hold_status"].get(case.id)
    if override is not None:
        return override
    return "applied" if case.status == "active" else "notApplied"


def _holds_apply(status: str) -> bool:
    # A partial hold covers some locations; the emulator treats each listed location as held.
    return status in ("applied", "applying", "partial")


def held_user_ids(tenant: Tenant) -> set[str]:
    with tenant.lock:
        return {
            user_id
            for case in tenant.hold_cases
            if _holds_apply(hold_status(tenant, case))
            for user_id in case.custodian_user_ids
        }


def held_site_ids(tenant: Tenant) -> set[str]:
    with tenant.lock:
        return {
            site_id
            for case in tenant.hold_cases
            if _holds_apply(hold_status(tenant, case))
            for site_id in case.site_ids
        }


def _identity_set(name: str) -> dict[str, Any]:
    return {"application": None, "user": {"id": None, "displayName": name}}


def _tenant_prefix(tenant: Tenant) -> str:
    return tenant.domain.split(".", 1)[0]


def _onedrive_url(tenant: Tenant, user: User) -> str:
    drive = tenant.files.drives.get(user.drive_id or "")
    web_url = getattr(drive, "web_url", None)
    if isinstance(web_url, str):
        return web_url
    personal = re.sub(r"[@.]", "_", user.user_principal_name.lower())
    return f"https://{_tenant_prefix(tenant)}-my.sharepoint.com/personal/{personal}/"


def _site(tenant: Tenant, site_id: str) -> tuple[str, str]:
    """A held site's display name and web URL, from the file store when it knows the site."""
    site = tenant.files.sites.get(site_id)
    name = getattr(site, "display_name", None) or getattr(site, "name", None)
    web_url = getattr(site, "web_url", None)
    return (
        name if isinstance(name, str) else site_id,
        web_url if isinstance(web_url, str) else f"https://{_tenant_prefix(tenant)}.sharepoint.com/sites/{site_id}",
    )


def _case(tenant: Tenant, case_id: str) -> HoldCase:
    case = next((c for c in tenant.hold_cases if c.id == case_id), None)
    if case is None:
        raise GraphError(404, "ResourceNotFound", f"The case '{case_id}' was not found.")
    return case


def _render_case(case: HoldCase) -> dict[str, Any]:
    closed = case.status in ("closed", "closedWithError")
    return {
        "id": case.id,
        "displayName": case.display_name,
        "description": "",
        "status": case.status,
        "externalId": "",
        "createdDateTime": iso(case.created),
        "lastModifiedDateTime": iso(case.created),
        "closedDateTime": iso(case.created) if closed else None,
        "lastModifiedBy": _identity_set("eDiscovery Manager"),
        "closedBy": _identity_set("eDiscovery Manager" if closed else ""),
    }


def _custodians(tenant: Tenant, case: HoldCase) -> list[tuple[str, User]]:
    return [
        (_digest(case.id, user_id), user)
        for user_id in case.custodian_user_ids
        if (user := tenant.users.get(user_id)) is not None
    ]


def _custodian(tenant: Tenant, case: HoldCase, custodian_id: str) -> User:
    user = next((u for cid, u in _custodians(tenant, case) if cid == custodian_id), None)
    if user is None:
        raise GraphError(404, "ResourceNotFound", f"The custodian '{custodian_id}' was not found.")
    return user


def _render_custodian(tenant: Tenant, case: HoldCase, custodian_id: str, user: User) -> dict[str, Any]:
    active = case.status == "active"
    return {
        "id": custodian_id,
        "displayName": user.display_name,
        "email": user.mail,
        "status": "active" if active else "released",
        "holdStatus": hold_status(tenant, case),
        "createdDateTime": iso(case.created),
        "lastModifiedDateTime": iso(case.created),
        "releasedDateTime": None if active else iso(case.created),
        "acknowledgedDateTime": NEVER,
    }


def _render_user_source(tenant: Tenant, case: HoldCase, user: User) -> dict[str, Any]:
    return {
        "id": str(uuid.UUID(_digest(case.id, user.id, "userSource"))),
        "displayName": user.display_name,
        "email": user.mail,
        "includedSources": "mailbox,site",
        "siteWebUrl": _onedrive_url(tenant, user),
        "holdStatus": hold_status(tenant, case),
        "createdDateTime": iso(case.created),
        "createdBy": _identity_set(""),
    }


def _render_site_source(base: str, tenant: Tenant, case: HoldCase, site_id: str) -> dict[str, Any]:
    name, web_url = _site(tenant, site_id)
    return {
        "@odata.type": "#microsoft.graph.security.siteSource",
        "@odata.id": f"{base}/v1.0/sites/{site_id}",
        "id": site_id,
        "displayName": name,
        "holdStatus": hold_status(tenant, case),
        "createdDateTime": iso(case.created),
        "createdBy": _identity_set(""),
        "site": {"id": site_id, "webUrl": web_url, "createdDateTime": iso(case.created)},
    }


def _render_noncustodial(base: str, tenant: Tenant, case: HoldCase, site_id: str, *, expand: bool) -> dict[str, Any]:
    name, _ = _site(tenant, site_id)
    source: dict[str, Any] = {
        "id": _digest(case.id, site_id),
        "displayName": name,
        "status": "active" if case.status == "active" else "released",
        "holdStatus": hold_status(tenant, case),
        "createdDateTime": iso(case.created),
        "lastModifiedDateTime": iso(case.created),
        "releasedDateTime": NEVER,
    }
    if expand:
        source["dataSource"] = _render_site_source(base, tenant, case, site_id)
    return source


def _noncustodial_site(case: HoldCase, source_id: str) -> str:
    site_id = next((s for s in case.site_ids if _digest(case.id, s) == source_id), None)
    if site_id is None:
        raise GraphError(404, "ResourceNotFound", f"The data source '{source_id}' was not found.")
    return site_id


def _expands_data_source(request: Request) -> bool:
    expand = request.query_params.get("$expand", "")
    return "datasource" in {part.strip().lower() for part in expand.split(",")}


CASES = "/security/cases/ediscoveryCases"


def _context(request: Request, fragment: str) -> str:
    return f"{_base_url(request)}/v1.0/$metadata#{fragment}"


@router.get(CASES)
async def list_ediscovery_cases(request: Request, caller: Caller = Depends(read_ediscovery)) -> dict[str, Any]:
    tenant = tenant_of(request)
    with tenant.lock:
        cases = [_render_case(case) for case in tenant.hold_cases]
    return {"@odata.context": _context(request, "security/cases/ediscoveryCases"), "value": cases}


@router.get(CASES + "/{case_id}")
async def get_ediscovery_case(
    case_id: str, request: Request, caller: Caller = Depends(read_ediscovery)
) -> dict[str, Any]:
    tenant = tenant_of(request)
    with tenant.lock:
        rendered = _render_case(_case(tenant, case_id))
    return {"@odata.context": _context(request, "security/cases/ediscoveryCases/$entity"), **rendered}


@router.get(CASES + "/{case_id}/custodians")
async def list_custodians(case_id: str, request: Request, caller: Caller = Depends(read_ediscovery)) -> dict[str, Any]:
    tenant = tenant_of(request)
    with tenant.lock:
        case = _case(tenant, case_id)
        value = [_render_custodian(tenant, case, cid, user) for cid, user in _custodians(tenant, case)]
    return {
        "@odata.context": _context(request, f"security/cases/ediscoveryCases('{case_id}')/custodians"),
        "value": value,
    }


@router.get(CASES + "/{case_id}/custodians/{custodian_id}")
async def get_custodian(
    case_id: str, custodian_id: str, request: Request, caller: Caller = Depends(read_ediscovery)
) -> dict[str, Any]:
    tenant = tenant_of(request)
    with tenant.lock:
        case = _case(tenant, case_id)
        rendered = _render_custodian(tenant, case, custodian_id, _custodian(tenant, case, custodian_id))
    context = _context(request, f"security/cases/ediscoveryCases('{case_id}')/custodians/$entity")
    return {"@odata.context": context, **rendered}


@router.get(CASES + "/{case_id}/custodians/{custodian_id}/userSources")
async def list_user_sources(
    case_id: str, custodian_id: str, request: Request, caller: Caller = Depends(read_ediscovery)
) -> dict[str, Any]:
    tenant = tenant_of(request)
    with tenant.lock:
        case = _case(tenant, case_id)
        value = [_render_user_source(tenant, case, _custodian(tenant, case, custodian_id))]
    fragment = f"security/cases/ediscoveryCases('{case_id}')/custodians('{custodian_id}')/userSources"
    return {"@odata.context": _context(request, fragment), "value": value}


@router.get(CASES + "/{case_id}/custodians/{custodian_id}/siteSources")
async def list_site_sources(
    case_id: str, custodian_id: str, request: Request, caller: Caller = Depends(read_ediscovery)
) -> dict[str, Any]:
    tenant = tenant_of(request)
    with tenant.lock:
        _custodian(tenant, _case(tenant, case_id), custodian_id)
    # Emulated custodians hold their mailbox and OneDrive (userSources); held sites are non-custodial sources.
    fragment = f"security/cases/ediscoveryCases('{case_id}')/custodians('{custodian_id}')/siteSources"
    return {"@odata.context": _context(request, fragment), "value": []}


@router.get(CASES + "/{case_id}/noncustodialDataSources")
async def list_noncustodial_sources(
    case_id: str, request: Request, caller: Caller = Depends(read_ediscovery)
) -> dict[str, Any]:
    tenant = tenant_of(request)
    expand = _expands_data_source(request)
    base = _base_url(request)
    with tenant.lock:
        case = _case(tenant, case_id)
        value = [_render_noncustodial(base, tenant, case, site_id, expand=expand) for site_id in case.site_ids]
    fragment = f"security/cases/ediscoveryCases('{case_id}')/noncustodialDataSources"
    return {"@odata.context": _context(request, fragment), "value": value}


@router.get(CASES + "/{case_id}/noncustodialDataSources/{source_id}")
async def get_noncustodial_source(
    case_id: str, source_id: str, request: Request, caller: Caller = Depends(read_ediscovery)
) -> dict[str, Any]:
    tenant = tenant_of(request)
    expand = _expands_data_source(request)
    with tenant.lock:
        case = _case(tenant, case_id)
        site_id = _noncustodial_site(case, source_id)
        rendered = _render_noncustodial(_base_url(request), tenant, case, site_id, expand=expand)
    fragment = f"security/cases/ediscoveryCases('{case_id}')/noncustodialDataSources/$entity"
    return {"@odata.context": _context(request, fragment), **rendered}


@router.get(CASES + "/{case_id}/noncustodialDataSources/{source_id}/dataSource")
async def get_noncustodial_data_source(
    case_id: str, source_id: str, request: Request, caller: Caller = Depends(read_ediscovery)
) -> dict[str, Any]:
    tenant = tenant_of(request)
    with tenant.lock:
        case = _case(tenant, case_id)
        rendered = _render_site_source(_base_url(request), tenant, case, _noncustodial_site(case, source_id))
    fragment = f"security/cases/ediscoveryCases('{case_id}')/noncustodialDataSources('{source_id}')/dataSource/$entity"
    return {"@odata.context": _context(request, fragment), **rendered}


# Control plane -----------------------------------------------------------------------------------------------


async def _control_json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(400, "expected a JSON object") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "expected a JSON object")
    return body


def _string_list(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise HTTPException(400, f"{key} must be a list of ids")
    return list(dict.fromkeys(value))


def _public_case(tenant: Tenant, case: HoldCase) -> dict[str, Any]:
    return {
        "id": case.id,
        "displayName": case.display_name,
        "status": case.status,
        "holdStatus": hold_status(tenant, case),
        "custodianUserIds": list(case.custodian_user_ids),
        "siteIds": list(case.site_ids),
    }


@control_router.get("/security/holds")
async def control_list_holds(request: Request) -> dict[str, Any]:
    tenant = tenant_of(request)
    with tenant.lock:
        cases = [_public_case(tenant, case) for case in tenant.hold_cases]
    return {"value": cases, "heldUserIds": sorted(held_user_ids(tenant)), "heldSiteIds": sorted(held_site_ids(tenant))}


@control_router.post("/security/holds", status_code=201)
async def control_add_hold(request: Request) -> dict[str, Any]:
    tenant = tenant_of(request)
    body = await _control_json(request)
    display_name = body.get("displayName", "Legal hold")
    status = body.get("status", "active")
    status_override = body.get("holdStatus")
    if not isinstance(display_name, str) or not display_name.strip():
        raise HTTPException(400, "displayName must be a non-empty string")
    if status not in CASE_STATUSES:
        raise HTTPException(400, f"status must be one of {', '.join(sorted(CASE_STATUSES))}")
    if status_override is not None and status_override not in HOLD_STATUSES:
        raise HTTPException(400, f"holdStatus must be one of {', '.join(sorted(HOLD_STATUSES))}")
    custodians = _string_list(body, "custodianUserIds")
    sites = _string_list(body, "siteIds")
    with tenant.lock:
        unknown = [u for u in custodians if tenant.users.get(u) is None]
        if unknown:
            raise HTTPException(400, f"unknown custodian user ids: {', '.join(unknown)}")
        case = HoldCase(
            id=str(uuid.uuid4()),
            display_name=display_name,
            status=status,
            custodian_user_ids=custodians,
            site_ids=sites,
            created=utc_now(),
        )
        tenant.hold_cases.append(case)
        if status_override is not None:
            _state(tenant)["hold_status"][case.id] = status_override
        return _public_case(tenant, case)


@control_router.delete("/security/holds/{case_id}", status_code=204)
async def control_remove_hold(case_id: str, request: Request) -> Response:
    tenant = tenant_of(request)
    with tenant.lock:
        case = next((c for c in tenant.hold_cases if c.id == case_id), None)
        if case is None:
            raise HTTPException(404, "no such hold case")
        tenant.hold_cases.remove(case)
        _state(tenant)["hold_status"].pop(case_id, None)
    return Response(status_code=204)


@control_router.put("/security/users/{user_id}/authenticationMethods")
async def control_set_methods(user_id: str, request: Request) -> JSONResponse:
    tenant = tenant_of(request)
    body = await _control_json(request)
    methods = body.get("methods")
    if not isinstance(methods, list) or not all(isinstance(m, str) and m in KNOWN_METHODS for m in methods):
        raise HTTPException(400, f"methods must be a list drawn from {', '.join(sorted(KNOWN_METHODS))}")
    with tenant.lock:
        user = tenant.users.get(user_id)
        if user is None:
            raise HTTPException(404, "no such user")
        user.mfa_methods = list(dict.fromkeys(methods))
        _state(tenant)["registration_updated"][user.id] = utc_now()
        return JSONResponse(registration_details(tenant, user))
