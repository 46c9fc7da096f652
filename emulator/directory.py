"""Graph v1.0 users: `GET /users` and `GET /users/{id | userPrincipalName}` (api-reference/v1.0/api/user-list.md).

By default only the documented basic property set comes back; properties such as userType, accountEnabled and
createdDateTime need `$select`. Paging is by `$skiptoken` in an absolute @odata.nextLink (`$skip` is not supported),
`$top` is 1-999 with a default page of 100, and `$filter` understands the `eq` comparisons Steward uses. Errors use
the directory's own codes (Request_ResourceNotFound, Request_UnsupportedQuery, Authorization_RequestDenied).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from emulator.auth import Caller, require_roles, tenant_of
from emulator.errors import GraphError
from emulator.state import User, iso

router = APIRouter()
# Test and demo controls for this area, mounted under /_emulator (no Graph prefix).
control_router = APIRouter()

read_users = require_roles(
    "User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All", workload="directory"
)

DEFAULT_PAGE = 100
LINK_SAFE = ",'()"
MAX_PAGE = 999
USER_TYPE = "Microsoft.DirectoryServices.User"
DEFAULT_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)


def _mail_nickname(user: User) -> str:
    return user.user_principal_name.split("@", 1)[0]


# Every property this tenant can answer; those outside DEFAULT_PROPERTIES come back only when selected.
PROPERTIES: dict[str, Callable[[User], Any]] = {
    "id": lambda u: u.id,
    "businessPhones": lambda u: [],
    "displayName": lambda u: u.display_name,
    "givenName": lambda u: u.given_name,
    "jobTitle": lambda u: u.job_title,
    "mail": lambda u: u.mail,
    "mobilePhone": lambda u: None,
    "officeLocation": lambda u: None,
    "preferredLanguage": lambda u: "vi-VN" if u.user_type == "Member" else None,
    "surname": lambda u: u.surname,
    "userPrincipalName": lambda u: u.user_principal_name,
    "userType": lambda u: u.user_type,
    "accountEnabled": lambda u: u.account_enabled,
    "createdDateTime": lambda u: iso(u.created),
    "mailNickname": _mail_nickname,
    "otherMails": lambda u: [],
    "proxyAddresses": lambda u: [f"SMTP:{u.mail}"] if u.user_type == "Member" else [],
    "creationType": lambda u: "Invitation" if u.user_type == "Guest" else None,
    "externalUserState": lambda u: "Accepted" if u.user_type == "Guest" else None,
    "companyName": lambda u: None,
    "department": lambda u: None,
    "usageLocation": lambda u: "VN" if u.user_type == "Member" else None,
}
_BY_LOWER = {name.lower(): name for name in PROPERTIES}

# $filter: `<property> eq <literal>` clauses joined by `and`, on the properties Steward filters by.
_CLAUSE = re.compile(r"^\s*(\w+)\s+eq\s+('(?:[^']|'')*'|true|false)\s*$", re.IGNORECASE)
FILTERABLE_STRINGS = {"usertype": "userType", "mail": "mail", "userprincipalname": "userPrincipalName", "id": "id"}
ORDERABLE = {"displayname": "displayName", "userprincipalname": "userPrincipalName"}


def _base_url(request: Request) -> str:
    configured = getattr(request.app.state, "base_url", None)
    return str(configured or request.base_url).rstrip("/")


def _options(request: Request) -> dict[str, str]:
    return {key.lower().removeprefix("$"): value for key, value in request.query_params.multi_items()}


def _select(raw: str | None) -> tuple[str, ...] | None:
    if raw is None or not raw.strip():
        return None
    selected: list[str] = []
    for name in (part.strip() for part in raw.split(",")):
        canonical = _BY_LOWER.get(name.lower())
        if canonical is None:
            raise GraphError(
                400, "Request_BadRequest", f"Could not find a property named '{name}' on type '{USER_TYPE}'."
            )
        if canonical not in selected:
            selected.append(canonical)
    return tuple(selected)


def _render(user: User, select: tuple[str, ...] | None) -> dict[str, Any]:
    return {name: PROPERTIES[name](user) for name in select or DEFAULT_PROPERTIES}


def _enabled_is(wanted: bool) -> Callable[[User], bool]:
    return lambda user: user.account_enabled is wanted


def _equals(name: str, value: str) -> Callable[[User], bool]:
    wanted = value.lower()  # directory string comparisons are case-insensitive
    return lambda user: str(PROPERTIES[name](user) or "").lower() == wanted


def _filter(raw: str | None) -> Callable[[User], bool] | None:
    if raw is None or not raw.strip():
        return None
    tests: list[Callable[[User], bool]] = []
    for clause in re.split(r"\s+and\s+", raw.strip(), flags=re.IGNORECASE):
        match = _CLAUSE.match(clause)
        if match is None:
            raise GraphError(400, "BadRequest", f"Invalid filter clause: {clause.strip()}")
        prop, literal = match.group(1).lower(), match.group(2)
        if prop == "accountenabled" and literal.lower() in ("true", "false"):
            tests.append(_enabled_is(literal.lower() == "true"))
        elif prop in FILTERABLE_STRINGS and literal.startswith("'"):
            tests.append(_equals(FILTERABLE_STRINGS[prop], literal[1:-1].replace("''", "'")))
        else:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                f"Unsupported or invalid query filter clause specified for property '{match.group(1)}' of resource "
                "'User'.",
            )
    return lambda u: all(test(u) for test in tests)


def _page_token(last_id: str) -> str:
    return base64.urlsafe_b64encode(f"users:{last_id}".encode()).decode()


def _after(token: str) -> str:
    try:
        decoded = base64.urlsafe_b64decode(token.encode("ascii")).decode()
    except (binascii.Error, ValueError, UnicodeError):
        decoded = ""
    if not decoded.startswith("users:"):
        raise GraphError(400, "Request_BadRequest", "Invalid paging token.")
    return decoded.removeprefix("users:")


@router.get("/users")
async def list_users(request: Request, caller: Caller = Depends(read_users)) -> JSONResponse:
    tenant = tenant_of(request)
    options = _options(request)
    if "skip" in options:
        raise GraphError(400, "Request_BadRequest", "'$skip' is not supported by the service.")
    raw_top = options.get("top")
    if raw_top is not None and (not raw_top.isdigit() or not 1 <= int(raw_top) <= MAX_PAGE):
        raise GraphError(
            400, "Request_BadRequest", f"Invalid page size specified: '{raw_top}'. Must be between 1 and 999 inclusive."
        )
    top = int(raw_top) if raw_top is not None else DEFAULT_PAGE
    select = _select(options.get("select"))
    matches = _filter(options.get("filter"))
    order = options.get("orderby")
    with tenant.lock:
        users = sorted(tenant.users.values(), key=lambda u: u.id)
    if matches is not None:
        users = [u for u in users if matches(u)]
    if order:
        words = order.split()
        key = ORDERABLE.get(words[0].lower()) if words else None
        if key is None or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise GraphError(400, "Request_UnsupportedQuery", f"Unsupported sort property '{order}'.")
        users.sort(key=lambda u: (str(PROPERTIES[key](u)).lower(), u.id), reverse=words[-1].lower() == "desc")
    start = 0
    if "skiptoken" in options:
        last_id = _after(options["skiptoken"])
        start = next((i + 1 for i, u in enumerate(users) if u.id == last_id), len(users))
    page = users[start : start + top]
    base = _base_url(request)
    context = f"{base}/v1.0/$metadata#users" + (f"({','.join(select)})" if select else "")
    body: dict[str, Any] = {"@odata.context": context}
    if options.get("count", "").lower() == "true" and request.headers.get("consistencylevel", "").lower() == "eventual":
        body["@odata.count"] = len(users)
    body["value"] = [_render(u, select) for u in page]
    if start + top < len(users):
        carried = {"$select": options.get("select"), "$filter": options.get("filter"), "$orderby": order}
        query = "&".join(f"{k}={quote(v, safe=LINK_SAFE)}" for k, v in carried.items() if v)
        token = _page_token(page[-1].id)
        body["@odata.nextLink"] = f"{base}/v1.0/users?{query + '&' if query else ''}$top={top}&$skiptoken={token}"
    return JSONResponse(body)


@router.get("/users/{user_key}")
async def get_user(request: Request, user_key: str, caller: Caller = Depends(read_users)) -> JSONResponse:
    tenant = tenant_of(request)
    select = _select(_options(request).get("select"))
    lowered = user_key.lower()
    with tenant.lock:
        user = tenant.users.get(user_key) or next(
            (u for u in tenant.users.values() if u.user_principal_name.lower() == lowered), None
        )
    if user is None:
        raise GraphError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{user_key}' does not exist or one of its queried reference-property objects are not present.",
        )
    context = f"{_base_url(request)}/v1.0/$metadata#users" + (f"({','.join(select)})" if select else "") + "/$entity"
    return JSONResponse({"@odata.context": context, **_render(user, select)})
