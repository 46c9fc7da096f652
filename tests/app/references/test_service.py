"""Marketing references: name + products only, only for customers who allow it, with the consent's source."""

import asyncio
import csv
import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from app import cli
from app.auth.dependencies import ADMIN, Principal
from app.config import get_settings
from app.db.engine import create_engine, create_sessionmaker
from app.db.migrate import upgrade_connection
from app.exceptions import BadRequest, NotFound
from app.models import Customer
from app.policy import Policy
from app.privacy.guard import Audience, DisclosureGuard
from app.references import service
from app.references.schemas import ReferenceRead

GUARD = DisclosureGuard(Policy(), Audience.PUBLIC)
ADMIN_USER = Principal(subject="oid-admin", name="admin@contoso.test", roles=frozenset({ADMIN}), is_service=False)
NOW = datetime(2026, 11, 2, tzinfo=UTC)
REGISTERED = NOW - timedelta(days=400)
ALLOWED_KEYS = {"customer_name", "products", "consent_source", "consent_at"}


def customer(number: int, **values: Any) -> Customer:
    defaults: dict[str, Any] = {
        "id": f"C{number:04d}",
        "legal_name": f"Customer {number}",
        "domains": [f"c{number}.example.vn"],
        "contacts": [{"name": f"Person {number}", "email": f"p{number}@c{number}.example.vn", "phone": "0903123456"}],
        "products": ["Microsoft 365 E3", "Power BI Pro"],
        "tax_codes": ["0312345678"],
        "address": "12 Lê Lợi",
        "business_phone": "028 3822 1234",
        "created_at": REGISTERED,
        "updated_at": REGISTERED,
    }
    return Customer(**(defaults | values))


@pytest.fixture
async def registry(session: AsyncSession) -> AsyncSession:
    session.add_all(
        [
            customer(1, legal_name="Công ty TNHH Minh Phát"),
            customer(2, legal_name="Sunrise Trading JSC", do_not_disclose=True),
            customer(3, legal_name="An Lạc Co.", marketing_opt_out=True),
            customer(4, legal_name="=HYPERLINK(evil)", products=["-1+1"]),
            customer(5, legal_name="No Product Ltd", products=[]),
        ]
    )
    await session.flush()
    return session


async def test_only_customers_who_allow_it_with_the_policy_default_provenance(registry: AsyncSession) -> None:
    references = await service.list_references(registry, GUARD)
    assert [(r.customer_name, r.products) for r in references] == [
        ("=HYPERLINK(evil)", ("-1+1",)),
        ("Công ty TNHH Minh Phát", ("Microsoft 365 E3", "Power BI Pro")),
    ]
    assert {(r.consent_source, r.consent_at) for r in references} == {(service.POLICY_DEFAULT_SOURCE, REGISTERED)}


async def test_recorded_provenance_is_shown_but_never_overrides_a_flag(registry: AsyncSession) -> None:
    obtained = NOW - timedelta(days=3)
    for customer_id in ("C0001", "C0002"):
        await service.record_consent(
            registry,
            customer_id=customer_id,
            source="Hợp đồng HĐ-2025/0001, điều 9",
            obtained_at=obtained,
            note=None,
            actor=ADMIN_USER,
            now=NOW,
        )
    references = {r.customer_name: r for r in await service.list_references(registry, GUARD)}
    assert (references["Công ty TNHH Minh Phát"].consent_source, references["Công ty TNHH Minh Phát"].consent_at) == (
        "Hợp đồng HĐ-2025/0001, điều 9",
        obtained,
    )
    assert "Sunrise Trading JSC" not in references
    with pytest.raises(BadRequest, match="future"):
        await service.record_consent(
            registry,
            customer_id="C0001",
            source="s",
            obtained_at=NOW + timedelta(days=1),
            note=None,
            actor=ADMIN_USER,
            now=NOW,
        )
    with pytest.raises(NotFound):
        await service.record_consent(
            registry, customer_id="C9999", source="s", obtained_at=NOW, note=None, actor=ADMIN_USER, now=NOW
        )


