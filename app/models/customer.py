from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, String, false, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utc_now


class ServiceStatus(StrEnum):
    active = "active"
    ended = "ended"


class Customer(Base):
    """A customer of the reseller, as imported from the customer registry.

    Legal holds are not a column: they are `item_hold` rows (source legal_hold) scoped to the customer, the one
    place deletion planning reads. Activity is kept per signal so the clock can explain itself; last_activity_at
    is the latest of them.
    """

    __tablename__ = "customer"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    legal_name: Mapped[str] = mapped_column(String(300))
    domains: Mapped[list[str]] = mapped_column(default=list)
    contacts: Mapped[list[dict[str, str]]] = mapped_column(default=list)
    products: Mapped[list[str]] = mapped_column(default=list)
    # MST (10 or 13 digits) or a 12-digit personal tax code: matched against identifiers found in content.
    tax_codes: Mapped[list[str]] = mapped_column(default=list, server_default=text("'[]'"))
    # The published business line ("số điện thoại giao dịch"): public information under the policy.
    business_phone: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(500))
    service_status: Mapped[ServiceStatus] = mapped_column(
        Enum(
            ServiceStatus,
            name="service_status",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda enum: [member.value for member in enum],
        ),
        default=ServiceStatus.active,
    )
    service_ended_at: Mapped[datetime | None]
    # Consent flags: the privacy policy forbids disclosing these customers / mailing them marketing.
    do_not_disclose: Mapped[bool] = mapped_column(default=False, server_default=false())
    marketing_opt_out: Mapped[bool] = mapped_column(default=False, server_default=false())
    last_activity_at: Mapped[datetime | None]
    last_activity_kind: Mapped[str | None] = mapped_column(String(32))
    last_mail_at: Mapped[datetime | None]  # latest mail exchanged with the customer (any staff mailbox)
    last_file_at: Mapped[datetime | None]  # latest file change by one of the customer's guests
    last_event_at: Mapped[datetime | None]  # latest explicit event (purchase, support ticket)
    last_event_kind: Mapped[str | None] = mapped_column(String(32))
    imported_activity_at: Mapped[datetime | None]  # a last-activity date the registry import supplied
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)
