"""API shape of /v1/posture."""

from datetime import datetime
from typing import Literal

from app.kit.schemas import ResponseSchema


class ReachRead(ResponseSchema):
    kind: Literal["mailbox", "customer_site"]
    # A mailbox's address, or the customer site as the caller may see it (a do-not-disclose customer by id).
    name: str
    customer_ids: list[str]


class StaffAccessRead(ResponseSchema):
    user_id: str
    user_principal_name: str | None
    display_name: str | None
    mfa_registered: bool
    methods: list[str]
    reaches: list[ReachRead]


class TlsCheckRead(ResponseSchema):
    name: str
    ok: bool
    detail: str


class ViolationRead(ResponseSchema):
    check: Literal["mfa", "tls"]
    user_id: str | None
    user_principal_name: str | None
    display_name: str | None
    problem: str
    remedy: str
    reaches: list[ReachRead]


class PostureReport(ResponseSchema):
    generated_at: datetime
    promises_hold: bool
    staff_checked: int
    customer_sites: int
    staff: list[StaffAccessRead]
    tls: list[TlsCheckRead]
    violations: list[ViolationRead]
