from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utc_now
from app.models import Customer, ServiceStatus, SyncCursor


async def test_customer_round_trip(session: AsyncSession) -> None:
    ended = datetime(2025, 3, 1, 17, 30, tzinfo=timezone(timedelta(hours=7)))  # Hanoi time
    session.add(
        Customer(
            id="cust-001",
            legal_name="Công ty TNHH Ánh Dương",
            domains=["anhduong.example.com"],
            contacts=[{"name": "Nguyễn Văn A", "email": "a@anhduong.example.com"}],
            products=["Microsoft 365 Business Premium"],
            service_status=ServiceStatus.ended,
            service_ended_at=ended,
        )
    )
    await session.commit()
    session.expunge_all()

    customer = (await session.execute(select(Customer).where(Customer.id == "cust-001"))).scalar_one()
    assert customer.legal_name == "Công ty TNHH Ánh Dương"
    assert customer.contacts == [{"name": "Nguyễn Văn A", "email": "a@anhduong.example.com"}]
    assert customer.service_status is ServiceStatus.ended
    assert customer.service_ended_at == ended
    assert customer.service_ended_at.tzinfo is UTC
    assert customer.do_not_disclose is False
    assert customer.created_at.tzinfo is UTC


async def test_naive_datetimes_are_refused(session: AsyncSession) -> None:
    session.add(SyncCursor(resource_kind="drive", resource_key="d1", updated_at=datetime(2026, 1, 1)))
    with pytest.raises(StatementError, match="naive datetime"):
        await session.flush()


async def test_unknown_service_status_is_refused_by_the_database(session: AsyncSession) -> None:
    insert = text(
        "INSERT INTO customer (id, legal_name, domains, contacts, products, service_status, created_at, updated_at)"
        " VALUES ('c2', 'X', '[]', '[]', '[]', 'paused', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
    )
    with pytest.raises(IntegrityError, match="(?i)check constraint"):
        async with session.begin_nested():
            await session.execute(insert)


async def test_sync_cursor_resource_key_is_unique(session: AsyncSession) -> None:
    session.add(SyncCursor(resource_kind="mail_folder", resource_key="users/u1/mailFolders/inbox"))
    await session.flush()
    duplicate = insert(SyncCursor).values(
        resource_kind="mail_folder", resource_key="users/u1/mailFolders/inbox", updated_at=utc_now()
    )
    with pytest.raises(IntegrityError, match="(?i)unique"):
        async with session.begin_nested():
            await session.execute(duplicate)
