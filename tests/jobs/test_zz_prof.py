import cProfile, pstats, time
from emulator.seed import build_tenant
from jobs.sync import SyncRuntime, run_sync_cycle
from tests.jobs.live import *

async def test_prof(empty_database):
    tenant = build_tenant(SYNC_SEED)
    async with fresh_store(empty_database) as sessions, live_tenant(tenant) as live:
        await import_registry(sessions, tenant)
        runtime = await SyncRuntime.start(live.connector, live.settings)
        pr = cProfile.Profile()
        pr.enable()
        first = await run_sync_cycle(sessions, live.connector, runtime)
        pr.disable()
        pstats.Stats(pr).sort_stats("cumulative").print_stats(45)
