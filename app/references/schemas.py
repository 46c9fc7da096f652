"""API shapes of /v1/references. A reference line has exactly these fields and no others."""

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, ConfigDict, StringConstraints

from app.kit.schemas import RequestSchema, ResponseSchema


class ReferenceRead(ResponseSchema):
    model_config = ConfigDict(from_attributes=True, extra="forbid")

    customer_name: str
    products: list[str]
    consent_source: str
    consent_at: datetime


class ConsentIn(RequestSchema):
    customer_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    source: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    obtained_at: AwareDatetime
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class ConsentRead(ResponseSchema):
    id: int
    customer_id: str
    source: str
    obtained_at: datetime
    note: str | None
    recorded_at: datetime
