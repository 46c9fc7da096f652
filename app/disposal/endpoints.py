"""/v1/plans/{id}/disposal-records: the proof of disposal of one plan, as JSON or CSV."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from app.auth.dependencies import ADMIN, AUDITOR, LEGAL, Principal, require_roles
from app.deps import SessionDep
from app.disposal.proof import export_csv, export_json, records_for
from app.plans.service import get_plan

router = APIRouter(tags=["deletion"])
ProofReaderDep = Annotated[Principal, Depends(require_roles(ADMIN, AUDITOR, LEGAL))]


@router.get("/plans/{plan_id}/disposal-records")
async def disposal_records(
    plan_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
    principal: ProofReaderDep,
    session: SessionDep,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Response:
    plan = await get_plan(session, plan_id)
    records = await records_for(session, plan.id)
    if format == "csv":
        return Response(
            export_csv(records),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="disposal-{plan.id}.csv"'},
        )
    return Response(export_json(records), media_type="application/json")
