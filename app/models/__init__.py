"""ORM models, one module per table. Importing this package registers every table on Base.metadata."""

from app.models.approval import Approval, Decision
from app.models.audit_checkpoint import AuditCheckpoint
from app.models.audit_record import AuditRecord
from app.models.customer import Customer, ServiceStatus
from app.models.customer_event import CustomerEvent
from app.models.datamap_item import DatamapItem, LabelState
from app.models.datamap_link import DatamapLink
from app.models.deletion_plan import DeletionPlan, PlanStatus, TriggerKind
from app.models.deletion_request import DeletionRequest
from app.models.disclosure_approval import DisclosureApproval
from app.models.disclosure_decision import DecisionOutcome, DisclosureDecision
from app.models.disclosure_demand import DisclosureDemand, DisclosureStatus, ScopeMode
from app.models.disclosure_export import DisclosureExport
from app.models.disclosure_objection import DisclosureObjection
from app.models.disclosure_scope_item import DisclosureScopeItem
from app.models.disposal_record import DisposalRecord
from app.models.graph_notification import GraphNotification, NotificationKind, NotificationState
from app.models.graph_subscription import GraphSubscription
from app.models.inbound_event import InboundEvent, InboundEventState
from app.models.item_hold import HoldSource, ItemHold
from app.models.job_run import JobRun
from app.models.outbox_message import OutboxMessage, OutboxStatus
from app.models.plan_item import ItemAction, ItemKind, ItemState, PlanItem
from app.models.reference_consent import ReferenceConsent
from app.models.scheduler_job import SchedulerJob
from app.models.scheduler_lease import SchedulerLease
from app.models.sync_cursor import SyncCursor
from app.models.task import Task, TaskState
from app.models.webhook_delivery import WebhookDelivery

__all__ = ["AuditRecord", "Customer", "ServiceStatus", "SyncCursor"]
__all__ += ["Approval", "AuditCheckpoint", "Decision", "DeletionPlan", "DeletionRequest", "DisposalRecord"]
__all__ += ["HoldSource", "ItemAction", "ItemHold", "ItemKind", "ItemState", "JobRun", "OutboxMessage"]
__all__ += [
    "OutboxStatus",
    "PlanItem",
    "PlanStatus",
    "SchedulerJob",
    "SchedulerLease",
    "Task",
    "TaskState",
    "TriggerKind",
]
__all__ += ["GraphNotification", "GraphSubscription", "InboundEvent", "InboundEventState"]
__all__ += ["NotificationKind", "NotificationState", "WebhookDelivery"]
__all__ += ["CustomerEvent", "DatamapItem", "DatamapLink", "LabelState"]
__all__ += ["DecisionOutcome", "DisclosureApproval", "DisclosureDecision", "DisclosureDemand", "DisclosureExport"]
__all__ += ["DisclosureObjection", "DisclosureScopeItem", "DisclosureStatus", "ReferenceConsent", "ScopeMode"]
