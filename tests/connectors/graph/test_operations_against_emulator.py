"""The typed operations end to end against the local tenant over HTTPS, checked against its ground truth."""

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from connectors.base import NotFound, PreconditionFailed
from connectors.graph.mail import OutgoingMail
from emulator.security import held_user_ids
from emulator.state import Tenant
from tests.connectors.graph.conftest import LiveGraph


def _item(tenant: Tenant, role: str) -> tuple[str, str]:
    with tenant.lock:
        item = tenant.files.items[tenant.files.special[role][0]]
        return item.drive_id, item.id


def _unlabelled_document(tenant: Tenant) -> tuple[str, str]:
    with tenant.lock:
        item = next(
            i
            for i in tenant.files.items.values()
            if i.alive and i.name.endswith(".docx") and i.label is None and not i.locked
        )
        return item.drive_id, item.id


def _first_message(tenant: Tenant) -> tuple[str, str]:
    with tenant.lock:
        user_id = next(u.id for u in tenant.staff if tenant.mail.mailbox(u.id))
        mailbox = tenant.mail.mailbox(user_id)
        assert mailbox is not None
        inbox = mailbox.folder("inbox")
        assert inbox is not None
        message = next(iter(inbox.messages.values()))
        return user_id, mailbox.immutable_id(message)


async def _label_id(live_graph: LiveGraph, name: str) -> str:
    labels = await live_graph.connector.labels.tenant_labels()
    return next(label.id for label in labels if label.name == name)


async def test_assigning_a_label_completes_through_the_monitor_and_reads_back(live_graph: LiveGraph) -> None:
    settings = await live_graph.control.patch("/files/settings", json={"labelOperationDelaySeconds": 0})
    assert settings.status_code == 200
    drive_id, item_id = _unlabelled_document(live_graph.tenant)
    confidential = await _label_id(live_graph, "Confidential")
    outcome = await live_graph.connector.labels.assign(drive_id, item_id, confidential)
    assert (outcome.status, outcome.code) == ("applied", None)
    assert await live_graph.connector.labels.has_label(drive_id, item_id, confidential)
    with live_graph.tenant.lock:
        assigned = live_graph.tenant.files.items[item_id].label
    assert assigned is not None
    assert assigned.label_id == confidential


async def test_label_refusals_are_outcomes(live_graph: LiveGraph) -> None:
    confidential = await _label_id(live_graph, "Confidential")
    drive_id, locked_id = _item(live_graph.tenant, "double_key_encrypted")
    locked = await live_graph.connector.labels.assign(drive_id, locked_id, confidential)
    assert (locked.status, locked.code, locked.is_permanent) == ("locked", "fileDoubleKeyEncrypted", True)
    billing = await live_graph.control.put("/billing", json={"metered": False})
    assert billing.status_code == 200
    drive_id, item_id = _unlabelled_document(live_graph.tenant)
    unpaid = await live_graph.connector.labels.assign(drive_id, item_id, confidential)
    assert (unpaid.status, unpaid.code) == ("payment_required", "paymentRequired")


async def test_the_mail_label_round_trips_through_outlook(live_graph: LiveGraph) -> None:
    user_id, message_id = _first_message(live_graph.tenant)
    confidential = await _label_id(live_graph, "Confidential")
    written = await live_graph.connector.mail.write_label(
        user_id, message_id, label_id=confidential, label_name="Confidential", tenant_id=live_graph.tenant.tenant_id
    )
    assert written.category == "Steward: Confidential"
    assert await live_graph.connector.mail.read_label(user_id, message_id) == written
    with live_graph.tenant.lock:
        mailbox = live_graph.tenant.mail.mailbox(user_id)
        assert mailbox is not None
        stored = mailbox.resolve(message_id)
        assert stored is not None
        header = stored.ext_value("String {00020386-0000-0000-C000-000000000046} Name msip_labels")
    assert header is not None
    assert f"MSIP_Label_{confidential}_Enabled=true" in header


