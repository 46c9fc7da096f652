"""Sensitive-information detectors for Vietnamese identifiers and policy-defined patterns.

Confidence follows Purview's scale (low 65, medium 75, high 85): a checksum or a plausible structure alone is
low, a distinctive written form is medium, and a context keyword within the policy's window is high
(vn-identifiers.md sections 1.6, 2.3, 4.5 and 7). A finding keeps only keyed hashes of the value, never the value.
"""

import bisect
import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from app.classification.folding import fold
from app.classification.vn import cccd_parse, mst_is_valid, normalize_phone
from app.policy.schemas import Classification, PatternRule

LOW, MEDIUM, HIGH = 65, 75, 85

MST_KEYWORDS = (
    "mst", "ma so thue", "ma so doanh nghiep", "msdn", "ma so dn", "giay chung nhan dang ky doanh nghiep", "gcndkdn",
    "dkkd", "dang ky kinh doanh", "hoa don", "don vi ban hang", "nguoi mua hang", "nguoi ban", "nguoi mua",
    "chi nhanh", "cuc thue", "chi cuc thue", "tax code", "tax id", "tax identification number",
    "taxpayer identification number", "vat code", "vat no", "enterprise code", "business registration number",
    "company code",
)  # fmt: skip
CCCD_KEYWORDS = (
    "cccd", "can cuoc cong dan", "the can cuoc", "can cuoc", "so dinh danh ca nhan", "so dinh danh", "ma dinh danh",
    "ddcn", "cmnd", "cmt", "chung minh nhan dan", "so cc", "ngay cap", "noi cap", "bo cong an", "vneid",
    "giay khai sinh", "ma so thue ca nhan", "mst ca nhan", "citizen id", "citizen identity card",
    "citizen identification number", "id card", "national id", "identity card number",
    "personal identification number",
)  # fmt: skip
PHONE_KEYWORDS = (
    "sdt", "so dien thoai", "dien thoai", "dt", "di dong", "dtdd", "lien he", "hotline", "zalo", "viber", "tel",
    "phone", "mobile", "mob", "cell", "fax",
)  # fmt: skip

# Patterns run on the folded text (ASCII digits, same offsets). Digit boundaries keep a match from being part
# of a longer number; a hyphen before a 10-digit run or a '-ddd' after it belongs to another form.
_MST = re.compile(r"(?<![\d\-.])(\d{10})(?:[ ]?-[ ]?(\d{3}))?(?!\d|[ ]?-[ ]?\d)", re.ASCII)
_CCCD = re.compile(r"(?<![\d\-.])\d{12}(?![\d]|-\d)", re.ASCII)
_SEP = r"[ \u00a0.\-]"
_PHONE = re.compile(
    rf"(?<![\d+])(?:\(?(?:\+|00)?84\)?{_SEP}?(?:\(0\){_SEP}?)?|0)"
    rf"(?:(?:3\d|5[1-9]|7[06-9]|8[1-9]|9\d)(?:{_SEP}?\d){{7}}|2\d(?:{_SEP}?\d){{8}})"
    rf"(?!\d|[ \u00a0]?-[ \u00a0]?\d)",
    re.ASCII,  # fold() already turned full-width digits into ASCII; other scripts' digits are not identifiers
)


class IdentifierHasher:
    """Keyed hashes of normalised identifiers, so stored findings cannot be reversed by enumerating the small
    identifier spaces (a 10-digit MST has 10^9 candidates). Use one per-installation secret everywhere."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __call__(self, kind: str, normalized: str) -> str:
        return hmac.new(self._key, f"{kind}\x1f{normalized}".encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Finding:
    detector: str  # mst | cccd | phone | pattern
    rule_id: str
    value_hash: str
    entity_hash: str  # the identity the value belongs to: a branch MST hashes to its parent's code here
    start: int
    end: int
    confidence: int
    keyword: bool


@dataclass(slots=True)
class _Keywords:
    """Positions of a detector's keywords in the folded text, found once per text on first use."""

    pattern: re.Pattern[str]
    window: int
    folded: str
    positions: list[int] | None = None

    def near(self, start: int, end: int) -> bool:
        if self.positions is None:
            self.positions = [match.start() for match in self.pattern.finditer(self.folded)]
        index = bisect.bisect_left(self.positions, start - self.window)
        return index < len(self.positions) and self.positions[index] <= end + self.window


def _keyword_pattern(keywords: Iterable[str]) -> re.Pattern[str]:
    folded = sorted({fold(unicodedata.normalize("NFC", word)).lower().strip() for word in keywords}, key=len)
    alternatives = "|".join(re.escape(word) for word in reversed(folded) if word)
    return re.compile(rf"(?<![a-z0-9])(?:{alternatives})(?![a-z0-9])" if alternatives else r"(?!)")


@dataclass(frozen=True, slots=True)
class _CompiledPattern:
    rule: PatternRule
    regex: re.Pattern[str]
    keywords: re.Pattern[str]


