from typing import Annotated

from fastapi import APIRouter, Depends

from app.auth.dependencies import Principal, require_roles
from app.auth.schemas import PrincipalRead

router = APIRouter(prefix="/auth", tags=["auth"])


@router.get("/me", response_model=PrincipalRead)
async def who_am_i(principal: Annotated[Principal, Depends(require_roles())]) -> PrincipalRead:
    """The caller as Steward sees them: identity, app roles, person or service."""
    return PrincipalRead(
        subject=principal.subject, name=principal.name, roles=sorted(principal.roles), is_service=principal.is_service
    )
