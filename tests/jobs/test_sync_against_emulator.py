"""Acceptance: sync + label cycles against the seeded local tenant over HTTPS, checked against its ground truth.

After one cycle every file and message the seed marks as customer data carries the right label in the tenant's
own state (files through assignSensitivityLabel, mail through the msip_labels property), nothing else was
labeled, a label a person put on by hand that is higher than the policy's was kept, the coverage report matches
the ground truth exactly and every customer's last activity is the seed's. A second cycle with nothing changed
sends only delta requests and labels nothing.
"""

from collections import Counter
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Customer
from app.privacy.guard import Audience, DisclosureGuard
from app.reports.service import reports
from emulator.files.store import LABELABLE_EXTENSIONS, DriveItem, LabelAssignment, extension_of
from emulator.mail.store import MSIP_LABELS_PROPERTY
from emulator.seed import build_tenant
from emulator.state import Tenant
from jobs.sync import SyncRuntime, run_sync_cycle
from tests.conftest import Database
from tests.jobs.live import SYNC_SEED, fresh_store, import_registry, live_tenant

CONFIDENTIAL, HIGHLY = "Confidential", "Highly Confidential"


@dataclass(frozen=True)
class Expected:
    customers: tuple[str, ...]
    label: str | None  # the label the item must carry afterwards (None: none at all)
    outcome: str  # "labeled", or the reason the coverage report gives for skipping it


def _label_id(tenant: Tenant, name: str) -> str:
    label = tenant.label_by_name(name)
    assert label is not None
    return label.id


def _priority(tenant: Tenant, label_id: str) -> int:
    return next(label.priority for label in tenant.labels if label.id == label_id)


def _target(tenant: Tenant, customers: tuple[str, ...]) -> str:
    protected = any(customer.do_not_disclose for customer in tenant.customers if customer.id in customers)
    return HIGHLY if protected else CONFIDENTIAL


def _hand_label_higher(tenant: Tenant) -> str:
    """A person labels a file of an ordinary customer Highly Confidential in Office: Steward must keep it."""
    customer = next(c for c in tenant.customers if not c.do_not_disclose)
    special = {item_id for ids in tenant.files.special.values() for item_id in ids}
    item = next(
        i
        for i in tenant.files.items.values()
        if i.truth_customers == (customer.id,)
        and not i.is_folder
        and extension_of(i.name) in LABELABLE_EXTENSIONS
        and i.id not in special
    )
    item.label = LabelAssignment(
        label_id=_label_id(tenant, HIGHLY),
        method="privileged",
        assigned_by=item.modified_by,
        assigned_at=item.modified,
        manual=True,
    )
    return item.id


def _expected_files(tenant: Tenant) -> dict[str, Expected]:
    special = tenant.files.special
    expected = {}
    for item in tenant.files.items.values():
        if item.is_folder or not item.alive or not item.truth_customers:
            continue
        target = _target(tenant, item.truth_customers)
        outcome = _file_outcome(tenant, item, target, special)
        current = item.label.label_id if item.label else None
        label = (
            target
            if outcome == "labeled"
            else next((label.name for label in tenant.labels if label.id == current), None)
        )
        expected[item.id] = Expected(item.truth_customers, label, outcome)
    return expected


def _file_outcome(tenant: Tenant, item: DriveItem, target: str, special: dict[str, list[str]]) -> str:
    if extension_of(item.name) not in LABELABLE_EXTENSIONS:
        return "unsupported_type"
    if item.id in special.get("double_key_encrypted", []):
        return "locked"
    if item.label is not None and item.label.label_id != _label_id(tenant, target):
        if _priority(tenant, item.label.label_id) >= _priority(tenant, _label_id(tenant, target)):
            return "higher_label_kept"
    if item.id in special.get("record_locked", []):
        return "failed"  # the tenant refuses to rewrite a locked record
    return "labeled"


def _expected_messages(tenant: Tenant) -> dict[str, Expected]:
    return {
        f"{mailbox.user_id}/{mailbox.immutable_id(message)}": Expected(
            message.truth_customers, _target(tenant, message.truth_customers), "labeled"
        )
        for mailbox in tenant.mail.mailboxes.values()
        for message in mailbox.messages()
        if message.truth_customers
    }


