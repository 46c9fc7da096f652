"""driveItem delta: tokens, and the pages they lead to.

A token is an opaque, URL-safe encoding of a cursor:
- "i" (initial enumeration): walks the drive's items in creation order (parents before children), skipping
  deleted ones; its deltaLink then covers every change after the sequence number seen when it started;
- "c" (changes): walks the drive's change log after a sequence number, reporting each item at its latest entry;
- "t" (since a timestamp, OneDrive for Business / SharePoint only): items modified or deleted since then.
Tokens from another drive, from before an "expire delta tokens" control action, or that don't decode at all
are answered with 410 Gone and a fresh enumeration URL.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

from emulator.files.store import Drive, DriveItem, FileStore

DEFAULT_PAGE_SIZE = 200
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Cursor:
    drive_id: str
    scope_id: str
    mode: str  # "i" | "c" | "t"
    mark: int  # "i"/"t": the sequence number the enumeration started at; "c": changes after this number
    epoch: int
    pos: int | None = None  # position in drive.order ("i", "t") or in the change log ("c"); None: from the start
    since: str | None = None  # "t": ISO timestamp
    select: tuple[str, ...] | None = None
    top: int | None = None


def encode(cursor: Cursor) -> str:
    fields = {k: v for k, v in asdict(cursor).items() if v is not None}
    raw = json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str) -> Cursor | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        fields = json.loads(raw)
        if not isinstance(fields, dict):
            return None
        select = fields.get("select")
        cursor = Cursor(
            drive_id=str(fields["drive_id"]),
            scope_id=str(fields["scope_id"]),
            mode=str(fields["mode"]),
            mark=int(fields["mark"]),
            epoch=int(fields["epoch"]),
            pos=int(fields["pos"]) if fields.get("pos") is not None else None,
            since=str(fields["since"]) if fields.get("since") is not None else None,
            select=tuple(str(s) for s in select) if isinstance(select, list) else None,
            top=int(fields["top"]) if fields.get("top") is not None else None,
        )
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    return cursor if cursor.mode in ("i", "c", "t") else None


def parse_timestamp(token: str) -> datetime | None:
    """OneDrive for Business accepts a URL-encoded timestamp in place of a token."""
    if len(token) < 10 or not token[:4].isdigit() or token[4] != "-":
        return None
    try:
        parsed = datetime.fromisoformat(token.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(slots=True)
class Page:
    items: list[DriveItem]
    next_cursor: Cursor | None  # more pages now
    delta_cursor: Cursor | None  # set on the last page: the token for later changes


def page(store: FileStore, drive: Drive, cursor: Cursor, page_size: int, *, exclude_parents: bool) -> Page:
    scope = store.items[cursor.scope_id]
    if cursor.mode == "c":
        return _changes_page(store, drive, cursor, scope, page_size, exclude_parents)
    since = parse_timestamp(cursor.since) if cursor.since else None
    found: list[DriveItem] = []
    position = cursor.pos or 0
    order = drive.order
    while position < len(order) and len(found) < page_size:
        item = store.items[order[position]]
        position += 1
        if not store.is_within(item, scope):
            continue
        if since is None:
            if item.alive:
                found.append(item)
        elif item.modified >= since or (item.deleted is not None and item.deleted >= since):
            found.append(item)
    if position < len(order):
        return Page(found, replace(cursor, pos=position), None)
    return Page(found, None, replace(cursor, mode="c", pos=None, since=None))


def _changes_page(
    store: FileStore, drive: Drive, cursor: Cursor, scope: DriveItem, page_size: int, exclude_parents: bool
) -> Page:
    found: list[DriveItem] = []
    position = cursor.pos if cursor.pos is not None else drive.log_position_after(cursor.mark)
    seqs, ids = drive.log_seqs, drive.log_ids
    while position < len(seqs) and len(found) < page_size:
        seq, item = seqs[position], store.items[ids[position]]
        position += 1
        # Only an item's latest entry counts, so the feed carries each item's current state once per round.
        if item.seq != seq or not store.is_within(item, scope):
            continue
        if exclude_parents and item.changed_seq <= cursor.mark:
            continue
        found.append(item)
    if position < len(seqs):
        return Page(found, replace(cursor, pos=position), None)
    return Page(found, None, replace(cursor, mark=max(cursor.mark, store.last_seq), pos=None))
