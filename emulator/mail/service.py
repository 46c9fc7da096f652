"""Run-time mail operations shared by the Graph routes and the control plane: sending, adding, holds.

Functions raise ValueError with a Graph-worthy message on bad input; callers turn that into their own 4xx shape.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from emulator.mail.store import (
    NO_ADDRESSES,
    NO_STRINGS,
    Address,
    Mailbox,
    MailFolder,
    Message,
    OwnContent,
    SentRecord,
    normalise_property_id,
    to_epoch,
)
from emulator.state import Tenant

IMPORTANCE = {"low": "low", "normal": "normal", "high": "high"}


def utc_now() -> datetime:
    return datetime.now(UTC)


def is_on_hold(tenant: Tenant, mailbox: Mailbox) -> bool:
    """A mailbox is on hold when flagged by a control action or when it is a custodian of an active eDiscovery case."""
    if mailbox.hold:
        return True
    return any(case.status == "active" and mailbox.user_id in case.custodian_user_ids for case in tenant.hold_cases)


def customers_of(tenant: Tenant, addresses: Iterable[str]) -> tuple[str, ...]:
    """Customers whose domains appear among these addresses (the ground truth of run-time mail)."""
    domains = {address.rsplit("@", 1)[-1].lower() for address in addresses if "@" in address}
    return tuple(c.id for c in tenant.customers if any(d.lower() in domains for d in c.domains))


def parse_recipients(value: Any, field: str) -> tuple[Address, ...]:
    """A Graph recipient collection ([{"emailAddress": {"name", "address"}}]) as address tuples."""
    if value is None:
        return NO_ADDRESSES
    if not isinstance(value, list):
        raise ValueError(f"The property '{field}' must be a collection of recipients.")
    found: list[Address] = []
    for item in value:
        email = item.get("emailAddress") if isinstance(item, dict) else None
        address = email.get("address") if isinstance(email, dict) else None
        if not isinstance(address, str) or address.count("@") != 1 or " " in address.strip():
            raise ValueError(f"At least one recipient isn't valid., Recipient '{address}' isn't resolved.")
        name = email.get("name") if isinstance(email.get("name"), str) else address.strip()  # type: ignore[union-attr]
        found.append((name, address.strip()))
    return tuple(found)


def parse_extended_properties(value: Any) -> dict[str, tuple[str, str]]:
    """singleValueExtendedProperties from a request body, keyed by their comparison key."""
    if not isinstance(value, list):
        raise ValueError("singleValueExtendedProperties must be a collection.")
    parsed: dict[str, tuple[str, str]] = {}
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise ValueError("Each extended property needs an 'id'.")
        try:
            key = normalise_property_id(item["id"])
        except ValueError:
            raise ValueError(f"The extended property id '{item['id']}' is invalid.") from None
        if not isinstance(item.get("value"), str):
            raise ValueError(f"The value of extended property '{item['id']}' must be a string.")
        parsed[key] = (item["id"], item["value"])
    return parsed


def new_internet_message_id(domain: str) -> str:
    return f"<{uuid.uuid4().hex.upper()}@{domain}>"


def conversation_of(internet_message_id: str) -> str:
    digest = hashlib.blake2b(internet_message_id.encode(), digest_size=18).digest()
    return "AAQkAD" + base64.urlsafe_b64encode(digest).decode()


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A validated message to send (from a sendMail body)."""

    subject: str
    body_type: str
    body: str
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    importance: str
    categories: tuple[str, ...]
    ext: dict[str, tuple[str, str]] | None
    headers: tuple[tuple[str, str], ...]
    has_attachments: bool


