"""The emulated Teams peers: Workflows webhook, Bot Framework issuer and token, Bot Connector, and card clicks.

In-process tests drive the routes through ASGI. The click tests run the emulator over real HTTPS and a bot
endpoint over real HTTPS (its own CA), which checks the channel's JWT against the emulator's published metadata
and keys exactly as the Bot Framework documents; the last test puts Microsoft's Teams SDK behind that endpoint.
"""

from __future__ import annotations

import socket
import ssl
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
import trustme
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from emulator.app import create_app
from emulator.server import EmulatorServer
from emulator.state import Tenant, User
from emulator.teams import conversation_activities, teams_config, teams_state, workflow_posts
from emulator.tokens import graph_issuer

BASE = "https://emulator.test"
ADAPTIVE = "application/vnd.microsoft.card.adaptive"
BOT_AUDIENCE = "https://api.botframework.com"
FORGERIES = ["no_token", "wrong_key", "wrong_audience", "wrong_issuer", "expired", "wrong_service_url"]


def approval_card(
    request_id: str = "plan-1", *, version: str = "1.5", action: str = "Action.Execute"
) -> dict[str, Any]:
    button: dict[str, Any] = {"type": action, "title": "Approve"}
    if action == "Action.Execute":
        button.update(verb="approve", data={"requestId": request_id})
    elif action == "Action.OpenUrl":
        button["url"] = f"https://steward.example/plans/{request_id}"
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": version,
        "body": [{"type": "TextBlock", "text": f"Delete data of customer C0003 ({request_id})?", "wrap": True}],
        "actions": [button],
    }


def card_message(card: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE, "contentUrl": None, "content": card}]}


@pytest.fixture
async def emu(tenant: Tenant) -> AsyncIterator[httpx.AsyncClient]:
    """The emulator in-process, at its root (Teams lives outside /v1.0)."""
    app = create_app(tenant)
    app.state.base_url = BASE
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield client


@pytest.fixture
async def config(emu: httpx.AsyncClient) -> dict[str, Any]:
    response = await emu.get("/_emulator/teams/config")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def fetch_bot_token(client: httpx.AsyncClient, config: dict[str, Any], **overrides: str) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_id": config["bot_app_id"],
        "client_secret": config["bot_app_secret"],
        "scope": "https://api.botframework.com/.default",
        **overrides,
    }
    return await client.post(config["token_endpoint"], data=form)


@pytest.fixture
async def bot_headers(emu: httpx.AsyncClient, config: dict[str, Any]) -> dict[str, str]:
    response = await fetch_bot_token(emu, config)
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def connector(config: dict[str, Any], path: str) -> str:
    return f"{config['service_url']}v3/{path}"


