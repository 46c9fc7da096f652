"""The customer registry's API shapes and the validation of one imported row."""

import re
import unicodedata
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.classification.vn import cccd_parse, mst_is_valid
from app.models import ServiceStatus

CustomerId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]
HoldReference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$")
_EMAIL = re.compile(r"^[^@\s<>(),;:\"]{1,64}@([^@\s<>(),;:\"]{1,253})$")
_NAMED_ADDRESS = re.compile(r"^(?P<name>.*?)\s*<(?P<email>[^<>]+)>$")
_TRUE = frozenset({"true", "yes", "y", "1", "x", "có", "co"})
_FALSE = frozenset({"false", "no", "n", "0", "", "không", "khong"})
# Separators of list cells in CSV ("a.example;b.example"); JSON carries real lists.
_LIST_SEPARATORS = re.compile(r"[;\n]")


def _split(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in _LIST_SEPARATORS.split(value) if part.strip()]
    return value


def _as_bool(value: Any) -> Any:
    if value is None:
        return False
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"expected true or false, got {value.strip()[:20]!r}")
    return value


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _as_utc_datetime(value: Any) -> Any:
    """ISO date or date-time; a date means midnight UTC and a time without offset is taken as UTC."""
    value = _blank_to_none(value)
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"not an ISO 8601 date or date-time: {text[:40]!r}") from None
    else:
        raise ValueError("expected an ISO 8601 date or date-time")
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def normalize_tax_code(value: str) -> str:
    """'0101234567', '0101234567-001' (a branch) or a 12-digit personal tax code; ValueError when not valid."""
    digits = "".join(ch for ch in unicodedata.normalize("NFKC", value) if ch.isdigit())
    if len(digits) in (10, 13):
        if not mst_is_valid(digits):
            raise ValueError(f"tax code {value.strip()!r} has a wrong check digit")
        return digits if len(digits) == 10 else f"{digits[:10]}-{digits[10:]}"
    if len(digits) == 12:
        if cccd_parse(digits, reference_year=datetime.now(UTC).year) is None:
            raise ValueError(f"personal tax code {value.strip()!r} has no valid province code")
        return digits
    raise ValueError(f"tax code {value.strip()!r} must have 10 or 13 digits (12 for a person)")


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, max_length=200)
    email: str = Field(max_length=320)
    phone: str | None = Field(default=None, max_length=64)

    @field_validator("email")
    @classmethod
    def _address(cls, value: str) -> str:
        match = _EMAIL.match(value)
        if match is None or "." not in match.group(1):
            raise ValueError(f"not an e-mail address: {value[:80]!r}")
        return value.lower()

    @field_validator("name", "phone", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return _blank_to_none(value)


def _contacts(value: Any) -> Any:
    """CSV cells hold 'Name <address>' or bare addresses separated by ';'."""
    items = _split(value)
    contacts: list[Any] = []
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, str):
            named = _NAMED_ADDRESS.match(item)
            contacts.append({"name": named["name"], "email": named["email"]} if named else {"email": item})
        else:
            contacts.append(item)
    return contacts


ListCell = BeforeValidator(_split)
BoolCell = BeforeValidator(_as_bool)
DateTimeCell = BeforeValidator(_as_utc_datetime)


