"""The customer registry as the classifier sees it, indexed once so each item costs a few dict lookups."""

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from app.classification.detectors import IdentifierHasher
from app.classification.folding import slug
from app.classification.vn import normalize_phone
from app.policy.schemas import CUSTOMER_PLACEHOLDER, LocationRule, Policy, path_segments

CustomerIds = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    id: str
    legal_name: str = ""
    domains: tuple[str, ...] = ()
    contact_emails: tuple[str, ...] = ()
    contact_phones: tuple[str, ...] = ()
    business_phone: str | None = None  # "số điện thoại giao dịch": public information under the policy
    tax_codes: tuple[str, ...] = ()  # MST (10 digits, or 13 with a branch) or a 12-digit personal tax code
    guest_ids: tuple[str, ...] = ()  # Entra object ids of the customer's guest accounts in the tenant
    do_not_disclose: bool = False


def normalize_address(address: str) -> str:
    return address.strip().strip("<>").lower()


def normalize_path(path: str) -> str:
    """'/drive/root:/Khách%20hàng/C0001' -> 'khach-hang/c0001/': slugged segments, each followed by '/'."""
    path = unquote(path)
    if "root:" in path:
        path = path.split("root:", 1)[1]
    return "".join(f"{slug(segment)}/" for segment in path.split("/") if slug(segment))


def normalize_site(site: str) -> str:
    """A site URL or display name -> its slug followed by '/': '.../sites/KH-MinhPhat' -> 'kh-minhphat/'."""
    site = unquote(site).rstrip("/")
    for marker in ("/sites/", "/teams/"):
        if marker in site:
            site = site.split(marker, 1)[1].split("/", 1)[0]
    return f"{slug(site)}/" if slug(site) else ""


def compile_path_pattern(pattern: str) -> re.Pattern[str]:
    """A policy path pattern as a regex over normalize_path() output; '{customer}' becomes the group 'key'."""
    parts = ["^"]
    for segment in path_segments(pattern):
        if segment == "**":
            parts.append(r"(?:[^/]+/)*")
        elif segment == "*":
            parts.append(r"[^/]+/")
        elif segment.endswith(CUSTOMER_PLACEHOLDER):
            prefix = slug(segment.removesuffix(CUSTOMER_PLACEHOLDER))
            parts.append((re.escape(prefix) + "-" if prefix else "") + r"(?P<key>[^/]+)/")
        else:
            parts.append(re.escape(slug(segment)) + "/")
    return re.compile("".join(parts))


@dataclass(frozen=True, slots=True)
class CompiledLocation:
    rule: LocationRule
    regex: re.Pattern[str]
    keys: dict[str, CustomerIds]

    def customers(self, normalized: str) -> CustomerIds:
        match = self.regex.match(normalized)
        if match is None:
            return ()
        key = match.group("key")
        # Longest hyphen-prefix first, so "c0001-cong-ty-minh-phat" finds id c0001 and a legal name finds itself.
        while key:
            found = self.keys.get(key)
            if found:
                return found
            key = key.rpartition("-")[0]
        return ()


class CustomerIndex:
    """Lookup tables from every attribution signal to the customers it names."""

    def __init__(self, customers: Iterable[CustomerRecord], policy: Policy, *, hasher: IdentifierHasher) -> None:
        self.customers = {customer.id: customer for customer in customers}
        ignored = set(policy.attribution.participants.ignored_domains)
        public_phone = "business_phone" in policy.public_information.kinds
        self.do_not_disclose = frozenset(c.id for c in self.customers.values() if c.do_not_disclose)
        domains: dict[str, set[str]] = {}
        addresses: dict[str, set[str]] = {}
        guests: dict[str, set[str]] = {}
        tax_codes: dict[str, set[str]] = {}
        contact_phones: dict[str, set[str]] = {}
        business_phones: dict[str, set[str]] = {}
        for customer in self.customers.values():
            for domain in customer.domains:
                if domain.strip().lower() not in ignored:
                    domains.setdefault(domain.strip().lower(), set()).add(customer.id)
            for address in customer.contact_emails:
                addresses.setdefault(normalize_address(address), set()).add(customer.id)
            for guest in customer.guest_ids:
                guests.setdefault(guest.strip().lower(), set()).add(customer.id)
            for code in customer.tax_codes:
                identity = _tax_code_identity(code, hasher)
                if identity:
                    tax_codes.setdefault(identity, set()).add(customer.id)
            for phone in customer.contact_phones:
                _add_phone(contact_phones, phone, customer.id, hasher)
            if customer.business_phone:
                table = business_phones if public_phone else contact_phones
                _add_phone(table, customer.business_phone, customer.id, hasher)
        self.domains = _freeze(domains)
        self.addresses = _freeze(addresses)
        self.guests = _freeze(guests)
        self.tax_codes = _freeze(tax_codes)
        self.contact_phones = _freeze(contact_phones)
        # A published business phone names the customer without being customer data (public information).
        self.business_phones = _freeze({k: v for k, v in business_phones.items() if k not in contact_phones})
        self.path_locations = [self._compile(rule) for rule in policy.attribution.locations if rule.scope == "path"]
        self.site_locations = [self._compile(rule) for rule in policy.attribution.locations if rule.scope == "site"]
        self.public_locations = [compile_path_pattern(pattern) for pattern in policy.classification.public_locations]

    def _compile(self, rule: LocationRule) -> CompiledLocation:
        keys: dict[str, set[str]] = {}
        for customer in self.customers.values():
            values = {
                "id": [customer.id],
                "legal_name": [customer.legal_name],
                "domain": [part for domain in customer.domains for part in (domain, domain.split(".", 1)[0])],
            }
            for key_kind in rule.keys:
                for value in values[key_kind]:
                    if slug(value):
                        keys.setdefault(slug(value), set()).add(customer.id)
        return CompiledLocation(rule=rule, regex=compile_path_pattern(rule.pattern), keys=_freeze(keys))

    def customers_of_domain(self, domain: str, *, subdomains: bool) -> tuple[str, CustomerIds] | None:
        """(matched domain, customers) for a mail domain, walking up to parent domains when allowed."""
        while True:
            found = self.domains.get(domain)
            if found:
                return domain, found
            if not subdomains or domain.count(".") < 2:
                return None
            domain = domain.split(".", 1)[1]


def _tax_code_identity(code: str, hasher: IdentifierHasher) -> str | None:
    digits = "".join(ch for ch in unicodedata.normalize("NFKC", code) if ch.isdigit())
    if len(digits) == 12:
        return hasher("personal_id", digits)
    if len(digits) in (10, 13):
        return hasher("tax_code", digits[:10])  # a branch belongs to the enterprise it hangs off
    return None


def _add_phone(table: dict[str, set[str]], phone: str, customer_id: str, hasher: IdentifierHasher) -> None:
    normalized = normalize_phone(phone)
    if normalized:
        table.setdefault(hasher("phone", normalized), set()).add(customer_id)


def _freeze(table: dict[str, set[str]]) -> dict[str, CustomerIds]:
    return {key: tuple(sorted(ids)) for key, ids in table.items()}
