"""The customer registry: import (CSV/JSON), reads, and the flags and holds people change through the API.

An import never weakens a protection: it can set do-not-disclose, marketing opt-out and legal holds, but not
clear or release them (an old export re-imported must not undo a customer's request). Those are lifted through
PATCH, one named change at a time, and every change is audited. Columns a file does not have are left as they
are, and a contact's phone survives an import that lists the contact without one.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.service import activity
from app.audit.service import audit
from app.classification.registry import CustomerRecord
from app.customers.importing import ImportFileError, ParsedFile
from app.customers.repository import CustomerRepository, LegalHoldRepository
from app.customers.schemas import (
    ContactRead,
    CustomerImportRow,
    CustomerRead,
    CustomerUpdate,
    ImportReport,
    LegalHoldRead,
    RowNote,
    RowProblem,
)
from app.db.base import utc_now
from app.exceptions import BadRequest, NotFound
from app.models import Customer, HoldSource, ItemHold, ServiceStatus
from app.privacy.guard import CustomerField, DisclosureGuard

KNOWN_COLUMNS = frozenset(CustomerImportRow.model_fields) | {"phone", "tax_code"}
# Columns the emulator's export and common registries carry that Steward deliberately does not keep.
QUIETLY_IGNORED = frozenset({"language", "profile", "notes"})
IMPORT_HOLD_REASON = "legal hold listed in the customer registry import"
# Values an import writes as given (when the file has the column).
PLAIN_FIELDS = (
    "legal_name",
    "domains",
    "products",
    "address",
    "business_phone",
    "tax_codes",
    "service_status",
    "service_ended_at",
)


class CustomerNotFound(NotFound):
    pass


class CustomerService:
    # Import ------------------------------------------------------------------------------------------------

    async def import_file(self, session: AsyncSession, parsed: ParsedFile, *, actor: str) -> ImportReport:
        """Validate every row, upsert the good ones, report the bad ones with their row numbers."""
        if parsed.format == "csv" and "id" not in parsed.columns:
            raise ImportFileError("the CSV header has no 'id' column")
        problems: list[RowProblem] = []
        valid: list[tuple[int, CustomerImportRow]] = []
        first_row_of: dict[str, int] = {}
        for raw in parsed.rows:
            try:
                row = CustomerImportRow.model_validate(raw.values)
            except ValidationError as error:
                problems.append(RowProblem(row=raw.number, id=_row_id(raw.values), errors=_messages(error)))
                continue
            if row.id in first_row_of:
                problems.append(
                    RowProblem(row=raw.number, id=row.id, errors=[f"id repeats row {first_row_of[row.id]}"])
                )
                continue
            first_row_of[row.id] = raw.number
            valid.append((raw.number, row))

        customers = CustomerRepository(session)
        existing = await customers.by_ids(row.id for _, row in valid)
        holds = await LegalHoldRepository(session).active_for(row.id for _, row in valid)
        now = utc_now()
        created: list[str] = []
        updated: list[str] = []
        notes: list[RowNote] = []
        for number, row in valid:
            customer = existing.get(row.id)
            row_notes = _repeated_contacts(row)
            if customer is None:
                customer = _new_customer(row, now)
                await customers.create(customer)
                changed = True
                created.append(row.id)
            else:
                changed = _apply_row(customer, row, now)
                row_notes += _kept_protections(customer, row)
            notes.extend(RowNote(row=number, id=row.id, note=note) for note in row_notes)
            added = self._add_holds(session, row, holds.get(row.id, []), actor=actor, now=now)
            if changed or added:
                if customer.id not in created:
                    updated.append(customer.id)
                activity.refresh(customer, now=now)
        await session.flush()
        report = ImportReport(
            format=parsed.format,
            rows=len(parsed.rows),
            created=len(created),
            updated=len(updated),
            unchanged=len(valid) - len(created) - len(updated),
            rejected=problems,
            notes=notes,
            ignored_columns=sorted(parsed.columns - KNOWN_COLUMNS - QUIETLY_IGNORED),
        )
        if created or updated:
            await audit.append(
                session,
                actor=actor,
                action="customers.imported",
                subject="customer-registry",
                payload={
                    "format": parsed.format,
                    "created": created,
                    "updated": updated,
                    "rejected_rows": [problem.row for problem in problems],
                },
            )
        return report

    @staticmethod
    def _add_holds(
        session: AsyncSession, row: CustomerImportRow, active: list[ItemHold], *, actor: str, now: datetime
    ) -> bool:
        if "legal_holds" not in row.model_fields_set:
            return False
        held = {hold.source_ref for hold in active}
        missing = [reference for reference in row.legal_holds if reference not in held]
        for reference in missing:
            session.add(_legal_hold(row.id, reference, IMPORT_HOLD_REASON, actor=actor, now=now))
        return bool(missing)

    # Reads -------------------------------------------------------------------------------------------------

    async def get(self, session: AsyncSession, customer_id: str) -> Customer:
        customer = await CustomerRepository(session).get(customer_id)
        if customer is None:
            raise CustomerNotFound(f"no customer {customer_id!r}")
        return customer

    async def read(self, session: AsyncSession, customer_id: str, guard: DisclosureGuard) -> CustomerRead:
        customer = await self.get(session, customer_id)
        return (await self.read_many(session, [customer], guard))[0]

    async def read_many(
        self, session: AsyncSession, customers: Sequence[Customer], guard: DisclosureGuard
    ) -> list[CustomerRead]:
        holds = await LegalHoldRepository(session).active_for(customer.id for customer in customers)
        return [customer_read(customer, holds.get(customer.id, []), guard) for customer in customers]

    async def page(
        self,
        session: AsyncSession,
        guard: DisclosureGuard,
        *,
        after: str | None,
        limit: int,
        status: ServiceStatus | None,
    ) -> tuple[list[CustomerRead], str | None]:
        customers = await CustomerRepository(session).page(after=after, limit=limit + 1, status=status)
        more = len(customers) > limit
        shown = list(customers[:limit])
        return await self.read_many(session, shown, guard), (shown[-1].id if more and shown else None)

    async def records(self, session: AsyncSession) -> list[CustomerRecord]:
        """The registry as the classifier sees it (guest ids are added by the sync from the directory)."""
        return [to_record(customer) for customer in await CustomerRepository(session).all()]

    # Changes through the API -------------------------------------------------------------------------------

    async def update(
        self, session: AsyncSession, customer_id: str, change: CustomerUpdate, *, actor: str, guard: DisclosureGuard
    ) -> CustomerRead:
        customer = await self.get(session, customer_id)
        now = utc_now()
        before = _flags(customer)
        for name in ("do_not_disclose", "marketing_opt_out"):
            if name in change.model_fields_set:
                setattr(customer, name, getattr(change, name))
        if "service_status" in change.model_fields_set or "service_ended_at" in change.model_fields_set:
            _set_service(customer, change)
        holds = (await LegalHoldRepository(session).active_for([customer_id]))[customer_id]
        by_reference = {hold.source_ref: hold for hold in holds}
        unknown = [reference for reference in change.release_legal_holds if reference not in by_reference]
        if unknown:
            raise BadRequest(f"no active legal hold {unknown[0]!r} on customer {customer_id}")
        clash = {hold.reference for hold in change.add_legal_holds} & set(change.release_legal_holds)
        if clash:
            raise BadRequest(f"legal hold {sorted(clash)[0]!r} is both added and released")
        added = [hold for hold in change.add_legal_holds if hold.reference not in by_reference]
        for hold in added:
            session.add(_legal_hold(customer_id, hold.reference, hold.reason, actor=actor, now=now))
        for reference in change.release_legal_holds:
            released = by_reference[reference]
            released.released_at, released.released_by = now, actor
        after = _flags(customer)
        if after != before:
            customer.updated_at = now
        await session.flush()
        payload: dict[str, Any] = {
            "changed": {name: after[name] for name in after if after[name] != before[name]},
            "legal_holds_added": [hold.reference for hold in added],
            "legal_holds_released": list(change.release_legal_holds),
        }
        if payload["changed"] or added or change.release_legal_holds:
            await audit.append(session, actor=actor, action="customer.updated", subject=customer_id, payload=payload)
        return await self.read(session, customer_id, guard)


def customer_read(customer: Customer, holds: Sequence[ItemHold], guard: DisclosureGuard) -> CustomerRead:
    def shown(field: CustomerField) -> bool:
        return guard.may_show(customer, field)

    contacts = [
        ContactRead(
            name=contact.get("name") if shown(CustomerField.contact_names) else None,
            email=contact.get("email") if shown(CustomerField.contact_emails) else None,
            phone=contact.get("phone") if shown(CustomerField.contact_phones) else None,
        )
        for contact in customer.contacts
    ]
    visible_contacts = [contact for contact in contacts if contact.name or contact.email or contact.phone]
    return CustomerRead(
        id=customer.id,
        confidential=guard.is_confidential(customer),
        legal_name=customer.legal_name if shown(CustomerField.legal_name) else None,
        domains=list(customer.domains) if shown(CustomerField.domains) else None,
        contacts=visible_contacts if visible_contacts or not customer.contacts else None,
        products=list(customer.products) if shown(CustomerField.products) else None,
        tax_codes=list(customer.tax_codes) if shown(CustomerField.tax_codes) else None,
        business_phone=customer.business_phone if shown(CustomerField.business_phone) else None,
        address=customer.address if shown(CustomerField.address) else None,
        service_status=customer.service_status,
        service_ended_at=customer.service_ended_at,
        do_not_disclose=customer.do_not_disclose,
        marketing_opt_out=customer.marketing_opt_out,
        legal_holds=[_hold_read(hold) for hold in holds],
        last_activity_at=customer.last_activity_at,
        last_activity_kind=customer.last_activity_kind,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )


def to_record(customer: Customer, guest_ids: Sequence[str] = ()) -> CustomerRecord:
    return CustomerRecord(
        id=customer.id,
        legal_name=customer.legal_name,
        domains=tuple(customer.domains),
        contact_emails=tuple(contact["email"] for contact in customer.contacts if contact.get("email")),
        contact_phones=tuple(contact["phone"] for contact in customer.contacts if contact.get("phone")),
        business_phone=customer.business_phone,
        tax_codes=tuple(customer.tax_codes),
        guest_ids=tuple(guest_ids),
        do_not_disclose=customer.do_not_disclose,
    )


def _row_id(values: dict[str, Any]) -> str | None:
    value = values.get("id")
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:64]


def _messages(error: ValidationError) -> list[str]:
    messages = []
    for detail in error.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in detail["loc"])
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "missing":
            message = "is required"
        messages.append(f"{location}: {message}" if location else message)
    return messages


def _contacts(row: CustomerImportRow, previous: list[dict[str, str]]) -> list[dict[str, str]]:
    """One entry per address (a repeated address fills in what its first listing lacks); a contact listed
    without a phone keeps the phone stored for that address."""
    phones = {contact.get("email", ""): contact.get("phone") for contact in previous}
    merged: dict[str, dict[str, str]] = {}
    for contact in row.contacts:
        entry = merged.setdefault(contact.email, {"email": contact.email})
        if contact.name and "name" not in entry:
            entry["name"] = contact.name
        phone = contact.phone or phones.get(contact.email)
        if phone and "phone" not in entry:
            entry["phone"] = phone
    return list(merged.values())


def _repeated_contacts(row: CustomerImportRow) -> list[str]:
    emails = [contact.email for contact in row.contacts]
    repeated = sorted({email for email in emails if emails.count(email) > 1})
    return [f"contact {email} is listed more than once: kept once" for email in repeated]


def _new_customer(row: CustomerImportRow, now: datetime) -> Customer:
    customer = Customer(
        id=row.id,
        legal_name=row.legal_name,
        domains=row.domains,
        contacts=_contacts(row, []),
        products=row.products,
        tax_codes=row.tax_codes,
        business_phone=row.business_phone,
        address=row.address,
        service_status=row.service_status or ServiceStatus.active,
        service_ended_at=row.service_ended_at,
        do_not_disclose=row.do_not_disclose,
        marketing_opt_out=row.marketing_opt_out,
        imported_activity_at=row.last_activity_at,
        created_at=now,
        updated_at=now,
    )
    activity.refresh(customer, now=now)
    return customer


def _apply_row(customer: Customer, row: CustomerImportRow, now: datetime) -> bool:
    given = row.model_fields_set
    values: dict[str, Any] = {name: getattr(row, name) for name in PLAIN_FIELDS if name in given}
    if row.service_status is None:
        values.pop("service_status", None)  # a blank cell keeps the status
    elif "service_ended_at" in given:
        values["service_status"] = row.service_status  # an end date alone says the service ended
    if values.get("service_status", customer.service_status) == ServiceStatus.active:
        values["service_ended_at"] = None
    elif values.get("service_ended_at", "") is None:
        del values["service_ended_at"]
    if "contacts" in given:
        values["contacts"] = _contacts(row, customer.contacts)
    # Protections only ever switch on through an import.
    for flag in ("do_not_disclose", "marketing_opt_out"):
        if flag in given and getattr(row, flag):
            values[flag] = True
    if row.last_activity_at is not None and (
        customer.imported_activity_at is None or row.last_activity_at > customer.imported_activity_at
    ):
        values["imported_activity_at"] = row.last_activity_at
    changed = {name: value for name, value in values.items() if getattr(customer, name) != value}
    for name, value in changed.items():
        setattr(customer, name, value)
    if changed:
        customer.updated_at = now
    return bool(changed)


def _kept_protections(customer: Customer, row: CustomerImportRow) -> list[str]:
    given = row.model_fields_set
    return [
        f"{flag} stays true: an import does not lift it (use PATCH)"
        for flag in ("do_not_disclose", "marketing_opt_out")
        if flag in given and not getattr(row, flag) and getattr(customer, flag)
    ]


def _flags(customer: Customer) -> dict[str, Any]:
    ended = customer.service_ended_at.isoformat() if customer.service_ended_at else None
    return {
        "do_not_disclose": customer.do_not_disclose,
        "marketing_opt_out": customer.marketing_opt_out,
        "service_status": str(customer.service_status),
        "service_ended_at": ended,
    }


def _set_service(customer: Customer, change: CustomerUpdate) -> None:
    status = change.service_status or customer.service_status
    ended_at = customer.service_ended_at
    if "service_ended_at" in change.model_fields_set:
        ended_at = change.service_ended_at.astimezone(UTC) if change.service_ended_at else None
    if status == ServiceStatus.ended and ended_at is None:
        raise BadRequest("service_ended_at is required when service_status is 'ended'")
    if status == ServiceStatus.active:
        if "service_ended_at" in change.model_fields_set and change.service_ended_at is not None:
            raise BadRequest("an active service has no end date")
        ended_at = None
    customer.service_status, customer.service_ended_at = status, ended_at


def _legal_hold(customer_id: str, reference: str, reason: str, *, actor: str, now: datetime) -> ItemHold:
    return ItemHold(
        customer_id=customer_id,
        source=HoldSource.legal_hold,
        source_ref=reference,
        reason=reason,
        created_by=actor,
        created_at=now,
    )


def _hold_read(hold: ItemHold) -> LegalHoldRead:
    return LegalHoldRead(
        reference=hold.source_ref or "", reason=hold.reason, created_by=hold.created_by, created_at=hold.created_at
    )


customers_service = CustomerService()