async def test_the_csv_has_four_columns_and_cannot_run_formulas(registry: AsyncSession) -> None:
    rows = list(csv.reader(io.StringIO(service.to_csv(await service.list_references(registry, GUARD)))))
    assert rows[0] == ["customer_name", "products", "consent_source", "consent_at"]
    assert rows[1][:2] == ["'=HYPERLINK(evil)", "'-1+1"]
    assert rows[2][:2] == ["Công ty TNHH Minh Phát", "Microsoft 365 E3; Power BI Pro"]
    assert len(rows) == 3


names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=40).filter(
    lambda text: text.strip() != ""
)
registry_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "legal_name": names,
            "do_not_disclose": st.booleans(),
            "marketing_opt_out": st.booleans(),
            "products": st.lists(st.sampled_from(["Microsoft 365 E3", "Power BI Pro", "Copilot", " "]), max_size=3),
            "amount": st.integers(1_000_000, 9_999_999),
        }
    ),
    min_size=0,
    max_size=8,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=registry_strategy)
async def test_references_never_leak_whatever_the_registry(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    savepoint = await session.begin_nested()
    try:
        for number, row in enumerate(rows, start=1):
            # The amount stands for anything else a registry might hold: it must never reach a reference.
            session.add(
                customer(
                    number,
                    legal_name=row["legal_name"],
                    do_not_disclose=row["do_not_disclose"],
                    marketing_opt_out=row["marketing_opt_out"],
                    products=row["products"],
                    address=f"amount {row['amount']}",
                )
            )
        await session.flush()
        references = await service.list_references(session, GUARD)
        expected = sorted(
            row["legal_name"]
            for row in rows
            if not row["do_not_disclose"] and not row["marketing_opt_out"] and any(p.strip() for p in row["products"])
        )
        assert sorted(r.customer_name for r in references) == expected
        as_json = [ReferenceRead.model_validate(r).model_dump(mode="json") for r in references]
        assert all(set(line) == ALLOWED_KEYS for line in as_json)
        published = json.dumps(as_json, ensure_ascii=False) + service.to_csv(references)
        for number, row in enumerate(rows, start=1):
            for secret in (f"p{number}@", f"c{number}.example.vn", str(row["amount"]), "0903123456", "0312345678"):
                assert secret not in published
    finally:
        await savepoint.rollback()


def test_the_cli_prints_json_and_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = tmp_path / "steward.db"
    url = f"sqlite+aiosqlite:///{database}"

    async def prepare() -> None:
        engine = create_engine(url)
        async with engine.connect() as connection:
            await connection.run_sync(upgrade_connection)
        async with create_sessionmaker(engine)() as session, session.begin():
            session.add_all([customer(1, legal_name="Công ty TNHH Minh Phát"), customer(2, do_not_disclose=True)])
        await engine.dispose()

    asyncio.run(prepare())
    for name in [name for name in os.environ if name.startswith("STEWARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STEWARD_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        as_json = CliRunner().invoke(cli.app, ["references", "--json"])
        as_csv = CliRunner().invoke(cli.app, ["references", "--csv"])
        table = CliRunner().invoke(cli.app, ["references"])
        both = CliRunner().invoke(cli.app, ["references", "--json", "--csv"])
    finally:
        get_settings.cache_clear()
    assert as_json.exit_code == 0, as_json.output
    assert [line["customer_name"] for line in json.loads(as_json.output)] == ["Công ty TNHH Minh Phát"]
    assert set(json.loads(as_json.output)[0]) == ALLOWED_KEYS
    assert as_csv.output.splitlines()[0] == "customer_name,products,consent_source,consent_at"
    assert len(as_csv.output.splitlines()) == 2
    assert table.exit_code == 0
    assert "Marketing references (1)" in table.output
    assert "Customer 2" not in table.output + as_json.output + as_csv.output
    assert both.exit_code == 2
