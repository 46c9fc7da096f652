"""The seeded local tenant over HTTPS and Steward's deletion runtime signed in to it, for the deletion test packages."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from emulator.seed import build_tenant
from emulator.server import EmulatorServer
from emulator.state import Tenant
from tests.app.plans.support import SEED, LiveDeletion, open_live_deletion


@pytest.fixture
def tenant() -> Tenant:
    return build_tenant(SEED)


@pytest.fixture
def live(tenant: Tenant) -> Iterator[EmulatorServer]:
    with EmulatorServer(tenant) as server:
        yield server


@pytest.fixture
async def deletion(
    live: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[LiveDeletion]:
    # The Teams SDK's HTTP clients trust what SSL_CERT_FILE names (teams-notes.md, pitfall 9).
    monkeypatch.setenv("SSL_CERT_FILE", live.endpoints.ca_bundle)
    opened = await open_live_deletion(live, tmp_path)
    try:
        yield opened
    finally:
        await opened.runtime.aclose()