class CustomerImportRow(BaseModel):
    """One registry row. Which fields the row set (`model_fields_set`) decides what an update touches."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    id: CustomerId
    legal_name: str = Field(min_length=1, max_length=300)
    domains: Annotated[list[str], ListCell] = []
    contacts: Annotated[list[Contact], BeforeValidator(_contacts)] = []
    products: Annotated[list[Annotated[str, StringConstraints(max_length=200)]], ListCell] = []
    address: Annotated[str | None, BeforeValidator(_blank_to_none)] = Field(default=None, max_length=500)
    # The emulator's export (and most registries) say "phone" and "tax_code"; the field names work too.
    business_phone: Annotated[str | None, BeforeValidator(_blank_to_none)] = Field(
        default=None, max_length=64, validation_alias=AliasChoices("phone", "business_phone")
    )
    tax_codes: Annotated[list[str], ListCell] = Field(
        default=[], validation_alias=AliasChoices("tax_code", "tax_codes")
    )
    service_status: Annotated[ServiceStatus | None, BeforeValidator(_blank_to_none)] = None
    service_ended_at: Annotated[datetime | None, DateTimeCell] = None
    do_not_disclose: Annotated[bool, BoolCell] = False
    marketing_opt_out: Annotated[bool, BoolCell] = False
    legal_holds: Annotated[list[HoldReference], ListCell] = []
    last_activity_at: Annotated[datetime | None, DateTimeCell] = None

    @field_validator("service_status", mode="before")
    @classmethod
    def _status_any_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        domains: list[str] = []
        for raw in value:
            domain = raw.strip().lower().rstrip(".")
            if not _DOMAIN.match(domain):
                raise ValueError(f"not a domain name: {raw[:80]!r}")
            if domain not in domains:
                domains.append(domain)
        return domains

    @field_validator("tax_codes")
    @classmethod
    def _tax_codes(cls, value: list[str]) -> list[str]:
        codes: list[str] = []
        for raw in value:
            code = normalize_tax_code(raw)
            if code not in codes:
                codes.append(code)
        return codes

    @model_validator(mode="after")
    def _consistent_service(self) -> "CustomerImportRow":
        if self.service_status is None and self.service_ended_at is not None:
            self.service_status = ServiceStatus.ended  # an end date says the service ended
        if self.service_status == ServiceStatus.ended and self.service_ended_at is None:
            raise ValueError("service_ended_at is required when service_status is 'ended'")
        if self.service_status == ServiceStatus.active and self.service_ended_at is not None:
            raise ValueError("service_ended_at is set but service_status is 'active'")
        return self


class RowProblem(BaseModel):
    row: int
    id: str | None = None
    errors: list[str]


class RowNote(BaseModel):
    row: int
    id: str
    note: str


class ImportReport(BaseModel):
    format: Literal["csv", "json"]
    rows: int
    created: int
    updated: int
    unchanged: int
    rejected: list[RowProblem]
    # What an import kept or merged rather than took as written: protections it does not lift (do-not-disclose,
    # marketing opt-out; PATCH lifts them) and contacts listed twice.
    notes: list[RowNote]
    ignored_columns: list[str]


class LegalHoldRead(BaseModel):
    reference: str
    reason: str
    created_by: str
    created_at: datetime


class ContactRead(BaseModel):
    name: str | None = None
    email: str | None = None
    phone: str | None = None


class CustomerRead(BaseModel):
    """A customer as the caller may see it: fields the disclosure guard withholds from this caller are null."""

    id: str
    confidential: bool  # do-not-disclose: only the id may appear where the caller is not customer staff
    legal_name: str | None
    domains: list[str] | None
    contacts: list[ContactRead] | None
    products: list[str] | None
    tax_codes: list[str] | None
    business_phone: str | None
    address: str | None
    service_status: ServiceStatus
    service_ended_at: datetime | None
    do_not_disclose: bool
    marketing_opt_out: bool
    legal_holds: list[LegalHoldRead]
    last_activity_at: datetime | None
    last_activity_kind: str | None
    created_at: datetime
    updated_at: datetime


class CustomerPage(BaseModel):
    items: list[CustomerRead]
    # Pass as `after` to get the next page; None on the last page.
    next_after: str | None


class LegalHoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: HoldReference
    reason: str = Field(min_length=1, max_length=2000)


class CustomerUpdate(BaseModel):
    """PATCH body: flags and holds. Releasing a hold names it explicitly; nothing is released by omission."""

    model_config = ConfigDict(extra="forbid")

    do_not_disclose: bool | None = None
    marketing_opt_out: bool | None = None
    service_status: ServiceStatus | None = None
    service_ended_at: AwareDatetime | None = None
    add_legal_holds: list[LegalHoldIn] = Field(default=[], max_length=100)
    release_legal_holds: list[HoldReference] = Field(default=[], max_length=100)

    @model_validator(mode="after")
    def _something_to_change(self) -> "CustomerUpdate":
        if not self.model_fields_set:
            raise ValueError("name at least one field to change")
        for name in ("do_not_disclose", "marketing_opt_out", "service_status"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self
