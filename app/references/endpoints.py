"""/v1/references: marketing references as JSON or CSV (Accept: text/csv or ?format=csv)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from app.auth.dependencies import ADMIN, Principal, require_roles
from app.db.base import utc_now
from app.deps import SessionDep
from app.privacy.dependencies import PublicGuardDep
from app.references import service
from app.references.schemas import ConsentIn, ConsentRead, ReferenceRead

router = APIRouter(prefix="/references", tags=["references"])

# References are published material: any signed-in member of staff may read them.
signed_in = require_roles()
SignedInDep = Annotated[Principal, Depends(signed_in)]
AdminDep = Annotated[Principal, Depends(require_roles(ADMIN))]
CSV_TYPE = "text/csv"


def wants_csv(request: Request, requested: str | None) -> bool:
    if requested is not None:
        return requested == "csv"
    accept = request.headers.get("accept", "").lower()
    return CSV_TYPE in accept and "application/json" not in accept


@router.get(
    "",
    response_model=list[ReferenceRead],
    responses={200: {"content": {CSV_TYPE: {"schema": {"type": "string"}}}}},
)
async def list_references(
    request: Request,
    session: SessionDep,
    _principal: SignedInDep,
    guard: PublicGuardDep,
    format: Annotated[Literal["json", "csv"] | None, Query(description="Overrides the Accept header.")] = None,
) -> list[ReferenceRead] | Response:
    """Customers the company may name, with the products they bought and where that consent comes from."""
    references = await service.list_references(session, guard)
    if wants_csv(request, format):
        return Response(
            service.to_csv(references),
            media_type=f"{CSV_TYPE}; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="references.csv"'},
        )
    return [ReferenceRead.model_validate(reference) for reference in references]


@router.post("/consents", response_model=ConsentRead, status_code=201)
async def record_consent(body: ConsentIn, session: SessionDep, principal: AdminDep) -> ConsentRead:
    """Record where a customer's consent to be named comes from (a contract clause, a mail...)."""
    consent = await service.record_consent(
        session,
        customer_id=body.customer_id,
        source=body.source,
        obtained_at=body.obtained_at,
        note=body.note,
        actor=principal,
        now=utc_now(),
    )
    return ConsentRead.model_validate(consent)
