"""The do-not-disclose guard: which customer information may appear in which output.

The privacy policy's public information (legal name, person names, business address, business phone) is public
only while the customer has not asked otherwise; once the customer sets do-not-disclose it is confidential
everywhere. Every output that carries customer information asks this guard, so that rule lives in one place:

- labels: items of a do-not-disclose customer get the highly confidential category (`category_for`; the
  classifier's verdict applies the same rule and a test holds the two together);
- marketing references: buyer name and products only, only for customers who neither opted out nor asked for
  do-not-disclose (`reference_line`);
- reports and Teams cards, which many people read: a customer is named only by what is public about them, so a
  do-not-disclose customer appears as its id (`display_name`, `customer_view`);
- API responses: routes that return customer information take the guard as a dependency (app.privacy.dependencies)
  and a test walks every route of the app to prove it; the caller's roles decide the audience;
- compelled-disclosure packages: they name only the demand's customer, by legal name (`Audience.AUTHORITY`).

Pure: no I/O, so every output path can afford to ask.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from app.policy.schemas import Category, Policy, PublicKind

HIGHLY_CONFIDENTIAL: Category = "highly_confidential"


class Audience(StrEnum):
    """Who reads an output; decides how much of a customer it may carry."""

    PUBLIC = "public"  # published: marketing references, anything outside the company
    CHANNEL = "channel"  # shared internal places: Teams channels, reports
    STAFF = "staff"  # a caller whose Steward role works with customer data (admin, legal, approver)
    AUDIT = "audit"  # an auditor: sees what happened and to which customer id, nothing confidential
    AUTHORITY = "authority"  # the authority receiving a compelled-disclosure package


class CustomerField(StrEnum):
    legal_name = "legal_name"
    contact_names = "contact_names"
    address = "address"
    business_phone = "business_phone"
    contact_emails = "contact_emails"
    contact_phones = "contact_phones"
    domains = "domains"
    tax_codes = "tax_codes"
    products = "products"


# The fields the policy can call public, and the policy's word for each.
PUBLIC_KIND: Mapping[CustomerField, PublicKind] = {
    CustomerField.legal_name: "legal_name",
    CustomerField.contact_names: "person_name",
    CustomerField.address: "business_address",
    CustomerField.business_phone: "business_phone",
}
# Names of response fields that carry customer information; the route test looks for these in response models.
CUSTOMER_INFO_FIELDS = frozenset(
    {
        "legal_name",
        "customer_name",
        "contacts",
        "contact_names",
        "contact_emails",
        "contact_phones",
        "address",
        "business_phone",
        "domains",
        "tax_codes",
        "notice_recipients",
        "requester_name",
        "requester_email",
    }
)


class CustomerInfo(Protocol):
    """What the guard reads of a customer (app.models.Customer satisfies it)."""

    @property
    def id(self) -> str: ...

    @property
    def legal_name(self) -> str: ...

    @property
    def do_not_disclose(self) -> bool: ...

    @property
    def marketing_opt_out(self) -> bool: ...

    @property
    def contacts(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def address(self) -> str | None: ...

    @property
    def business_phone(self) -> str | None: ...

    @property
    def domains(self) -> Sequence[str]: ...

    @property
    def tax_codes(self) -> Sequence[str]: ...

    @property
    def products(self) -> Sequence[str]: ...


@dataclass(frozen=True, slots=True)
class ReferenceLine:
    """One marketing reference: the buyer's legal name and what it bought. Nothing else may be added."""

    customer_name: str
    products: tuple[str, ...]


def _field_value(customer: CustomerInfo, field: CustomerField) -> Any:
    contacts = customer.contacts or []
    match field:
        case CustomerField.contact_names:
            return [str(c["name"]) for c in contacts if c.get("name")]
        case CustomerField.contact_emails:
            return [str(c["email"]) for c in contacts if c.get("email")]
        case CustomerField.contact_phones:
            return [str(c["phone"]) for c in contacts if c.get("phone")]
        case CustomerField.domains | CustomerField.tax_codes | CustomerField.products:
            return list(getattr(customer, field.value) or [])
        case _:
            return getattr(customer, field.value)


class DisclosureGuard:
    def __init__(self, policy: Policy, audience: Audience) -> None:
        self.policy = policy
        self.audience = audience
        self._public_kinds = frozenset(policy.public_information.kinds)

    def for_report(self) -> "DisclosureGuard":
        """Reports travel (exported, forwarded, shown on screens): they get the shared-channel view, whoever asks."""
        if self.audience in (Audience.STAFF, Audience.AUTHORITY):
            return DisclosureGuard(self.policy, Audience.CHANNEL)
        return self

    def is_public(self, customer: CustomerInfo, field: CustomerField) -> bool:
        """Public information under the policy, and the customer has not asked us to keep even that."""
        kind = PUBLIC_KIND.get(field)
        return kind is not None and kind in self._public_kinds and not customer.do_not_disclose

    def may_show(self, customer: CustomerInfo, field: CustomerField) -> bool:
        if self.audience is Audience.STAFF:
            return True
        if self.audience is Audience.AUTHORITY:
            # The demand names the customer; the package says whose data it is and nothing more about them.
            return field is CustomerField.legal_name
        return self.is_public(customer, field)

    def is_confidential(self, customer: CustomerInfo) -> bool:
        return customer.do_not_disclose

    def display_name(self, customer: CustomerInfo) -> str:
        """How an output names the customer: the legal name when this audience may see it, else the id."""
        if self.may_show(customer, CustomerField.legal_name):
            return customer.legal_name
        return f"{customer.id} (do-not-disclose)" if customer.do_not_disclose else customer.id

    def customer_view(
        self, customer: CustomerInfo, fields: Iterable[CustomerField] = tuple(CustomerField)
    ) -> dict[str, Any]:
        """The customer as this audience may see it: the id, whether it is confidential, and the allowed fields."""
        view: dict[str, Any] = {"id": customer.id, "confidential": self.is_confidential(customer)}
        for field in fields:
            if self.may_show(customer, field):
                view[field.value] = _field_value(customer, field)
        return view

    def may_reference(self, customer: CustomerInfo) -> bool:
        """May the company say it sold something to this customer (a marketing reference)?"""
        return (
            self.policy.public_information.customer_references
            and "legal_name" in self._public_kinds
            and not customer.do_not_disclose
            and not customer.marketing_opt_out
        )

    def reference_line(self, customer: CustomerInfo) -> ReferenceLine | None:
        if not self.may_reference(customer):
            return None
        products = tuple(product for product in (customer.products or []) if product.strip())
        # A reference says what was sold; a customer with no product on record has nothing to say.
        return ReferenceLine(customer.legal_name, products) if products else None

    def category_for(self, customers: Iterable[CustomerInfo], base: Category) -> Category:
        """The category of an item that carries these customers' data: do-not-disclose raises it to the top."""
        return HIGHLY_CONFIDENTIAL if any(customer.do_not_disclose for customer in customers) else base
