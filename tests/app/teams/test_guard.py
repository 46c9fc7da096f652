"""The bot's guard before any signature work: tenant check, body limits, and routes it must leave alone.
(Signed and forged channel tokens are exercised end to end in test_bot.py.)"""

from typing import Any

import httpx
from fastapi import FastAPI

from app.teams.guard import MAX_BODY_BYTES, BotChannelGuard, ChannelKeys, ChannelTokenVerifier

TENANT = "11111111-2222-4333-8444-555555555555"


def verifier() -> ChannelTokenVerifier:
    keys = ChannelKeys("https://keys.invalid/openidconfiguration", verify=True, timeout_s=1)
    return ChannelTokenVerifier(keys=keys, issuer="https://api.botframework.com", app_id="bot", tenant_id=TENANT)


def test_the_activity_must_come_from_our_tenant_and_only_ours() -> None:
    check = verifier().tenant_allowed
    assert check({"conversation": {"tenantId": TENANT}, "channelData": {"tenant": {"id": TENANT.upper()}}})
    assert not check({"conversation": {"tenantId": "another"}})
    assert not check({"conversation": {"tenantId": TENANT}, "channelData": {"tenant": {"id": "another"}}})
    assert not check({})


async def test_bad_bodies_are_refused_and_other_routes_pass_untouched() -> None:
    refusals: list[str] = []

    async def refused(why: str, activity: dict[str, Any]) -> None:
        refusals.append(why)

    api = FastAPI()

    @api.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    api.add_middleware(BotChannelGuard, path="/api/messages", verifier=verifier(), on_refusal=refused)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="https://steward.test") as client:
        not_json = await client.post("/api/messages", content=b"{nope", headers={"Authorization": "Bearer x"})
        too_big = await client.post("/api/messages", content=b"x" * (MAX_BODY_BYTES + 1))
        unsigned = await client.post("/api/messages", json={"type": "invoke", "channelId": "msteams"})
        healthy = await client.get("/healthz")

    assert (not_json.status_code, too_big.status_code, unsigned.status_code) == (400, 413, 401)
    assert unsigned.json() == {"error": "unauthorized", "detail": "no bearer token"}
    assert refusals == ["no bearer token"]
    assert healthy.json() == {"status": "ok"}
