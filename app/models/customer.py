from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, String, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utc_now


class ServiceStatus(StrEnum):
    active = "active"
    ended = "ended"


class Customer(Base):
    """A customer of the reseller, as imported from the customer registry."""

    __tablename__ = "customer"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    legal_name: Mapped[str] = mapped_column(String(300))
    domains: Mapped[list[str]] = mapped_column(default=list)
    contacts: Mapped[list[dict[str, str]]] = mapped_column(default=list)
    products: Mapped[list[str]] = mapped_column(default=list)
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
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)
