"""Importing the customer registry: the emulator seed's own export, re-imports, bad rows, protections."""

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.importing import ImportFileError, parse_registry_file
from app.customers.schemas import ImportReport
from app.customers.service import customers_service
from app.models import AuditRecord, Customer, HoldSource, ItemHold, ServiceStatus
from emulator.seed import SeedConfig, build_tenant, write_registry
from emulator.state import Tenant

SEED = SeedConfig(seed=5, customers=6, staff=2, threads_per_customer=0, files_per_customer=0)


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    return build_tenant(SEED)


@pytest.fixture(scope="module")
def registry(tenant: Tenant, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_registry(tenant, tmp_path_factory.mktemp("registry"))


async def _import(session: AsyncSession, data: bytes, filename: str = "customers.json") -> ImportReport:
    return await customers_service.import_file(session, parse_registry_file(data, filename=filename), actor="tester")


async def _customers(session: AsyncSession) -> dict[str, Customer]:
    rows = (await session.execute(select(Customer).execution_options(populate_existing=True))).scalars()
    return {customer.id: customer for customer in rows}


def _json(rows: list[dict[str, Any]]) -> bytes:
    return json.dumps(rows, ensure_ascii=False).encode()


def _csv(header: list[str], *rows: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


async def test_the_seed_json_export_imports_every_customer(
    session: AsyncSession, tenant: Tenant, registry: dict[str, Path]
) -> None:
    report = await _import(session, registry["json"].read_bytes())
    assert (report.created, report.updated, report.unchanged, report.rejected) == (len(tenant.customers), 0, 0, [])
    stored = await _customers(session)
    for seeded in tenant.customers:
        customer = stored[seeded.id]
        assert customer.legal_name == seeded.legal_name
        assert customer.domains == seeded.domains
        assert [c["email"] for c in customer.contacts] == [c.email for c in seeded.contacts]
        assert [c["phone"] for c in customer.contacts] == [c.phone for c in seeded.contacts]
        assert customer.tax_codes == [seeded.tax_code]
        assert customer.business_phone == seeded.phone
        assert customer.products == seeded.products
        assert customer.service_status == seeded.service_status
        assert customer.service_ended_at == seeded.service_ended_at
        assert (customer.do_not_disclose, customer.marketing_opt_out) == (
            seeded.do_not_disclose,
            seeded.marketing_opt_out,
        )


async def test_reimporting_json_then_the_csv_of_the_same_registry_changes_nothing(
    session: AsyncSession, tenant: Tenant, registry: dict[str, Path]
) -> None:
    await _import(session, registry["json"].read_bytes())
    before = {c.id: (c.updated_at, list(c.contacts)) for c in (await _customers(session)).values()}
    again = await _import(session, registry["json"].read_bytes())
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(tenant.customers))
    # The CSV lists contacts as "Name <address>" without phones: the phones stored from the JSON stay.
    as_csv = await _import(session, registry["csv"].read_bytes(), "customers.csv")
    assert (as_csv.created, as_csv.updated, as_csv.unchanged, as_csv.rejected) == (0, 0, len(tenant.customers), [])
    after = {c.id: (c.updated_at, list(c.contacts)) for c in (await _customers(session)).values()}
    assert after == before
    audits = (await session.execute(select(AuditRecord).where(AuditRecord.action == "customers.imported"))).scalars()
    assert len(list(audits)) == 1  # only the import that changed something


async def test_bad_rows_are_reported_by_row_number_and_good_rows_kept(session: AsyncSession) -> None:
    data = _csv(
        ["id", "legal_name", "domains", "tax_code", "service_status", "service_ended_at", "do_not_disclose"],
        ["K001", "Công ty TNHH Ổn Định", "ondinh.example", "0100109106", "active", "", "no"],
        ["K002", "", "bad domain", "0100109107", "active", "", "maybe"],
        ["K003", "Ended Co", "ended.example", "", "ended", "", ""],
        ["K001", "Duplicate", "dup.example", "", "active", "", ""],
        ["K004", "Branch Co", "branch.example", "0100109106-001", "ended", "2025-06-30", "yes"],
    )
    report = await _import(session, data, "customers.csv")
    assert (report.created, report.rows) == (2, 5)
    rejected = {problem.row: problem for problem in report.rejected}
    assert sorted(rejected) == [3, 4, 5]
    assert rejected[3].id == "K002"
    joined = " | ".join(rejected[3].errors)
    assert "legal_name" in joined
    assert "not a domain name: 'bad domain'" in joined
    assert "wrong check digit" in joined
    assert "expected true or false" in joined
    assert rejected[4].errors == ["service_ended_at is required when service_status is 'ended'"]
    assert rejected[5].errors == ["id repeats row 2"]
    stored = await _customers(session)
    assert stored["K001"].tax_codes == ["0100109106"]
    assert stored["K004"].tax_codes == ["0100109106-001"]
    assert stored["K004"].service_status == ServiceStatus.ended
    assert stored["K004"].service_ended_at is not None
    assert stored["K004"].service_ended_at.isoformat() == "2025-06-30T00:00:00+00:00"
    assert stored["K004"].do_not_disclose is True


async def test_json_rows_that_are_not_objects_are_rejected_not_dropped(session: AsyncSession) -> None:
    rows: list[Any] = [{"id": "J1", "legal_name": "One"}, "J2", {"legal_name": "no id"}]
    report = await _import(session, json.dumps(rows).encode())
    assert report.created == 1
    assert [(p.row, p.errors) for p in report.rejected] == [
        (2, ["id: is required", "legal_name: is required"]),
        (3, ["id: is required"]),
    ]


async def test_an_import_switches_protections_on_but_never_off(session: AsyncSession) -> None:
    row = {"id": "P1", "legal_name": "Protected", "do_not_disclose": True, "legal_holds": ["Case 7"]}
    await _import(session, _json([row]))
    report = await _import(session, _json([{**row, "do_not_disclose": False, "legal_holds": []}]))
    assert report.updated == 0
    assert [(note.row, note.id) for note in report.notes] == [(1, "P1")]
    assert "do_not_disclose stays true" in report.notes[0].note
    customer = (await _customers(session))["P1"]
    assert customer.do_not_disclose is True
    holds = (await session.execute(select(ItemHold).where(ItemHold.customer_id == "P1"))).scalars().all()
    assert [(h.source, h.source_ref, h.released_at) for h in holds] == [(HoldSource.legal_hold, "Case 7", None)]


async def test_columns_missing_from_a_file_are_left_alone(session: AsyncSession) -> None:
    await _import(
        session,
        _json([{"id": "M1", "legal_name": "Old Name", "domains": ["m1.example"], "products": ["Power BI Pro"]}]),
    )
    report = await _import(session, _csv(["id", "legal_name"], ["M1", "New Name"]), "customers.csv")
    assert report.updated == 1
    customer = (await _customers(session))["M1"]
    assert (customer.legal_name, customer.domains, customer.products) == ("New Name", ["m1.example"], ["Power BI Pro"])


async def test_unknown_columns_are_reported_and_ignored(session: AsyncSession) -> None:
    report = await _import(session, _csv(["id", "legal_name", "favourite_colour"], ["U1", "U", "blue"]), "x.csv")
    assert (report.created, report.ignored_columns) == (1, ["favourite_colour"])


async def test_a_file_without_an_id_column_is_refused(session: AsyncSession) -> None:
    with pytest.raises(ImportFileError, match="header has no 'id' column"):
        await _import(session, _csv(["name"], ["x"]), "customers.csv")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe\x00bad", "not UTF-8"),
        (b'[{"id": "A"', "invalid JSON at line 1"),
        (b'{"id": "A"}', "JSON must be an array"),
        (b"", "the CSV file is empty"),
        (b"id,id\n1,2\n", "repeats column(s): id"),
        (b'id,legal_name\n"unterminated,x\n', "malformed CSV"),
    ],
)
def test_unreadable_files_are_refused_as_a_whole(data: bytes, message: str) -> None:
    with pytest.raises(ImportFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_registry_file(data)


def test_a_csv_row_with_more_cells_than_columns_is_kept_for_reporting() -> None:
    parsed = parse_registry_file(b"id,legal_name\nA,Alpha,extra\n\nB,Beta\n", filename="r.csv")
    assert [(row.number, row.values) for row in parsed.rows] == [
        (2, {"__extra_cells__": 1}),
        (4, {"id": "B", "legal_name": "Beta"}),
    ]


async def test_a_contact_listed_twice_is_kept_once_with_a_note(session: AsyncSession) -> None:
    contacts = "Lan <lan@a.example>;Lan Nguyen <lan@a.example>"
    report = await _import(session, _csv(["id", "legal_name", "contacts"], ["D1", "Dup", contacts]), "c.csv")
    assert report.created == 1
    assert [note.note for note in report.notes] == ["contact lan@a.example is listed more than once: kept once"]
    assert (await _customers(session))["D1"].contacts == [{"email": "lan@a.example", "name": "Lan"}]