def send_mail(tenant: Tenant, mailbox: Mailbox, outgoing: Outgoing, *, save_to_sent_items: bool) -> SentRecord | None:
    """Deliver to internal mailboxes, keep the Sent Items copy, and record what left the tenant."""
    now = utc_now()
    owner = tenant.users[mailbox.user_id]
    sender: Address = (owner.display_name, owner.mail)
    imid = new_internet_message_id(sender[1].rsplit("@", 1)[-1])
    conversation = conversation_of(imid)
    everyone = outgoing.to + outgoing.cc + outgoing.bcc
    truth = customers_of(tenant, [a for _, a in everyone] + [sender[1]])
    shared = OwnContent(
        subject=outgoing.subject,
        body_type=outgoing.body_type,
        body=outgoing.body,
        internet_message_id=imid,
        conversation_id=conversation,
        reply_to=outgoing.reply_to,
        headers=outgoing.headers,
    )

    def copy(folder: MailFolder, own: OwnContent, is_read: bool, lag: int) -> Message:
        return Message(
            serial=0,
            rest_serial=0,
            folder=folder,
            thread=None,
            index=0,
            sender=sender,
            to=outgoing.to,
            cc=outgoing.cc,
            received=to_epoch(now),
            sent_lag=lag,
            is_read=is_read,
            importance=outgoing.importance,
            categories=outgoing.categories,
            has_attachments=outgoing.has_attachments,
            ext=dict(outgoing.ext) if outgoing.ext else None,
            truth_customers=truth,
            own=own,
        )

    sent_copy: Message | None = None
    if save_to_sent_items:
        own_with_bcc = replace(shared, bcc=outgoing.bcc)
        sent_copy = mailbox.add(tenant, copy(mailbox.by_name["sentitems"], own_with_bcc, True, 0))
    external: list[str] = []
    delivered: set[str] = set()
    for _, address in everyone:
        recipient = tenant.user(address)
        target = tenant.mail.mailbox(recipient.id) if recipient is not None and recipient.has_mailbox else None
        if target is None:
            if address.lower() not in (a.lower() for a in external):
                external.append(address)
        elif target.user_id not in delivered:
            delivered.add(target.user_id)
            target.add(tenant, copy(target.by_name["inbox"], shared, False, 2))
    if not external:
        return None
    record = SentRecord(
        at=now,
        mailbox=mailbox.user_id,
        sender=sender,
        to=outgoing.to,
        cc=outgoing.cc,
        bcc=outgoing.bcc,
        external=tuple(external),
        subject=outgoing.subject,
        body_type=outgoing.body_type,
        body=outgoing.body,
        internet_message_id=imid,
        sent_copy_id=mailbox.immutable_id(sent_copy) if sent_copy is not None else None,
        customers=customers_of(tenant, external),
    )
    tenant.mail.outbox.append(record)
    return record


def add_message(
    tenant: Tenant,
    mailbox: Mailbox,
    folder: MailFolder,
    *,
    subject: str,
    body: str,
    sender: Address,
    to: tuple[Address, ...],
    cc: tuple[Address, ...] = NO_ADDRESSES,
    received: datetime | None = None,
    is_read: bool = False,
    categories: tuple[str, ...] = NO_STRINGS,
    customer_ids: tuple[str, ...] | None = None,
) -> Message:
    """A message that arrives at run time (a control action), for delta and notification tests."""
    imid = new_internet_message_id(sender[1].rsplit("@", 1)[-1])
    truth = customer_ids if customer_ids is not None else customers_of(tenant, [sender[1], *(a for _, a in to + cc)])
    message = Message(
        serial=0,
        rest_serial=0,
        folder=folder,
        thread=None,
        index=0,
        sender=sender,
        to=to,
        cc=cc,
        received=to_epoch(received or utc_now()),
        sent_lag=2,
        is_read=is_read,
        categories=categories,
        truth_customers=truth,
        own=OwnContent(
            subject=subject,
            body_type="text",
            body=body,
            internet_message_id=imid,
            conversation_id=conversation_of(imid),
        ),
    )
    return mailbox.add(tenant, message)


def materialise(message: Message) -> OwnContent:
    """Give a seeded message its own text (before a control action rewrites its subject)."""
    from emulator.mail import content

    if message.own is None:
        message.own = OwnContent(
            subject=content.subject_of(message),
            body_type="html",
            body=content.body_html(message),
            internet_message_id=content.internet_message_id(message),
            conversation_id=content.conversation_id(message),
        )
    return message.own
