"""/v1/labels/coverage and /v1/reports/inactivity."""

from fastapi import APIRouter

from app.customers.endpoints import ReaderDep
from app.deps import SessionDep
from app.privacy.dependencies import GuardDep, PolicyDep
from app.reports.schemas import CoverageReport, InactivityReport
from app.reports.service import reports

router = APIRouter(tags=["reports"])


@router.get("/labels/coverage", response_model=CoverageReport)
async def label_coverage(session: SessionDep, _principal: ReaderDep, guard: GuardDep) -> CoverageReport:
    """Per customer and overall: items labeled, pending, and skipped with the reason."""
    return await reports.coverage(session, guard)


@router.get("/reports/inactivity", response_model=InactivityReport)
async def inactivity_report(
    session: SessionDep, _principal: ReaderDep, guard: GuardDep, policy: PolicyDep
) -> InactivityReport:
    """How long each customer has been inactive, bucketed against the policy's retention period."""
    return await reports.inactivity(session, guard, policy)
