"""Reading a registry file (CSV or JSON) into numbered rows. Validation of each row happens in schemas.py.

Row numbers are what a person sees: in a CSV the header is row 1, so the first customer is row 2 (as in a
spreadsheet); in JSON the first object of the array is row 1.
"""

import csv
import io
import json
from dataclasses import dataclass
from typing import Any, Literal

from app.exceptions import BadRequest

ImportFormat = Literal["csv", "json"]
# A registry of tens of thousands of customers stays well below this; anything bigger is not a registry.
MAX_IMPORT_BYTES = 10 * 1024 * 1024
MAX_ROWS = 100_000


class ImportFileError(BadRequest):
    """The file as a whole cannot be read (not CSV/JSON, not UTF-8, no header...): nothing was imported."""


@dataclass(frozen=True, slots=True)
class RawRow:
    number: int
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ParsedFile:
    format: ImportFormat
    rows: list[RawRow]
    columns: frozenset[str]  # every key the file uses (CSV header or union of JSON keys)


def detect_format(data: bytes, *, filename: str | None = None, content_type: str | None = None) -> ImportFormat:
    name = (filename or "").lower()
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if name.endswith(".json") or kind in ("application/json", "text/json"):
        return "json"
    if name.endswith(".csv") or kind in ("text/csv", "application/csv"):
        return "csv"
    first = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "json" if first in (b"[", b"{") else "csv"


def parse_registry_file(data: bytes, *, filename: str | None = None, content_type: str | None = None) -> ParsedFile:
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportFileError(f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB")
    try:
        # utf-8-sig: spreadsheets often start a UTF-8 CSV with a byte-order mark.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportFileError(f"the file is not UTF-8 text (byte {error.start})") from None
    kind = detect_format(data, filename=filename, content_type=content_type)
    return parse_json(text) if kind == "json" else parse_csv(text)


def parse_json(text: str) -> ParsedFile:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ImportFileError(f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    if isinstance(document, dict) and isinstance(document.get("customers"), list):
        document = document["customers"]
    if not isinstance(document, list):
        raise ImportFileError('JSON must be an array of customer objects (or {"customers": [...]})')
    return json_rows(document)


def json_rows(document: list[Any]) -> ParsedFile:
    _check_row_count(len(document))
    rows: list[RawRow] = []
    columns: set[str] = set()
    for number, value in enumerate(document, start=1):
        # A non-object row is kept so that it is reported with its number rather than silently dropped.
        values = value if isinstance(value, dict) else {"__not_an_object__": type(value).__name__}
        columns.update(str(key) for key in values)
        rows.append(RawRow(number, values))
    return ParsedFile("json", rows, frozenset(columns))


def parse_csv(text: str) -> ParsedFile:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise ImportFileError("the CSV file is empty: the first row must name the columns")
        names = [cell.strip().lower() for cell in header]
        duplicates = sorted({name for name in names if name and names.count(name) > 1})
        if duplicates:
            raise ImportFileError(f"the CSV header repeats column(s): {', '.join(duplicates)}")
        rows: list[RawRow] = []
        for number, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue  # blank lines, often at the end of a spreadsheet export
            _check_row_count(len(rows) + 1)
            if len(cells) > len(names):
                rows.append(RawRow(number, {"__extra_cells__": len(cells) - len(names)}))
                continue
            # A short row leaves its trailing columns empty, as spreadsheets write them.
            values = {name: cells[index] if index < len(cells) else "" for index, name in enumerate(names) if name}
            rows.append(RawRow(number, values))
    except csv.Error as error:
        raise ImportFileError(f"malformed CSV near line {reader.line_num}: {error}") from None
    return ParsedFile("csv", rows, frozenset(name for name in names if name))


def _check_row_count(count: int) -> None:
    if count > MAX_ROWS:
        raise ImportFileError(f"more than {MAX_ROWS} rows; split the registry into several files")
