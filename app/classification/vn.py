"""Structure checks for Vietnamese identifiers (facts and sources: shared/reference/vn-identifiers.md).

Pure functions over digit strings; the detectors find candidates in text and call these to validate them.
"""

import re
from dataclasses import dataclass

from stdnum.vn import mst as stdnum_mst

# CCCD: "0" + the 2-digit administrative code of the 63 provinces (vn-identifiers.md 2.3). The 2025 merger
# closed codes without reissuing them, so the 63-code list stays the allowlist.
CCCD_PROVINCE_CODES = frozenset(
    "001 002 004 006 008 010 011 012 014 015 017 019 020 022 024 025 026 027 030 031 033 034 035 036 037 038 "
    "040 042 044 045 046 048 049 051 052 054 056 058 060 062 064 066 067 068 070 072 074 075 077 079 080 082 "
    "083 084 086 087 089 091 092 093 094 095 096".split()
)

# libphonenumber 9.0.43 region VN mobile pattern over the national significant number (vn-identifiers.md 4.3).
_MOBILE_NSN = re.compile(
    r"121[0-3]\d{5}|(?:1[46]0|(?:3\d|7[06-9])\d|5(?:[1689]\d|2[238]|59)|8(?:[1-8]\d|9[6-9])|9(?:[0-8]\d|9[013-9]))\d{6}"
)
# Landline area codes after the 2017 renumbering (vn-identifiers.md 4.4): 24 and 28 take 8 subscriber digits,
# every other (3-digit) code takes 7, so the national significant number is always 10 digits.
_TWO_DIGIT_AREA_CODES = frozenset({"24", "28"})
_THREE_DIGIT_AREA_CODES = frozenset(
    [f"20{d}" for d in "3456789"]
    + [f"21{d}" for d in "01234569"]
    + ["220", "221", "222", "225", "226", "227", "228", "229"]
    + [f"23{d}" for d in "23456789"]
    + ["251", "252", "254", "255", "256", "257", "258", "259"]
    + ["260", "261", "262", "263", "269"]
    + [f"27{d}" for d in "01234567"]
    + ["290", "291", "292", "293", "294", "296", "297", "299"]
)


def mst_is_valid(digits: str) -> bool:
    """A 10-digit MST or a 13-digit branch MST (digits only) with a correct check digit."""
    # stdnum accepts a 00 range code; no such range is issued (the npm port rejects it too), and accepting it
    # turns zero-padded reference numbers into tax codes.
    return digits.isdigit() and digits[:2] != "00" and stdnum_mst.is_valid(digits)


def mst_check_digit(prefix9: str) -> int | None:
    """The check digit for the first nine digits, or None when no digit can be valid (remainder 0)."""
    remainder = sum(w * int(d) for w, d in zip((31, 29, 23, 19, 17, 13, 7, 5, 3), prefix9, strict=True)) % 11
    return None if remainder == 0 else 10 - remainder


@dataclass(frozen=True, slots=True)
class CccdParts:
    province_code: str
    female: bool
    birth_year: int


def cccd_parse(digits: str, *, reference_year: int) -> CccdParts | None:
    """The parts of a 12-digit personal identification number, or None when its structure cannot be real."""
    if len(digits) != 12 or not digits.isdigit():
        return None
    province = digits[:3]
    if province not in CCCD_PROVINCE_CODES:
        return None
    century_sex = int(digits[3])
    birth_year = 1900 + 100 * (century_sex // 2) + int(digits[4:6])
    if birth_year > reference_year:
        return None
    return CccdParts(province_code=province, female=century_sex % 2 == 1, birth_year=birth_year)


def phone_kind(national_significant_number: str) -> str | None:
    """'mobile' or 'landline' when the number (without +84 or the trunk 0) is in a current Vietnamese range."""
    nsn = national_significant_number
    if len(nsn) == 9 and _MOBILE_NSN.fullmatch(nsn):
        return "mobile"
    if len(nsn) == 10 and (nsn[:2] in _TWO_DIGIT_AREA_CODES or nsn[:3] in _THREE_DIGIT_AREA_CODES):
        return "landline"
    return None


def normalize_phone(text: str) -> str | None:
    """E.164 form (+84...) of a written Vietnamese phone number, or None when it is not a valid VN number."""
    digits = "".join(ch for ch in text if ch.isdigit())
    if text.lstrip().startswith(("+", "(+")) or (digits.startswith("84") and not digits.startswith("840")):
        national = digits[2:]
        if national.startswith("0"):  # "+84 (0) 912 ..." keeps the trunk zero in brackets
            national = national[1:]
    elif digits.startswith("0084"):
        national = digits[4:]
    elif digits.startswith("0"):
        national = digits[1:]
    else:
        return None
    return f"+84{national}" if phone_kind(national) else None