def relative(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


# Configuration ------------------------------------------------------------------------------------------


async def test_config_describes_bot_channel_issuer_and_webhook(tenant: Tenant, config: dict[str, Any]) -> None:
    state = teams_state(tenant)
    assert config["tenant_id"] == tenant.tenant_id
    assert config["bot_app_id"] == state.bot.app_id
    assert config["bot_app_secret"] in tenant.apps[state.bot.app_id].secrets
    assert config["service_url"] == f"{BASE}/botconnector/"
    assert config["issuer"] == f"{BASE}/botframework"
    assert config["openid_metadata_url"] == f"{BASE}/botframework/v1/.well-known/openidconfiguration"
    assert config["token_endpoint"] == f"{BASE}/botframework/{tenant.tenant_id}/oauth2/v2.0/token"
    assert config["channel_conversation_id"].startswith("19:")
    assert config["channel_conversation_id"].endswith("@thread.tacv2")
    assert config["channel_name"] == "Steward approvals"
    assert "/triggers/manual/paths/invoke?" in config["webhook_url"]
    assert "sig=" in config["webhook_url"]
    assert teams_config(tenant, BASE) == config


async def test_seed_is_deterministic_per_tenant_seed(tenant: Tenant) -> None:
    from emulator.seed import build_tenant
    from tests.emulator.conftest import SMALL

    again = build_tenant(SMALL)
    assert teams_config(again, BASE) == teams_config(tenant, BASE)


# Workflows webhook --------------------------------------------------------------------------------------


async def test_webhook_accepts_an_adaptive_card_and_stores_it(
    tenant: Tenant, emu: httpx.AsyncClient, config: dict[str, Any]
) -> None:
    card = approval_card(action="Action.OpenUrl", version="1.4")
    response = await emu.post(relative(config["webhook_url"]), json=card_message(card))

    assert response.status_code == 202
    assert response.content == b""
    run_id = response.headers["x-ms-workflow-run-id"]
    posts = workflow_posts(tenant)
    assert [(p["run_id"], p["cards"], p["warnings"]) for p in posts] == [(run_id, [card], [])]
    listed = (await emu.get("/_emulator/teams/workflows")).json()
    assert listed[0]["posts"] == 1
    over_http = await emu.get(f"/_emulator/teams/workflows/{listed[0]['id']}/posts")
    assert over_http.json() == posts


async def test_webhook_stores_cards_whose_buttons_the_flow_bot_cannot_honour_with_warnings(
    tenant: Tenant, emu: httpx.AsyncClient, config: dict[str, Any]
) -> None:
    response = await emu.post(relative(config["webhook_url"]), json=card_message(approval_card(version="1.6")))

    assert response.status_code == 202
    (post,) = workflow_posts(tenant)
    assert any("1.5" in warning for warning in post["warnings"])
    assert any(warning.startswith("Action.Execute") for warning in post["warnings"])


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'{"type": "message"}', "attachments"),
        (b'{"type": "message", "attachments": []}', "attachments"),
        (b'{"type": "event", "attachments": [{"contentType": "x"}]}', "'type'"),
        (b'{"type": "message", "attachments": [{"contentType": "text/html", "content": "<b>hi</b>"}]}', "contentType"),
        (
            b'{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",'
            b' "content": "{\\"type\\": \\"AdaptiveCard\\"}"}]}',
            "AdaptiveCard object",
        ),
        (
            b'{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",'
            b' "content": {"type": "AdaptiveCard", "body": []}}]}',
            "version",
        ),
    ],
)
async def test_webhook_refuses_malformed_payloads(
    tenant: Tenant, emu: httpx.AsyncClient, config: dict[str, Any], body: bytes, problem: str
) -> None:
    response = await emu.post(
        relative(config["webhook_url"]), content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "InvalidRequestContent"
    assert problem in error["message"]
    assert workflow_posts(tenant) == []


async def test_webhook_refuses_oversized_payloads(
    tenant: Tenant, emu: httpx.AsyncClient, config: dict[str, Any]
) -> None:
    card = approval_card()
    card["body"].append({"type": "TextBlock", "text": "x" * 30_000})
    response = await emu.post(relative(config["webhook_url"]), json=card_message(card))

    assert response.status_code == 413
    assert workflow_posts(tenant) == []


async def test_webhook_requires_a_valid_signature_and_a_known_workflow(
    tenant: Tenant, emu: httpx.AsyncClient, config: dict[str, Any]
) -> None:
    url = relative(config["webhook_url"])
    path, _, query = url.partition("?")
    unsigned = "&".join(part for part in query.split("&") if not part.startswith("sig="))
    payload = card_message(approval_card(action="Action.OpenUrl"))

    missing = await emu.post(f"{path}?{unsigned}", json=payload)
    forged = await emu.post(f"{path}?{unsigned}&sig=AAAA{url[-8:]}", json=payload)
    other_workflow = await emu.post(url.replace(path.split("/")[2], "0" * 32), json=payload)

    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "DirectApiAuthorizationRequired"
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "DirectApiInvalidAuthorizationSignature"
    assert other_workflow.status_code == 404
    assert other_workflow.json()["error"]["code"] == "WorkflowNotFound"
    assert workflow_posts(tenant) == []


async def test_more_webhooks_can_be_created_and_each_keeps_its_own_posts(
    tenant: Tenant, emu: httpx.AsyncClient, config: dict[str, Any]
) -> None:
    created = await emu.post("/_emulator/teams/workflows", json={"name": "Legal notices"})
    assert created.status_code == 201
    second = created.json()
    payload = card_message(approval_card(action="Action.OpenUrl"))

    assert (await emu.post(relative(second["url"]), json=payload)).status_code == 202
    # A signature is bound to its workflow: the first workflow's sig does not open the second.
    first_sig = config["webhook_url"].rsplit("sig=", 1)[1]
    crossed = relative(second["url"]).rsplit("sig=", 1)[0] + f"sig={first_sig}"
    assert (await emu.post(crossed, json=payload)).status_code == 401
    assert len(workflow_posts(tenant, second["id"])) == 1
    assert workflow_posts(tenant, urlsplit(config["webhook_url"]).path.split("/")[2]) == []


# Bot Framework issuer and bot token -----------------------------------------------------------------------


async def test_channel_issuer_publishes_metadata_and_endorsed_keys_separate_from_entra(
    tenant: Tenant, emu: httpx.AsyncClient, config: dict[str, Any]
) -> None:
    metadata = (await emu.get(config["openid_metadata_url"])).json()
    assert metadata["issuer"] == config["issuer"]
    assert metadata["jwks_uri"] == f"{BASE}/botframework/v1/.well-known/keys"
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]

    keys = (await emu.get(metadata["jwks_uri"])).json()["keys"]
    assert keys
    assert all(key["endorsements"] == ["msteams"] and key["kty"] == "RSA" for key in keys)
    assert {key["kid"] for key in keys}.isdisjoint({key.kid for key in tenant.keys.keys})

    rotated = (await emu.post("/_emulator/teams/botframework/rotate-keys")).json()["kid"]
    after = {key["kid"] for key in (await emu.get(metadata["jwks_uri"])).json()["keys"]}
    assert after == {keys[0]["kid"], rotated}


