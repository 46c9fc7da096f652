"""ORM models, one module per table. Importing this package registers every table on Base.metadata."""

from app.models.audit_record import AuditRecord
from app.models.customer import Customer, ServiceStatus
from app.models.sync_cursor import SyncCursor

__all__ = ["AuditRecord", "Customer", "ServiceStatus", "SyncCursor"]
