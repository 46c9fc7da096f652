"""/v1/customers/{id}/datamap: what Steward knows belongs to a customer (metadata only)."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.customers.endpoints import CustomerPath, ReaderDep
from app.datamap.schemas import CustomerDatamap, ItemKindName
from app.datamap.service import datamap_service
from app.deps import SessionDep

router = APIRouter(tags=["datamap"])


@router.get("/customers/{customer_id}/datamap", response_model=CustomerDatamap)
async def customer_datamap(
    customer_id: CustomerPath,
    session: SessionDep,
    _principal: ReaderDep,
    kind: ItemKindName | None = None,
    after: Annotated[int, Query(ge=0, description="next_after of the previous page")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> CustomerDatamap:
    """Counts (by kind, category, label state) and a page of the customer's items with the rules that matched."""
    return await datamap_service.for_customer(session, customer_id, kind=kind, after=after, limit=limit)
