import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.classification import IdentifierHasher, IdentifierScanner
from app.classification.vn import CCCD_PROVINCE_CODES, mst_check_digit, phone_kind
from app.policy import Policy, parse_policy

HASHER = IdentifierHasher(b"test-key")
YEAR = 2026


@pytest.fixture(scope="module")
def scanner() -> IdentifierScanner:
    return IdentifierScanner(Policy().classification, hasher=HASHER, reference_year=YEAR)


def kinds(scanner: IdentifierScanner, text: str) -> list[tuple[str, str, str, int]]:
    return [(f.detector, f.rule_id, text[f.start : f.end], f.confidence) for f in scanner.scan(text)]


class TestTaxCode:
    def test_keyword_gives_high_confidence(self, scanner):
        assert kinds(scanner, "Mã số thuế: 0100047516") == [("mst", "vn-mst", "0100047516", 85)]

    def test_bad_check_digit_is_not_matched(self, scanner):
        assert kinds(scanner, "MST: 0100047517, tax code 0100233480") == []

    def test_branch_form_is_medium_without_keyword_and_points_at_its_parent(self, scanner):
        [finding] = scanner.scan("xem 0312687878-001 nhé")
        assert (finding.rule_id, finding.confidence) == ("vn-mst-branch", 75)
        assert finding.entity_hash == HASHER("tax_code", "0312687878")
        assert finding.value_hash == HASHER("tax_code", "0312687878-001")

    def test_digit_boundaries(self, scanner):
        assert kinds(scanner, "MST 01000475161 và 90100047516") == []

    def test_bare_mst_that_is_also_a_mobile_reads_as_phone_without_tax_keyword(self, scanner):
        assert kinds(scanner, "gọi 0312687878") == [("phone", "vn-phone-mobile", "0312687878", 65)]
        assert kinds(scanner, "MST: 0312687878") == [("mst", "vn-mst", "0312687878", 85)]

    def test_bare_mst_that_is_not_a_phone_is_low(self, scanner):
        assert kinds(scanner, "số 0100047516") == [("mst", "vn-mst", "0100047516", 65)]


class TestPersonalId:
    def test_keyword_gives_high_confidence(self, scanner):
        assert kinds(scanner, "Số CCCD: 001087123456, ngày cấp 01/02/2021") == [("cccd", "vn-cccd", "001087123456", 85)]

    def test_structure_alone_is_low(self, scanner):
        assert kinds(scanner, "ref 079203001234") == [("cccd", "vn-cccd", "079203001234", 65)]

    @pytest.mark.parametrize("number", ["003087123456", "050087123456", "079295123456", "202503011230"])
    def test_impossible_structures_are_not_matched(self, scanner, number):
        assert kinds(scanner, f"CCCD: {number}") == []


class TestPhone:
    @pytest.mark.parametrize(
        "written",
        ["0912 345 678", "0912.345.678", "0912-345-678", "+84 912 345 678", "+84912345678", "(+84) 912 345 678",
         "+84 (0) 912 345 678", "84912345678"],
    )  # fmt: skip
    def test_written_forms_normalise_to_one_hash(self, scanner, written):
        [finding] = scanner.scan(f"Liên hệ anh Nam {written} nhé")
        assert finding.value_hash == HASHER("phone", "+84912345678")
        assert finding.confidence == 85

    def test_landlines(self, scanner):
        found = kinds(scanner, "Tel 024 3826 1234 / 0236 3 123 456")
        assert [(detector, rule) for detector, rule, _, _ in found] == [("phone", "vn-phone-landline")] * 2

    def test_formatting_without_keyword_is_medium(self, scanner):
        assert kinds(scanner, "+84 912 345 678") == [("phone", "vn-phone-mobile", "+84 912 345 678", 75)]

    def test_not_phones(self, scanner):
        # wrong ranges, too long, and the 10-digit head of a branch tax code
        assert kinds(scanner, "0201 234 5678 | 09123456789 | 0521 345 678") == []
        assert [f.detector for f in scanner.scan("MST 0312687878-001")] == ["mst"]


class TestPolicyPatterns:
    def test_contract_number_from_the_default_policy(self, scanner):
        assert kinds(scanner, "Hợp đồng số HĐ-2024/0001") == [("pattern", "contract-number", "HĐ-2024/0001", 85)]
        assert kinds(scanner, "ref HĐ-2024/0001") == [("pattern", "contract-number", "HĐ-2024/0001", 75)]

    def test_custom_pattern_and_disabled_detectors(self):
        policy = parse_policy(
            "classification:\n"
            "  detectors:\n    phone: {enabled: false}\n    mst: {enabled: false}\n"
            "  patterns:\n"
            "    - {id: po, name: Purchase order, regex: 'po-\\d{6}', ignore_case: true, confidence: 60}\n"
        )
        scanner = IdentifierScanner(policy.classification, hasher=HASHER, reference_year=YEAR)
        findings = scanner.scan("PO-123456 and po-123456, 0912 345 678, MST 0100047516")
        assert [(f.rule_id, f.confidence) for f in findings] == [("po", 60), ("po", 60)]
        assert findings[0].value_hash == findings[1].value_hash  # case-insensitive pattern: one normalised value


