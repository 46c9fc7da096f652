"""The JWKS cache on its own: TTL, refresh on unknown kid, and keeping known keys while Entra ID is unreachable."""

import httpx
import pytest

from app.auth.tokens import FAILED_FETCH_RETRY_S, SigningKeys, SigningKeysUnavailable, TokenRejected
from emulator.tokens import KeySet

JWKS_URL = "https://login.test/tenant/discovery/v2.0/keys"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class FakeEntra:
    """Publishes a key set; can be made to fail."""

    def __init__(self) -> None:
        self.keys = KeySet()
        self.fetches = 0
        self.down = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URL
        self.fetches += 1
        if self.down:
            return httpx.Response(503)
        return httpx.Response(200, json=self.keys.jwks())


@pytest.fixture
def entra() -> FakeEntra:
    return FakeEntra()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def keys(entra: FakeEntra, clock: Clock) -> SigningKeys:
    http = httpx.AsyncClient(transport=httpx.MockTransport(entra))
    return SigningKeys(JWKS_URL, http, ttl_s=3600, clock=clock)


async def test_keys_are_cached_for_the_ttl(keys: SigningKeys, entra: FakeEntra, clock: Clock) -> None:
    kid = entra.keys.current.kid
    await keys.get(kid)
    clock.now += 3599
    await keys.get(kid)
    assert entra.fetches == 1
    clock.now += 2
    await keys.get(kid)
    assert entra.fetches == 2


async def test_an_unknown_kid_refreshes_at_once(keys: SigningKeys, entra: FakeEntra) -> None:
    await keys.get(entra.keys.current.kid)
    rotated = entra.keys.rotate()
    await keys.get(rotated.kid)
    assert entra.fetches == 2


async def test_known_keys_survive_an_outage(keys: SigningKeys, entra: FakeEntra, clock: Clock) -> None:
    kid = entra.keys.current.kid
    await keys.get(kid)
    entra.down = True
    clock.now += 3601
    await keys.get(kid)  # stale but still the tenant's key
    assert entra.fetches == 2
    await keys.get(kid)  # no refetch on every request while Entra is down
    assert entra.fetches == 2
    clock.now += FAILED_FETCH_RETRY_S
    entra.down = False
    await keys.get(kid)
    assert entra.fetches == 3


async def test_no_keys_at_all_is_unavailable_not_rejected(keys: SigningKeys, entra: FakeEntra) -> None:
    entra.down = True
    with pytest.raises(SigningKeysUnavailable):
        await keys.get(entra.keys.current.kid)


@pytest.mark.parametrize(
    "document",
    [{"keys": []}, {"keys": [{"kty": "EC", "kid": "x", "crv": "P-256", "x": "a", "y": "b"}]}, ["not", "an", "object"]],
    ids=["empty", "no-rsa-key", "not-an-object"],
)
async def test_a_useless_document_is_a_failed_fetch(document: object, clock: Clock) -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(200, json=document)))
    keys = SigningKeys(JWKS_URL, http, ttl_s=60, clock=clock)
    with pytest.raises(SigningKeysUnavailable):
        await keys.get("any")


async def test_an_encryption_key_is_not_a_signing_key(clock: Clock) -> None:
    published = KeySet()
    document = {"keys": [{**published.current.jwk(), "use": "enc"}]}
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(200, json=document)))
    keys = SigningKeys(JWKS_URL, http, ttl_s=60, clock=clock)
    with pytest.raises(SigningKeysUnavailable):
        await keys.get(published.current.kid)


async def test_unknown_kid_refreshes_are_rate_limited_per_window(
    keys: SigningKeys, entra: FakeEntra, clock: Clock
) -> None:
    await keys.get(entra.keys.current.kid)
    for attempt in range(5):
        with pytest.raises(TokenRejected):
            await keys.get(f"made-up-{attempt}")
    assert entra.fetches == 1 + 3
    clock.now += 300
    with pytest.raises(TokenRejected):
        await keys.get("made-up-later")
    assert entra.fetches == 5
