"""Accent- and case-folding that keeps string offsets, so matches on the folded copy point into the original."""

import re
import unicodedata
from functools import lru_cache


def _build_fold_table() -> dict[int, str]:
    table: dict[int, str] = {}
    # Latin-1, Latin Extended-A/B and Latin Extended Additional cover every Vietnamese letter.
    for code in [*range(0x00C0, 0x0250), *range(0x1E00, 0x1F00)]:
        base = unicodedata.normalize("NFD", chr(code))[0].lower()
        if len(base) == 1 and base.isascii():
            table[code] = base
    table.update({ord("Đ"): "d", ord("đ"): "d", ord("Ð"): "d"})
    table.update({ord(upper): upper.lower() for upper in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"})
    # Full-width digits appear in text pasted from East Asian input methods.
    table.update({0xFF10 + n: str(n) for n in range(10)})
    return table


_FOLD_TABLE = _build_fold_table()
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def fold(text: str) -> str:
    """Lower-case ASCII shadow of NFC text with the same length: 'Mã số thuế' -> 'ma so thue'."""
    return text.translate(_FOLD_TABLE)


@lru_cache(maxsize=65536)
def slug(text: str) -> str:
    """Folded, with every run of other characters turned into one '-': 'Khách Hàng/' -> 'khach-hang'."""
    return _NON_ALNUM.sub("-", fold(unicodedata.normalize("NFC", text)).lower()).strip("-")
