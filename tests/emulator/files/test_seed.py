"""The seeded OneDrive/SharePoint content: deterministic, consistent with customer profiles, cheap at scale."""

from __future__ import annotations

import dataclasses
import io
import random
import re
import tracemalloc
import zipfile
from datetime import timedelta

from emulator.files.content import content_bytes
from emulator.files.seed import seed_files
from emulator.files.store import FileStore
from emulator.seed import SeedConfig, build_tenant, mst_check_digit
from emulator.state import Tenant
from tests.emulator.conftest import SMALL


def _mst_is_valid(code: str) -> bool:
    digits = code.split("-", 1)[0]
    check = mst_check_digit(digits[:9])
    return check is not None and int(digits[9]) == check


def test_same_seed_gives_same_ids_names_and_sizes() -> None:
    first, second = build_tenant(SMALL), build_tenant(SMALL)
    shape = [(i.id, i.name, i.size, i.drive_id, i.parent_id) for i in first.files.items.values()]
    assert shape == [(i.id, i.name, i.size, i.drive_id, i.parent_id) for i in second.files.items.values()]
    assert list(first.files.sites) == list(second.files.sites)
    assert [c.site_id for c in first.customers] == [c.site_id for c in second.customers]
    other = build_tenant(dataclasses.replace(SMALL, seed=SMALL.seed + 1))
    assert set(other.files.items).isdisjoint(first.files.items)


def test_layout_sites_drives_and_ids(tenant: Tenant) -> None:
    store = tenant.files
    host = tenant.domain.split(".")[0]
    for site in store.sites.values():
        hostname, collection, web = site.id.split(",")
        assert hostname in (f"{host}.sharepoint.com", f"{host}-my.sharepoint.com")
        assert re.fullmatch(r"[0-9a-f-]{36}", collection)
        assert re.fullmatch(r"[0-9a-f-]{36}", web)
    for user in tenant.staff:
        drive = store.drives[user.drive_id or ""]
        assert drive.drive_type == "business"
        assert drive.owner_user_id == user.id
    for customer in tenant.customers:
        assert customer.site_id is not None
        site = store.sites[customer.site_id]
        assert site.name.startswith("KH-")
        assert site.customer_id == customer.id
        assert store.drives[site.drive_ids[0]].drive_type == "documentLibrary"
    assert all(d.id.startswith("b!") and len(d.id) == 66 for d in store.drives.values())
    assert all(re.fullmatch(r"01[A-Z2-7]{32}", item_id) for item_id in store.items)
    # Staff keep per-customer folders under "Khách hàng".
    folders = {i.name for i in store.items.values() if i.is_folder}
    assert "Khách hàng" in folders
    assert {c.legal_name for c in tenant.customers} <= folders


def test_customer_files_follow_the_customer_profile(tenant: Tenant) -> None:
    store = tenant.files
    year_ago = tenant.now - timedelta(days=365)
    for customer in tenant.customers:
        files = [i for i in store.customer_items(customer.id) if not i.is_folder]
        assert files, customer.id
        newest = max(i.modified for i in files)
        assert newest <= customer.last_activity_at
        assert newest >= customer.last_activity_at - timedelta(days=2)
        if customer.profile == "silent":
            assert newest < year_ago
    guest_ids = {g for c in tenant.customers for g in c.guest_user_ids}
    modified_by_guests = [i for i in store.items.values() if i.modified_by in guest_ids]
    assert modified_by_guests
    for item in modified_by_guests:
        guest = tenant.users[item.modified_by]
        assert guest.customer_id in item.truth_customers
    shared = [i for i in store.items.values() if i.permissions]
    assert any(p.user_id in guest_ids for i in shared for p in i.permissions)
    assert any(p.email for i in shared for p in i.permissions), "a file shared by e-mail with a contact"


def test_edge_cases_are_placed(tenant: Tenant) -> None:
    store = tenant.files
    special = store.special
    record = store.items[special["record_locked"][0]]
    assert tenant.retention_labels[record.retention_label or ""].is_record_locked
    assert store.items[special["double_key_encrypted"][0]].locked == "fileDoubleKeyEncrypted"
    manual = store.items[special["manual_highly_confidential"][0]]
    highly = tenant.label_by_name("Highly Confidential")
    confidential = tenant.label_by_name("Confidential")
    assert manual.label is not None
    assert highly is not None
    assert confidential is not None
    assert manual.label.label_id == highly.id
    assert manual.label.manual
    assert highly.priority > confidential.priority
    for item_id in special["retention_no_delete"]:
        label = tenant.retention_labels[store.items[item_id].retention_label or ""]
        assert not label.is_delete_allowed
    report = store.items[special["multi_customer_report"][0]]
    assert len(report.truth_customers) > 1
    internal = [i for i in store.items.values() if not i.truth_customers and not i.is_folder]
    assert internal
    assert all(not i.truth_identifiers for i in internal)


