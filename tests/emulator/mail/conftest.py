"""Helpers for the mail tests: the busiest staff mailbox and change-event capture."""

from __future__ import annotations

import pytest

from emulator.mail.store import Mailbox, Message
from emulator.state import ChangeEvent, Tenant, User


@pytest.fixture
def owner(tenant: Tenant) -> User:
    """The staff member whose mailbox holds the most customer mail."""
    return max(tenant.staff, key=lambda u: tenant.mail.mailboxes[u.id].by_name["inbox"].total)


@pytest.fixture
def mailbox(tenant: Tenant, owner: User) -> Mailbox:
    return tenant.mail.mailboxes[owner.id]


@pytest.fixture
def events(tenant: Tenant) -> list[ChangeEvent]:
    captured: list[ChangeEvent] = []
    tenant.change_listeners.append(captured.append)
    return captured


def customer_message(mailbox: Mailbox, folder: str = "inbox") -> Message:
    """The newest message holding customer data in a folder."""
    return next(m for m in mailbox.by_name[folder].newest_first() if m.truth_customers)
