"""The do-not-disclose guard: public information is public only until the customer says otherwise."""

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.classification import Classifier, IdentifierHasher, ItemMetadata
from app.classification.registry import CustomerRecord
from app.policy import Policy, resolve_labels
from app.policy.schemas import PublicInformation
from app.privacy.guard import Audience, CustomerField, DisclosureGuard

LABELS = resolve_labels(
    Policy(),
    [("p", "Public", 0), ("g", "General", 1), ("c", "Confidential", 2), ("h", "Highly Confidential", 3)],
)


@dataclass
class FakeCustomer:
    id: str = "C0001"
    legal_name: str = "Công ty TNHH Minh Phát"
    do_not_disclose: bool = False
    marketing_opt_out: bool = False
    contacts: list[dict[str, Any]] = field(
        default_factory=lambda: [{"name": "Nguyễn Văn An", "email": "an@minhphat.vn", "phone": "0903123456"}]
    )
    address: str | None = "12 Lê Lợi, Quận 1, TP.HCM"
    business_phone: str | None = "028 3822 1234"
    domains: list[str] = field(default_factory=lambda: ["minhphat.vn"])
    tax_codes: list[str] = field(default_factory=lambda: ["0312345678"])
    products: list[str] = field(default_factory=lambda: ["Microsoft 365 E3"])


PUBLIC_FIELDS = {"legal_name", "contact_names", "address", "business_phone"}
CONFIDENTIAL_FIELDS = {"contact_emails", "contact_phones", "domains", "tax_codes", "products"}


class TestPublicInformation:
    @pytest.mark.parametrize("audience", [Audience.PUBLIC, Audience.CHANNEL, Audience.AUDIT])
    def test_only_public_kinds_reach_wide_audiences(self, audience: Audience) -> None:
        view = DisclosureGuard(Policy(), audience).customer_view(FakeCustomer())
        assert set(view) - {"id", "confidential"} == PUBLIC_FIELDS
        assert view["legal_name"] == "Công ty TNHH Minh Phát"
        assert view["contact_names"] == ["Nguyễn Văn An"]
        assert view["confidential"] is False

    @pytest.mark.parametrize("audience", [Audience.PUBLIC, Audience.CHANNEL, Audience.AUDIT])
    def test_do_not_disclose_makes_public_information_confidential(self, audience: Audience) -> None:
        guard = DisclosureGuard(Policy(), audience)
        customer = FakeCustomer(do_not_disclose=True)
        assert guard.customer_view(customer) == {"id": "C0001", "confidential": True}
        assert guard.display_name(customer) == "C0001 (do-not-disclose)"
        assert not any(guard.is_public(customer, f) for f in CustomerField)

    def test_staff_see_everything_but_are_told_it_is_confidential(self) -> None:
        guard = DisclosureGuard(Policy(), Audience.STAFF)
        view = guard.customer_view(FakeCustomer(do_not_disclose=True))
        assert set(view) - {"id", "confidential"} == PUBLIC_FIELDS | CONFIDENTIAL_FIELDS
        assert view["confidential"] is True

    def test_an_authority_package_names_the_customer_and_nothing_more(self) -> None:
        guard = DisclosureGuard(Policy(), Audience.AUTHORITY)
        assert guard.customer_view(FakeCustomer(do_not_disclose=True)) == {
            "id": "C0001",
            "confidential": True,
            "legal_name": "Công ty TNHH Minh Phát",
        }

    def test_the_policy_decides_which_kinds_are_public(self) -> None:
        policy = Policy(public_information=PublicInformation(kinds=["legal_name"]))
        guard = DisclosureGuard(policy, Audience.PUBLIC)
        assert set(guard.customer_view(FakeCustomer())) == {"id", "confidential", "legal_name"}
        no_names = DisclosureGuard(Policy(public_information=PublicInformation(kinds=[])), Audience.CHANNEL)
        assert no_names.display_name(FakeCustomer()) == "C0001"


def test_reports_get_the_shared_view_whoever_asks() -> None:
    customer = FakeCustomer(do_not_disclose=True)
    for audience in Audience:
        assert DisclosureGuard(Policy(), audience).for_report().display_name(customer) == "C0001 (do-not-disclose)"
    assert (
        DisclosureGuard(Policy(), Audience.STAFF).for_report().display_name(FakeCustomer()) == "Công ty TNHH Minh Phát"
    )


class TestReferences:
    @pytest.mark.parametrize(
        ("flags", "allowed"),
        [({}, True), ({"do_not_disclose": True}, False), ({"marketing_opt_out": True}, False)],
    )
    def test_only_customers_without_either_flag(self, flags: dict[str, Any], allowed: bool) -> None:
        line = DisclosureGuard(Policy(), Audience.PUBLIC).reference_line(FakeCustomer(**flags))
        assert (line is not None) is allowed
        if line is not None:
            assert (line.customer_name, line.products) == ("Công ty TNHH Minh Phát", ("Microsoft 365 E3",))

    def test_the_policy_can_switch_references_off(self) -> None:
        policy = Policy(public_information=PublicInformation(customer_references=False))
        assert DisclosureGuard(policy, Audience.PUBLIC).reference_line(FakeCustomer()) is None

    def test_nothing_to_say_without_a_product(self) -> None:
        assert DisclosureGuard(Policy(), Audience.PUBLIC).reference_line(FakeCustomer(products=[" "])) is None


def test_do_not_disclose_raises_the_category_of_every_item_it_touches() -> None:
    guard = DisclosureGuard(Policy(), Audience.STAFF)
    assert guard.category_for([FakeCustomer()], "confidential") == "confidential"
    assert guard.category_for([FakeCustomer(), FakeCustomer(do_not_disclose=True)], "confidential") == (
        "highly_confidential"
    )
    assert guard.category_for([], "internal") == "internal"


customers_strategy = st.lists(
    st.tuples(st.booleans(), st.sampled_from(["minhphat.vn", "anlac.com.vn", "sunrise.com", "hoabinh.vn"])),
    min_size=1,
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(customers=customers_strategy, participants=st.sets(st.integers(0, 3), min_size=1))
def test_labels_agree_with_the_guard(customers: list[tuple[bool, str]], participants: set[int]) -> None:
    """The classifier's verdict (what labeling applies) gives exactly the guard's category for DND customers."""
    records = [
        CustomerRecord(id=f"C{n:04d}", legal_name=f"Customer {n}", domains=(domain,), do_not_disclose=dnd)
        for n, (dnd, domain) in enumerate(customers)
    ]
    classifier = Classifier(Policy(), records, LABELS, hasher=IdentifierHasher(b"test"))
    addresses = tuple(f"someone@{records[i].domains[0]}" for i in sorted(participants) if i < len(records))
    verdict = classifier.classify(ItemMetadata(id="m1", kind="message", participants=addresses))
    attributed = [
        FakeCustomer(id=r.id, do_not_disclose=r.do_not_disclose) for r in records if r.id in verdict.customer_ids
    ]
    base = Policy().classification.customer_data if attributed else "internal"
    assert verdict.category == DisclosureGuard(Policy(), Audience.STAFF).category_for(attributed, base)
    if verdict.category == "highly_confidential":
        assert verdict.label is not None
        assert verdict.label.name == "Highly Confidential"
