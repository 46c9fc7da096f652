import pytest

from app.classification import Classifier, CustomerRecord, IdentifierHasher, ItemMetadata
from app.classification.registry import compile_path_pattern, normalize_path, normalize_site
from app.policy import Policy, parse_policy, resolve_labels

LABELS = [("p", "Public", 0), ("g", "General", 1), ("c", "Confidential", 2), ("h", "Highly Confidential", 3)]
HASHER = IdentifierHasher(b"k")


def classifier(customers: list[CustomerRecord], policy: Policy | None = None) -> Classifier:
    policy = policy or Policy()
    return Classifier(policy, customers, resolve_labels(policy, LABELS), hasher=HASHER, reference_year=2026)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("/drive/root:/Khách%20hàng/C0001", "khach-hang/c0001/"),
        ("/drives/b!abc/root:", ""),
        ("Customers//C0001 - Minh Phát/", "customers/c0001-minh-phat/"),
        ("/sites/x/Shared Documents/Khách hàng", "sites/x/shared-documents/khach-hang/"),
    ],
)
def test_normalize_path(raw, normalized):
    assert normalize_path(raw) == normalized


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("https://t.sharepoint.com/sites/KH-MinhPhat/Shared%20Documents", "kh-minhphat/"),
        ("https://t.sharepoint.com/teams/KH-Riverside", "kh-riverside/"),
        ("KH - Minh Phát", "kh-minh-phat/"),
    ],
)
def test_normalize_site(raw, normalized):
    assert normalize_site(raw) == normalized


@pytest.mark.parametrize(
    ("pattern", "path", "key"),
    [
        ("**/Customers/{customer}", "customers/c0001/", "c0001"),
        ("**/Customers/{customer}", "a/b/customers/c0001/x/", "c0001"),
        ("Customers/{customer}", "a/customers/c0001/", None),  # anchored at the drive root
        ("*/Customers/{customer}", "a/customers/c0001/", "c0001"),
        ("KH-{customer}", "kh-minh-phat/", "minh-phat"),
        ("KH-{customer}", "khach-minh-phat/", None),
    ],
)
def test_path_patterns(pattern, path, key):
    match = compile_path_pattern(pattern).match(path)
    assert (match.group("key") if match else None) == key


def test_folder_key_prefers_the_longest_known_prefix():
    customers = [
        CustomerRecord(id="C1", legal_name="Minh Phát"),
        CustomerRecord(id="C2", legal_name="Minh Phát Xây dựng"),
    ]
    engine = classifier(customers)
    verdict = engine.classify(ItemMetadata(id="f", kind="file", path="/drive/root:/Customers/Minh Phat Xay Dung 2024"))
    assert verdict.customer_ids == ("C2",)


def test_two_customers_sharing_a_domain_are_both_attributed():
    customers = [
        CustomerRecord(id="C1", domains=("group.example",)),
        CustomerRecord(id="C2", domains=("group.example",)),
    ]
    verdict = classifier(customers).classify(ItemMetadata(id="m", kind="message", participants=("a@group.example",)))
    assert verdict.customer_ids == ("C1", "C2")


def test_rules_can_be_switched_off():
    policy = parse_policy(
        "attribution:\n"
        "  participants: {enabled: false}\n"
        "  sharing: {guests: false, customer_addresses: false}\n"
        "  modified_by_guest: false\n"
        "  identifiers: {tax_code: false, contact_phone: false}\n"
        "  locations: []\n"
    )
    customer = CustomerRecord(
        id="C1",
        domains=("c.example",),
        guest_ids=("g1",),
        tax_codes=("0101234565",),
        contact_phones=("0903111222",),
    )
    engine = classifier([customer], policy)
    item = ItemMetadata(
        id="x",
        kind="file",
        participants=("a@c.example",),
        path="/drive/root:/Customers/C1",
        shared_with=("g1", "b@c.example"),
        modified_by=("g1",),
        findings=engine.scan_text("MST 0101234565, SĐT 0903 111 222"),
    )
    assert engine.classify(item).customers == ()


def test_reasons_carry_no_raw_identifiers():
    customer = CustomerRecord(id="C1", contact_emails=("lan@c.example",), tax_codes=("0101234565",))
    engine = classifier([customer])
    item = ItemMetadata(
        id="x", kind="message", participants=("lan@c.example",), findings=engine.scan_text("MST 0101234565")
    )
    explanation = "\n".join(engine.classify(item).explain())
    assert "C1: participant.contact (c.example)" in explanation
    assert "0101234565" not in explanation
    assert "lan@" not in explanation


def test_content_that_cannot_be_read_is_reported_not_raised():
    engine = classifier([CustomerRecord(id="C1")])
    assert engine.scan_content(b"\x00garbage", filename="a.docx").skipped == "corrupt"
    off = classifier([CustomerRecord(id="C1")], parse_policy("classification:\n  text_extraction: {enabled: false}\n"))
    assert off.scan_content(b"MST 0101234565", filename="a.txt").skipped == "extraction-disabled"
    scan = engine.scan_content(b"MST 0101234565", filename="a.txt")
    assert (scan.skipped, [f.detector for f in scan.findings]) == (None, ["mst"])