async def test_bot_token_endpoint_issues_an_entra_token_for_the_connector(
    tenant: Tenant, emu: httpx.AsyncClient, config: dict[str, Any]
) -> None:
    response = await fetch_bot_token(emu, config)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    claims = tenant.keys.verify(body["access_token"], audience=BOT_AUDIENCE, issuer=graph_issuer(tenant.tenant_id))
    assert claims["appid"] == config["bot_app_id"]
    assert claims["tid"] == tenant.tenant_id
    assert "roles" not in claims


@pytest.mark.parametrize(
    ("overrides", "status", "error", "code"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client", 7000215),
        ({"client_id": "00000000-0000-0000-0000-000000000000"}, 400, "unauthorized_client", 700016),
        ({"scope": "https://graph.microsoft.com/.default"}, 400, "invalid_scope", 1002012),
        ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
        ({"grant_type": ""}, 400, "invalid_request", 900144),
    ],
)
async def test_bot_token_endpoint_refuses_bad_requests_in_entra_shape(
    emu: httpx.AsyncClient, config: dict[str, Any], overrides: dict[str, str], status: int, error: str, code: int
) -> None:
    response = await fetch_bot_token(emu, config, **overrides)

    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert "access_token" not in body


# Bot Connector --------------------------------------------------------------------------------------------


def _wrong_tokens(tenant: Tenant, config: dict[str, Any], mint: Callable[..., str]) -> dict[str, str | None]:
    channel = teams_state(tenant).channel_keys
    return {
        "missing": None,
        "garbage": "Bearer not-a-jwt",
        "graph token": f"Bearer {mint()}",
        "another app's connector token": f"Bearer {mint(roles=[], aud=BOT_AUDIENCE)}",
        "signed by the channel key": "Bearer "
        + channel.sign(
            {
                "aud": BOT_AUDIENCE,
                "iss": graph_issuer(tenant.tenant_id),
                "appid": config["bot_app_id"],
                "iat": int(time.time()),
                "exp": int(time.time()) + 600,
            }
        ),
        "expired": "Bearer "
        + mint(roles=[], aud=BOT_AUDIENCE, appid=config["bot_app_id"], exp=int(time.time()) - 3600),
    }


async def test_connector_refuses_calls_without_a_valid_bot_token(
    tenant: Tenant, emu: httpx.AsyncClient, config: dict[str, Any], mint: Callable[..., str]
) -> None:
    url = connector(config, f"conversations/{config['channel_conversation_id']}/activities")
    for name, header in _wrong_tokens(tenant, config, mint).items():
        headers = {"Authorization": header} if header else {}
        response = await emu.post(url, json=card_message(approval_card()), headers=headers)
        assert response.status_code == 401, name
        assert response.json() == {"message": "Authorization has been denied for this request."}
        assert "X-Correlating-OperationId" in response.headers
        members = await emu.get(connector(config, f"conversations/{config['channel_conversation_id']}/members"))
        assert members.status_code == 401
    assert conversation_activities(tenant, config["channel_conversation_id"]) == []


