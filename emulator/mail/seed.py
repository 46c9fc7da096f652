"""Seed every staff mailbox: customer threads consistent with each customer's profile, internal mail, newsletters.

Each customer's newest message is dated exactly at `Customer.last_activity_at`, and nothing is newer: silent
customers fell quiet more than 12 months ago, ended ones stopped when the service did, active ones wrote recently.
One thread is shared by two active customers. Messages are small slotted records (see emulator.mail.store), so
hundreds of thousands of them seed in seconds. The same seed always yields the same mail, ids included.
"""

from __future__ import annotations

import random
from datetime import timedelta

from emulator.mail.content import CCCD, CONTRACT, CUSTOMER_TOPICS, INTERNAL_TOPICS, MST, MST_INVALID, NEWSLETTER_SENDER
from emulator.mail.content import PHONE as PHONE_ID
from emulator.mail.store import NO_ADDRESSES, NO_STRINGS, Address, Mailbox, MailFolder, Message, Thread, to_epoch
from emulator.seed import SeedConfig
from emulator.state import Customer, Tenant, User

CUSTOMER_FOLDER_NAMES = ("Khách hàng", "Customers")
CUSTOMER_CATEGORY = ("Khách hàng",)
MIN_GAP_S = 20 * 60
MAX_GAP_S = 4 * 24 * 3600
RECENT_UNREAD_S = 14 * 24 * 3600


