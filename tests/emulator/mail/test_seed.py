"""The seeded mail: consistent with customer profiles, identifiers as ground truth, deterministic, and small."""

from __future__ import annotations

import random
import re
import tracemalloc
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from stdnum.vn import mst

from emulator.mail import content
from emulator.mail.seed import seed_mail
from emulator.mail.store import MailStore, to_epoch
from emulator.seed import SeedConfig, build_tenant
from emulator.state import Tenant
from tests.emulator.conftest import SMALL


def test_every_staff_user_has_a_mailbox_with_a_customer_folder(tenant: Tenant):
    assert set(tenant.mail.mailboxes) == {u.id for u in tenant.staff}
    names = {mb.by_name["inbox"].children[0].display_name for mb in tenant.mail.mailboxes.values()}
    assert names == {"Khách hàng", "Customers"}
    filed = sum(mb.by_name["inbox"].children[0].total for mb in tenant.mail.mailboxes.values())
    assert filed > 0


def test_customer_mail_matches_each_profile(tenant: Tenant):
    truth = tenant.mail.truth_by_customer()
    year_ago = to_epoch(tenant.now - timedelta(days=365))
    for customer in tenant.customers:
        messages = [m for _, m in truth[customer.id]]
        newest = max(m.received for m in messages)
        # The newest mail with a customer is its last activity, to the second; nothing is later.
        assert newest == to_epoch(customer.last_activity_at), customer.id
        if customer.profile == "silent":
            assert newest < year_ago
        if customer.profile == "active":
            assert newest > to_epoch(tenant.now - timedelta(days=61))
        assert min(m.received for m in messages) >= to_epoch(tenant.now - timedelta(days=30 * 24 + 31))


def test_participants_and_folders(tenant: Tenant):
    domains = {c.id: c.domains[0] for c in tenant.customers}
    shared = []
    for mailbox in tenant.mail.mailboxes.values():
        for message in mailbox.messages():
            people = {message.sender[1], *(a for _, a in message.to + message.cc)}
            if message.truth_customers:
                for customer_id in message.truth_customers:
                    assert any(p.endswith("@" + domains[customer_id]) for p in people)
                if len(message.truth_customers) == 2:
                    shared.append(message)
                incoming = message.sender[1] != mailbox.address
                if incoming:
                    inbox = mailbox.by_name["inbox"]
                    assert message.folder is inbox or message.folder.parent is inbox
                else:
                    assert message.folder.well_known == "sentitems"
            else:
                # Internal mail and newsletters: no customer domain anywhere.
                assert not any(p.endswith("@" + d) for p in people for d in domains.values())
    assert shared
    assert len({id(m.thread) for m in shared}) == 1  # exactly one shared thread


def test_bodies_carry_the_identifiers_the_truth_names(tenant: Tenant):
    kinds: set[str] = set()
    for _, message in (row for rows in tenant.mail.truth_by_customer().values() for row in rows):
        text = content.body_text(message)
        for kind, value in message.truth_identifiers:
            kinds.add(kind)
            assert value in text
            if kind == "mst":
                assert mst.is_valid(value)
            if kind == "mst_invalid":
                assert not mst.is_valid(value)
            if kind == "cccd":
                assert re.fullmatch(r"\d{12}", value)
            if kind == "phone":
                assert re.fullmatch(r"(\+84 \d{2}|0\d{2}) \d{3} \d{4}", value)
            if kind == "contract":
                assert re.fullmatch(r"HĐ-\d{4}/\d{4}", value)
    assert {"mst", "cccd", "phone", "contract"} <= kinds
    for mailbox in tenant.mail.mailboxes.values():
        for message in mailbox.messages():
            if not message.truth_customers:
                assert message.truth_identifiers == ()


def test_same_seed_same_mail_and_other_seed_other_mail():
    def fingerprint(tenant: Tenant) -> list[tuple[str, str, str, int]]:
        return sorted(
            (mailbox.immutable_id(m), mailbox.rest_id(m), content.subject_of(m), m.received)
            for mailbox in tenant.mail.mailboxes.values()
            for m in mailbox.messages()
        )

    # Dates are relative to the build's clock, so pin it: two builds may straddle a second boundary.
    pinned = replace(SMALL, now=datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    first, second = build_tenant(pinned), build_tenant(pinned)
    assert fingerprint(first) == fingerprint(second)
    assert content.body_text(first.mail.truth("C0001")[0][1]) == content.body_text(second.mail.truth("C0001")[0][1])
    other = build_tenant(replace(pinned, seed=SMALL.seed + 1))
    assert {i for i, *_ in fingerprint(other)}.isdisjoint({i for i, *_ in fingerprint(first)})


def test_hundred_thousand_messages_seed_in_modest_memory():
    """A capacity check, not a timing one: 100k+ messages over 20+ mailboxes stay well under 250 MB."""
    directory_only = SeedConfig(
        seed=3,
        customers=400,
        staff=24,
        threads_per_customer=0,
        internal_messages_per_mailbox=0,
        files_per_customer=0,
        internal_files_per_drive=0,
    )
    tenant = build_tenant(directory_only)
    tenant.mail = MailStore()
    volume = SeedConfig(
        seed=3,
        customers=400,
        staff=24,
        threads_per_customer=50,
        messages_per_thread=5,
        internal_messages_per_mailbox=40,
    )
    tracemalloc.start()
    try:
        seed_mail(tenant, random.Random(3), volume)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert tenant.mail.message_count() >= 100_000
    assert len(tenant.mail.mailboxes) >= 20
    assert peak < 250 * 1024 * 1024
    # Every customer is still consistent at volume.
    newest: dict[str, int] = {}
    for mailbox in tenant.mail.mailboxes.values():
        for message in mailbox.messages():
            for customer_id in message.truth_customers:
                newest[customer_id] = max(newest.get(customer_id, 0), message.received)
    assert newest == {c.id: to_epoch(c.last_activity_at) for c in tenant.customers}
