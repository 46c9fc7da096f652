"""Shared by the disclosure tests: people, a small registry and data map, and doubles for Graph and Teams."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import ADMIN, LEGAL, Principal
from app.config import Settings
from app.disclosures.context import DisclosureContext
from app.disclosures.export import Fetched, ItemMissing
from app.disclosures.service import DemandIntake, ScopeSpec
from app.models import Customer, DatamapItem, DatamapLink
from app.policy import Policy
from app.teams.sender import Posted
from connectors.graph.mail import OutgoingMail
from connectors.graph.writes import WriteResult

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def person(name: str, *roles: str, service: bool = False) -> Principal:
    return Principal(subject=f"oid-{name}", name=f"{name}@contoso.test", roles=frozenset(roles), is_service=service)


CLERK = person("clerk", LEGAL)  # takes demands in: can never approve their release
LAWYER_A = person("lawyer-a", LEGAL)
LAWYER_B = person("lawyer-b", LEGAL)
ADMIN_ONLY = person("admin", ADMIN)
NOT_LISTED = person("stranger", LEGAL)
ROBOT = person("robot", LEGAL, service=True)
LEGAL_APPROVERS = [CLERK.subject, LAWYER_A.subject, LAWYER_B.subject, ADMIN_ONLY.subject, ROBOT.subject]


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def make_context(tmp_path: Path, clock: Clock | None = None, **overrides: Any) -> DisclosureContext:
    values: dict[str, Any] = {
        "env": "testing",
        "legal_approvers": LEGAL_APPROVERS,
        "disclosure_export_dir": tmp_path / "exports",
        "notification_mailbox": "privacy@contoso.test",
        "disclosure_contact_email": "legal@contoso.test",
    }
    settings = Settings(_env_file=None, **(values | overrides))
    return DisclosureContext(settings=settings, policy=Policy(), clock=clock or Clock())


@dataclass(frozen=True)
class Item:
    kind: str
    container_id: str
    item_id: str
    at: datetime
    customers: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.container_id, self.item_id)


# C0001: an ordinary customer with five items over two years; C0002: do-not-disclose; C0003: opted out.
ITEMS = [
    Item("message", "user-1", "msg-1", datetime(2025, 3, 1, tzinfo=UTC), ("C0001",)),
    Item("message", "user-1", "msg-2", datetime(2025, 9, 1, tzinfo=UTC), ("C0001",)),
    Item("message", "user-2", "msg-3", datetime(2026, 2, 1, tzinfo=UTC), ("C0001", "C0002")),
    Item("file", "drive-1", "file-1", datetime(2025, 5, 1, tzinfo=UTC), ("C0001",)),
    Item("file", "drive-1", "file-2", datetime(2026, 6, 1, tzinfo=UTC), ("C0001",)),
    Item("file", "drive-2", "file-9", datetime(2026, 1, 1, tzinfo=UTC), ("C0002",)),
]


def content_of(item_id: str) -> bytes:
    return f"content of {item_id}: Hợp đồng HĐ-2025/0001".encode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def seed(session: AsyncSession) -> None:
    for number, (name, dnd, opt_out) in enumerate(
        [("Công ty TNHH Minh Phát", False, False), ("Sunrise Trading JSC", True, False), ("An Lạc Co.", False, True)],
        start=1,
    ):
        session.add(
            Customer(
                id=f"C{number:04d}",
                legal_name=name,
                domains=[f"c{number}.example.vn"],
                contacts=[{"name": f"Contact {number}", "email": f"contact{number}@c{number}.example.vn"}],
                products=["Microsoft 365 E3"],
                do_not_disclose=dnd,
                marketing_opt_out=opt_out,
                created_at=T0 - timedelta(days=900),
                updated_at=T0,
            )
        )
    await session.flush()
    for item in ITEMS:
        row = DatamapItem(
            kind=item.kind,
            container_id=item.container_id,
            item_id=item.item_id,
            etag=f'"{item.item_id}-1"',
            name_hash=sha(item.item_id.encode()),
            size=len(content_of(item.item_id)),
            item_created_at=item.at,
            item_modified_at=item.at,
            scan_status="scanned",
            findings=[],
            category="confidential",
            category_reason="customer data",
            label_state="labeled",
            first_seen_at=T0,
            synced_at=T0,
        )
        session.add(row)
        await session.flush()
        for customer_id in item.customers:
            session.add(DatamapLink(item_pk=row.id, customer_id=customer_id, reasons=[]))
    await session.flush()


def keys(customer_id: str) -> list[tuple[str, str, str]]:
    return sorted(item.key for item in ITEMS if customer_id in item.customers)


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    # Two chunks, so hashing across chunk boundaries is exercised.
    yield data[:7]
    yield data[7:]


@dataclass
class FakeFetcher:
    """Graph as an export sees it: content per item id, some ids gone."""

    missing: set[str] = field(default_factory=set)
    fetched: list[str] = field(default_factory=list)

    async def fetch(self, kind: str, container_id: str, item_id: str) -> Fetched:
        if item_id in self.missing:
            raise ItemMissing("Graph answered 404")
        self.fetched.append(item_id)
        return Fetched("message.json" if kind == "message" else f"{item_id}.docx", _chunks(content_of(item_id)))


@dataclass
class FakeMail:
    sent: list[tuple[str, OutgoingMail]] = field(default_factory=list)

    async def send_mail(self, user_id: str, mail: OutgoingMail) -> WriteResult:
        self.sent.append((user_id, mail))
        return WriteResult("applied", request_id=f"req-{len(self.sent)}")


@dataclass
class FakeTeams:
    mode: str = "bot"
    cards: list[dict[str, Any]] = field(default_factory=list)

    async def post(self, card: dict[str, Any]) -> Posted:
        self.cards.append(card)
        return Posted("19:channel", f"activity-{len(self.cards)}")

    async def update(self, conversation_id: str, activity_id: str, card: dict[str, Any]) -> None:
        raise AssertionError("disclosure cards are never updated in place")

    async def reply(self, conversation_id: str, activity_id: str | None, text: str) -> None:
        raise AssertionError("disclosure cards get no replies")

    async def aclose(self) -> None:
        return None


YEAR_2025 = ScopeSpec(date_from=datetime(2025, 1, 1, tzinfo=UTC), date_to=datetime(2025, 12, 31, tzinfo=UTC))


def intake(**changes: object) -> DemandIntake:
    base = DemandIntake(
        customer_id="C0001",
        authority="Công an TP.HCM",
        legal_basis="Điều 12 Luật An ninh mạng 2018",
        reference="CV-123/2026",
        data_description="thư và tài liệu trao đổi năm 2025",
        scope=YEAR_2025,
        deadline=T0 + timedelta(days=30),
        gagged=False,
    )
    return replace(base, **changes)  # type: ignore[arg-type]
