"""The data map sync against the local tenant over HTTPS: metadata only, changes, removals, moves, resumption,
resync reconciliation, and the cursor committed with the page's items."""

import hashlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from app.datamap.repository import SyncCursorRepository
from app.models import DatamapItem, SyncCursor
from connectors.base import Forbidden
from emulator.files.store import DriveItem
from emulator.mail import content
from emulator.mail.store import Mailbox, MailFolder
from emulator.state import Tenant
from tests.conftest import Database
from tests.jobs.live import world


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _biggest_folder(tenant: Tenant) -> tuple[Mailbox, MailFolder]:
    return max(
        ((mailbox, folder) for mailbox in tenant.mail.mailboxes.values() for folder in mailbox.folders.values()),
        key=lambda pair: len(pair[1].messages),
    )


def _customer_file(tenant: Tenant, *, index: int = 0) -> DriveItem:
    customer = tenant.customers[index]
    return next(
        item
        for item in tenant.files.items.values()
        if item.truth_customers == (customer.id,) and not item.is_folder and item.name.endswith(".docx")
    )


async def test_the_map_holds_metadata_and_hashes_only(empty_database: Database) -> None:
    async with world(empty_database) as w:
        await w.sync_all()
        rows = await w.rows()
        names = {item.id: item.name for item in w.tenant.files.items.values()}
        subjects = {
            mailbox.immutable_id(message): content.subject_of(message)
            for mailbox in w.tenant.mail.mailboxes.values()
            for message in mailbox.messages()
        }
        for row in rows:
            expected = names[row.item_id] if row.kind == "file" else subjects[row.item_id]
            assert row.name_hash == _sha(expected)
        dump = " ".join(str(getattr(row, column.key)) for row in rows for column in DatamapItem.__table__.columns)
        for text in [*names.values(), *subjects.values()]:
            assert text not in dump
        for customer in w.tenant.customers:
            assert customer.tax_code not in dump
            assert all(contact.phone not in dump for contact in customer.contacts)
        scanned = [row for row in rows if row.findings]
        assert scanned, "no identifier was found in any content"
        assert all(set(finding["value_hash"]) <= set("0123456789abcdef") for row in scanned for finding in row.findings)


async def test_changes_removals_and_moves_follow_the_delta_feed(empty_database: Database) -> None:
    async with world(empty_database) as w:
        await w.sync_all()
        control = w.live.control
        first, second = w.tenant.customers[0], w.tenant.customers[1]
        guest = first.guest_user_ids[0]
        edited = _customer_file(w.tenant, index=0)
        text = f"Biên bản đối chiếu. Mã số thuế (MST): {second.tax_code}."
        response = await control.patch(f"/files/items/{edited.id}", json={"asUser": guest, "text": text})
        assert response.status_code == 200, response.text
        doomed = _customer_file(w.tenant, index=2)
        assert (await control.delete(f"/files/items/{doomed.id}")).status_code == 204
        mailbox, folder = _biggest_folder(w.tenant)
        moved, purged = list(folder.messages.values())[:2]
        moved_id, purged_id = mailbox.immutable_id(moved), mailbox.immutable_id(purged)
        base = f"/mail/mailboxes/{mailbox.user_id}/messages"
        assert (await control.delete(f"{base}/{moved_id}", params={"mode": "deleteditems"})).status_code == 204
        assert (await control.delete(f"{base}/{purged_id}", params={"mode": "purge"})).status_code == 204

        counters = await w.sync_all()
        assert (counters.removed, counters.content_read) == (2, 1)
        assert await w.rows(item_id=doomed.id) == []
        assert await w.rows(item_id=purged_id) == []
        [moved_row] = await w.rows(item_id=moved_id)
        assert moved_row.folder_id == mailbox.by_name["deleteditems"].id
        links = await w.links(edited.id)
        assert set(links) == {first.id, second.id}
        assert "modified_by.guest" in links[first.id]
        assert links[second.id] == ["identifier.tax_code"]
        with w.tenant.lock:
            edited_at = w.tenant.files.items[edited.id].modified.replace(microsecond=0)
        assert (await w.customer(first.id)).last_file_at == edited_at