def _sample(tenant: Tenant, extension: str) -> list:
    return [
        i
        for i in tenant.files.items.values()
        if i.name.endswith(extension) and i.truth_identifiers and not i.locked and not i.is_folder
    ]


def test_docx_is_a_valid_package_with_identifiers_and_decoys(tenant: Tenant) -> None:
    item = _sample(tenant, ".docx")[0]
    data = content_bytes(tenant, item)
    assert len(data) == item.size
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        assert package.testzip() is None
        names = set(package.namelist())
        assert {"[Content_Types].xml", "_rels/.rels", "word/document.xml", "docProps/core.xml"} <= names
        assert "word/document.xml" in package.read("_rels/.rels").decode()
        document = package.read("word/document.xml").decode()
    assert document.startswith("<?xml")
    assert "<w:body>" in document
    for identifier in item.truth_identifiers:
        assert identifier in document
    tax_codes = re.findall(r"\b\d{10}\b", document)
    assert any(not _mst_is_valid(code) for code in tax_codes), "a decoy MST with a wrong check digit"
    customer = tenant.customer(item.truth_customers[0])
    assert customer is not None
    assert customer.tax_code in tax_codes
    assert _mst_is_valid(customer.tax_code)


def test_xlsx_is_a_valid_package_with_identifiers(tenant: Tenant) -> None:
    item = _sample(tenant, ".xlsx")[0]
    data = content_bytes(tenant, item)
    assert len(data) == item.size
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        assert package.testzip() is None
        assert "xl/workbook.xml" in package.read("_rels/.rels").decode()
        assert "worksheets/sheet1.xml" in package.read("xl/_rels/workbook.xml.rels").decode()
        sheet = package.read("xl/worksheets/sheet1.xml").decode()
    for identifier in item.truth_identifiers:
        assert f"<t>{identifier}</t>" in sheet


def test_pdf_is_well_formed_and_holds_the_text(tenant: Tenant) -> None:
    items = _sample(tenant, ".pdf")
    assert items
    item = items[0]
    data = content_bytes(tenant, item)
    assert data.startswith(b"%PDF-1.")
    assert data.rstrip().endswith(b"%%EOF")
    assert len(data) == item.size
    xref_at = int(data.rsplit(b"startxref", 1)[1].split()[0])
    assert data[xref_at : xref_at + 4] == b"xref"
    # Every xref entry points at its object.
    entries = data[xref_at:].split(b"\n")[3:9]
    for number, entry in enumerate(entries, start=1):
        offset = int(entry.split()[0])
        assert data[offset:].startswith(f"{number} 0 obj".encode())
    for identifier in item.truth_identifiers:
        assert identifier.encode() in data


def test_labelled_documents_carry_msip_metadata(tenant: Tenant) -> None:
    item = tenant.files.items[tenant.files.special["manual_highly_confidential"][0]]
    assert item.label is not None
    with zipfile.ZipFile(io.BytesIO(content_bytes(tenant, item))) as package:
        custom = package.read("docProps/custom.xml").decode()
    assert f"MSIP_Label_{item.label.label_id}_Enabled" in custom
    assert "Privileged" in custom


def test_every_seeded_file_downloads_at_its_declared_size(tenant: Tenant) -> None:
    for item in tenant.files.items.values():
        if not item.is_folder:
            assert len(content_bytes(tenant, item)) == item.size, item.name


def test_tens_of_thousands_of_items_seed_in_modest_memory() -> None:
    base = SeedConfig(seed=5, customers=30, staff=6, files_per_customer=1, internal_files_per_drive=1)
    tenant = build_tenant(base)
    tenant.files = FileStore()
    big = dataclasses.replace(base, files_per_customer=250, internal_files_per_drive=700)
    tracemalloc.start()
    try:
        seed_files(tenant, random.Random("files"), big)
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    count = len(tenant.files.items)
    assert count >= 20_000
    # About 0.6 KB per item measured; the bound leaves room but fails if content were kept per item.
    assert current < count * 1_000, f"{current / count:.0f} bytes per item"