class TestPrivacy:
    def test_findings_hold_no_raw_values(self, scanner):
        text = "MST 0100047516, CCCD 001087123456, SĐT 0912345678, HĐ-2024/0001"
        findings = scanner.scan(text)
        assert len(findings) == 4
        rendered = repr(findings)
        for raw in ("0100047516", "001087123456", "0912345678", "912345678", "2024/0001"):
            assert raw not in rendered

    def test_hashes_depend_on_the_installation_key(self):
        assert IdentifierHasher(b"a")("phone", "+84912345678") != IdentifierHasher(b"b")("phone", "+84912345678")

    def test_full_width_digits_are_read_as_digits(self, scanner):
        [finding] = scanner.scan("MST: ０１０００４７５１６")
        assert finding.value_hash == HASHER("tax_code", "0100047516")

    def test_offsets_refer_to_nfc_text(self, scanner):
        decomposed = "Ma\u0303 so\u0302\u0301 thue\u0302\u0301: 0100047516"
        [finding] = scanner.scan(decomposed)
        assert finding.keyword
        assert finding.end - finding.start == 10


# Properties -------------------------------------------------------------------------------------------------

_FILLER = st.text(alphabet="abcdeghiklmnopqrstuvxyàáâãèéêìíòóôõùúýăđơưạảấầẩẫậắằẳẵặ ,;:()\n", max_size=40)


@st.composite
def mst_prefixes(draw: st.DrawFn) -> str:
    """Nine digits that can carry a check digit: range code not 00, sequence not 0000000, remainder not 0."""
    prefix = draw(st.from_regex(r"[0-9]{9}", fullmatch=True).filter(lambda p: p[:2] != "00" and p[2:] != "0000000"))
    return prefix if mst_check_digit(prefix) is not None else draw(mst_prefixes())


class TestProperties:
    @settings(max_examples=300, deadline=None)
    @given(prefix=mst_prefixes(), before=_FILLER, after=_FILLER)
    def test_a_valid_mst_is_always_found(self, prefix, before, after):
        scanner = IdentifierScanner(Policy().classification, hasher=HASHER, reference_year=YEAR)
        code = prefix + str(mst_check_digit(prefix))
        text = f"{before} MST: {code} {after}"
        found = [f for f in scanner.scan(text) if f.detector == "mst"]
        assert [(text[f.start : f.end], f.entity_hash) for f in found] == [(code, HASHER("tax_code", code))]

    @settings(max_examples=300, deadline=None)
    @given(prefix=mst_prefixes(), offset=st.integers(1, 9), before=_FILLER, after=_FILLER)
    def test_a_wrong_check_digit_is_never_found(self, prefix, offset, before, after):
        scanner = IdentifierScanner(Policy().classification, hasher=HASHER, reference_year=YEAR)
        code = prefix + str((mst_check_digit(prefix) + offset) % 10)
        text = f"{before} Mã số thuế {code} {after} chi nhánh {code}-001"
        assert [f for f in scanner.scan(text) if f.detector == "mst"] == []

    @settings(max_examples=200, deadline=None)
    @given(prefix=mst_prefixes(), branch=st.integers(1, 999), before=_FILLER)
    def test_a_branch_mst_points_at_its_parent(self, prefix, branch, before):
        scanner = IdentifierScanner(Policy().classification, hasher=HASHER, reference_year=YEAR)
        code = prefix + str(mst_check_digit(prefix))
        [finding] = [f for f in scanner.scan(f"{before} {code}-{branch:03d}") if f.detector == "mst"]
        assert finding.entity_hash == HASHER("tax_code", code)

    @settings(max_examples=200, deadline=None)
    @given(
        province=st.sampled_from(sorted(CCCD_PROVINCE_CODES)),
        year=st.integers(1900, YEAR),
        female=st.booleans(),
        rest=st.from_regex(r"[0-9]{6}", fullmatch=True),
        before=_FILLER,
    )
    def test_a_plausible_cccd_is_found(self, province, year, female, rest, before):
        scanner = IdentifierScanner(Policy().classification, hasher=HASHER, reference_year=YEAR)
        number = f"{province}{2 * ((year - 1900) // 100) + int(female)}{year % 100:02d}{rest}"
        [finding] = [f for f in scanner.scan(f"{before} CCCD {number}") if f.detector == "cccd"]
        assert finding.value_hash == HASHER("personal_id", number)

    @settings(max_examples=200, deadline=None)
    @given(
        province=st.integers(0, 999).map(lambda n: f"{n:03d}").filter(lambda code: code not in CCCD_PROVINCE_CODES),
        tail=st.from_regex(r"[0-9]{9}", fullmatch=True),
    )
    def test_an_unassigned_province_code_is_never_a_cccd(self, province, tail):
        scanner = IdentifierScanner(Policy().classification, hasher=HASHER, reference_year=YEAR)
        assert [f for f in scanner.scan(f"Số CCCD: {province}{tail}") if f.detector == "cccd"] == []

    @settings(max_examples=300, deadline=None)
    @given(
        nsn=st.from_regex(r"(3[0-9]|5[1689]|7[06-9]|8[1-8]|9[0-8])[0-9]{7}", fullmatch=True),
        form=st.sampled_from(["0{a}{b}{c}", "0{a} {b} {c}", "0{a}.{b}.{c}", "+84 {a} {b} {c}", "+84{a}{b}{c}",
                              "84{a}{b}{c}", "(+84) {a}-{b}-{c}", "+84 (0) {a} {b} {c}"]),
        before=_FILLER,
    )  # fmt: skip
    def test_a_valid_mobile_in_any_written_form_is_found(self, nsn, form, before):
        assert phone_kind(nsn) == "mobile"
        scanner = IdentifierScanner(Policy().classification, hasher=HASHER, reference_year=YEAR)
        written = form.format(a=nsn[:3], b=nsn[3:6], c=nsn[6:])
        phones = [f for f in scanner.scan(f"{before} SĐT: {written}.") if f.detector == "phone"]
        assert [f.value_hash for f in phones] == [HASHER("phone", "+84" + nsn)]
