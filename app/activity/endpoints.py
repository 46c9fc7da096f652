"""/v1/customers/{id}/events: explicit activity (a purchase, a support ticket) that keeps a customer active."""

from fastapi import APIRouter, Response, status

from app.activity.schemas import EventCreate, EventRead, EventRecorded
from app.activity.service import activity
from app.customers.endpoints import AdminDep, CustomerPath, actor_of
from app.customers.service import customers_service
from app.deps import SessionDep

router = APIRouter(tags=["activity"])


@router.post(
    "/customers/{customer_id}/events",
    response_model=EventRecorded,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": EventRecorded, "description": "The same reference was recorded before."}},
)
async def record_event(
    customer_id: CustomerPath, event: EventCreate, response: Response, session: SessionDep, principal: AdminDep
) -> EventRecorded:
    """Record a purchase or a support ticket; reporting the same reference again changes nothing (200)."""
    customer = await customers_service.get(session, customer_id)
    stored, created = await activity.record_event(
        session,
        customer,
        kind=event.kind,
        occurred_at=event.occurred_at,
        reference=event.reference,
        recorded_by=actor_of(principal),
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return EventRecorded(
        event=EventRead.model_validate(stored),
        created=created,
        last_activity_at=customer.last_activity_at,
        last_activity_kind=customer.last_activity_kind,
    )
