"""/v1/customers: the registry (list, read, import, change flags and legal holds)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.datastructures import UploadFile

from app.auth.dependencies import ADMIN, AUDITOR, LEGAL, Principal, require_roles
from app.customers.importing import MAX_IMPORT_BYTES, ImportFileError, parse_registry_file
from app.customers.schemas import CustomerId, CustomerPage, CustomerRead, CustomerUpdate, ImportReport
from app.customers.service import customers_service
from app.deps import SessionDep
from app.models import ServiceStatus
from app.privacy.dependencies import GuardDep

router = APIRouter(prefix="/customers", tags=["customers"])

# Module-level so tests and the app share one dependency object per access level.
read_access = require_roles(ADMIN, AUDITOR, LEGAL)
admin_access = require_roles(ADMIN)
ReaderDep = Annotated[Principal, Depends(read_access)]
AdminDep = Annotated[Principal, Depends(admin_access)]
CustomerPath = Annotated[CustomerId, Path(description="Customer id as in the registry, e.g. C0001.")]

IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}


def actor_of(principal: Principal) -> str:
    return principal.name or principal.subject


@router.get("", response_model=CustomerPage)
async def list_customers(
    session: SessionDep,
    _principal: ReaderDep,
    guard: GuardDep,
    after: Annotated[str | None, Query(max_length=64, description="next_after of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    status: ServiceStatus | None = None,
) -> CustomerPage:
    """List customers by id, a page at a time."""
    items, next_after = await customers_service.page(session, guard, after=after, limit=limit, status=status)
    return CustomerPage(items=items, next_after=next_after)


@router.post("/import", response_model=ImportReport, openapi_extra=IMPORT_BODY)
async def import_customers(request: Request, session: SessionDep, principal: AdminDep) -> ImportReport:
    """Import a registry file: a multipart upload (field `file`), or a JSON array / CSV text as the body.

    Good rows are stored even when others are rejected; rejected rows come back with their row numbers.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=5)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ImportFileError("the multipart body needs a 'file' part holding the CSV or JSON registry")
        data = await upload.read(MAX_IMPORT_BYTES + 1)
        parsed = parse_registry_file(data, filename=upload.filename, content_type=upload.content_type)
    else:
        data = await request.body()
        if not data.strip():
            raise ImportFileError("the body is empty: send the registry as JSON, CSV or a multipart upload")
        parsed = parse_registry_file(data, content_type=content_type)
    return await customers_service.import_file(session, parsed, actor=actor_of(principal))


@router.get("/{customer_id}", response_model=CustomerRead)
async def get_customer(
    customer_id: CustomerPath, session: SessionDep, _principal: ReaderDep, guard: GuardDep
) -> CustomerRead:
    """One customer with its active legal holds (auditors see only what is public about the customer)."""
    return await customers_service.read(session, customer_id, guard)


@router.patch("/{customer_id}", response_model=CustomerRead)
async def update_customer(
    customer_id: CustomerPath, change: CustomerUpdate, session: SessionDep, principal: AdminDep, guard: GuardDep
) -> CustomerRead:
    """Change consent flags, the service status, or add / release named legal holds (audited)."""
    return await customers_service.update(session, customer_id, change, actor=actor_of(principal), guard=guard)
