"""A deterministic tenant: customers, staff, guests, labels and holds, then mail and files on top.

The same --seed always yields the same tenant (ids included), so tests and benchmarks can name what they
expect. Dates are relative to `now`, so "silent for more than 12 months" stays true whenever it runs.
"""

from __future__ import annotations

import csv
import json
import random
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from emulator.state import (
    AppRegistration,
    Contact,
    Customer,
    HoldCase,
    RetentionLabel,
    SensitivityLabel,
    Tenant,
    User,
    seeded_uuid,
    utc_now,
)

# Graph application permissions an admin granted to Steward's daemon app: exactly its least-privilege request.
STEWARD_GRAPH_ROLES = frozenset(
    {
        "User.Read.All",
        "Mail.ReadWrite",
        "Mail.Send",
        "Files.ReadWrite.All",
        "Sites.ReadWrite.All",
        "SensitivityLabel.Read",
        "AuditLog.Read.All",
        "eDiscovery.Read.All",
    }
)
STEWARD_API_ROLES = frozenset({"Steward.Admin", "Steward.Approver", "Steward.Legal", "Steward.Auditor"})
PRODUCTS = (
    "Microsoft 365 Business Basic",
    "Microsoft 365 Business Standard",
    "Microsoft 365 Business Premium",
    "Microsoft 365 E3",
    "Exchange Online Plan 1",
    "Microsoft Teams Essentials",
    "Power BI Pro",
    "Microsoft Defender for Business",
    "SharePoint Online Plan 1",
    "Microsoft 365 Copilot",
)
VI_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô")
VI_MIDDLE = ("Văn", "Thị", "Minh", "Thu", "Quốc", "Thanh", "Ngọc", "Hữu", "Đức", "Hoài")
VI_GIVEN = (
    "An",
    "Bình",
    "Chi",
    "Dũng",
    "Giang",
    "Hà",
    "Hải",
    "Hạnh",
    "Hùng",
    "Lan",
    "Linh",
    "Long",
    "Mai",
    "Nam",
    "Phong",
    "Phương",
    "Quân",
    "Sơn",
    "Tâm",
    "Thảo",
    "Trang",
    "Tuấn",
    "Vy",
    "Yến",
)
EN_FIRST = ("Alice", "Ben", "Chloe", "Daniel", "Emma", "Frank", "Grace", "Henry", "Isla", "Jack", "Olivia", "Sam")
EN_LAST = ("Walker", "Nguyen", "Smith", "Taylor", "Brown", "Clarke", "Evans", "Hughes", "Reed", "Turner")
VI_COMPANY_STEMS = (
    "Minh Phát",
    "Hoà Bình",
    "Sao Việt",
    "Thành Công",
    "Phú Gia",
    "Đại Dương",
    "Hưng Thịnh",
    "Bảo An",
    "Tân Tiến",
    "Kim Long",
    "Trường Sơn",
    "Nam Việt",
    "Ánh Dương",
    "Phương Đông",
)
VI_COMPANY_KINDS = ("Công ty TNHH", "Công ty Cổ phần")
VI_COMPANY_TRADES = ("Thương mại", "Xây dựng", "Công nghệ", "Dịch vụ Logistics", "Thực phẩm", "Du lịch", "Dược phẩm")
EN_COMPANY_STEMS = (
    "Riverside",
    "Lotus Bay",
    "Saigon Harbor",
    "Mekong Valley",
    "Red River",
    "Highland",
    "Pearl Coast",
    "Golden Gate",
    "Blue Lantern",
    "Bamboo Bridge",
)
EN_COMPANY_TRADES = ("Trading", "Logistics", "Software", "Foods", "Pharma", "Travel", "Engineering")
STREETS = ("Lê Lợi", "Nguyễn Huệ", "Trần Hưng Đạo", "Hai Bà Trưng", "Lý Thường Kiệt", "Điện Biên Phủ", "Láng Hạ")
CITIES = ("Quận 1, TP. Hồ Chí Minh", "Quận Hoàn Kiếm, Hà Nội", "Quận Hải Châu, Đà Nẵng", "Quận Ba Đình, Hà Nội")
CCCD_PROVINCES = ("001", "079", "048", "031", "092", "037", "056", "075", "027", "038")
MOBILE_PREFIXES = ("090", "091", "093", "094", "096", "097", "098", "032", "035", "070", "077", "081", "086", "088")
MST_WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)