async def test_connector_sends_replies_updates_and_deletes_bot_activities(
    tenant: Tenant, emu: httpx.AsyncClient, config: dict[str, Any], bot_headers: dict[str, str]
) -> None:
    channel = config["channel_conversation_id"]
    sent = await emu.post(
        connector(config, f"conversations/{channel}/activities"),
        json=card_message(approval_card()),
        headers=bot_headers,
    )
    assert sent.status_code == 201
    card_id = sent.json()["id"]

    reply = await emu.post(
        connector(config, f"conversations/{channel}/activities/{card_id}"),
        json={"type": "message", "text": "Reminder: approval expires tomorrow."},
        headers=bot_headers,
    )
    assert reply.status_code == 201
    refreshed = approval_card()
    refreshed["body"][0]["text"] = "Approved by 2 of 2."
    refreshed["actions"] = []
    updated = await emu.put(
        connector(config, f"conversations/{channel}/activities/{card_id}"),
        json=card_message(refreshed),
        headers=bot_headers,
    )
    assert updated.status_code == 200
    assert updated.json() == {"id": card_id}

    stored = {a["id"]: a for a in conversation_activities(tenant, channel)}
    assert list(stored) == [card_id, reply.json()["id"]]
    card = stored[card_id]
    assert card["revision"] == 2
    assert card["thread_root_id"] == card_id
    assert card["activity"]["attachments"][0]["content"] == refreshed
    assert card["activity"]["from"]["id"] == f"28:{config['bot_app_id']}"
    assert card["activity"]["conversation"]["id"] == channel
    answered = stored[reply.json()["id"]]
    assert answered["reply_to_id"] == card_id
    assert answered["thread_root_id"] == card_id
    assert answered["activity"]["conversation"]["id"] == f"{channel};messageid={card_id}"

    deleted = await emu.delete(connector(config, f"conversations/{channel}/activities/{card_id}"), headers=bot_headers)
    assert deleted.status_code == 200
    again = await emu.put(
        connector(config, f"conversations/{channel}/activities/{card_id}"),
        json=card_message(refreshed),
        headers=bot_headers,
    )
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "ActivityNotFound"
    listed = (await emu.get(f"/_emulator/teams/conversations/{channel}/activities")).json()
    assert [a["deleted"] for a in listed] == [True, False]


async def test_connector_posts_into_an_existing_thread_only(
    tenant: Tenant, emu: httpx.AsyncClient, config: dict[str, Any], bot_headers: dict[str, str]
) -> None:
    channel = config["channel_conversation_id"]
    root = await emu.post(
        connector(config, f"conversations/{channel}/activities"),
        json={"type": "message", "text": "root"},
        headers=bot_headers,
    )
    in_thread = await emu.post(
        connector(config, f"conversations/{channel};messageid={root.json()['id']}/activities"),
        json={"type": "message", "text": "in thread"},
        headers=bot_headers,
    )
    unknown_root = await emu.post(
        connector(config, f"conversations/{channel};messageid=1/activities"),
        json={"type": "message", "text": "lost"},
        headers=bot_headers,
    )

    assert in_thread.status_code == 201
    assert unknown_root.status_code == 404
    thread = [a for a in conversation_activities(tenant, channel) if a["thread_root_id"] == root.json()["id"]]
    assert [a["activity"]["text"] for a in thread] == ["root", "in thread"]


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        (
            "conversations/19:nope@thread.tacv2/activities",
            {"type": "message", "text": "x"},
            404,
            "ConversationNotFound",
        ),
        ("conversations/{channel}/activities", b"{oops", 400, "BadSyntax"),
        ("conversations/{channel}/activities", {"text": "no type"}, 400, "BadArgument"),
        ("conversations/{channel}/activities", {"type": "message"}, 400, "BadArgument"),
        ("conversations/{channel}/activities", {"type": "message", "attachments": "x"}, 400, "BadArgument"),
        (
            "conversations/{channel}/activities",
            {"type": "message", "attachments": [{"contentType": ADAPTIVE, "content": {"type": "Card"}}]},
            400,
            "BadArgument",
        ),
        (
            "conversations/{channel}/activities",
            {"type": "message", "text": "x" * 40_000},
            413,
            "MessageSizeTooBig",
        ),
        ("conversations/{channel}/activities/123", {"type": "typing"}, 201, None),
    ],
)
async def test_connector_answers_bad_requests_with_error_responses(
    tenant: Tenant,
    emu: httpx.AsyncClient,
    config: dict[str, Any],
    bot_headers: dict[str, str],
    path: str,
    body: dict[str, Any] | bytes,
    status: int,
    code: str | None,
) -> None:
    url = connector(config, path.format(channel=config["channel_conversation_id"]))
    if isinstance(body, bytes):
        response = await emu.post(url, content=body, headers={**bot_headers, "Content-Type": "application/json"})
    else:
        response = await emu.post(url, json=body, headers=bot_headers)

    assert response.status_code == status
    if code is not None:
        assert response.json()["error"]["code"] == code
    assert conversation_activities(tenant, config["channel_conversation_id"]) == []


