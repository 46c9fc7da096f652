"""GET /users and /users/{id | userPrincipalName}: property sets, paging, filters and the directory's errors."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from emulator.state import Tenant

DEFAULT_KEYS = {
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
}


async def test_list_returns_the_documented_default_property_set(graph: httpx.AsyncClient, tenant: Tenant):
    response = await graph.get("/users")
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"] == "https://emulator.test/v1.0/$metadata#users"
    assert "@odata.nextLink" not in body  # the default page (100) holds this small tenant
    assert {u["id"] for u in body["value"]} == set(tenant.users)
    for user in body["value"]:
        assert set(user) == DEFAULT_KEYS  # userType, accountEnabled, createdDateTime only with $select


async def test_select_only_properties_come_back_when_selected(graph: httpx.AsyncClient, tenant: Tenant):
    response = await graph.get("/users", params={"$select": "id,userType,accountEnabled,createdDateTime"})
    body = response.json()
    assert body["@odata.context"].endswith("#users(id,userType,accountEnabled,createdDateTime)")
    by_id = {u["id"]: u for u in body["value"]}
    for user_id, user in tenant.users.items():
        assert set(by_id[user_id]) == {"id", "userType", "accountEnabled", "createdDateTime"}
        assert by_id[user_id]["userType"] == user.user_type
        assert by_id[user_id]["accountEnabled"] is user.account_enabled
        assert by_id[user_id]["createdDateTime"].endswith("Z")


async def test_paging_by_skiptoken_carries_select_and_filter(graph: httpx.AsyncClient, tenant: Tenant):
    seen: list[str] = []
    url: str | None = "/users?$top=2&$select=id,mail&$filter=userType eq 'Member'"
    pages = 0
    while url:
        response = await graph.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        assert len(body["value"]) <= 2
        for user in body["value"]:
            assert set(user) == {"id", "mail"}
            seen.append(user["id"])
        url = body.get("@odata.nextLink")
        if url:
            query = parse_qs(urlsplit(url).query)
            assert url.startswith("https://emulator.test/v1.0/users?")
            assert "$skiptoken" in query
            assert "$skip" not in query
            assert query["$select"] == ["id,mail"]
            assert query["$filter"] == ["userType eq 'Member'"]
    members = {u.id for u in tenant.users.values() if u.user_type == "Member"}
    assert sorted(seen) == sorted(members)  # every member once, no duplicates
    assert pages == -(-len(members) // 2)


async def test_filters_on_user_type_mail_and_account_enabled(graph: httpx.AsyncClient, tenant: Tenant):
    guests = await graph.get("/users", params={"$filter": "userType eq 'Guest'", "$select": "id,userType"})
    assert {u["id"] for u in guests.json()["value"]} == {u.id for u in tenant.users.values() if u.user_type == "Guest"}
    assert guests.json()["value"]

    someone = tenant.staff[1]
    by_mail = await graph.get("/users", params={"$filter": f"mail eq '{someone.mail.upper()}'"})
    assert [u["id"] for u in by_mail.json()["value"]] == [someone.id]  # directory compares case-insensitively

    someone.account_enabled = False
    disabled = await graph.get("/users", params={"$filter": "accountEnabled eq false and userType eq 'Member'"})
    assert [u["id"] for u in disabled.json()["value"]] == [someone.id]


async def test_unsupported_or_malformed_queries_are_400(graph: httpx.AsyncClient):
    unsupported = await graph.get("/users", params={"$filter": "jobTitle eq 'Sales'"})
    assert unsupported.status_code == 400
    assert unsupported.json()["error"]["code"] == "Request_UnsupportedQuery"

    malformed = await graph.get("/users", params={"$filter": "mail eq"})
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "BadRequest"

    skip = await graph.get("/users", params={"$skip": "2"})
    assert skip.status_code == 400
    assert skip.json()["error"]["message"] == "'$skip' is not supported by the service."

    for top in ("0", "1000", "ten"):
        too_big = await graph.get("/users", params={"$top": top})
        assert too_big.status_code == 400, top
        assert too_big.json()["error"]["code"] == "Request_BadRequest"

    unknown = await graph.get("/users", params={"$select": "id,shoeSize"})
    assert unknown.status_code == 400
    assert "shoeSize" in unknown.json()["error"]["message"]

    bad_token = await graph.get("/users", params={"$skiptoken": "not-a-token"})
    assert bad_token.status_code == 400


async def test_count_needs_consistency_level(graph: httpx.AsyncClient, tenant: Tenant):
    without = await graph.get("/users", params={"$count": "true"})
    assert "@odata.count" not in without.json()
    counted = await graph.get("/users", params={"$count": "true"}, headers={"ConsistencyLevel": "eventual"})
    assert counted.json()["@odata.count"] == len(tenant.users)


async def test_orderby_display_name(graph: httpx.AsyncClient, tenant: Tenant):
    response = await graph.get("/users", params={"$orderby": "displayName desc", "$select": "displayName"})
    names = [u["displayName"] for u in response.json()["value"]]
    assert names == sorted((u.display_name for u in tenant.users.values()), key=str.lower, reverse=True)
    rejected = await graph.get("/users", params={"$orderby": "jobTitle"})
    assert rejected.status_code == 400


async def test_get_user_by_id_or_upn(graph: httpx.AsyncClient, tenant: Tenant):
    member = tenant.staff[0]
    by_id = await graph.get(f"/users/{member.id}")
    assert by_id.status_code == 200
    assert by_id.json()["@odata.context"] == "https://emulator.test/v1.0/$metadata#users/$entity"
    assert set(by_id.json()) == DEFAULT_KEYS | {"@odata.context"}
    by_upn = await graph.get(f"/users/{member.user_principal_name.upper()}", params={"$select": "id,userType"})
    assert by_upn.json() == {
        "@odata.context": "https://emulator.test/v1.0/$metadata#users(id,userType)/$entity",
        "id": member.id,
        "userType": "Member",
    }
    guest = next(u for u in tenant.users.values() if u.user_type == "Guest")
    by_guest_upn = await graph.get(f"/users/{quote(guest.user_principal_name, safe='@')}")
    assert by_guest_upn.json()["id"] == guest.id


async def test_unknown_user_is_request_resource_not_found(graph: httpx.AsyncClient):
    response = await graph.get("/users/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "Request_ResourceNotFound"
    assert error["message"] == (
        "Resource '00000000-0000-0000-0000-000000000000' does not exist or one of its queried "
        "reference-property objects are not present."
    )
    assert set(error["innerError"]) >= {"date", "request-id", "client-request-id"}


async def test_permissions(graph: httpx.AsyncClient, tenant: Tenant, mint: Callable[..., str]):
    denied = await graph.get("/users", headers={"Authorization": f"Bearer {mint(roles=['Mail.Read'])}"})
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "Authorization_RequestDenied"
    reader = mint(client_id=tenant.extra["reader_app_id"])
    allowed = await graph.get("/users", headers={"Authorization": f"Bearer {reader}"})
    assert allowed.status_code == 200
    directory = await graph.get("/users", headers={"Authorization": f"Bearer {mint(roles=['Directory.Read.All'])}"})
    assert directory.status_code == 200
    anonymous = await graph.get("/users", headers={"Authorization": ""})
    assert anonymous.status_code == 401