@dataclass(frozen=True, slots=True)
class SeedConfig:
    seed: int = 7
    customers: int = 12
    staff: int = 6
    months_of_history: int = 24
    # Volume knobs: benchmarks raise these to reach 100k+ items across 20+ mailboxes.
    threads_per_customer: int = 6
    messages_per_thread: int = 3
    internal_messages_per_mailbox: int = 5
    files_per_customer: int = 4
    internal_files_per_drive: int = 3
    tenant_id: str | None = None
    now: datetime | None = None


# Vietnamese identifiers -------------------------------------------------------------------------------


def mst_check_digit(prefix9: str) -> int | None:
    remainder = sum(w * int(d) for w, d in zip(MST_WEIGHTS, prefix9, strict=True)) % 11
    return None if remainder == 0 else 10 - remainder


def fake_mst(rng: random.Random, *, valid: bool = True, branch: bool = False) -> str:
    """A tax code (MST) whose check digit is right (or deliberately wrong when valid=False)."""
    while True:
        prefix = rng.choice(("01", "03", "04", "02")) + f"{rng.randrange(1, 10_000_000):07d}"
        check = mst_check_digit(prefix)
        if check is None:
            continue
        digit = check if valid else (check + rng.randrange(1, 10)) % 10
        code = prefix + str(digit)
        return f"{code}-{rng.randrange(1, 1000):03d}" if branch else code


def fake_cccd(rng: random.Random, *, valid: bool = True) -> str:
    """A 12-digit citizen ID with a real province code and a plausible birth year (or an unassigned code)."""
    province = rng.choice(CCCD_PROVINCES) if valid else rng.choice(("003", "005", "013", "050", "099"))
    year = rng.randrange(1955, 2005)
    century_sex = (0 if year < 2000 else 2) + rng.randrange(2)
    return f"{province}{century_sex}{year % 100:02d}{rng.randrange(1_000_000):06d}"


def fake_mobile(rng: random.Random, *, international: bool = False) -> str:
    prefix = rng.choice(MOBILE_PREFIXES)
    rest = f"{rng.randrange(10_000_000):07d}"
    if international:
        return f"+84 {prefix[1:]} {rest[:3]} {rest[3:]}"
    return f"{prefix} {rest[:3]} {rest[3:]}"


def slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text.replace("Đ", "D").replace("đ", "d"))
    ascii_text = ascii_text.encode("ascii", "ignore").decode()
    return "-".join("".join(ch.lower() if ch.isalnum() else " " for ch in ascii_text).split())


# Directory --------------------------------------------------------------------------------------------


def _vi_person(rng: random.Random) -> tuple[str, str, str]:
    family, middle, given = rng.choice(VI_FAMILY), rng.choice(VI_MIDDLE), rng.choice(VI_GIVEN)
    return f"{family} {middle} {given}", given, family


def _en_person(rng: random.Random) -> tuple[str, str, str]:
    first, last = rng.choice(EN_FIRST), rng.choice(EN_LAST)
    return f"{first} {last}", first, last


def _company(rng: random.Random, index: int) -> tuple[str, str, str]:
    """(legal name, language, domain); names are unique by construction (the index breaks ties)."""
    if index % 3 != 2:
        stem = VI_COMPANY_STEMS[index % len(VI_COMPANY_STEMS)]
        trade = rng.choice(VI_COMPANY_TRADES)
        name = f"{rng.choice(VI_COMPANY_KINDS)} {trade} {stem}"
        if index >= len(VI_COMPANY_STEMS):
            name += f" {index // len(VI_COMPANY_STEMS) + 1}"
        return name, "vi", f"{slug(stem + ' ' + trade)}{index}.example"
    stem = EN_COMPANY_STEMS[index % len(EN_COMPANY_STEMS)]
    trade = rng.choice(EN_COMPANY_TRADES)
    name = f"{stem} {trade} Co., Ltd."
    if index >= len(EN_COMPANY_STEMS):
        name = f"{stem} {trade} {index // len(EN_COMPANY_STEMS) + 1} Co., Ltd."
    return name, "en", f"{slug(stem + ' ' + trade)}{index}.example"