async def test_connector_lists_the_channel_roster_as_teams_accounts(
    tenant: Tenant, emu: httpx.AsyncClient, config: dict[str, Any], bot_headers: dict[str, str]
) -> None:
    channel = config["channel_conversation_id"]
    members = (await emu.get(connector(config, f"conversations/{channel}/members"), headers=bot_headers)).json()

    staff = {u.id: u for u in tenant.staff}
    assert {m["aadObjectId"] for m in members} == set(staff)
    assert all(m["id"].startswith("29:") and m["tenantId"] == tenant.tenant_id for m in members)
    assert len({m["id"] for m in members}) == len(members)
    someone = members[0]
    assert someone["userPrincipalName"] == staff[someone["aadObjectId"]].user_principal_name

    by_aad = await emu.get(
        connector(config, f"conversations/{channel}/members/{someone['aadObjectId']}"), headers=bot_headers
    )
    by_teams_id = await emu.get(
        connector(config, f"conversations/{channel}/members/{someone['id']}"), headers=bot_headers
    )
    assert by_aad.json() == by_teams_id.json() == someone
    guest = next(u for u in tenant.users.values() if u.user_type == "Guest")
    outsider = await emu.get(connector(config, f"conversations/{channel}/members/{guest.id}"), headers=bot_headers)
    assert outsider.status_code == 404

    paged = (
        await emu.get(connector(config, f"conversations/{channel}/pagedMembers?pageSize=50"), headers=bot_headers)
    ).json()
    assert paged["members"] == members
    assert "continuationToken" not in paged


async def test_connector_creates_personal_chats_and_channel_threads(
    tenant: Tenant, emu: httpx.AsyncClient, config: dict[str, Any], bot_headers: dict[str, str]
) -> None:
    approver = tenant.staff[1]
    params = {
        "bot": {"id": f"28:{config['bot_app_id']}"},
        "members": [{"id": approver.id}],
        "tenantId": tenant.tenant_id,
        "activity": card_message(approval_card()),
    }
    created = await emu.post(connector(config, "conversations"), json=params, headers=bot_headers)
    assert created.status_code == 201
    chat = created.json()
    assert chat["id"].startswith("a:")
    again = await emu.post(connector(config, "conversations"), json={**params, "activity": None}, headers=bot_headers)
    assert again.json() == {"id": chat["id"]}
    members = (await emu.get(connector(config, f"conversations/{chat['id']}/members"), headers=bot_headers)).json()
    assert [m["aadObjectId"] for m in members] == [approver.id]
    assert [a["id"] for a in conversation_activities(tenant, chat["id"])] == [chat["activityId"]]

    thread = await emu.post(
        connector(config, "conversations"),
        json={
            "isGroup": True,
            "channelData": {"channel": {"id": config["channel_conversation_id"]}, "tenant": {"id": tenant.tenant_id}},
            "activity": card_message(approval_card("plan-2")),
        },
        headers=bot_headers,
    )
    assert thread.status_code == 201
    assert thread.json()["id"] == f"{config['channel_conversation_id']};messageid={thread.json()['activityId']}"

    guest = next(u for u in tenant.users.values() if u.user_type == "Guest")
    refused = await emu.post(
        connector(config, "conversations"), json={**params, "members": [{"id": guest.id}]}, headers=bot_headers
    )
    assert refused.status_code == 404
    other_tenant = await emu.post(
        connector(config, "conversations"),
        json={**params, "tenantId": "00000000-0000-0000-0000-000000000001"},
        headers=bot_headers,
    )
    assert other_tenant.status_code == 403


# Pressing a card button: the invoke over real HTTPS -------------------------------------------------------


