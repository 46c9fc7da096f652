import pytest

from app.classification.vn import (
    CCCD_PROVINCE_CODES,
    cccd_parse,
    mst_check_digit,
    mst_is_valid,
    normalize_phone,
    phone_kind,
)


@pytest.mark.parametrize(
    ("prefix", "check"),
    [("010004751", 6), ("010023348", 8), ("031440905", 8), ("010011243", 7), ("031268787", 8), ("011500080", None)],
)
def test_mst_check_digit_worked_examples(prefix, check):
    assert mst_check_digit(prefix) == check


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("0100047516", True),
        ("0100047517", False),
        ("0100233480", False),
        ("0312687878001", True),
        ("0314409058000", False),  # branch 000 does not exist
        ("0000000017", False),  # range 00 and sequence 0000000 are never issued
        ("0100000007", False),
        ("010004751", False),
    ],
)
def test_mst_validity(digits, valid):
    assert mst_is_valid(digits) is valid


def test_province_allowlist_has_the_63_codes():
    assert len(CCCD_PROVINCE_CODES) == 63
    assert {"001", "079", "096"} <= CCCD_PROVINCE_CODES
    assert not {"003", "050", "090", "097"} & CCCD_PROVINCE_CODES


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("001087123456", ("001", False, 1987)),
        ("079203001234", ("079", False, 2003)),
        ("037153000257", ("037", True, 1953)),
        ("003087123456", None),  # unassigned province code
        ("079295123456", None),  # born in 2095
        ("07920300123", None),
    ],
)
def test_cccd_structure(digits, expected):
    parts = cccd_parse(digits, reference_year=2026)
    assert (parts and (parts.province_code, parts.female, parts.birth_year)) == expected


@pytest.mark.parametrize(
    ("written", "e164"),
    [
        ("0912345678", "+84912345678"),
        ("0912 345 678", "+84912345678"),
        ("0912.345.678", "+84912345678"),
        ("0912-345-678", "+84912345678"),
        ("+84 912 345 678", "+84912345678"),
        ("84912345678", "+84912345678"),
        ("(+84) 912 345 678", "+84912345678"),
        ("+84 (0) 912 345 678", "+84912345678"),
        ("0084 912 345 678", "+84912345678"),
        ("024 3826 1234", "+842438261234"),
        ("+84 24 3826 1234", "+842438261234"),
        ("0236 3 123 456", "+842363123456"),
        ("0843 123 456", "+84843123456"),
        ("0872 123 456", "+84872123456"),
        ("0201 234 5678", None),  # 0201 is not an area code
        ("0521 345 678", None),  # 052x is mobile only for x in 2, 3, 8
        ("0912 345 67", None),
        ("912345678", None),  # no trunk zero and no country code
    ],
)
def test_phone_normalisation(written, e164):
    assert normalize_phone(written) == e164


def test_phone_kind():
    assert phone_kind("912345678") == "mobile"
    assert phone_kind("2438261234") == "landline"
    assert phone_kind("2001234567") is None
