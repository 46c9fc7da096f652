"""What deletion planning needs from the data map: a small read interface.

The data map (app/datamap) owns the sync and attribution; planning only reads it. Any implementation will do:
the product adapter over the data map's tables, or in tests one fed from the local tenant's ground truth.
"""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class MappedItem:
    """One mail message or file the data map attributes to one or more customers (metadata only)."""

    kind: str  # "message" | "file"
    container_id: str  # mailbox owner's user id, or drive id
    item_id: str  # immutable id
    etag: str | None
    size: int
    name_hash: str  # SHA-256 of the subject or file name
    customer_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class Coverage:
    """Whether the map holds a complete enumeration for the customers asked about.

    Incomplete means some container the customers' data lives in was never fully enumerated, or is in the
    middle of a resync (deletions seen during a resync are not yet trustworthy): a plan built from it could miss
    items or list items that are gone.
    """

    complete: bool
    incomplete_containers: tuple[str, ...] = ()


class DataMapReader(Protocol):
    async def coverage(self, customer_ids: Sequence[str]) -> Coverage: ...

    def items_for(self, customer_ids: Sequence[str]) -> AsyncIterator[MappedItem]:
        """Every item attributed to at least one of `customer_ids`, each once."""
        ...