class IdentifierScanner:
    """Finds the identifiers the policy enables in a text. Offsets refer to the NFC form of the text."""

    def __init__(self, settings: Classification, *, hasher: IdentifierHasher, reference_year: int | None = None):
        self._settings = settings
        self._hash = hasher
        self._year = reference_year or datetime.now(UTC).year
        self._window = settings.keyword_proximity_chars
        self._mst_keywords = _keyword_pattern(MST_KEYWORDS)
        self._cccd_keywords = _keyword_pattern(CCCD_KEYWORDS)
        self._phone_keywords = _keyword_pattern(PHONE_KEYWORDS)
        self._patterns = [
            _CompiledPattern(
                rule=rule,
                regex=re.compile(rule.regex, re.IGNORECASE if rule.ignore_case else 0),
                keywords=_keyword_pattern(rule.keywords),
            )
            for rule in settings.patterns
        ]

    def scan(self, text: str) -> list[Finding]:
        text = unicodedata.normalize("NFC", text)[: self._settings.text_extraction.max_text_chars]
        folded = fold(text)
        detectors = self._settings.detectors
        phones = self._phones(folded) if detectors.phone.enabled else []
        findings: list[Finding] = []
        if detectors.mst.enabled:
            findings.extend(self._tax_codes(folded, phones))
        if detectors.cccd.enabled:
            findings.extend(self._personal_ids(folded))
        findings.extend(phone for phone, _ in phones if phone is not None)
        findings.extend(self._pattern_matches(text, folded))
        findings.sort(key=lambda finding: (finding.start, finding.detector))
        return findings

    def _keywords(self, pattern: re.Pattern[str], folded: str) -> _Keywords:
        return _Keywords(pattern=pattern, window=self._window, folded=folded)

    def _phones(self, folded: str) -> list[tuple[Finding | None, bool]]:
        """Phone findings with a flag telling whether they were written bare (ten digits, nothing else)."""
        keywords = self._keywords(self._phone_keywords, folded)
        phones: list[tuple[Finding | None, bool]] = []
        for match in _PHONE.finditer(folded):
            written = match.group()
            normalized = normalize_phone(written)
            if normalized is None:
                continue
            bare = written.isdigit() and written.startswith("0")
            keyword = keywords.near(match.start(), match.end())
            confidence = HIGH if keyword else LOW if bare else MEDIUM
            kind = "landline" if normalized.startswith("+842") else "mobile"
            value_hash = self._hash("phone", normalized)
            finding = Finding("phone", f"vn-phone-{kind}", value_hash, value_hash, *match.span(), confidence, keyword)
            phones.append((finding, bare))
        return phones

    def _tax_codes(self, folded: str, phones: list[tuple[Finding | None, bool]]) -> list[Finding]:
        keywords = self._keywords(self._mst_keywords, folded)
        bare_phones = {(phone.start, phone.end): index for index, (phone, bare) in enumerate(phones) if phone and bare}
        findings = []
        for match in _MST.finditer(folded):
            base, branch = match.group(1), match.group(2)
            if not mst_is_valid(base + (branch or "")):
                continue
            keyword = keywords.near(match.start(), match.end())
            phone_index = bare_phones.get(match.span()) if branch is None else None
            if phone_index is not None:
                # A bare 03x MST is also a well-formed mobile number (vn-identifiers.md 1.6): the keywords
                # decide; with none, or both kinds, the phone reading stands and the MST needs its own keyword.
                if not keyword:
                    continue
                phone = phones[phone_index][0]
                if phone is not None and not phone.keyword:
                    phones[phone_index] = (None, True)
            confidence = HIGH if keyword else MEDIUM if branch else LOW
            normalized = f"{base}-{branch}" if branch else base
            findings.append(
                Finding(
                    "mst",
                    "vn-mst-branch" if branch else "vn-mst",
                    self._hash("tax_code", normalized),
                    self._hash("tax_code", base),
                    *match.span(),
                    confidence,
                    keyword,
                )
            )
        return findings

    def _personal_ids(self, folded: str) -> list[Finding]:
        keywords = self._keywords(self._cccd_keywords, folded)
        findings = []
        for match in _CCCD.finditer(folded):
            digits = match.group()
            if cccd_parse(digits, reference_year=self._year) is None:
                continue
            keyword = keywords.near(match.start(), match.end())
            value_hash = self._hash("personal_id", digits)
            findings.append(
                Finding("cccd", "vn-cccd", value_hash, value_hash, *match.span(), HIGH if keyword else LOW, keyword)
            )
        return findings

    def _pattern_matches(self, text: str, folded: str) -> list[Finding]:
        findings = []
        for compiled in self._patterns:
            rule = compiled.rule
            keywords = self._keywords(compiled.keywords, folded)
            for match in compiled.regex.finditer(text):
                if match.start() == match.end():
                    continue
                normalized = " ".join(match.group().split())
                if rule.ignore_case:
                    normalized = normalized.casefold()
                keyword = keywords.near(match.start(), match.end())
                value_hash = self._hash(f"pattern:{rule.id}", normalized)
                confidence = rule.confidence_with_keyword if keyword else rule.confidence
                findings.append(Finding("pattern", rule.id, value_hash, value_hash, *match.span(), confidence, keyword))
        return findings
