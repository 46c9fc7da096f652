"""/v1/posture: the storage posture report (MFA of staff who can reach customer data, TLS-only connections)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from app.auth.dependencies import ADMIN, AUDITOR, Principal, require_roles
from app.db.base import utc_now
from app.deps import SessionDep
from app.posture.schemas import PostureReport
from app.posture.service import build_report
from app.privacy.dependencies import GuardDep, PolicyDep
from app.privacy.graph import GraphDep

router = APIRouter(prefix="/posture", tags=["posture"])

ReaderDep = Annotated[Principal, Depends(require_roles(ADMIN, AUDITOR))]


@router.get("", response_model=PostureReport)
async def storage_posture(
    request: Request, session: SessionDep, _principal: ReaderDep, guard: GuardDep, policy: PolicyDep, graph: GraphDep
) -> PostureReport:
    """Whether the policy's storage promises hold; each violation names the user or setting and the fix."""
    return await build_report(
        session,
        graph=graph,
        settings=request.app.state.settings,
        policy=policy,
        guard=guard.for_report(),
        now=utc_now(),
    )