def _seed_apps(tenant: Tenant, rng: random.Random) -> None:
    daemon = AppRegistration(
        client_id=seeded_uuid(rng),
        object_id=seeded_uuid(rng),
        display_name="Steward",
        secrets=[f"stw~{seeded_uuid(rng).replace('-', '')}"],
        graph_roles=set(STEWARD_GRAPH_ROLES),
    )
    web = AppRegistration(
        client_id=seeded_uuid(rng),
        object_id=seeded_uuid(rng),
        display_name="Steward web",
        secrets=[f"stw~{seeded_uuid(rng).replace('-', '')}"],
        exposed_roles=set(STEWARD_API_ROLES),
        allow_loopback_redirects=True,
    )
    reader = AppRegistration(
        client_id=seeded_uuid(rng),
        object_id=seeded_uuid(rng),
        display_name="Directory reader (least privilege)",
        secrets=[f"rdr~{seeded_uuid(rng).replace('-', '')}"],
        graph_roles={"User.Read.All"},
    )
    for app in (daemon, web, reader):
        tenant.apps[app.client_id] = app
    tenant.extra["steward_app_id"] = daemon.client_id
    tenant.extra["web_app_id"] = web.client_id
    tenant.extra["reader_app_id"] = reader.client_id


def _seed_staff(tenant: Tenant, rng: random.Random, count: int) -> None:
    roles_by_index = {
        0: {"Steward.Admin"},
        1: {"Steward.Approver"},
        2: {"Steward.Approver"},
        3: {"Steward.Approver", "Steward.Legal"},
        4: {"Steward.Legal"},
        5: {"Steward.Auditor"},
    }
    for index in range(count):
        display, given, family = _vi_person(rng)
        local = f"{slug(given)}.{slug(family)}{index}"
        upn = f"{local}@{tenant.domain}"
        user = User(
            id=seeded_uuid(rng),
            user_principal_name=upn,
            display_name=display,
            given_name=given,
            surname=family,
            mail=upn,
            job_title=rng.choice(("Account Manager", "Support Engineer", "Sales", "Privacy Officer")),
            created=tenant.now - timedelta(days=rng.randrange(800, 2000)),
            is_admin=index == 0,
            # Most staff registered a second factor; a few did not, so the posture report has findings.
            mfa_methods=["password", "microsoftAuthenticatorPush"] if index % 4 != 3 else ["password"],
            password=f"Steward-{index}-{rng.randrange(10_000, 99_999)}",
            steward_roles=set(roles_by_index.get(index, set())),
            has_mailbox=True,
        )
        tenant.users[user.id] = user


def _seed_customers(tenant: Tenant, rng: random.Random, config: SeedConfig) -> None:
    for index in range(config.customers):
        legal_name, language, domain = _company(rng, index)
        # A fixed rotation of profiles, so every tenant has active, silent and ended customers.
        profile = ("active", "active", "silent", "active", "ended", "active")[index % 6]
        if profile == "silent":
            last_activity = tenant.now - timedelta(days=rng.randrange(400, 30 * config.months_of_history - 10))
            ended_at = None
        elif profile == "ended":
            ended_at = tenant.now - timedelta(days=rng.randrange(30, 200))
            last_activity = ended_at - timedelta(days=rng.randrange(1, 20))
        else:
            last_activity = tenant.now - timedelta(days=rng.randrange(1, 60))
            ended_at = None
        contacts = []
        for _ in range(rng.randrange(2, 4)):
            display, given, family = _vi_person(rng) if language == "vi" else _en_person(rng)
            contacts.append(
                Contact(name=display, email=f"{slug(given)}.{slug(family)}@{domain}", phone=fake_mobile(rng))
            )
        customer = Customer(
            id=f"C{index + 1:04d}",
            legal_name=legal_name,
            language=language,
            domains=[domain],
            contacts=contacts,
            products=sorted(rng.sample(PRODUCTS, rng.randrange(1, 4))),
            address=f"{rng.randrange(1, 300)} {rng.choice(STREETS)}, {rng.choice(CITIES)}",
            phone=f"028 {rng.randrange(3000, 3999)} {rng.randrange(1000, 9999)}",
            tax_code=fake_mst(rng),
            service_status="ended" if profile == "ended" else "active",
            service_ended_at=ended_at,
            last_activity_at=last_activity,
            profile=profile,
            do_not_disclose=index % 5 == 3,
            marketing_opt_out=index % 4 == 1,
        )
        # The first contact of every other customer is a guest in the tenant (files are shared with them).
        if index % 2 == 0:
            contact = contacts[0]
            guest = User(
                id=seeded_uuid(rng),
                user_principal_name=f"{contact.email.replace('@', '_')}#EXT#@{tenant.domain}",
                display_name=contact.name,
                given_name=contact.name.split()[-1],
                surname=contact.name.split()[0],
                mail=contact.email,
                user_type="Guest",
                created=tenant.now - timedelta(days=rng.randrange(100, 700)),
                mfa_methods=["email"],
                customer_id=customer.id,
            )
            tenant.users[guest.id] = guest
            customer.guest_user_ids.append(guest.id)
        tenant.customers.append(customer)


