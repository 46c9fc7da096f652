from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

EventKind = Literal["purchase", "support_ticket"]


class EventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: EventKind
    occurred_at: AwareDatetime
    # An order or ticket number: reporting the same event twice then records it once.
    reference: str | None = Field(default=None, min_length=1, max_length=200)


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: str
    kind: str
    occurred_at: datetime
    reference: str | None
    recorded_by: str
    recorded_at: datetime


class EventRecorded(BaseModel):
    event: EventRead
    created: bool  # False: the same reference was reported before and nothing changed
    last_activity_at: datetime | None
    last_activity_kind: str | None
