"""The labeler against the local tenant over HTTPS: never downgrading, a person's label, 402/423 outcomes,
resuming an accepted job after a restart, mail labels, and types that cannot carry a label.

The store is not their subject (the acceptance test in tests/jobs runs on both backends): SQLite only.
"""

from pathlib import Path

from sqlalchemy import update

from app.labeling.service import LabelCounters, Labeler
from app.models import DatamapItem, LabelState
from app.policy.schemas import Labels
from emulator.files.store import DriveItem, LabelAssignment
from emulator.mail.store import MSIP_LABELS_PROPERTY
from emulator.state import Customer
from tests.jobs.live import World, sqlite_store_at, world


def _ordinary_customer(w: World) -> Customer:
    return next(c for c in w.tenant.customers if not c.do_not_disclose and c.guest_user_ids)


def _files_of(w: World, customer: Customer) -> list[DriveItem]:
    # Retention labels do not stop a sensitivity label; locked files and earlier labels would change the story.
    roles = ("double_key_encrypted", "record_locked", "manual_highly_confidential", "labelled_confidential")
    special = {item_id for role in roles for item_id in w.tenant.files.special.get(role, [])}
    with w.tenant.lock:
        return sorted(
            (
                i
                for i in w.tenant.files.items.values()
                if i.truth_customers == (customer.id,) and not i.is_folder and i.alive and i.id not in special
            ),
            key=lambda i: i.id,
        )


async def _sync_files_of(w: World, customer: Customer) -> None:
    discovery = w.runtime.discovery or await w.runtime.discover(w.live.connector)
    drive_ids = {item.drive_id for item in _files_of(w, customer)}
    sync = await w.datamap_sync()
    for drive in discovery.drives:
        if drive.drive_id in drive_ids:
            await sync.sync_drive(drive)


def _labeler(w: World, *, override_manual: bool = False) -> Labeler:
    policy = w.runtime.policy
    if override_manual:
        policy = policy.model_copy(update={"labels": Labels(override_manual_labels=True)})
    return Labeler(w.sessions, w.live.connector, labels=w.runtime.labels, policy=policy, tenant_id=w.runtime.tenant_id)


def _label_id(w: World, name: str) -> str:
    label = w.tenant.label_by_name(name)
    assert label is not None
    return label.id


def _carried(w: World, item_id: str) -> tuple[str | None, str | None]:
    with w.tenant.lock:
        label = w.tenant.files.items[item_id].label
        if label is None:
            return None, None
        name = next((known.name for known in w.tenant.labels if known.id == label.label_id), "foreign")
        return name, label.method


def _by_hand(item: DriveItem, label_id: str) -> None:
    item.label = LabelAssignment(label_id, "privileged", item.modified_by, item.modified, manual=True)


async def _state(w: World, item_id: str) -> tuple[str, str | None]:
    [row] = await w.rows(item_id=item_id)
    return row.label_state, row.label_reason


async def test_labels_people_chose_are_kept_or_raised_as_the_policy_says(tmp_path: Path) -> None:
    async with world(sqlite_store_at(tmp_path)) as w:
        customer = _ordinary_customer(w)
        higher, lower, foreign, plain = _files_of(w, customer)[:4]
        with w.tenant.lock:
            _by_hand(w.tenant.files.items[higher.id], _label_id(w, "Highly Confidential"))
            _by_hand(w.tenant.files.items[lower.id], _label_id(w, "General"))
            _by_hand(w.tenant.files.items[foreign.id], "6f0c5b7e-0000-4000-8000-00000000f0e1")
        await _sync_files_of(w, customer)
        await _labeler(w).run()
        assert await _state(w, higher.id) == (LabelState.kept_higher, "higher_label_kept")
        assert await _state(w, lower.id) == (LabelState.skipped, "manual_label_kept")
        assert await _state(w, foreign.id) == (LabelState.skipped, "foreign_label")
        assert await _state(w, plain.id) == (LabelState.labeled, "applied")
        assert _carried(w, higher.id) == ("Highly Confidential", "privileged")
        assert _carried(w, lower.id) == ("General", "privileged")
        assert _carried(w, foreign.id) == ("foreign", "privileged")
        assert _carried(w, plain.id)[0] == "Confidential"

        # A policy that may replace a person's lower label raises it, and still never touches the higher one.
        chosen = [item.id for item in (higher, lower, foreign, plain)]
        async with w.sessions() as session, session.begin():
            await session.execute(
                update(DatamapItem).where(DatamapItem.item_id.in_(chosen)).values(label_state=LabelState.pending)
            )
        counters = await _labeler(w, override_manual=True).run()
        assert (counters.applied, counters.already_labeled, counters.kept_higher, counters.skipped) == (1, 1, 1, 1)
        assert await _state(w, lower.id) == (LabelState.labeled, "applied")
        assert await _state(w, foreign.id) == (LabelState.skipped, "foreign_label")
        assert _carried(w, lower.id)[0] == "Confidential"
        assert _carried(w, higher.id)[0] == "Highly Confidential"


async def test_a_402_stops_file_labeling_for_the_cycle(tmp_path: Path) -> None:
    async with world(sqlite_store_at(tmp_path)) as w:
        customer = _ordinary_customer(w)
        await _sync_files_of(w, customer)
        assert (await w.live.control.put("/billing", json={"metered": False})).status_code == 200
        await w.live.clear_requests()
        counters = await _labeler(w).run()
        assert (counters.stopped, counters.failed, counters.applied) == ("payment_required", 1, 0)
        due = [(row.label_state, row.label_reason) for row in await w.rows(kind="file") if row.target_label_id]
        assert due.count((LabelState.failed, "payment_required")) == 1
        assert due.count((LabelState.pending, None)) == len(due) - 1 > 0  # left for a later cycle
        assigns = await w.live.requests(method="POST")
        assert [r["path"].rsplit("/", 1)[-1] for r in assigns].count("assignSensitivityLabel") == 1


