"""The emulated tenant's state: directory, app registrations, labels, holds, and the stores behind Graph.

Everything lives in memory and is owned by the server's event loop; code on other threads (tests inspecting
state) takes `Tenant.lock`. Records use slots so a seeded tenant of 100k+ items stays small.
"""

from __future__ import annotations

import itertools
import random
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from emulator.files.store import FileStore
from emulator.mail.store import MailStore
from emulator.tokens import KeySet


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    """Graph's timestamp form: UTC with a Z suffix and no fractional seconds."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def seeded_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass(slots=True)
class AppRegistration:
    """An Entra app registration plus its service principal's granted application permissions."""

    client_id: str
    object_id: str
    display_name: str
    secrets: list[str] = field(default_factory=list)
    # PEM-encoded X.509 certificates registered as credentials (the public part only).
    certificates: list[bytes] = field(default_factory=list)
    graph_roles: set[str] = field(default_factory=set)
    # For apps that expose an API (Steward's own): app roles users can be assigned, and reply URLs.
    exposed_roles: set[str] = field(default_factory=set)
    redirect_uris: list[str] = field(default_factory=list)
    allow_loopback_redirects: bool = False


@dataclass(slots=True)
class User:
    id: str
    user_principal_name: str
    display_name: str
    given_name: str
    surname: str
    mail: str
    user_type: str = "Member"  # "Member" | "Guest"
    job_title: str | None = None
    account_enabled: bool = True
    created: datetime = field(default_factory=utc_now)
    is_admin: bool = False
    mfa_methods: list[str] = field(default_factory=list)
    password: str | None = None  # staff only: for the authorization-code sign-in form
    steward_roles: set[str] = field(default_factory=set)  # app roles in Steward's API app
    customer_id: str | None = None  # guests: the customer whose contact this is
    has_mailbox: bool = False
    drive_id: str | None = None

    @property
    def is_mfa_registered(self) -> bool:
        return any(m not in ("password", "email") for m in self.mfa_methods)


@dataclass(slots=True)
class Contact:
    name: str
    email: str
    phone: str


@dataclass(slots=True)
class Customer:
    """A customer of the reseller as the seed made it: the registry row and the ground truth tests check."""

    id: str
    legal_name: str
    language: str  # "vi" | "en"
    domains: list[str]
    contacts: list[Contact]
    products: list[str]
    address: str
    phone: str
    tax_code: str
    service_status: str  # "active" | "ended"
    service_ended_at: datetime | None
    last_activity_at: datetime
    profile: str  # "active" | "silent" (no activity > 12 months) | "ended"
    do_not_disclose: bool = False
    marketing_opt_out: bool = False
    guest_user_ids: list[str] = field(default_factory=list)
    site_id: str | None = None


@dataclass(slots=True)
class SensitivityLabel:
    id: str
    name: str
    description: str
    color: str
    priority: int  # higher = more sensitive
    tooltip: str
    applicable_to: str = "email,file,site,unifiedGroup,teamwork"
    is_enabled: bool = True
    has_protection: bool = False


@dataclass(slots=True)
class RetentionLabel:
    name: str
    behavior_during_retention_period: str  # doNotRetain | retain | retainAsRecord | retainAsRegulatoryRecord
    is_delete_allowed: bool
    is_record_locked: bool = False


@dataclass(slots=True)
class HoldCase:
    """An eDiscovery case whose custodians' mailboxes and sites are on hold."""

    id: str
    display_name: str
    status: str
    custodian_user_ids: list[str] = field(default_factory=list)
    site_ids: list[str] = field(default_factory=list)
    created: datetime = field(default_factory=utc_now)


@dataclass(slots=True)
class RequestRecord:
    seq: int
    at: float
    method: str
    path: str
    query: str
    status: int
    client_id: str | None
    mailbox: str | None  # the user id when the request targets one mailbox (Outlook limits)
    batch_id: str | None  # set on a $batch sub-request: the outer request's request-id
    request_id: str
    duration_ms: float


@dataclass(slots=True)
class ChangeEvent:
    """A change to emulated data, published so subscriptions can notify (resource is Graph-relative)."""

    resource: str
    change_type: str  # created | updated | deleted
    resource_id: str
    owner: str | None = None  # user id or drive id owning the item
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Tenant:
    tenant_id: str
    domain: str
    seed: int
    now: datetime
    keys: KeySet = field(default_factory=KeySet)
    apps: dict[str, AppRegistration] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    customers: list[Customer] = field(default_factory=list)
    labels: list[SensitivityLabel] = field(default_factory=list)
    retention_labels: dict[str, RetentionLabel] = field(default_factory=dict)
    hold_cases: list[HoldCase] = field(default_factory=list)
    mail: MailStore = field(default_factory=MailStore)
    files: FileStore = field(default_factory=FileStore)
    # Emulator-level knobs that other modules read (billing for metered APIs, etc.).
    metered_billing_enabled: bool = True
    request_log: deque[RequestRecord] = field(default_factory=lambda: deque(maxlen=2_000_000))
    change_listeners: list[Callable[[ChangeEvent], None]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    extra: dict[str, Any] = field(default_factory=dict)  # per-module state that has no home above
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_seq(self) -> int:
        """A tenant-wide, strictly increasing change number: the basis of every delta token."""
        return next(self._seq)

    def emit_change(self, event: ChangeEvent) -> None:
        for listener in list(self.change_listeners):
            listener(event)

    def user(self, id_or_upn: str) -> User | None:
        found = self.users.get(id_or_upn)
        if found is not None:
            return found
        lowered = id_or_upn.lower()
        return next(
            (u for u in self.users.values() if u.user_principal_name.lower() == lowered or u.mail.lower() == lowered),
            None,
        )

    def label_by_name(self, name: str) -> SensitivityLabel | None:
        return next((label for label in self.labels if label.name == name), None)

    def customer(self, customer_id: str) -> Customer | None:
        return next((c for c in self.customers if c.id == customer_id), None)

    @property
    def staff(self) -> list[User]:
        return [u for u in self.users.values() if u.user_type == "Member"]