class HttpsApp:
    """An ASGI app served over HTTPS on 127.0.0.1 in a thread of its own, with a CA made for it."""

    def __init__(self, app: Any, *, lifespan: Literal["on", "off"] = "off") -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="steward-bot-")
        ca = trustme.CA()
        self.ca_bundle = str(Path(self._dir.name) / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_bundle)
        cert_path = str(Path(self._dir.name) / "server.pem")
        ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(cert_path)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(app, ssl_certfile=cert_path, log_level="warning", lifespan=lifespan, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> HttpsApp:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            assert self._thread.is_alive(), "the bot endpoint did not start"
            assert time.monotonic() < deadline, "the bot endpoint did not start in time"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._dir.cleanup()


def validating_bot(emulator_ca: str, metadata_url: str, app_id: str) -> tuple[FastAPI, list[dict[str, Any]]]:
    """A bot endpoint that authenticates the channel as the Bot Framework documents, with plain PyJWT."""
    trust = ssl.create_default_context(cafile=emulator_ca)
    seen: list[dict[str, Any]] = []
    api = FastAPI()

    async def verified_claims(token: str, activity: dict[str, Any]) -> dict[str, Any]:
        async with httpx.AsyncClient(verify=trust) as client:
            metadata = (await client.get(metadata_url)).json()
            published = (await client.get(metadata["jwks_uri"])).json()["keys"]
        kid = jwt.get_unverified_header(token).get("kid")
        entry = next((key for key in published if key["kid"] == kid), None)
        if entry is None:
            raise jwt.InvalidKeyError("signing key not published")
        claims: dict[str, Any] = jwt.decode(
            token,
            jwt.PyJWK(entry).key,
            algorithms=metadata["id_token_signing_alg_values_supported"],
            audience=app_id,
            issuer=metadata["issuer"],
            leeway=300,
            options={"require": ["exp", "iss", "aud", "serviceurl"]},
        )
        if claims["serviceurl"] != activity["serviceUrl"]:
            raise jwt.InvalidTokenError("serviceurl claim does not match the activity")
        if activity["channelId"] not in entry.get("endorsements", []):
            raise jwt.InvalidTokenError("key not endorsed for the activity's channel")
        return claims

    @api.post("/api/messages")
    async def messages(request: Request) -> JSONResponse:
        activity = await request.json()
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            if scheme != "Bearer" or not token:
                raise jwt.InvalidTokenError("no bearer token")
            claims = await verified_claims(token, activity)
        except jwt.PyJWTError as exc:
            return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=401)
        seen.append({"claims": claims, "activity": activity})
        verb = activity["value"]["action"]["verb"]
        return JSONResponse(
            {"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": f"{verb}d"}
        )

    return api, seen


@pytest.fixture
def bot(live: EmulatorServer) -> Iterator[tuple[HttpsApp, list[dict[str, Any]]]]:
    config = teams_config(live.tenant, live.endpoints.base_url)
    api, seen = validating_bot(live.endpoints.ca_bundle, config["openid_metadata_url"], config["bot_app_id"])
    with HttpsApp(api) as server:
        yield server, seen


async def _post_card(live: EmulatorServer, config: dict[str, Any]) -> str:
    async with httpx.AsyncClient(verify=live.endpoints.ca_bundle) as client:
        token = (await fetch_bot_token(client, config)).json()["access_token"]
        sent = await client.post(
            connector(config, f"conversations/{config['channel_conversation_id']}/activities"),
            json=card_message(approval_card()),
            headers={"Authorization": f"Bearer {token}"},
        )
    assert sent.status_code == 201
    card_id: str = sent.json()["id"]
    return card_id


async def _press(live: EmulatorServer, **body: Any) -> httpx.Response:
    async with httpx.AsyncClient(verify=live.endpoints.ca_bundle, timeout=30) as client:
        return await client.post(f"{live.endpoints.control_url}/teams/invoke", json=body)


def _approver(tenant: Tenant) -> User:
    return next(u for u in tenant.staff if "Steward.Approver" in u.steward_roles)