async def test_file_deletes_honour_etags_and_settle_repeats_by_reading(live_graph: LiveGraph) -> None:
    files = live_graph.connector.files
    drive_id, item_id = _item(live_graph.tenant, "retention_delete_allowed")
    label = await files.retention_label(drive_id, item_id)
    assert label is not None
    assert label.name == "Working file"
    assert not label.blocks_deletion
    record_drive, record_id = _item(live_graph.tenant, "record_locked")
    record_label = await files.retention_label(record_drive, record_id)
    assert record_label is not None
    assert record_label.blocks_deletion
    item = await files.get_item(drive_id, item_id)
    with pytest.raises(PreconditionFailed):
        await files.delete(drive_id, item_id, etag='"{00000000-0000-0000-0000-000000000000},1"')
    assert await files.item_exists(drive_id, item_id)
    deleted = await files.delete(drive_id, item_id, etag=item.e_tag)
    assert deleted.status == "applied"
    with pytest.raises(NotFound):
        await files.get_item(drive_id, item_id)
    repeated = await files.permanent_delete(drive_id, item_id)
    assert (repeated.status, repeated.settled_by_read) == ("already_applied", True)


async def test_messages_move_keep_their_immutable_id_and_an_ambiguous_purge_is_settled(live_graph: LiveGraph) -> None:
    mail = live_graph.connector.mail
    user_id, message_id = _first_message(live_graph.tenant)
    moved = await mail.move(user_id, message_id, destination_folder="deleteditems")
    assert moved.id == message_id
    # The purge's response is lost to a gateway timeout before Graph runs it: the state says "still there".
    await live_graph.fault(method="POST", path="/permanentDelete$", status=504, times=1)
    purged = await mail.permanent_delete(user_id, message_id)
    assert (purged.status, purged.settled_by_read) == ("applied", True)
    assert not await mail.message_exists(user_id, message_id)
    posts = await live_graph.requests(method="POST", mailbox=user_id)
    assert [r["status"] for r in posts if r["path"].endswith("/permanentDelete")] == [504, 204]


async def test_send_mail_leaves_through_the_mailbox(live_graph: LiveGraph) -> None:
    user_id, _ = _first_message(live_graph.tenant)
    customer = live_graph.tenant.customers[0].contacts[0].email
    result = await live_graph.connector.mail.send_mail(
        user_id, OutgoingMail(to=[customer], subject="Thông báo xoá dữ liệu", body="Kính gửi quý khách ...")
    )
    assert result.status == "applied"
    outbox = (await live_graph.control.get("/mail/outbox")).json()
    assert any(customer in str(record) for record in outbox)


async def test_posture_reads_match_the_tenant(live_graph: LiveGraph) -> None:
    tenant = live_graph.tenant
    holds = await live_graph.connector.posture.holds()
    with tenant.lock:
        held_mail = {tenant.users[user_id].mail.lower() for user_id in held_user_ids(tenant)}
        registered = {u.id: u.is_mfa_registered for u in tenant.users.values() if u.user_type == "Member"}
    assert holds.held_mailboxes() == held_mail
    details = [d async for page in live_graph.connector.posture.mfa_registration() for d in page.items]
    assert {d.id: d.is_mfa_registered for d in details if d.id in registered} == registered


@pytest.fixture
def webhook() -> Iterator[str]:
    """A notification receiver that answers Graph's validation handshake (plain HTTP on 127.0.0.1)."""

    async def receive(request: Request) -> Response:
        token = request.query_params.get("validationToken")
        if token is not None:
            return PlainTextResponse(token)
        return Response(status_code=202)

    app = Starlette(routes=[Route("/hooks/graph", receive, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/hooks/graph"
    server.should_exit = True
    thread.join(timeout=10)


async def test_subscriptions_are_created_renewed_and_deleted(live_graph: LiveGraph, webhook: str) -> None:
    allowed = await live_graph.control.put("/subscriptions/settings", json={"allow_http_notification_urls": True})
    assert allowed.status_code == 200
    subscriptions = live_graph.connector.subscriptions
    user_id, _ = _first_message(live_graph.tenant)
    # Graph checks expiry against its own (real) clock.
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    created = await subscriptions.create(
        resource=f"users/{user_id}/mailFolders('inbox')/messages",
        change_types=["created", "updated"],
        notification_url=webhook,
        expires_at=expires,
        client_state="s3cret-state",
    )
    assert [s.id for s in await subscriptions.list_all()] == [created.id]
    renewed = await subscriptions.renew(created.id, expires_at=expires + timedelta(days=1))
    assert renewed.expiration_date_time == expires + timedelta(days=1)
    assert (await subscriptions.delete(created.id)).status == "applied"
    again = await subscriptions.delete(created.id)
    assert (again.status, again.settled_by_read) == ("already_applied", True)
    assert await subscriptions.list_all() == []