def _mail_label(tenant: Tenant, header: str | None) -> str | None:
    if header is None:
        return None
    return next(label.name for label in tenant.labels if f"MSIP_Label_{label.id}_Enabled=true" in header)


def _check_tenant_state(tenant: Tenant, files: dict[str, Expected], messages: dict[str, Expected]) -> None:
    with tenant.lock:
        for item in tenant.files.items.values():
            if item.is_folder or not item.alive:
                continue
            carried = next(
                (label.name for label in tenant.labels if item.label and label.id == item.label.label_id), None
            )
            wanted = files[item.id].label if item.id in files else None
            assert carried == wanted, (item.name, item.truth_customers, carried, wanted)
        for mailbox in tenant.mail.mailboxes.values():
            for message in mailbox.messages():
                key = f"{mailbox.user_id}/{mailbox.immutable_id(message)}"
                carried = _mail_label(tenant, message.ext_value(MSIP_LABELS_PROPERTY))
                wanted = messages[key].label if key in messages else None
                assert carried == wanted, (key, message.truth_customers, carried, wanted)


def _expected_coverage(tenant: Tenant, expected: list[Expected]) -> dict[str, dict[str, object]]:
    per_customer: dict[str, dict[str, object]] = {}
    for customer in tenant.customers:
        mine = [e for e in expected if customer.id in e.customers]
        skipped = Counter(e.outcome for e in mine if e.outcome != "labeled")
        per_customer[customer.id] = {
            "items": len(mine),
            "labeled": sum(1 for e in mine if e.outcome == "labeled"),
            "pending": 0,
            "skipped": sum(skipped.values()),
            "skipped_reasons": dict(skipped),
        }
    return per_customer


def _unattributed(tenant: Tenant) -> int:
    files = sum(1 for i in tenant.files.items.values() if not i.is_folder and i.alive and not i.truth_customers)
    mail = sum(1 for mailbox in tenant.mail.mailboxes.values() for m in mailbox.messages() if not m.truth_customers)
    return files + mail


async def _customers(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Customer]:
    async with sessions() as session:
        from app.customers.repository import CustomerRepository

        return {customer.id: customer for customer in await CustomerRepository(session).all()}


async def test_sync_and_label_cycles_match_the_ground_truth(empty_database: Database) -> None:
    tenant = build_tenant(SYNC_SEED)
    manual_item = _hand_label_higher(tenant)
    files, messages = _expected_files(tenant), _expected_messages(tenant)
    assert files[manual_item].outcome == "higher_label_kept"
    assert {e.outcome for e in files.values()} >= {"labeled", "locked", "failed"}
    assert any(len(e.customers) > 1 for e in messages.values()), "the seed's shared thread is missing"

    async with fresh_store(empty_database) as sessions, live_tenant(tenant) as live:
        await import_registry(sessions, tenant)
        runtime = await SyncRuntime.start(live.connector, live.settings)

        first = await run_sync_cycle(sessions, live.connector, runtime)
        assert first.errors == []
        assert first.parked == []
        _check_tenant_state(tenant, files, messages)

        async with sessions() as session:
            coverage = await reports.coverage(session, DisclosureGuard(runtime.policy, Audience.STAFF))
        expected = list(files.values()) + list(messages.values())
        got = {
            c.customer_id: c.model_dump(include={"items", "labeled", "pending", "skipped", "skipped_reasons"})
            for c in coverage.customers
        }
        assert got == _expected_coverage(tenant, expected)
        assert coverage.overall.items == len(expected)
        assert coverage.overall.labeled == sum(1 for e in expected if e.outcome == "labeled")
        assert coverage.unattributed_items == _unattributed(tenant)

        customers = await _customers(sessions)
        for seeded in tenant.customers:
            assert customers[seeded.id].last_activity_at == seeded.last_activity_at.replace(microsecond=0)

        await live.clear_requests()
        second = await run_sync_cycle(sessions, live.connector, runtime)
        requests = await live.requests()
        assert requests, "the second cycle sent nothing at all"
        not_delta = [(r["method"], r["path"]) for r in requests if r["method"] != "GET" or "/delta" not in r["path"]]
        assert not_delta == []
        assert (second.labels.applied, second.datamap.content_read, second.datamap.created) == (0, 0, 0)
        assert second.errors == []
        _check_tenant_state(tenant, files, messages)
