"""Streaming paging and delta iterators with resumable cursors.

The iterators are async generators that hold one page at a time (constant memory, however big the mailbox or
drive). Every page carries the cursor to resume *after* it:

    async for page in connector.mail.message_delta(user, folder, cursor=await cursors.load(key)):
        async with session.begin():              # one transaction per page
            upsert(page.items)                   # idempotent: Graph may replay an item
            await cursors.save(key, page.cursor)  # the same transaction as the upserts

That contract is what makes a crash harmless: the stored cursor always matches the items stored with it, so
a restarted iterator (built from the stored cursor) neither skips nor repeats a page. The iterators never
write cursors themselves, because only the caller owns the transaction.

A cursor is a nextLink while an enumeration is under way and a deltaLink once it has finished. When Graph says
the sync state is gone (410 Gone, syncStateNotFound), the iterator restarts a full enumeration, from the
Location Graph gave when it gave one, and flags every page of it `is_resync` (also in the cursor, so a restart
mid-resync still knows; the final deltaLink is an ordinary one again). Callers must not infer deletions from
a resync until its last page (`is_last`).
Links are followed only to allowed https hosts.
"""

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from kiota_abstractions.request_information import RequestInformation

from connectors.base import ConnectorError
from connectors.graph.budget import Claim
from connectors.graph.errors import ResyncRequired
from connectors.graph.models import CollectionPage
from connectors.graph.transport import GraphTransport

T = TypeVar("T")

# A full resync that itself hits 410 means Graph cannot keep state for us right now; stop rather than loop.
MAX_RESYNC_RESTARTS = 2


@dataclass(frozen=True, slots=True)
class Cursor:
    url: str
    is_delta: bool  # True: a deltaLink (enumeration complete); False: a nextLink (mid-enumeration)
    is_resync: bool = False


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """A page of a plain listing."""

    items: list[T]
    # Where to resume after this page; None on the last page.
    cursor: Cursor | None
    is_last: bool


@dataclass(frozen=True, slots=True)
class DeltaPage(Generic[T]):
    """A page of a delta enumeration: always carries the cursor to store with its items."""

    items: list[T]
    cursor: Cursor
    is_last: bool
    is_resync: bool = False


class CursorStore(Protocol):
    """Persistence for cursors, keyed by what is being synced (e.g. "mail:<user>:<folder>", "drive:<id>")."""

    async def load(self, key: str) -> Cursor | None: ...

    async def save(self, key: str, cursor: Cursor) -> None: ...


class InMemoryCursorStore:
    def __init__(self) -> None:
        self.cursors: dict[str, Cursor] = {}

    async def load(self, key: str) -> Cursor | None:
        return self.cursors.get(key)

    async def save(self, key: str, cursor: Cursor) -> None:
        self.cursors[key] = cursor


ClaimsFor = Callable[[RequestInformation, bool], Sequence[Claim]]


async def iterate_pages(
    transport: GraphTransport,
    first: RequestInformation,
    item_type: type[T],
    *,
    claims: ClaimsFor,
    cursor: Cursor | None = None,
) -> AsyncIterator[Page[T]]:
    """Pages of a plain collection, following @odata.nextLink; resumes from a stored nextLink cursor.

    `claims(request, is_first)` says what each request costs (SharePoint lists cost more than follow-ups).
    """
    page_type = CollectionPage[item_type]  # type: ignore[valid-type]
    request = transport.request_for_link(cursor.url, first) if cursor else first
    is_first = cursor is None
    while True:
        response = await transport.send(request, claims=claims(request, is_first))
        page = page_type.model_validate_json(response.content)
        if page.next_link:
            yield Page(page.value, Cursor(page.next_link, is_delta=False), is_last=False)
            request = transport.request_for_link(page.next_link, first)
            is_first = False
            continue
        yield Page(page.value, None, is_last=True)
        return


async def iterate_delta(
    transport: GraphTransport,
    initial: Callable[[], RequestInformation],
    item_type: type[T],
    *,
    claims: ClaimsFor,
    cursor: Cursor | None = None,
) -> AsyncIterator[DeltaPage[T]]:
    """Pages of a delta enumeration (see the module docstring for the cursor contract).

    `initial()` builds the first request of a full enumeration; it is called again for a resync.
    """
    page_type = CollectionPage[item_type]  # type: ignore[valid-type]
    template = initial()
    if cursor is not None:
        request, resync, is_first = transport.request_for_link(cursor.url, template), cursor.is_resync, False
    else:
        request, resync, is_first = template, False, True
    restarts = 0
    while True:
        try:
            response = await transport.send(request, claims=claims(request, is_first))
        except ResyncRequired as gone:
            restarts += 1
            if restarts > MAX_RESYNC_RESTARTS:
                raise
            resync, is_first = True, True
            # Graph's Location starts the fresh enumeration; check it like any link before following it.
            request = transport.request_for_link(gone.location, template) if gone.location else initial()
            continue
        page = page_type.model_validate_json(response.content)
        if page.next_link:
            yield DeltaPage(page.value, Cursor(page.next_link, False, resync), is_last=False, is_resync=resync)
            request = transport.request_for_link(page.next_link, template)
            is_first = False
        elif page.delta_link:
            # The resync ends here: what follows this deltaLink is an ordinary incremental sync again.
            yield DeltaPage(page.value, Cursor(page.delta_link, is_delta=True), is_last=True, is_resync=resync)
            return
        else:
            raise ConnectorError("a delta page carried neither @odata.nextLink nor @odata.deltaLink")
