"""Fault cases (reliability-matrix.md 3.2) not covered by the feature suites."""

import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.classification import Classifier, IdentifierHasher
from app.datamap.sync import DatamapSync, DriveTarget
from app.models import DatamapItem
from app.policy import default_policy, resolve_labels
from connectors.base import ConnectorError, Forbidden, NotFound
from connectors.graph.connector import GraphConnector
from tests.connectors.graph.conftest import FakeClock, ScriptedGraph, graph_error, page
from tests.jobs.live import fresh_store, sqlite_store_at

DRIVE = "drive-1"
DELTA = f"https://graph.test/v1.0/drives/{DRIVE}/items/root/delta()"
LABELS = [
    ("l-public", "Public", 0),
    ("l-general", "General", 1),
    ("l-conf", "Confidential", 2),
    ("l-high", "Highly Confidential", 3),
]


def _file(item_id: str, name: str, version: int) -> dict[str, Any]:
    return {
        "id": item_id,
        "name": name,
        "eTag": f'"{{{item_id}}},{version}"',
        "size": 10,
        # A type the policy does not read: the sync has no reason to fetch content.
        "file": {"mimeType": "application/octet-stream"},
        "parentReference": {"id": "root", "driveId": DRIVE},
        "lastModifiedDateTime": "2026-11-20T08:00:00Z",
        "lastModifiedBy": {"user": {"id": "u-1", "email": "an@contoso.example"}},
    }


ROOT = {"id": "root", "name": "root", "folder": {"childCount": 2}}
# A deleted file as OneDrive for Business reports it in delta: stripped down, the deleted facet set.
GONE_Y = {"id": "Y", "deleted": {}, "file": {}, "parentReference": {"id": "root", "driveId": DRIVE}}


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with fresh_store(sqlite_store_at(tmp_path)) as made:
        yield made


def _sync(sessions: async_sessionmaker[AsyncSession], graph: GraphConnector) -> DatamapSync:
    policy = default_policy()
    labels = resolve_labels(policy, LABELS)
    classifier = Classifier(policy, [], labels, hasher=IdentifierHasher(b"reliability-key"))
    return DatamapSync(sessions, graph, classifier, labels, app_client_id="steward-app")


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> dict[str, DatamapItem]:
    async with sessions() as session:
        return {row.item_id: row for row in (await session.execute(select(DatamapItem))).scalars()}


async def test_F3_the_last_duplicate_wins_and_a_deleted_item_changes_only_local_state(
    mock_graph: Callable[..., tuple[GraphConnector, ScriptedGraph]], sessions: async_sessionmaker[AsyncSession]
) -> None:
    def delta(request: httpx.Request) -> httpx.Response:
        if "token=1" in str(request.url):
            # One page lists X twice (renamed in between) and reports Y deleted.
            changes = [ROOT, _file("X", "draft.bin", 1), _file("X", "final.bin", 2), GONE_Y]
            return page(changes, delta_link=f"{DELTA}?token=2")
        return page([ROOT, _file("Y", "old.bin", 1)], delta_link=f"{DELTA}?token=1")

    graph, script = mock_graph(delta)
    sync = _sync(sessions, graph)
    target = DriveTarget(DRIVE, None)
    await sync.sync_drive(target)
    assert set(await _rows(sessions)) == {"Y"}

    await sync.sync_drive(target)

    rows = await _rows(sessions)
    assert set(rows) == {"X"}
    assert rows["X"].etag == '"{X},2"'
    assert rows["X"].name_hash == hashlib.sha256(b"final.bin").hexdigest()
    assert sync.counters.removed == 1
    # Only the two delta requests: no read, no write, nothing sent to Graph about the deleted item.
    assert [(r.method, r.url.path) for r in script.requests] == [("GET", "/v1.0/drives/drive-1/items/root/delta()")] * 2


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [(400, "invalidRequest", ConnectorError), (403, "accessDenied", Forbidden), (404, "itemNotFound", NotFound)],
)
async def test_F9_client_errors_other_than_429_are_never_retried(
    mock_graph: Callable[..., tuple[GraphConnector, ScriptedGraph]],
    clock: FakeClock,
    status: int,
    code: str,
    error: type[ConnectorError],
) -> None:
    graph, script = mock_graph(lambda request: graph_error(status, code))
    with pytest.raises(error) as raised:
        await graph.mail.get_message("u1", "m1")
    assert raised.value.status_code == status
    assert len(script.requests) == 1
    assert clock.sleeps == []