def _seed_labels(tenant: Tenant, rng: random.Random) -> None:
    specs = (
        ("Public", "Information the company may publish.", "#4CAF50", 0),
        ("General", "Internal business information.", "#2196F3", 1),
        ("Confidential", "Customer data: never shared with third parties without written consent.", "#FF9800", 2),
        ("Highly Confidential", "Customer data the customer asked us not to disclose.", "#F44336", 3),
    )
    for name, description, color, priority in specs:
        tenant.labels.append(
            SensitivityLabel(
                id=seeded_uuid(rng),
                name=name,
                description=description,
                color=color,
                priority=priority,
                tooltip=description,
            )
        )
    tenant.retention_labels = {
        "Contract - 10 years": RetentionLabel("Contract - 10 years", "retain", is_delete_allowed=False),
        "Record - locked": RetentionLabel("Record - locked", "retainAsRecord", False, is_record_locked=True),
        "Working file": RetentionLabel("Working file", "doNotRetain", is_delete_allowed=True),
    }


def _seed_holds(tenant: Tenant, rng: random.Random) -> None:
    """One open eDiscovery case holding one staff mailbox, so deletion planning has a hold to honour."""
    staff = tenant.staff
    if len(staff) < 2:
        return
    tenant.hold_cases.append(
        HoldCase(
            id=seeded_uuid(rng),
            display_name="Tranh chấp hợp đồng 2025 / Contract dispute 2025",
            status="active",
            custodian_user_ids=[staff[-1].id],
            created=tenant.now - timedelta(days=90),
        )
    )


def build_tenant(config: SeedConfig | None = None) -> Tenant:
    config = config or SeedConfig()
    rng = random.Random(config.seed)
    tenant = Tenant(
        tenant_id=config.tenant_id or seeded_uuid(rng),
        domain="vnreseller.onmicrosoft.com",
        seed=config.seed,
        now=config.now or utc_now(),
    )
    _seed_apps(tenant, rng)
    _seed_staff(tenant, rng, config.staff)
    _seed_customers(tenant, rng, config)
    _seed_labels(tenant, rng)
    # Files before mail: customer sites exist before holds and threads refer to them.
    from emulator.files.seed import seed_files
    from emulator.mail.seed import seed_mail

    seed_files(tenant, random.Random(f"{config.seed}:files"), config)
    seed_mail(tenant, random.Random(f"{config.seed}:mail"), config)
    _seed_holds(tenant, rng)
    # The Teams side (bot registration, team, approvals channel) is part of the tenant from the start.
    from emulator.teams.state import teams_state

    teams_state(tenant)
    return tenant


# The registry file the service imports ----------------------------------------------------------------


def registry_rows(tenant: Tenant) -> list[dict[str, Any]]:
    return [
        {
            "id": c.id,
            "legal_name": c.legal_name,
            "domains": c.domains,
            "contacts": [{"name": p.name, "email": p.email, "phone": p.phone} for p in c.contacts],
            "products": c.products,
            "address": c.address,
            "phone": c.phone,
            "tax_code": c.tax_code,
            "service_status": c.service_status,
            "service_ended_at": c.service_ended_at.isoformat() if c.service_ended_at else None,
            "do_not_disclose": c.do_not_disclose,
            "marketing_opt_out": c.marketing_opt_out,
        }
        for c in tenant.customers
    ]


def write_registry(tenant: Tenant, directory: Path) -> dict[str, Path]:
    """Write customers.json and customers.csv (lists joined with ';'); returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = registry_rows(tenant)
    json_path = directory / "customers.json"
    json_path.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
    csv_path = directory / "customers.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["id"])
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    **row,
                    "domains": ";".join(row["domains"]),
                    "contacts": ";".join(f"{p['name']} <{p['email']}>" for p in row["contacts"]),
                    "products": ";".join(row["products"]),
                }
            )
    return {"json": json_path, "csv": csv_path}
