"""Which customers an item belongs to, and the rule that says so for each of them."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from app.classification.detectors import Finding
from app.classification.registry import CustomerIds, CustomerIndex, normalize_address, normalize_path, normalize_site
from app.policy.schemas import Policy

_Add = Callable[[CustomerIds, str, str], None]


@dataclass(frozen=True, slots=True)
class CurrentLabel:
    """The sensitivity label an item carries now, as read from Microsoft 365."""

    id: str
    manual: bool = False  # chosen by a person: assignmentMethod / MSIP Method "privileged"


@dataclass(frozen=True, slots=True)
class ItemMetadata:
    """What the data map stores about a message or file; `findings` come from scanning its text, if any."""

    id: str
    kind: Literal["message", "file"]
    participants: tuple[str, ...] = ()  # from / to / cc / bcc addresses
    path: str | None = None  # where the item sits: a file's folder (parentReference.path); a folder's own path
    site: str | None = None  # SharePoint site name or URL
    shared_with: tuple[str, ...] = ()  # principal object ids or addresses
    modified_by: tuple[str, ...] = ()  # object ids or addresses of whoever created or changed the file
    findings: tuple[Finding, ...] = ()
    current_label: CurrentLabel | None = None
    timestamp: datetime | None = None  # sent (mail) or last modified (file): feeds the activity clock


@dataclass(frozen=True, slots=True)
class Reason:
    rule: str  # e.g. participant.domain, location:customer-folder, identifier.tax_code
    detail: str  # what matched, never a raw personal identifier: a domain, a rule id, a guest id, a value hash


@dataclass(frozen=True, slots=True)
class CustomerAttribution:
    customer_id: str
    reasons: tuple[Reason, ...]


class Attributor:
    def __init__(self, index: CustomerIndex, policy: Policy) -> None:
        rules = policy.attribution
        self._index = index
        self._participants = rules.participants.enabled
        self._subdomains = rules.participants.match_subdomains
        self._contacts = rules.participants.match_contact_addresses
        self._share_guests = rules.sharing.guests
        self._share_addresses = rules.sharing.customer_addresses
        self._modified_by_guest = rules.modified_by_guest
        self._tax_code = rules.identifiers.tax_code
        self._contact_phone = rules.identifiers.contact_phone

    def attribute(self, item: ItemMetadata) -> tuple[CustomerAttribution, ...]:
        found: dict[str, dict[Reason, None]] = {}  # dict as an ordered set: reasons in the order rules fired

        def add(customers: CustomerIds, rule: str, detail: str) -> None:
            reason = Reason(rule, detail)
            for customer_id in customers:
                found.setdefault(customer_id, {})[reason] = None

        index = self._index
        if self._participants:
            for address in item.participants:
                self._address(address, "participant", add)
        if item.path and index.path_locations:
            normalized_path = normalize_path(item.path)
            for location in index.path_locations:
                add(location.customers(normalized_path), f"location:{location.rule.id}", location.rule.id)
        if item.site and index.site_locations:
            normalized_site = normalize_site(item.site)
            for location in index.site_locations:
                add(location.customers(normalized_site), f"location:{location.rule.id}", location.rule.id)
        for principal in item.shared_with:
            if "@" in principal:
                if self._share_addresses:
                    self._address(principal, "sharing", add)
            elif self._share_guests:
                add(index.guests.get(principal.lower(), ()), "sharing.guest", principal)
        if self._modified_by_guest:
            for principal in item.modified_by:
                customers = (
                    index.addresses.get(normalize_address(principal), ())
                    if "@" in principal
                    else index.guests.get(principal.lower(), ())
                )
                add(customers, "modified_by.guest", principal if "@" not in principal else _domain(principal))
        for finding in item.findings:
            self._identifier(finding, add)
        return tuple(CustomerAttribution(customer_id, tuple(reasons)) for customer_id, reasons in sorted(found.items()))

    def _address(self, address: str, source: str, add: _Add) -> None:
        normalized = normalize_address(address)
        if self._contacts:
            contact_of = self._index.addresses.get(normalized)
            if contact_of:
                add(contact_of, f"{source}.contact", _domain(normalized))
                return
        match = self._index.customers_of_domain(_domain(normalized), subdomains=self._subdomains)
        if match:
            add(match[1], f"{source}.domain", match[0])

    def _identifier(self, finding: Finding, add: _Add) -> None:
        index = self._index
        if finding.detector in ("mst", "cccd") and self._tax_code:
            add(index.tax_codes.get(finding.entity_hash, ()), "identifier.tax_code", finding.value_hash)
        elif finding.detector == "phone" and self._contact_phone:
            add(index.contact_phones.get(finding.entity_hash, ()), "identifier.contact_phone", finding.value_hash)
            # Public information names a customer without making the item theirs, unless they asked us not to
            # disclose even that.
            public_of = index.business_phones.get(finding.entity_hash, ())
            protected = tuple(customer_id for customer_id in public_of if customer_id in index.do_not_disclose)
            add(protected, "identifier.business_phone", finding.value_hash)


def _domain(address: str) -> str:
    return address.rpartition("@")[2]