async def test_an_interrupted_folder_sync_resumes_from_its_stored_page(empty_database: Database) -> None:
    async with world(empty_database) as w:
        mailbox, folder = _biggest_folder(w.tenant)
        assert len(folder.messages) >= 5
        sync = await w.datamap_sync(mail_page_size=2)
        fault = await w.live.control.post(
            "/faults",
            json={
                "path": f"/users/{mailbox.user_id}/mailFolders.*/messages/delta",
                "status": 403,
                "code": "ErrorAccessDenied",
                "on_nth": 3,
                "times": 1,
            },
        )
        assert fault.status_code == 201, fault.text
        with pytest.raises(Forbidden):
            await sync.sync_mail_folder(mailbox.user_id, folder.id)
        assert len(await w.rows(folder_id=folder.id)) == 4  # two pages stored with their cursor
        await w.live.clear_requests()
        await sync.sync_mail_folder(mailbox.user_id, folder.id)
        rows = await w.rows(folder_id=folder.id)
        assert sorted(row.item_id for row in rows) == sorted(mailbox.immutable_id(m) for m in folder.messages.values())
        requests = await w.live.requests(path_prefix=f"/v1.0/users/{mailbox.user_id}")
        assert "skiptoken" in requests[0]["query"].lower(), "the resumed sync started over instead of resuming"


async def test_a_page_and_its_cursor_are_stored_together_or_not_at_all(
    empty_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world(empty_database) as w:
        mailbox, folder = _biggest_folder(w.tenant)
        sync = await w.datamap_sync()
        key = f"mail:{mailbox.user_id}:{folder.id}"
        original = SyncCursorRepository.save

        async def crash(self: SyncCursorRepository, cursor_key: str, cursor: object) -> None:
            raise RuntimeError("power cut")

        monkeypatch.setattr(SyncCursorRepository, "save", crash)
        with pytest.raises(RuntimeError, match="power cut"):
            await sync.sync_mail_folder(mailbox.user_id, folder.id)
        assert await w.rows(folder_id=folder.id) == []
        async with w.sessions() as session:
            assert await SyncCursorRepository(session).load(key) is None
        monkeypatch.setattr(SyncCursorRepository, "save", original)
        await sync.sync_mail_folder(mailbox.user_id, folder.id)
        assert len(await w.rows(folder_id=folder.id)) == len(folder.messages)


async def test_a_resync_forgets_what_the_tenant_no_longer_has(empty_database: Database) -> None:
    async with world(empty_database) as w:
        await w.sync_all()
        vanished = _customer_file(w.tenant, index=0)
        kept = _customer_file(w.tenant, index=1)
        with w.tenant.lock:
            # Gone without a trace in the change log: only a full enumeration can tell.
            w.tenant.files.items[vanished.id].deleted = datetime.now(UTC)
        expired = await w.live.control.post(f"/files/drives/{vanished.drive_id}/expireDeltaTokens")
        assert expired.status_code == 204
        counters = await w.sync_all()
        assert counters.removed == 1
        assert await w.rows(item_id=vanished.id) == []
        assert len(await w.rows(item_id=kept.id)) == 1
        same_drive = await w.rows(container_id=vanished.drive_id)
        with w.tenant.lock:
            alive = {
                i.id
                for i in w.tenant.files.items.values()
                if i.drive_id == vanished.drive_id and i.alive and not i.is_folder
            }
        assert {row.item_id for row in same_drive} == alive
        async with w.sessions() as session:
            cursor = (
                await session.execute(select(SyncCursor).where(SyncCursor.resource_key == f"drive:{vanished.drive_id}"))
            ).scalar_one()
            assert (cursor.is_delta, cursor.is_resync, cursor.resync_started_at) == (True, False, None)
            assert (await session.execute(select(func.count()).select_from(DatamapItem))).scalar_one() > 0