async def test_locked_files_fail_for_good_or_wait_for_a_later_cycle(tmp_path: Path) -> None:
    async with world(sqlite_store_at(tmp_path)) as w:
        customer = _ordinary_customer(w)
        double_key, deferred = _files_of(w, customer)[:2]
        for item, reason in ((double_key, "fileDoubleKeyEncrypted"), (deferred, "fileDecryptionDeferred")):
            response = await w.live.control.put(f"/files/items/{item.id}/lock", json={"reason": reason})
            assert response.status_code == 200, response.text
        await _sync_files_of(w, customer)
        counters = await _labeler(w).run()
        assert (counters.failed, counters.deferred) == (1, 1)
        assert await _state(w, double_key.id) == (LabelState.failed, "locked")
        assert await _state(w, deferred.id) == (LabelState.deferred, "decryption_deferred")
        assert _carried(w, double_key.id) == (None, None)
        # Once the file can be opened, the next cycle labels it.
        assert (await w.live.control.delete(f"/files/items/{deferred.id}/lock")).status_code == 200
        again = await _labeler(w).run()
        assert again.applied == 1
        assert _carried(w, deferred.id)[0] == "Confidential"


async def test_an_accepted_job_is_resumed_after_a_restart_not_assigned_again(tmp_path: Path) -> None:
    async with world(sqlite_store_at(tmp_path)) as w:
        customer = _ordinary_customer(w)
        await _sync_files_of(w, customer)
        slow = await w.live.control.patch("/files/settings", json={"labelOperationDelaySeconds": 3600})
        assert slow.status_code == 200
        first: LabelCounters = await _labeler(w).run()
        files = [row for row in await w.rows(kind="file") if row.target_label_id]
        assert first.in_progress == len(files) > 0
        assert all(row.label_state == LabelState.in_progress and row.label_monitor_url for row in files)
        with w.tenant.lock:
            for operation in w.tenant.files.pending_operations.values():
                operation.due_at = 0.0  # SharePoint finished the jobs while Steward was down
        await w.live.clear_requests()
        second = await _labeler(w).run()
        assert second.applied == len(files)
        resumed = [row for row in await w.rows(kind="file") if row.target_label_id]
        assert all(row.label_state == LabelState.labeled and row.label_monitor_url is None for row in resumed)
        posts = [r for r in await w.live.requests() if r["method"] == "POST"]
        assert posts == [], "a job accepted before the restart was assigned (and paid for) again"
        for row in files:
            assert _carried(w, row.item_id)[0] == w.runtime.labels.by_id[row.target_label_id or ""].name


async def test_mail_keeps_a_higher_label_a_person_chose(tmp_path: Path) -> None:
    async with world(sqlite_store_at(tmp_path)) as w:
        customer = _ordinary_customer(w)
        with w.tenant.lock:
            [(mailbox, chosen), (_, plain)] = [
                (mb, m) for mb, m in w.tenant.mail.truth(customer.id) if m.truth_customers == (customer.id,)
            ][:2]
            chosen_id, plain_id = mailbox.immutable_id(chosen), mailbox.immutable_id(plain)
            plain_owner = next(mb for mb, m in w.tenant.mail.truth(customer.id) if m is plain)
        highly = w.runtime.labels.by_category["highly_confidential"]
        await w.live.connector.mail.write_label(
            mailbox.user_id, chosen_id, label_id=highly.id, label_name=highly.name, tenant_id=w.runtime.tenant_id
        )
        # The person's mail client shows the label; Steward's category is not there.
        patched = await w.live.control.patch(
            f"/mail/mailboxes/{mailbox.user_id}/messages/{chosen_id}", json={"categories": []}
        )
        assert patched.status_code == 200, patched.text
        await (await w.datamap_sync()).sync_mail_folder(mailbox.user_id, chosen.folder.id)
        await (await w.datamap_sync()).sync_mail_folder(plain_owner.user_id, plain.folder.id)
        counters = await _labeler(w).run()
        assert counters.kept_higher == 1
        assert await _state(w, chosen_id) == (LabelState.kept_higher, "higher_label_kept")
        assert await _state(w, plain_id) == (LabelState.labeled, "applied")
        with w.tenant.lock:
            assert f"MSIP_Label_{highly.id}_Enabled=true" in (chosen.ext_value(MSIP_LABELS_PROPERTY) or "")
            confidential = w.runtime.labels.by_category["confidential"]
            assert f"MSIP_Label_{confidential.id}_Enabled=true" in (plain.ext_value(MSIP_LABELS_PROPERTY) or "")
            assert "Steward: Confidential" in plain.categories


async def test_files_that_cannot_carry_a_label_are_skipped_without_asking_graph(tmp_path: Path) -> None:
    async with world(sqlite_store_at(tmp_path)) as w:
        customer = _ordinary_customer(w)
        with w.tenant.lock:
            site = w.tenant.files.sites[customer.site_id or ""]
            drive_id = site.drive_ids[0]
        added = await w.live.control.post(
            f"/files/drives/{drive_id}/items",
            json={"name": "ghi-chu.txt", "asUser": w.tenant.staff[0].id, "text": "Ghi chú cuộc họp"},
        )
        assert added.status_code == 201, added.text
        note_id = added.json()["id"]
        await (await w.datamap_sync()).sync_drive(await w.drive_of_site(site.id))
        await w.live.clear_requests()
        await _labeler(w).run()
        assert await _state(w, note_id) == (LabelState.skipped, "unsupported_type")
        assert not [r for r in await w.live.requests() if note_id in r["path"]]
