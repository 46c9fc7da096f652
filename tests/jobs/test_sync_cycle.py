"""run_sync_cycle's own duties: the discovery cache, failing and throttled containers, start-up checks.

The store is not their subject (the acceptance test and the data map tests run on both backends): SQLite only.
"""

from pathlib import Path
from typing import cast

import pytest
from pydantic import SecretStr
from sqlalchemy import update

from app.config import Settings
from app.models import Customer
from app.policy import default_policy
from app.policy.schemas import LabelNames, Labels
from connectors.graph.connector import GraphConnector
from emulator.mail.store import MSIP_LABELS_PROPERTY
from jobs.sync import Guest, SyncConfigurationError, SyncRuntime, guests_by_customer, run_sync_cycle
from tests.jobs.live import TINY_SEED, sqlite_store_at, world


async def test_discovery_is_cached_until_its_interval_passes(tmp_path: Path) -> None:
    async with world(sqlite_store_at(tmp_path), TINY_SEED) as w:
        first = await run_sync_cycle(w.sessions, w.live.connector, w.runtime)
        assert (first.discovered, first.mailboxes, first.errors) == (True, len(w.tenant.staff), [])
        second = await run_sync_cycle(w.sessions, w.live.connector, w.runtime)
        assert second.discovered is False
        w.runtime.discovery_interval_s = 0
        await w.live.clear_requests()
        third = await run_sync_cycle(w.sessions, w.live.connector, w.runtime)
        assert third.discovered is True
        paths = [record["path"] for record in await w.live.requests()]
        assert any("/sites/getAllSites" in path for path in paths)


async def test_a_failing_container_is_reported_and_the_others_still_sync(tmp_path: Path) -> None:
    async with world(sqlite_store_at(tmp_path), TINY_SEED) as w:
        broken = w.tenant.staff[0].id
        fault = await w.live.control.post(
            "/faults",
            json={"path": f"/users/{broken}/mailFolders.*/messages/delta", "status": 403, "code": "ErrorAccessDenied"},
        )
        assert fault.status_code == 201
        report = await run_sync_cycle(w.sessions, w.live.connector, w.runtime)
        assert report.errors, "the broken mailbox was not reported"
        assert all(error.startswith(f"mail:{broken}:") for error in report.errors)
        assert await w.rows(container_id=broken) == []
        others = [row for row in await w.rows(kind="message") if row.container_id != broken]
        assert others, "the healthy mailboxes were not synced"
        assert report.labels.applied > 0


async def test_a_container_throttled_for_minutes_is_parked_until_it_is_due(tmp_path: Path) -> None:
    async with world(sqlite_store_at(tmp_path), TINY_SEED) as w:
        discovery = await w.runtime.discover(w.live.connector)
        drive = discovery.drives[0]
        fault = await w.live.control.post(
            "/faults",
            json={"path": f"/drives/{drive.drive_id}/", "status": 429, "retry_after": 300, "times": 1},
        )
        assert fault.status_code == 201
        first = await run_sync_cycle(w.sessions, w.live.connector, w.runtime)
        unit = f"drive:{drive.drive_id}"
        assert unit in first.parked
        assert await w.live.connector.transport.park_store.not_before(unit) is not None
        await w.live.clear_requests()
        second = await run_sync_cycle(w.sessions, w.live.connector, w.runtime)
        assert unit in second.parked
        assert not [r for r in await w.live.requests() if drive.drive_id in r["path"]]


async def test_a_customer_who_asks_not_to_be_disclosed_has_its_items_raised(tmp_path: Path) -> None:
    async with world(sqlite_store_at(tmp_path), TINY_SEED) as w:
        await run_sync_cycle(w.sessions, w.live.connector, w.runtime)
        customer = next(c for c in w.tenant.customers if not c.do_not_disclose)
        async with w.sessions() as session, session.begin():
            await session.execute(update(Customer).where(Customer.id == customer.id).values(do_not_disclose=True))
        report = await run_sync_cycle(w.sessions, w.live.connector, w.runtime)
        highly = w.runtime.labels.by_category["highly_confidential"]
        assert report.datamap.protected > 0
        assert report.labels.applied == report.datamap.protected
        with w.tenant.lock:
            files = [i for i in w.tenant.files.items.values() if customer.id in i.truth_customers and not i.is_folder]
            assert files
            assert all(item.label is not None and item.label.label_id == highly.id for item in files)
            for _, message in w.tenant.mail.truth(customer.id):
                assert f"MSIP_Label_{highly.id}_Enabled=true" in (message.ext_value(MSIP_LABELS_PROPERTY) or "")


async def test_the_runtime_refuses_a_policy_naming_labels_the_tenant_lacks(tmp_path: Path) -> None:
    async with world(sqlite_store_at(tmp_path), TINY_SEED) as w:
        policy = default_policy().model_copy(update={"labels": Labels(names=LabelNames(confidential="Secret"))})
        with pytest.raises(
            SyncConfigurationError, match="labels.names.confidential: no sensitivity label named 'Secret'"
        ):
            await SyncRuntime.start(w.live.connector, w.live.settings, policy=policy)


async def test_production_needs_an_identifier_hash_key() -> None:
    settings = Settings(
        _env_file=None,
        env="production",
        tenant_id="6f1d3c8e-2b7a-4e55-9a0c-1d2e3f405162",
        client_id="0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b",
        client_secret=SecretStr("from-the-vault"),
        api_audience=["0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b"],
    )
    # Refused before the first Graph call: the connector is never touched.
    with pytest.raises(SyncConfigurationError, match="STEWARD_IDENTIFIER_HASH_KEY"):
        await SyncRuntime.start(cast(GraphConnector, object()), settings)


def test_guests_belong_to_the_customer_whose_contact_or_domain_they_are() -> None:
    customers = [
        Customer(id="G1", legal_name="One", domains=["one.example"], contacts=[{"email": "lan@gmail.com"}]),
        Customer(id="G2", legal_name="Two", domains=["two.example"], contacts=[]),
    ]
    guests = [
        Guest("guest-lan", "Lan@Gmail.com"),
        Guest("guest-two", "someone@two.example"),
        Guest("guest-stranger", "x@elsewhere.example"),
        Guest("guest-nomail", None),
    ]
    assert guests_by_customer(customers, guests) == {"G1": ["guest-lan"], "G2": ["guest-two"]}
