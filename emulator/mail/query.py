"""OData query options and Prefer headers as the Outlook endpoints of Graph read them.

Query option names are accepted with and without the `$` prefix (Graph v1.0 accepts both), and case-insensitively.
Only the `$filter` and `$orderby` forms the messages docs describe are understood; anything else is a 400, the way
Outlook answers a filter it cannot run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from fastapi import Request

from emulator.errors import GraphError
from emulator.mail.store import Message

DEFAULT_PAGE = 10
_LINK_SAFE = ",'():"
MAX_PAGE = 1000

_CLAUSE = re.compile(r"^\s*receivedDateTime\s+(ge|gt|le|lt|eq)\s+(\S+)\s*$", re.IGNORECASE)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:\d{2})?)?$")
_PREFER = re.compile(r'\s*([A-Za-z][\w.-]*)\s*(?:=\s*("[^"]*"|[^,;\s]*))?')


def query_options(request: Request) -> dict[str, str]:
    """The request's query options keyed by lower-case name without `$`; `$select` and `select` are the same."""
    found: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        found[key.lower().removeprefix("$")] = value
    return found


def next_link_query(options: dict[str, str | None]) -> str:
    """A query string for an @odata.nextLink: literal `$` in names, values percent-encoded."""
    parts = []
    for name, value in options.items():
        if value is None:
            continue
        parts.append(f"{name}={quote(value, safe=_LINK_SAFE)}")
    return "&".join(parts)


@dataclass(frozen=True, slots=True)
class Preferences:
    max_page_size: int | None
    immutable_ids: bool
    body_type: str | None  # "text" | "html" when outlook.body-content-type was given

    def applied(self, *, page_size_used: bool = False) -> str | None:
        """The Preference-Applied header value for what this response honoured."""
        parts = []
        if page_size_used and self.max_page_size is not None:
            parts.append(f"odata.maxpagesize={self.max_page_size}")
        if self.immutable_ids:
            parts.append('IdType="ImmutableId"')
        if self.body_type:
            parts.append(f'outlook.body-content-type="{self.body_type}"')
        return ", ".join(parts) or None


def preferences(request: Request) -> Preferences:
    max_page_size: int | None = None
    immutable = False
    body_type: str | None = None
    for header in request.headers.getlist("prefer"):
        for match in _PREFER.finditer(header.replace(";", ",")):
            name, raw = match.group(1).lower(), (match.group(2) or "").strip('"')
            if name == "odata.maxpagesize":
                if not raw.isdigit() or int(raw) < 1:
                    raise GraphError(400, "ErrorInvalidRequest", f"Invalid odata.maxpagesize preference '{raw}'.")
                max_page_size = min(int(raw), MAX_PAGE)
            elif name == "idtype":
                immutable = raw.lower() == "immutableid"
            elif name == "outlook.body-content-type" and raw.lower() in ("text", "html"):
                body_type = raw.lower()
    return Preferences(max_page_size, immutable, body_type)


def parse_int(options: dict[str, str], name: str, *, default: int, low: int, high: int) -> int:
    raw = options.get(name)
    if raw is None:
        return default
    if not raw.strip().isdigit() or not low <= int(raw) <= high:
        raise GraphError(400, "ErrorInvalidUrlQuery", f"The value '{raw}' of '${name}' is invalid; use {low}-{high}.")
    return int(raw)


def parse_select(raw: str | None, known: dict[str, str], type_name: str) -> tuple[str, ...] | None:
    """Canonical property names from a $select list; unknown names are the 400 Graph gives."""
    if raw is None or not raw.strip():
        return None
    selected: list[str] = []
    for name in (part.strip() for part in raw.split(",")):
        canonical = known.get(name.lower())
        if canonical is None:
            raise GraphError(
                400, "RequestBroker--ParseUri", f"Could not find a property named '{name}' on type '{type_name}'."
            )
        if canonical not in selected:
            selected.append(canonical)
    return tuple(selected)


def parse_datetime(raw: str) -> float:
    if not _DATETIME.match(raw):
        raise ValueError(raw)
    text = raw.replace("Z", "+00:00")
    if "T" not in text:
        text += "T00:00:00+00:00"
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "ge": lambda a, b: a >= b,
    "gt": lambda a, b: a > b,
    "le": lambda a, b: a <= b,
    "lt": lambda a, b: a < b,
    "eq": lambda a, b: a == b,
}


@dataclass(frozen=True, slots=True)
class ReceivedFilter:
    """`receivedDateTime <op> <DateTimeOffset>` clauses joined by `and`."""

    clauses: tuple[tuple[str, float], ...]

    def __call__(self, message: Message) -> bool:
        return all(_COMPARE[op](message.received, bound) for op, bound in self.clauses)


def parse_received_filter(raw: str | None, *, operators: tuple[str, ...], resource: str) -> ReceivedFilter | None:
    if raw is None or not raw.strip():
        return None
    allowed = " or ".join(f"'receivedDateTime {op} value'" for op in operators)
    unsupported = GraphError(
        400,
        "ErrorInvalidUrlQuery",
        f"The '$filter' parameter value is not supported for '{resource}' resource; only {allowed} is supported.",
    )
    clauses: list[tuple[str, float]] = []
    for clause in re.split(r"\s+and\s+", raw.strip(), flags=re.IGNORECASE):
        match = _CLAUSE.match(clause)
        if match is None or match.group(1).lower() not in operators:
            raise unsupported
        try:
            clauses.append((match.group(1).lower(), parse_datetime(match.group(2))))
        except ValueError:
            raise GraphError(
                400, "BadRequest", f"The DateTimeOffset text '{match.group(2)}' should be in format ISO 8601."
            ) from None
    return ReceivedFilter(tuple(clauses))


ORDERABLE = {
    "receiveddatetime": "receivedDateTime",
    "sentdatetime": "sentDateTime",
    "createddatetime": "createdDateTime",
    "lastmodifieddatetime": "lastModifiedDateTime",
    "subject": "subject",
}


def parse_orderby(raw: str | None, *, filtered: bool) -> tuple[tuple[str, bool], ...]:
    """(property, descending) pairs, checked against the InefficientFilter rule of the list-messages docs."""
    if raw is None or not raw.strip():
        return ()
    order: list[tuple[str, bool]] = []
    for part in raw.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise GraphError(400, "BadRequest", f"Invalid $orderby expression '{part.strip()}'.")
        name = ORDERABLE.get(words[0].lower())
        if name is None:
            raise GraphError(400, "ErrorInvalidUrlQuery", f"The property '{words[0]}' does not support sorting.")
        order.append((name, len(words) == 2 and words[1].lower() == "desc"))
    # Properties in $orderby must also be in $filter, in the same order and first; only receivedDateTime filters.
    if filtered and [name for name, _ in order] != ["receivedDateTime"]:
        raise GraphError(400, "InefficientFilter", "The restriction or sort order is too complex for this operation.")
    return tuple(order)
