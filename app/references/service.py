"""Marketing references: buyer legal name and products, with where the consent to say so comes from.

The policy allows saying "we sold <product> to <customer>" unless the customer asked otherwise: only customers
who neither opted out of marketing nor asked for do-not-disclose appear, and only their legal name and product
names (the do-not-disclose guard renders each line; nothing else is ever read into it). Each line says where the
consent comes from: the latest recorded provenance, or the policy's opt-out default dated when the customer
entered the registry.
"""

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import audit
from app.auth.dependencies import Principal
from app.exceptions import BadRequest, NotFound
from app.models import Customer, ReferenceConsent
from app.privacy.guard import DisclosureGuard
from app.references.repository import ReferenceRepository

POLICY_DEFAULT_SOURCE = "privacy policy: customers may be named unless they ask otherwise (registry entry)"
CSV_COLUMNS = ("customer_name", "products", "consent_source", "consent_at")
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Reference:
    customer_name: str
    products: tuple[str, ...]
    consent_source: str
    consent_at: datetime


async def list_references(session: AsyncSession, guard: DisclosureGuard) -> list[Reference]:
    repository = ReferenceRepository(session)
    customers = await repository.candidates()
    consents = await repository.latest_consents([customer.id for customer in customers])
    references: list[Reference] = []
    for customer in customers:
        line = guard.reference_line(customer)
        if line is None:
            continue
        consent = consents.get(customer.id)
        source, at = (consent.source, consent.obtained_at) if consent else (POLICY_DEFAULT_SOURCE, customer.created_at)
        references.append(Reference(line.customer_name, line.products, source, at))
    return references


def _cell(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_PREFIXES) else value


def to_csv(references: list[Reference]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for reference in references:
        writer.writerow(
            [
                _cell(reference.customer_name),
                _cell("; ".join(reference.products)),
                _cell(reference.consent_source),
                reference.consent_at.isoformat(),
            ]
        )
    return buffer.getvalue()


async def record_consent(
    session: AsyncSession,
    *,
    customer_id: str,
    source: str,
    obtained_at: datetime,
    note: str | None,
    actor: Principal,
    now: datetime,
) -> ReferenceConsent:
    """Record where a customer's consent to be named comes from. The customer's flags still win over it."""
    if await session.get(Customer, customer_id) is None:
        raise NotFound(f"no customer {customer_id!r}")
    if obtained_at > now:
        raise BadRequest("obtained_at is in the future")
    consent = ReferenceConsent(
        customer_id=customer_id,
        source=source,
        obtained_at=obtained_at,
        note=note,
        recorded_by=actor.subject,
        recorded_at=now,
    )
    session.add(consent)
    await session.flush()
    await audit.append(
        session,
        actor=actor.subject,
        action="reference.consent_recorded",
        subject=f"customer:{customer_id}",
        payload={"consent_id": consent.id, "source": source, "obtained_at": obtained_at.isoformat()},
    )
    return consent
