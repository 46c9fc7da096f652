"""What the admin webhooks accept, and what Graph's notifications look like to the receiver.

Admin events follow the Standard Webhooks payload shape {"type", "timestamp", "data"}; they are strict (unknown
fields are refused) because our own reseller systems send them. Graph's notifications are read leniently (Microsoft
adds properties over time) but only the fields Steward needs are kept, and never `clientState` past the check.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from app.kit.schemas import RequestSchema, ResponseSchema
from app.models.customer import ServiceStatus

CustomerId = Annotated[str, Field(min_length=1, max_length=64, description="The customer's id in the registry.")]
Reference = Annotated[
    str | None, Field(max_length=200, description="The ticket, order or case id at the reseller, for the audit.")
]


class DeletionRequestedData(RequestSchema):
    customer_id: CustomerId
    requested_at: AwareDatetime = Field(description="When the customer asked for deletion.")
    reference: Reference = None


class ActivityData(RequestSchema):
    customer_id: CustomerId
    activity: Literal["purchase", "support"]
    occurred_at: AwareDatetime
    reference: Reference = None


class StatusChangedData(RequestSchema):
    customer_id: CustomerId
    status: ServiceStatus
    effective_at: AwareDatetime = Field(description="When the service started or ended.")


class DeletionRequested(RequestSchema):
    """A customer asked for their data to be deleted (the start of a deletion plan)."""

    type: Literal["customer.deletion_requested"]
    timestamp: AwareDatetime = Field(description="When the event happened at the sender.")
    data: DeletionRequestedData


class Activity(RequestSchema):
    """A purchase or a support contact: the customer is active (resets the inactivity clock)."""

    type: Literal["customer.activity"]
    timestamp: AwareDatetime
    data: ActivityData


class StatusChanged(RequestSchema):
    """The customer's service started or ended."""

    type: Literal["customer.status_changed"]
    timestamp: AwareDatetime
    data: StatusChangedData


AdminEvent = DeletionRequested | Activity | StatusChanged
ADMIN_EVENT: TypeAdapter[AdminEvent] = TypeAdapter(Annotated[AdminEvent, Field(discriminator="type")])
ADMIN_EVENT_TYPES = ("customer.deletion_requested", "customer.activity", "customer.status_changed")


def _inlined(schema: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        reference = schema.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return _inlined(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {
            key: _inlined(value, definitions)
            for key, value in schema.items()
            # The discriminator's mapping points into $defs, which do not exist once inlined.
            if key not in ("$defs", "mapping")
        }
    if isinstance(schema, list):
        return [_inlined(item, definitions) for item in schema]
    return schema


def admin_event_json_schema() -> dict[str, Any]:
    """The admin event body as one self-contained JSON Schema, for the OpenAPI document."""
    schema = ADMIN_EVENT.json_schema()
    inlined: dict[str, Any] = _inlined(schema, schema.get("$defs", {}))
    return inlined


class AdminWebhookReceipt(ResponseSchema):
    delivery_id: str
    status: Literal["accepted", "duplicate"]
    event_id: int | None = Field(default=None, description="The stored inbound event (none for a duplicate).")


class GraphNotificationItem(BaseModel):
    """One entry of a change or lifecycle notification POST (changeNotification resource)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    subscription_id: str = Field(alias="subscriptionId", min_length=1, max_length=64)
    client_state: str | None = Field(default=None, alias="clientState", max_length=255)
    tenant_id: str | None = Field(default=None, alias="tenantId", max_length=64)
    change_type: str | None = Field(default=None, alias="changeType", max_length=32)
    resource: str | None = Field(default=None, max_length=1000)
    resource_data: dict[str, object] | None = Field(default=None, alias="resourceData")
    lifecycle_event: str | None = Field(default=None, alias="lifecycleEvent", max_length=32)
    subscription_expiration: datetime | None = Field(default=None, alias="subscriptionExpirationDateTime")

    @property
    def resource_id(self) -> str | None:
        value = (self.resource_data or {}).get("id")
        return value[:512] if isinstance(value, str) else None


class GraphNotificationCollection(BaseModel):
    """The envelope; its items are validated one by one so that one bad item cannot sink the others."""

    model_config = ConfigDict(extra="ignore")

    value: list[dict[str, object]] = Field(max_length=1000)