async def test_pressing_a_button_delivers_a_signed_adaptive_card_invoke(
    live: EmulatorServer, bot: tuple[HttpsApp, list[dict[str, Any]]]
) -> None:
    server, seen = bot
    tenant = live.tenant
    config = teams_config(tenant, live.endpoints.base_url)
    card_id = await _post_card(live, config)
    approver = _approver(tenant)

    pressed = await _press(
        live,
        user_id=approver.id,
        activity_id=card_id,
        verb="approve",
        data={"requestId": "plan-1"},
        bot_endpoint=f"{server.url}/api/messages",
        ca_bundle=server.ca_bundle,
    )

    assert pressed.status_code == 200
    result = pressed.json()
    assert result["status"] == 200
    assert result["body"] == {
        "statusCode": 200,
        "type": "application/vnd.microsoft.activity.message",
        "value": "approved",
    }
    ((received,),) = [seen]
    claims, activity = received["claims"], received["activity"]
    assert claims["iss"] == config["issuer"]
    assert claims["aud"] == config["bot_app_id"]
    assert claims["serviceurl"] == config["service_url"]
    assert activity == result["activity"]
    assert activity["type"] == "invoke"
    assert activity["name"] == "adaptiveCard/action"
    assert activity["value"] == {
        "action": {"type": "Action.Execute", "verb": "approve", "data": {"requestId": "plan-1"}},
        "trigger": "manual",
    }
    assert activity["from"]["aadObjectId"] == approver.id
    assert activity["from"]["id"].startswith("29:")
    assert activity["from"]["name"] == approver.display_name
    assert activity["recipient"]["id"] == f"28:{config['bot_app_id']}"
    assert activity["channelId"] == "msteams"
    assert activity["serviceUrl"] == config["service_url"]
    assert activity["channelData"]["tenant"]["id"] == tenant.tenant_id
    assert activity["conversation"]["id"] == f"{config['channel_conversation_id']};messageid={card_id}"
    assert activity["conversation"]["tenantId"] == tenant.tenant_id
    assert activity["replyToId"] == card_id
    async with httpx.AsyncClient(verify=live.endpoints.ca_bundle) as client:
        record = (await client.get(f"{live.endpoints.control_url}/teams/invokes")).json()
    assert [(r["user_id"], r["verb"], r["status"], r["forge"]) for r in record] == [(approver.id, "approve", 200, None)]


@pytest.mark.parametrize(
    ("forge", "refusal"),
    [
        ("no_token", "no bearer token"),
        ("wrong_key", "InvalidSignatureError"),
        ("wrong_audience", "InvalidAudienceError"),
        ("wrong_issuer", "InvalidIssuerError"),
        ("expired", "ExpiredSignatureError"),
        ("wrong_service_url", "serviceurl claim does not match"),
    ],
)
async def test_forged_invokes_fail_the_documented_validation(
    live: EmulatorServer, bot: tuple[HttpsApp, list[dict[str, Any]]], forge: str, refusal: str
) -> None:
    server, seen = bot
    approver = _approver(live.tenant)
    # The registered messaging endpoint and CA are used when the click does not name them.
    async with httpx.AsyncClient(verify=live.endpoints.ca_bundle) as client:
        patched = await client.patch(
            f"{live.endpoints.control_url}/teams/bot",
            json={"messaging_endpoint": f"{server.url}/api/messages", "ca_bundle": server.ca_bundle},
        )
    assert patched.status_code == 200

    pressed = await _press(live, user_id=approver.id, verb="approve", data={"requestId": "plan-1"}, forge=forge)

    assert pressed.status_code == 200
    assert pressed.json()["status"] == 401
    answer = pressed.json()["body"]
    assert refusal in f"{answer['error']}: {answer['detail']}"
    assert seen == []


async def test_pressing_a_button_is_refused_for_outsiders_and_bad_endpoints(
    live: EmulatorServer, bot: tuple[HttpsApp, list[dict[str, Any]]]
) -> None:
    server, seen = bot
    tenant = live.tenant
    guest = next(u for u in tenant.users.values() if u.user_type == "Guest")
    common = {"verb": "approve", "bot_endpoint": f"{server.url}/api/messages", "ca_bundle": server.ca_bundle}

    assert (await _press(live, user_id=guest.id, **common)).status_code == 403
    assert (await _press(live, user_id="nobody@example.com", **common)).status_code == 404
    assert (await _press(live, user_id=tenant.staff[0].id, activity_id="42", **common)).status_code == 404
    plain_http = {**common, "bot_endpoint": server.url.replace("https:", "http:") + "/api/messages"}
    assert (await _press(live, user_id=tenant.staff[0].id, **plain_http)).status_code == 400
    # Without the bot's CA the emulator cannot trust its certificate, as Teams would not.
    untrusted = {**common, "ca_bundle": live.endpoints.ca_bundle}
    assert (await _press(live, user_id=tenant.staff[0].id, **untrusted)).status_code == 502
    assert seen == []