class _MailSeeder:
    def __init__(self, tenant: Tenant, rng: random.Random, config: SeedConfig, staff: list[User]) -> None:
        self.tenant = tenant
        self.rng = rng
        self.config = config
        self.staff = staff
        self.now = to_epoch(tenant.now)
        self.history_start = to_epoch(tenant.now - timedelta(days=30 * config.months_of_history))
        self.mailboxes: list[Mailbox] = []
        self.customer_folders: list[MailFolder] = []
        self.staff_addresses: list[Address] = [(u.display_name, u.mail) for u in staff]
        # Recipient lists repeat a lot; sharing one tuple per distinct list keeps messages small.
        self._interned: dict[tuple[Address, ...], tuple[Address, ...]] = {}
        for index, user in enumerate(staff):
            mailbox = tenant.mail.ensure_mailbox(user.id, user.mail)
            inbox = mailbox.by_name["inbox"]
            folder = next((f for f in inbox.children if f.display_name in CUSTOMER_FOLDER_NAMES), None)
            if folder is None:
                folder = mailbox.add_folder(CUSTOMER_FOLDER_NAMES[index % 2], inbox)
            self.mailboxes.append(mailbox)
            self.customer_folders.append(folder)

    def intern(self, *addresses: Address) -> tuple[Address, ...]:
        if not addresses:
            return NO_ADDRESSES
        return self._interned.setdefault(addresses, addresses)

    def new_key(self) -> int:
        return self.tenant.mail.new_thread_key()

    @staticmethod
    def identifier_mask(draw: bytes, with_tax_code: bool) -> int:
        """Which identifiers a customer message quotes, from five of its random bytes (each 0-255)."""
        mask = MST if with_tax_code and draw[0] < 51 else 0  # ~20 %
        mask |= CONTRACT if draw[1] < 38 else 0  # ~15 %
        mask |= CCCD if draw[2] < 20 else 0  # ~8 %
        mask |= PHONE_ID if draw[3] < 64 else 0  # 25 %
        mask |= MST_INVALID if draw[4] < 10 else 0  # ~4 %
        return mask

    def gaps(self, count: int, room: int) -> list[int]:
        """Seconds between consecutive messages of a thread, squeezed to fit in `room` seconds."""
        gaps = [self.rng.randrange(MIN_GAP_S, MAX_GAP_S) for _ in range(count - 1)]
        total = sum(gaps)
        if total > room > 0:
            gaps = [g * room // (total + 1) for g in gaps]
        return gaps

    # Customer threads ----------------------------------------------------------------------------------------

    def customer_threads(self, position: int, customer: Customer) -> None:
        config = self.config
        threads, per_thread = config.threads_per_customer, max(1, config.messages_per_thread)
        if threads <= 0:
            return
        last = to_epoch(customer.last_activity_at)
        start = min(self.history_start, last - 30 * 24 * 3600)
        owner = position % len(self.staff)
        truth = (customer.id,)
        for number in range(threads):
            staff_index = owner if self.rng.random() < 0.7 else self.rng.randrange(len(self.staff))
            gaps = self.gaps(per_thread, last - start - 1)
            length = sum(gaps)
            if number == threads - 1:
                # The newest message of the newest thread is the customer's last activity, to the second.
                first = last - length
            else:
                first = start + int(self.rng.random() * max(0, last - 1 - length - start))
            contact = self.rng.choice(customer.contacts)
            topic = self.rng.randrange(len(CUSTOMER_TOPICS))
            product = self.rng.choice(customer.products)
            vi_subject, en_subject, _, _ = CUSTOMER_TOPICS[topic]
            thread = Thread(
                key=self.new_key(),
                kind="customer",
                language=customer.language,
                subject=(vi_subject if customer.language == "vi" else en_subject).format(product=product),
                topic=topic,
                product=product,
                customer_ids=truth,
                tax_code=customer.tax_code,
                phone=contact.phone,
            )
            others = [c for c in customer.contacts if c is not contact]
            cc = self.intern((others[0].name, others[0].email)) if others and self.rng.random() < 0.2 else NO_ADDRESSES
            self.conversation(
                thread,
                staff_index,
                (contact.name, contact.email),
                cc,
                first,
                gaps,
                truth,
                to_subfolder=self.rng.random() < 0.3,
            )

    def conversation(
        self,
        thread: Thread,
        staff_index: int,
        contact: Address,
        cc: tuple[Address, ...],
        first: int,
        gaps: list[int],
        truth: tuple[str, ...],
        *,
        to_subfolder: bool,
        first_incoming: bool | None = None,
    ) -> None:
        """A back-and-forth between one staff member and a customer contact, filed in that staff mailbox."""
        rng = self.rng
        mailbox = self.mailboxes[staff_index]
        me = self.staff_addresses[staff_index]
        incoming = rng.random() < 0.6 if first_incoming is None else first_incoming
        received = first
        for index in range(len(gaps) + 1):
            if index:
                received += gaps[index - 1]
                incoming = not incoming
            # One draw of random bytes per message: seeding allocates little, so it stays fast even when traced.
            draw = rng.randbytes(10)
            if incoming:
                folder = self.customer_folders[staff_index] if to_subfolder else mailbox.by_name["inbox"]
                sender, to = contact, self.intern(me)
                is_read = received < self.now - RECENT_UNREAD_S or draw[5] < 128
                lag = 2 + draw[6] % 88
            else:
                folder = mailbox.by_name["sentitems"]
                sender, to = me, self.intern(contact)
                is_read, lag = True, 0
            message = Message(
                serial=0,
                rest_serial=0,
                folder=folder,
                thread=thread,
                index=index,
                sender=sender,
                to=to,
                cc=cc,
                received=received,
                sent_lag=lag,
                is_read=is_read,
                importance="high" if draw[7] < 13 else "normal",
                categories=CUSTOMER_CATEGORY if draw[8] < 26 else NO_STRINGS,
                has_attachments=thread.topic in (0, 1, 3, 5) and draw[9] < 102,
                idmask=self.identifier_mask(draw, with_tax_code=thread.tax_code is not None),
                truth_customers=truth,
            )
            mailbox.add(self.tenant, message, emit=False)

    def shared_thread(self) -> None:
        """One conversation with two customers at once (both companies' contacts on it)."""
        active = [c for c in self.tenant.customers if c.profile == "active"]
        if len(active) < 2 or self.config.threads_per_customer <= 0:
            return
        first_customer, second_customer = active[0], active[1]
        latest = min(to_epoch(first_customer.last_activity_at), to_epoch(second_customer.last_activity_at))
        gaps = self.gaps(max(2, self.config.messages_per_thread), 10 * 24 * 3600)
        first = latest - 15 * 24 * 3600 - sum(gaps)
        a, b = first_customer.contacts[0], second_customer.contacts[0]
        thread = Thread(
            key=self.new_key(),
            kind="customer",
            language="vi",
            subject=CUSTOMER_TOPICS[5][0].format(product=first_customer.products[0]),
            topic=5,
            product=first_customer.products[0],
            customer_ids=(first_customer.id, second_customer.id),
            tax_code=first_customer.tax_code,
            phone=a.phone,
        )
        owner = self.tenant.customers.index(first_customer) % len(self.staff)
        self.conversation(
            thread,
            owner,
            (a.name, a.email),
            self.intern((b.name, b.email)),
            first,
            gaps,
            thread.customer_ids,
            to_subfolder=False,
            first_incoming=True,
        )

    # Internal mail and newsletters ---------------------------------------------------------------------------

    def internal(self) -> None:
        count = self.config.internal_messages_per_mailbox
        if count <= 0 or len(self.staff) < 2:
            return
        rng = self.rng
        for sender_index, mailbox in enumerate(self.mailboxes):
            for _ in range(count):
                recipient_index = rng.choice([i for i in range(len(self.staff)) if i != sender_index])
                topic = rng.randrange(len(INTERNAL_TOPICS))
                thread = Thread(
                    key=self.new_key(),
                    kind="internal",
                    language="vi",
                    subject=INTERNAL_TOPICS[topic][0].format(n=rng.randrange(1, 53)),
                    topic=topic,
                )
                received = rng.randrange(self.history_start, self.now - 3600)
                sender = self.staff_addresses[sender_index]
                to = self.intern(self.staff_addresses[recipient_index])
                copies = (
                    (mailbox, mailbox.by_name["sentitems"], True),
                    (
                        self.mailboxes[recipient_index],
                        self.mailboxes[recipient_index].by_name["inbox"],
                        rng.random() < 0.8,
                    ),
                )
                for owner, folder, is_read in copies:
                    message = Message(
                        serial=0,
                        rest_serial=0,
                        folder=folder,
                        thread=thread,
                        index=0,
                        sender=sender,
                        to=to,
                        cc=NO_ADDRESSES,
                        received=received,
                        sent_lag=0 if folder.well_known == "sentitems" else 3,
                        is_read=is_read,
                    )
                    owner.add(self.tenant, message, emit=False)

    def newsletters(self) -> None:
        """A monthly newsletter from an outside, non-customer domain to every staff mailbox."""
        rng = self.rng
        for month in range(self.config.months_of_history):
            received = self.now - (month * 30 + rng.randrange(0, 28)) * 24 * 3600 - rng.randrange(3600, 20_000)
            if received < self.history_start:
                continue
            thread = Thread(
                key=self.new_key(),
                kind="newsletter",
                language="vi",
                subject=f"{NEWSLETTER_SENDER[0]} số {self.config.months_of_history - month}",
                topic=0,
            )
            for index, mailbox in enumerate(self.mailboxes):
                junk = (index + month) % 5 == 0
                message = Message(
                    serial=0,
                    rest_serial=0,
                    folder=mailbox.by_name["junkemail" if junk else "inbox"],
                    thread=thread,
                    index=0,
                    sender=NEWSLETTER_SENDER,
                    to=self.intern(self.staff_addresses[index]),
                    cc=NO_ADDRESSES,
                    received=received,
                    sent_lag=rng.randrange(5, 300),
                    is_read=rng.random() < 0.7,
                    inference="other",
                )
                mailbox.add(self.tenant, message, emit=False)


def seed_mail(tenant: Tenant, rng: random.Random, config: SeedConfig) -> None:
    """Give every staff user a mailbox and fill it; customers' mail matches their activity profile."""
    staff = [u for u in tenant.staff if u.has_mailbox]
    if not staff:
        return
    seeder = _MailSeeder(tenant, rng, config, staff)
    for position, customer in enumerate(tenant.customers):
        seeder.customer_threads(position, customer)
    seeder.shared_thread()
    seeder.internal()
    seeder.newsletters()
