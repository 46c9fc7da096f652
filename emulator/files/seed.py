"""OneDrive and SharePoint content for the seeded tenant, consistent with each customer's profile.

Layout:
- the tenant's root site (an empty document library) and an internal site "NoiBo" with company documents
  (policies, price lists, notes and one revenue report that names several customers);
- a OneDrive per staff member: internal work files plus "Khách hàng/<customer>" folders for the customers
  that person manages;
- a site "KH-<slug>" per customer whose library holds that customer's documents; files are shared with the
  customer's guest users, and guests appear as the last modifier of some of them (an activity signal).
Dates never pass the customer's last activity, so a silent customer's files are all older than 12 months.
A few items carry the policy edge cases (retention labels that forbid deletion, a locked record, a double-key
encrypted file, a manually applied "Highly Confidential" label); `FileStore.special` names them.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from emulator.files.content import CUSTOMER_TEMPLATES, INTERNAL_TEMPLATES, REVENUE_REPORT, TEMPLATE_INDEX, declared_size
from emulator.files.content import Template as ContentTemplate
from emulator.files.store import (
    MIME_TYPES,
    CustomerIdentifiers,
    Drive,
    DriveItem,
    FileStore,
    LabelAssignment,
    Permission,
    Site,
    drive_prefix,
    make_drive_id,
    make_item_id,
)
from emulator.seed import fake_cccd, fake_mst, slug

if TYPE_CHECKING:
    from emulator.seed import SeedConfig
    from emulator.state import Customer, Tenant, User


def _guid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


class _Builder:
    def __init__(self, tenant: Tenant, rng: random.Random, config: SeedConfig) -> None:
        self.tenant = tenant
        self.store: FileStore = tenant.files
        self.rng = rng
        host = tenant.domain.split(".", 1)[0]
        self.sp_host = f"{host}.sharepoint.com"
        self.my_host = f"{host}-my.sharepoint.com"
        self.history_start = tenant.now - timedelta(days=30 * max(1, config.months_of_history))
        self._prefixes: dict[str, bytes] = {}
        # Documents of one customer and template share their identifier tuple instead of holding copies.
        self._truth_cache: dict[tuple[str, int, int], tuple[str, ...]] = {}
        self._customer_tuples: dict[str, tuple[str, ...]] = {}
        # Each customer's first site document: where the policy edge cases are placed.
        self.first_site_file: dict[str, DriveItem] = {}

    # Containers ------------------------------------------------------------------------------------------

    def site(
        self,
        *,
        host: str,
        name: str,
        display_name: str,
        web_url: str,
        description: str,
        created: datetime,
        personal: bool = False,
        root: bool = False,
        customer_id: str | None = None,
        owner: str | None = None,
    ) -> Site:
        site = Site(
            id=f"{host},{_guid(self.rng)},{_guid(self.rng)}",
            name=name,
            display_name=display_name,
            web_url=web_url,
            description=description,
            created=created,
            modified=created,
            is_personal=personal,
            is_root=root,
            customer_id=customer_id,
            owner_user_id=owner,
        )
        self.store.sites[site.id] = site
        return site

    def drive(self, site: Site, *, name: str, drive_type: str, web_url: str, owner: str | None) -> Drive:
        _, collection, web = site.id.split(",")
        drive = Drive(
            id=make_drive_id(uuid.UUID(collection), uuid.UUID(web), _guid(self.rng)),
            name=name,
            drive_type=drive_type,
            site_id=site.id,
            web_url=web_url,
            description="",
            created=site.created,
            owner_user_id=owner,
        )
        self.store.drives[drive.id] = drive
        site.drive_ids.append(drive.id)
        self._prefixes[drive.id] = drive_prefix(drive.id)
        staff = self.tenant.staff
        self.item(
            drive,
            None,
            "root",
            folder=True,
            created=site.created,
            modified=site.created,
            by=owner or (staff[0].id if staff else ""),
        )
        return drive

    def item(
        self,
        drive: Drive,
        parent: DriveItem | None,
        name: str,
        *,
        folder: bool = False,
        created: datetime,
        modified: datetime,
        by: str,
        modified_by: str | None = None,
        template: ContentTemplate | None = None,
        customers: tuple[str, ...] = (),
        identifiers: tuple[str, ...] = (),
    ) -> DriveItem:
        extension = template.extension if template else ""
        item = DriveItem(
            id=make_item_id(self._prefixes[drive.id], _guid(self.rng)),
            drive_id=drive.id,
            parent_id=parent.id if parent else None,
            name=name,
            size=0 if folder else declared_size(self.rng, extension),
            mime_type=None if folder else MIME_TYPES[extension],
            created=created,
            modified=modified,
            created_by=by,
            modified_by=modified_by or by,
            template=TEMPLATE_INDEX[template.key] if template else 0,
            children=[] if folder else None,
            truth_customers=customers,
            truth_identifiers=identifiers,
        )
        self.store.add(item)
        if parent is not None and modified > parent.modified:
            parent.modified = modified
        return item

    # Timing ----------------------------------------------------------------------------------------------

    def moment(self, start: datetime, end: datetime) -> datetime:
        span = max(0, int((end - start).total_seconds()))
        return start + timedelta(seconds=self.rng.randrange(span + 1))

    def customer_window(self, customer: Customer) -> tuple[datetime, datetime]:
        end = min(customer.last_activity_at, self.tenant.now)
        start = min(self.history_start, end - timedelta(days=90))
        return start, end

    # Ground truth ----------------------------------------------------------------------------------------

    def customer_truth(self, customer_id: str) -> tuple[str, ...]:
        return self._customer_tuples.setdefault(customer_id, (customer_id,))

    def identifiers(self, customer_id: str, template: ContentTemplate, k: int) -> tuple[str, ...]:
        ids = self.store.customer_identifiers[customer_id]
        key = (customer_id, TEMPLATE_INDEX[template.key], k % 6)
        cached = self._truth_cache.get(key)
        if cached is None:
            cached = self._truth_cache[key] = template.picks(ids, k % 6)
        return cached


def _identifiers_for(customer: Customer, rng: random.Random) -> CustomerIdentifiers:
    year = customer.last_activity_at.year
    if customer.language == "vi":
        # ASCII on purpose: the PDFs are written without diacritics and must still contain the number verbatim.
        contracts = tuple(f"{rng.randrange(1, 999):03d}/{year - n}/HDDV-VNR" for n in range(3))
    else:
        contracts = tuple(f"VNR-SA-{year - n}-{rng.randrange(1, 9999):04d}" for n in range(3))
    return CustomerIdentifiers(
        tax_code=customer.tax_code,
        citizen_ids=tuple(fake_cccd(rng) for _ in customer.contacts),
        phones=(*(contact.phone for contact in customer.contacts), customer.phone),
        contracts=contracts,
    )


def _personal_path(user: User) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in user.user_principal_name.lower())


def seed_files(tenant: Tenant, rng: random.Random, config: SeedConfig) -> None:
    build = _Builder(tenant, rng, config)
    store = build.store
    store.company_tax_code = fake_mst(rng)
    staff = tenant.staff
    customers = tenant.customers
    for customer in customers:
        store.customer_identifiers[customer.id] = _identifiers_for(customer, rng)

    root_site = build.site(
        host=build.sp_host,
        name="root",
        display_name="Communication site",
        web_url=f"https://{build.sp_host}",
        description="",
        created=build.history_start - timedelta(days=400),
        root=True,
    )
    build.drive(
        root_site,
        name="Documents",
        drive_type="documentLibrary",
        web_url=f"{root_site.web_url}/Shared%20Documents",
        owner=None,
    )

    _seed_internal_site(build, config)
    managers = {c.id: staff[i % len(staff)] for i, c in enumerate(customers)} if staff else {}
    for user in staff:
        _seed_onedrive(build, user, [c for c in customers if managers.get(c.id) is user], config)
    for customer in customers:
        _seed_customer_site(build, customer, managers.get(customer.id), config)
    _place_edge_cases(build)


def _seed_internal_site(build: _Builder, config: SeedConfig) -> None:
    tenant = build.tenant
    site = build.site(
        host=build.sp_host,
        name="NoiBo",
        display_name="Tài liệu nội bộ",
        web_url=f"https://{build.sp_host}/sites/NoiBo",
        description="Quy trình, biểu mẫu và báo cáo nội bộ của công ty (không chứa dữ liệu khách hàng).",
        created=build.history_start - timedelta(days=200),
    )
    drive = build.drive(
        site, name="Documents", drive_type="documentLibrary", web_url=f"{site.web_url}/Shared%20Documents", owner=None
    )
    staff = tenant.staff
    if not staff:
        return
    root = build.store.items[drive.root_id]
    processes = build.item(
        drive, root, "Quy trình", folder=True, created=site.created, modified=site.created, by=staff[0].id
    )
    reports = build.item(
        drive, root, "Báo cáo", folder=True, created=site.created, modified=site.created, by=staff[0].id
    )
    for k in range(config.internal_files_per_drive):
        template = INTERNAL_TEMPLATES[k % len(INTERNAL_TEMPLATES)]
        author = staff[k % len(staff)].id
        created = build.moment(build.history_start, tenant.now - timedelta(days=1))
        build.item(
            drive,
            processes,
            f"{template.title_vi} {k + 1:03d}.{template.extension}",
            created=created,
            modified=build.moment(created, tenant.now),
            by=author,
            template=template,
        )
    # One report names several customers with their tax codes: customer data kept outside customer folders.
    named = [c for c in tenant.customers if c.profile == "active"][:4]
    if named:
        created = build.moment(tenant.now - timedelta(days=60), tenant.now - timedelta(days=1))
        report = build.item(
            drive,
            reports,
            f"{REVENUE_REPORT.title_vi} {created.year}-Q{(created.month - 1) // 3 + 1}.xlsx",
            created=created,
            modified=created,
            by=staff[0].id,
            template=REVENUE_REPORT,
            customers=tuple(c.id for c in named),
            identifiers=tuple(c.tax_code for c in named),
        )
        build.store.special.setdefault("multi_customer_report", []).append(report.id)


def _seed_onedrive(build: _Builder, user: User, managed: list[Customer], config: SeedConfig) -> None:
    tenant = build.tenant
    created = max(user.created, build.history_start - timedelta(days=30))
    personal = _personal_path(user)
    site = build.site(
        host=build.my_host,
        name=personal,
        display_name=user.display_name,
        web_url=f"https://{build.my_host}/personal/{personal}",
        description="",
        created=created,
        personal=True,
        owner=user.id,
    )
    drive = build.drive(
        site, name="OneDrive", drive_type="business", web_url=f"{site.web_url}/Documents", owner=user.id
    )
    user.drive_id = drive.id
    root = build.store.items[drive.root_id]
    work = build.item(drive, root, "Tài liệu công việc", folder=True, created=created, modified=created, by=user.id)
    for k in range(config.internal_files_per_drive):
        template = INTERNAL_TEMPLATES[(k + 3) % len(INTERNAL_TEMPLATES)]
        when = build.moment(build.history_start, tenant.now - timedelta(days=1))
        build.item(
            drive,
            work,
            f"{template.title_vi} {k + 1:03d}.{template.extension}",
            created=when,
            modified=build.moment(when, tenant.now),
            by=user.id,
            template=template,
        )
    if not managed:
        return
    customers_folder = build.item(drive, root, "Khách hàng", folder=True, created=created, modified=created, by=user.id)
    for customer in managed:
        start, end = build.customer_window(customer)
        truth = build.customer_truth(customer.id)
        folder = build.item(
            drive,
            customers_folder,
            customer.legal_name,
            folder=True,
            created=start,
            modified=start,
            by=user.id,
            customers=truth,
        )
        for k in range(config.files_per_customer):
            template = CUSTOMER_TEMPLATES[(k + 1) % len(CUSTOMER_TEMPLATES)]
            when = build.moment(start, end)
            title = template.title_en if customer.language == "en" else template.title_vi
            item = build.item(
                drive,
                folder,
                f"{title} {k + 1:03d}.{template.extension}",
                created=when,
                modified=build.moment(when, end),
                by=user.id,
                template=template,
                customers=truth,
                identifiers=build.identifiers(customer.id, template, k),
            )
            if k == 0:
                _share_from_onedrive(item, customer)


def _share_from_onedrive(item: DriveItem, customer: Customer) -> None:
    """Staff share one working file per customer: with the guest account if any, else by e-mail invitation."""
    if customer.guest_user_ids:
        grant = Permission(
            id=f"aTowIy5mfG1lbWJlcnNoaXB8{item.id[-8:]}",
            roles=("read",),
            granted=item.modified,
            user_id=customer.guest_user_ids[0],
        )
    else:
        contact = customer.contacts[-1]
        grant = Permission(
            id=f"aTowIy5mfGV4dGVybmFsfA{item.id[-8:]}",
            roles=("read",),
            granted=item.modified,
            email=contact.email,
        )
    item.permissions = (grant,)


def _seed_customer_site(build: _Builder, customer: Customer, manager: User | None, config: SeedConfig) -> None:
    start, end = build.customer_window(customer)
    short = slug(customer.legal_name)
    site = build.site(
        host=build.sp_host,
        name=f"KH-{short}",
        display_name=f"KH - {customer.legal_name}",
        web_url=f"https://{build.sp_host}/sites/KH-{short}",
        description=f"Tài liệu dự án với khách hàng {customer.legal_name}",
        created=start,
        customer_id=customer.id,
    )
    customer.site_id = site.id
    drive = build.drive(
        site, name="Documents", drive_type="documentLibrary", web_url=f"{site.web_url}/Shared%20Documents", owner=None
    )
    if manager is None:
        return
    english = customer.language == "en"
    root = build.store.items[drive.root_id]
    truth = build.customer_truth(customer.id)
    contracts = build.item(
        drive,
        root,
        "Contracts" if english else "Hợp đồng",
        folder=True,
        created=start,
        modified=start,
        by=manager.id,
        customers=truth,
    )
    exchange = build.item(
        drive,
        root,
        "Correspondence" if english else "Trao đổi",
        folder=True,
        created=start,
        modified=start,
        by=manager.id,
        customers=truth,
    )
    guests = customer.guest_user_ids
    count = config.files_per_customer
    for k in range(count):
        template = CUSTOMER_TEMPLATES[k % len(CUSTOMER_TEMPLATES)]
        # The newest file is touched at the customer's last activity; the rest spread over the history.
        if k == count - 1:
            modified = end - timedelta(hours=build.rng.randrange(0, 48))
            created = build.moment(start, modified)
        else:
            created = build.moment(start, end)
            modified = build.moment(created, end)
        guest = guests[k % len(guests)] if guests else None
        modifier = guest if guest and (k % 3 == 1 or k == count - 1) else manager.id
        title = template.title_en if english else template.title_vi
        item = build.item(
            drive,
            contracts if template.key in ("contract", "signed", "acceptance") else exchange,
            f"{title} {k + 1:03d}.{template.extension}",
            created=created,
            modified=modified,
            by=guest if guest and k % 5 == 4 else manager.id,
            modified_by=modifier,
            template=template,
            customers=truth,
            identifiers=build.identifiers(customer.id, template, k),
        )
        if guest and (k % 2 == 0 or modifier == guest):
            item.permissions = (
                Permission(
                    id=f"aTowIy5mfG1lbWJlcnNoaXB8{item.id[-8:]}",
                    roles=("write",) if modifier == guest else ("read",),
                    granted=created,
                    user_id=guest,
                ),
            )
        if k == 0:
            build.first_site_file[customer.id] = item


def _place_edge_cases(build: _Builder) -> None:
    """Retention labels, a locked record, a double-key encrypted file and a hand-applied label."""
    tenant = build.tenant
    store = build.store
    customers = tenant.customers

    def first_file_of(index: int) -> DriveItem | None:
        return build.first_site_file.get(customers[index].id) if 0 <= index < len(customers) else None

    taken: set[str] = set()

    def mark(role: str, item: DriveItem | None) -> DriveItem | None:
        if item is None or item.id in taken:
            return None
        taken.add(item.id)
        store.special.setdefault(role, []).append(item.id)
        return item

    record = mark("record_locked", first_file_of(1))
    if record is not None:
        record.retention_label = "Record - locked"
    encrypted = mark("double_key_encrypted", first_file_of(2))
    if encrypted is not None:
        encrypted.locked = "fileDoubleKeyEncrypted"
    protected_index = next((i for i, c in enumerate(customers) if c.do_not_disclose), len(customers) - 1)
    manual = mark("manual_highly_confidential", first_file_of(protected_index))
    highly = tenant.label_by_name("Highly Confidential")
    if manual is not None and highly is not None:
        manual.label = LabelAssignment(
            label_id=highly.id,
            method="privileged",
            assigned_by=manual.modified_by,
            assigned_at=manual.modified,
            manual=True,
        )
    for index in range(0, len(customers), 3):
        retained = mark("retention_no_delete", first_file_of(index))
        if retained is not None:
            retained.retention_label = "Contract - 10 years"
    confidential = tenant.label_by_name("Confidential")
    # Files Steward labelled on an earlier run.
    for index in range(1, len(customers), 4):
        labelled = mark("labelled_confidential", first_file_of(index))
        if labelled is not None and confidential is not None:
            labelled.label = LabelAssignment(
                label_id=confidential.id,
                method="standard",
                assigned_by=tenant.extra.get("steward_app_id", ""),
                assigned_at=labelled.modified,
            )
    working = [i for i in store.items.values() if i.template == TEMPLATE_INDEX["internal_notes"]][:3]
    for item in working:
        item.retention_label = "Working file"
        store.special.setdefault("retention_delete_allowed", []).append(item.id)