# The real Teams SDK behind the endpoint --------------------------------------------------------------------


async def test_teams_sdk_accepts_the_emulator_channel_and_sends_through_its_connector(
    live: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recipe from teams-notes.md section 5.2: only the cloud endpoints, a token callable and the serviceUrl change."""
    tenant = live.tenant
    config = teams_config(tenant, live.endpoints.base_url)
    # The SDK's key fetch (urllib) and its connector client (httpx) trust what SSL_CERT_FILE names.
    monkeypatch.setenv("SSL_CERT_FILE", live.endpoints.ca_bundle)
    for name in ("CLIENT_ID", "CLIENT_SECRET", "TENANT_ID", "SERVICE_URL", "CLOUD"):
        monkeypatch.delenv(name, raising=False)

    from microsoft_teams.api.activities.invoke import AdaptiveCardInvokeActivity
    from microsoft_teams.api.auth.cloud_environment import PUBLIC, with_overrides
    from microsoft_teams.api.models.adaptive_card import AdaptiveCardActionCardResponse
    from microsoft_teams.apps import ActivityContext, App
    from microsoft_teams.apps.http import FastAPIAdapter
    from microsoft_teams.cards import AdaptiveCard
    from microsoft_teams.common import ClientOptions

    token_requests: list[str] = []

    async def emulator_token(scope: str | list[str], tenant_id: str | None) -> str:
        token_requests.append(str(scope))
        async with httpx.AsyncClient(verify=live.endpoints.ca_bundle) as client:
            response = await client.post(
                config["token_endpoint"],
                data={
                    "grant_type": "client_credentials",
                    "client_id": config["bot_app_id"],
                    "client_secret": config["bot_app_secret"],
                    "scope": scope if isinstance(scope, str) else " ".join(scope),
                },
            )
        response.raise_for_status()
        access_token: str = response.json()["access_token"]
        return access_token

    api = FastAPI()
    teams_app = App(
        client_id=config["bot_app_id"],
        tenant_id=tenant.tenant_id,
        token=emulator_token,
        cloud=with_overrides(PUBLIC, openid_metadata_url=config["openid_metadata_url"], token_issuer=config["issuer"]),
        service_url=config["service_url"],
        http_server_adapter=FastAPIAdapter(app=api),
        # The app is dropped, never stopped, at the end of the test: no pooled TLS connection may outlive it.
        client=ClientOptions(headers={"Connection": "close"}),
    )
    decisions: list[tuple[str | None, str | None]] = []

    @teams_app.on_card_action_execute
    async def on_execute(ctx: ActivityContext[AdaptiveCardInvokeActivity]) -> AdaptiveCardActionCardResponse:
        activity = ctx.activity
        decisions.append((activity.value.action.verb, activity.from_.aad_object_id))
        await teams_app.send(
            config["channel_conversation_id"],
            f"{activity.from_.name} chose {activity.value.action.verb}",
            service_url=config["service_url"],
        )
        card = approval_card()
        card["actions"] = []
        card["body"][0]["text"] = "Approved."
        return AdaptiveCardActionCardResponse(value=AdaptiveCard.model_validate(card))

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await teams_app.initialize()
        yield

    api.router.lifespan_context = lifespan
    with HttpsApp(api, lifespan="on") as server:
        card_id = await _post_card(live, config)
        approver = _approver(tenant)
        common = {
            "user_id": approver.id,
            "verb": "approve",
            "data": {"requestId": "plan-1"},
            "activity_id": card_id,
            "bot_endpoint": f"{server.url}/api/messages",
            "ca_bundle": server.ca_bundle,
        }
        for forge in FORGERIES:
            refused = await _press(live, **common, forge=forge)
            assert refused.json()["status"] == 401, forge
        assert decisions == []

        pressed = await _press(live, **common)

    result = pressed.json()
    assert result["status"] == 200, result
    assert result["body"]["statusCode"] == 200
    assert result["body"]["type"] == ADAPTIVE
    assert result["body"]["value"]["body"][0]["text"] == "Approved."
    assert decisions == [("approve", approver.id)]
    assert token_requests == ["https://api.botframework.com/.default"]
    posted = [a["activity"] for a in conversation_activities(tenant, config["channel_conversation_id"])]
    assert [a.get("text") for a in posted] == [None, f"{approver.display_name} chose approve"]
    assert posted[1]["from"]["id"] == f"28:{config['bot_app_id']}"
