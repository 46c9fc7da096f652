"""File bytes generated on demand, deterministically from the tenant seed and the item.

Nothing is stored per seeded item: the text comes from the item's template, its customer and the identifiers
the seed recorded as ground truth, and is written as a real .docx / .xlsx (minimal Office Open XML packages),
.pdf (one page, uncompressed text stream) or .txt. Each file is padded to the size the item declares, so the
`size` Graph reports is the number of bytes a download returns. Documents also carry decoys: tax codes with a
wrong check digit and citizen ids with an unassigned province code, which a scanner must not report.
"""

from __future__ import annotations

import io
import random
import re
import unicodedata
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from emulator.files.store import CustomerIdentifiers, DriveItem, extension_of
from emulator.seed import fake_cccd, fake_mst

if TYPE_CHECKING:
    from emulator.state import Customer, Tenant

COMPANY_VI = "Công ty TNHH Giải pháp Đám mây VN Reseller"
COMPANY_EN = "VN Reseller Cloud Solutions Co., Ltd."


@dataclass(frozen=True, slots=True)
class Template:
    key: str
    extension: str
    title_vi: str
    title_en: str
    # Which of the customer's identifiers the document holds (k varies them across a customer's files).
    picks: Callable[[CustomerIdentifiers, int], tuple[str, ...]]


def _pick(values: tuple[str, ...], k: int) -> str:
    return values[k % len(values)]


CUSTOMER_TEMPLATES: tuple[Template, ...] = (
    Template(
        "contract",
        "docx",
        "Hợp đồng cung cấp dịch vụ",
        "Service agreement",
        lambda ids, k: (ids.tax_code, _pick(ids.citizen_ids, k), _pick(ids.phones, k), _pick(ids.contracts, k)),
    ),
    Template("quote", "xlsx", "Báo giá", "Quotation", lambda ids, k: (ids.tax_code, _pick(ids.phones, k))),
    Template(
        "acceptance",
        "pdf",
        "Biên bản nghiệm thu",
        "Acceptance record",
        lambda ids, k: (ids.tax_code, _pick(ids.contracts, k)),
    ),
    Template(
        "contacts",
        "xlsx",
        "Danh sách liên hệ",
        "Contact list",
        lambda ids, k: (*ids.phones[:-1], *ids.citizen_ids),
    ),
    Template("notes", "txt", "Ghi chú cuộc họp", "Meeting notes", lambda ids, k: (_pick(ids.phones, k),)),
    Template(
        "invoice",
        "xlsx",
        "Đề nghị xuất hóa đơn",
        "Invoice request",
        lambda ids, k: (ids.tax_code, _pick(ids.contracts, k)),
    ),
    Template(
        "signed",
        "pdf",
        "Hợp đồng đã ký",
        "Signed agreement",
        lambda ids, k: (ids.tax_code, _pick(ids.citizen_ids, k), _pick(ids.contracts, k)),
    ),
    # Customer data with no identifier at all: only the company's name and plans.
    Template("plan", "docx", "Kế hoạch triển khai", "Deployment plan", lambda ids, k: ()),
    Template("support", "txt", "Yêu cầu hỗ trợ", "Support request", lambda ids, k: (_pick(ids.phones, k),)),
)
INTERNAL_TEMPLATES: tuple[Template, ...] = (
    Template("policy", "docx", "Quy định bảo mật thông tin", "Information security policy", lambda ids, k: ()),
    Template("pricelist", "xlsx", "Bảng giá sản phẩm", "Price list", lambda ids, k: ()),
    Template("training", "pdf", "Tài liệu đào tạo", "Training material", lambda ids, k: ()),
    Template("internal_notes", "txt", "Ghi chú nội bộ", "Internal notes", lambda ids, k: ()),
    Template("contract_template", "docx", "Mẫu hợp đồng", "Contract template", lambda ids, k: ()),
)
# An internal report that names several customers with their tax codes (customer data of each of them).
REVENUE_REPORT = Template("revenue", "xlsx", "Báo cáo doanh thu", "Revenue report", lambda ids, k: (ids.tax_code,))
TEMPLATES: tuple[Template, ...] = (*CUSTOMER_TEMPLATES, *INTERNAL_TEMPLATES, REVENUE_REPORT)
TEMPLATE_INDEX = {template.key: index for index, template in enumerate(TEMPLATES)}

# Declared sizes: the padding that makes a file match them must fit (a zip comment holds at most 65,535 bytes).
SIZE_RANGES = {"docx": (14_000, 60_000), "xlsx": (12_000, 60_000), "pdf": (9_000, 160_000), "txt": (3_500, 9_000)}

_MST = re.compile(r"^\d{10}(-\d{3})?$")
_CCCD = re.compile(r"^\d{12}$")
_PHONE = re.compile(r"^(\+84|0)[\d ]+$")


def declared_size(rng: random.Random, extension: str) -> int:
    low, high = SIZE_RANGES.get(extension, (3_500, 9_000))
    return rng.randrange(low, high)


def classify(identifiers: tuple[str, ...]) -> dict[str, list[str]]:
    kinds: dict[str, list[str]] = {"mst": [], "cccd": [], "phone": [], "contract": []}
    for value in identifiers:
        if _CCCD.match(value):
            kinds["cccd"].append(value)
        elif _MST.match(value):
            kinds["mst"].append(value)
        elif _PHONE.match(value):
            kinds["phone"].append(value)
        else:
            kinds["contract"].append(value)
    return kinds


# Text ----------------------------------------------------------------------------------------------------


def document_lines(tenant: Tenant, item: DriveItem) -> tuple[str, list[str]]:
    """The document's title and lines, the same on every call for the same item and version."""
    template = TEMPLATES[item.template]
    rng = random.Random(f"{tenant.seed}:{item.id}")
    customers = [c for c in (tenant.customer(cid) for cid in item.truth_customers) if c is not None]
    english = bool(customers) and all(c.language == "en" for c in customers)
    title = template.title_en if english else template.title_vi
    kinds = classify(item.truth_identifiers)
    decoy_mst = fake_mst(rng, valid=False)
    decoy_cccd = fake_cccd(rng, valid=False)
    if template.key == "revenue":
        lines = _revenue_lines(customers, kinds["mst"], rng)
    elif customers:
        lines = _customer_lines(template.key, customers[0], kinds, rng, english, tenant.files.company_tax_code)
    else:
        lines = _internal_lines(template.key, rng)
    reference = "Internal reference" if english else "Mã tham chiếu nội bộ"
    archive = "Archive file no." if english else "Số hồ sơ lưu trữ"
    lines += [f"{reference}: {decoy_mst}", f"{archive}: {decoy_cccd}"]
    if item.version > 1:
        lines.append(f"Revision {item.version}" if english else f"Phiên bản {item.version}")
    return title, lines


def _customer_lines(
    key: str, customer: Customer, kinds: dict[str, list[str]], rng: random.Random, english: bool, company_mst: str
) -> list[str]:
    contacts = customer.contacts
    contact = contacts[rng.randrange(len(contacts))]
    products = ", ".join(customer.products)
    amount = f"{rng.randrange(12, 900) * 1_000_000:,}".replace(",", ".")
    lines: list[str] = []
    if english:
        lines.append(f"Customer: {customer.legal_name}")
        lines.append(f"Address: {customer.address}")
        lines += [f"Tax code (MST): {mst}" for mst in kinds["mst"]]
        lines += [f"Agreement no.: {number}" for number in kinds["contract"]]
        lines += [f"Representative ID (CCCD): {cccd}" for cccd in kinds["cccd"]]
        lines += [f"Contact phone: {phone}" for phone in kinds["phone"]]
        lines.append(f"Contact person: {contact.name} <{contact.email}>")
        lines.append(f"Subscriptions: {products}")
        if key in ("contract", "signed"):
            lines.append(f"Provider: {COMPANY_EN}, tax code {company_mst}")
            lines.append(f"Contract value: {amount} VND excluding VAT")
        elif key in ("quote", "invoice"):
            lines.append("Item | Quantity | Unit price (VND)")
            lines += [f"{p} | {rng.randrange(5, 200)} | {rng.randrange(50, 900) * 1000:,}" for p in customer.products]
        else:
            lines.append("Next steps: confirm licence counts and the go-live date with the customer.")
        return lines
    lines.append(f"Khách hàng: {customer.legal_name}")
    lines.append(f"Địa chỉ: {customer.address}")
    lines += [f"Mã số thuế: {mst}" for mst in kinds["mst"]]
    lines += [f"Số hợp đồng: {number}" for number in kinds["contract"]]
    lines += [f"Người đại diện CCCD số: {cccd}" for cccd in kinds["cccd"]]
    lines += [f"Điện thoại liên hệ: {phone}" for phone in kinds["phone"]]
    lines.append(f"Người liên hệ: {contact.name} <{contact.email}>")
    lines.append(f"Dịch vụ sử dụng: {products}")
    if key in ("contract", "signed"):
        lines.append("Căn cứ Bộ luật Dân sự số 91/2015/QH13 và nhu cầu của hai bên.")
        lines.append(f"Bên cung cấp: {COMPANY_VI}, mã số thuế {company_mst}")
        lines.append(f"Giá trị hợp đồng: {amount} VNĐ (chưa gồm VAT)")
    elif key in ("quote", "invoice"):
        lines.append("Sản phẩm | Số lượng | Đơn giá (VNĐ)")
        lines += [f"{p} | {rng.randrange(5, 200)} | {rng.randrange(50, 900) * 1000:,}" for p in customer.products]
    else:
        lines.append("Việc tiếp theo: xác nhận số lượng giấy phép và ngày triển khai với khách hàng.")
    return lines


def _internal_lines(key: str, rng: random.Random) -> list[str]:
    if key == "policy":
        return [
            "Phạm vi: toàn bộ nhân viên và cộng tác viên.",
            "Không chia sẻ dữ liệu khách hàng cho bên thứ ba khi chưa có đồng ý bằng văn bản.",
            "Ví dụ định dạng mã số thuế (không có thật): 0100000000",
            "Tài liệu chứa dữ liệu khách hàng phải gắn nhãn Confidential.",
        ]
    if key == "pricelist":
        return ["Sản phẩm | Giá niêm yết (VNĐ/tháng)"] + [
            f"Gói {n} | {rng.randrange(30, 900) * 1000:,}" for n in ("Basic", "Standard", "Premium", "E3", "Copilot")
        ]
    if key == "training":
        return [
            "Buổi 1: Quản trị Microsoft 365 cho doanh nghiệp nhỏ.",
            "Buổi 2: Bảo mật danh tính và xác thực đa yếu tố.",
            "Buổi 3: Quy trình hỗ trợ khách hàng và thời hạn phản hồi.",
        ]
    if key == "contract_template":
        return [
            "Số: ....../....../HĐDV-VNR",
            "BÊN A: ..................................................",
            "Mã số thuế: .................   CCCD người đại diện: .................",
            f"BÊN B: {COMPANY_VI}",
        ]
    return [
        f"Họp giao ban tuần {rng.randrange(1, 53)}: rà soát ticket tồn đọng.",
        "Cập nhật quy trình gia hạn giấy phép cho quý tới.",
    ]


def _revenue_lines(customers: list[Customer], tax_codes: list[str], rng: random.Random) -> list[str]:
    lines = ["Khách hàng | Mã số thuế | Doanh thu (VNĐ)"]
    for customer, tax_code in zip(customers, tax_codes, strict=False):
        lines.append(f"{customer.legal_name} | {tax_code} | {rng.randrange(50, 5000) * 1_000_000:,}")
    return lines


# Writers -------------------------------------------------------------------------------------------------


def content_bytes(tenant: Tenant, item: DriveItem) -> bytes:
    """What a download of the item returns (files only)."""
    uploaded = tenant.files.uploaded.get(item.id)
    if uploaded is not None:
        # Written at run time: exactly that text (its size follows the bytes, see service.store_text).
        lines = uploaded.splitlines() or [""]
        return render_document(tenant, item, lines[0], lines[1:], size=None)
    if item.locked == "fileDoubleKeyEncrypted":
        # Double-key encrypted: opaque ciphertext to anyone without the customer-held key.
        return random.Random(f"{tenant.seed}:{item.id}:dke").randbytes(item.size)
    title, lines = document_lines(tenant, item)
    return render_document(tenant, item, title, lines, size=item.size)


def render_document(tenant: Tenant, item: DriveItem, title: str, lines: list[str], *, size: int | None) -> bytes:
    extension = extension_of(item.name)
    author = tenant.users.get(item.created_by)
    author_name = author.display_name if author else "SharePoint App"
    label_properties = _label_properties(tenant, item)
    if extension == "docx":
        data = docx_bytes(title, lines, author_name, item.created, item.modified, label_properties)
        return _pad_zip(data, size)
    if extension == "xlsx":
        data = xlsx_bytes(title, lines, author_name, item.created, item.modified, label_properties)
        return _pad_zip(data, size)
    if extension == "pdf":
        return pdf_bytes(title, lines, size)
    return _pad_text(("\n".join([title, "", *lines]) + "\n").encode("utf-8"), size)


def _label_properties(tenant: Tenant, item: DriveItem) -> dict[str, str]:
    """The MSIP_Label_* metadata Office writes into a labelled document's custom properties."""
    assignment = item.label
    if assignment is None:
        return {}
    label = next((lb for lb in tenant.labels if lb.id == assignment.label_id), None)
    prefix = f"MSIP_Label_{assignment.label_id}"
    return {
        f"{prefix}_Enabled": "true",
        f"{prefix}_SetDate": assignment.assigned_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        f"{prefix}_Method": "Privileged" if assignment.method == "privileged" or assignment.manual else "Standard",
        f"{prefix}_Name": label.name if label else "",
        f"{prefix}_SiteId": tenant.tenant_id,
        f"{prefix}_ActionId": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{item.id}:{assignment.assigned_at}")),
        f"{prefix}_ContentBits": "0",
    }


_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_CUSTOM_FMTID = "{D5CDD505-2E9C-101B-9397-08002B2CF9AE}"
_OFFICE_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_CORE_TYPE = "application/vnd.openxmlformats-package.core-properties+xml"
_CUSTOM_TYPE = "application/vnd.openxmlformats-officedocument.custom-properties+xml"


def _override(part: str, content_type: str) -> str:
    return f'<Override PartName="{part}" ContentType="{content_type}"/>'


def _relationship(rel_id: str, rel_type: str, target: str) -> str:
    return f'<Relationship Id="{rel_id}" Type="{rel_type}" Target="{target}"/>'


def _zip_entries(entries: list[tuple[str, str]], stamp: datetime) -> bytes:
    buffer = io.BytesIO()
    date_time = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in entries:
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("utf-8"))
    return buffer.getvalue()


def _package_parts(
    main_part: str,
    main_type: str,
    title: str,
    author: str,
    created: datetime,
    modified: datetime,
    label: dict[str, str],
) -> tuple[str, str, list[tuple[str, str]]]:
    """[Content_Types].xml, _rels/.rels and the docProps parts shared by .docx and .xlsx."""
    overrides = [_override(f"/{main_part}", main_type), _override("/docProps/core.xml", _CORE_TYPE)]
    relationships = [
        _relationship("rId1", f"{_OFFICE_REL}/officeDocument", main_part),
        _relationship("rId2", f"{_PACKAGE_REL}/metadata/core-properties", "docProps/core.xml"),
    ]
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    parts = [
        (
            "docProps/core.xml",
            _XML_DECL
            + '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f"<dc:title>{escape(title)}</dc:title><dc:creator>{escape(author)}</dc:creator>"
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{created.strftime(stamp)}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{modified.strftime(stamp)}</dcterms:modified>'
            "</cp:coreProperties>",
        )
    ]
    if label:
        overrides.append(_override("/docProps/custom.xml", _CUSTOM_TYPE))
        relationships.append(_relationship("rId3", f"{_OFFICE_REL}/custom-properties", "docProps/custom.xml"))
        properties = "".join(
            f'<property fmtid="{_CUSTOM_FMTID}" pid="{pid}" name="{escape(name)}">'
            f"<vt:lpwstr>{escape(value)}</vt:lpwstr></property>"
            for pid, (name, value) in enumerate(label.items(), start=2)
        )
        parts.append(
            (
                "docProps/custom.xml",
                _XML_DECL
                + '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" '
                'xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
                f"{properties}</Properties>",
            )
        )
    content_types = (
        _XML_DECL + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>' + "".join(overrides) + "</Types>"
    )
    rels = (
        _XML_DECL
        + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + "".join(relationships)
        + "</Relationships>"
    )
    return content_types, rels, parts


def docx_bytes(
    title: str, lines: list[str], author: str, created: datetime, modified: datetime, label: dict[str, str]
) -> bytes:
    content_types, rels, parts = _package_parts(
        "word/document.xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
        title,
        author,
        created,
        modified,
        label,
    )
    paragraphs = "".join(
        f'<w:p><w:r><w:t xml:space="preserve">{escape(line)}</w:t></w:r></w:p>' for line in [title, *lines]
    )
    document = (
        _XML_DECL + '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{paragraphs}<w:sectPr/></w:body></w:document>"
    )
    entries = [("[Content_Types].xml", content_types), ("_rels/.rels", rels), ("word/document.xml", document)]
    return _zip_entries(entries + parts, modified)


def _column(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        name = chr(65 + remainder) + name
    return name


def xlsx_bytes(
    title: str, lines: list[str], author: str, created: datetime, modified: datetime, label: dict[str, str]
) -> bytes:
    """One worksheet; each line is a row and " | " separates its cells (inline strings keep leading zeros)."""
    content_types, rels, parts = _package_parts(
        "xl/workbook.xml",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
        title,
        author,
        created,
        modified,
        label,
    )
    content_types = content_types.replace(
        "</Types>",
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
    )
    rows = []
    for row_number, line in enumerate([title, *lines], start=1):
        cells = "".join(
            f'<c r="{_column(col)}{row_number}" t="inlineStr"><is><t>{escape(value.strip())}</t></is></c>'
            for col, value in enumerate(line.split(" | "))
        )
        rows.append(f'<row r="{row_number}">{cells}</row>')
    sheet = (
        _XML_DECL + '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"<sheetData>{''.join(rows)}</sheetData></worksheet>"
    )
    workbook = (
        _XML_DECL + '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    workbook_rels = (
        _XML_DECL + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
        'Target="worksheets/sheet1.xml"/></Relationships>'
    )
    entries = [
        ("[Content_Types].xml", content_types),
        ("_rels/.rels", rels),
        ("xl/workbook.xml", workbook),
        ("xl/_rels/workbook.xml.rels", workbook_rels),
        ("xl/worksheets/sheet1.xml", sheet),
    ]
    return _zip_entries(entries + parts, modified)


def ascii_fold(text: str) -> str:
    """The base-14 PDF fonts have no Vietnamese glyphs: write the text without diacritics."""
    folded = unicodedata.normalize("NFKD", text.replace("Đ", "D").replace("đ", "d"))
    return folded.encode("ascii", "ignore").decode("ascii")


def _pdf_string(text: str) -> str:
    return "(" + ascii_fold(text).replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def pdf_bytes(title: str, lines: list[str], size: int | None = None) -> bytes:
    """A one-page PDF 1.4 whose text stream is uncompressed, padded with comment lines to `size` bytes."""
    text_ops = ["BT", "/F1 11 Tf", "14 TL", "50 800 Td", f"{_pdf_string(title)} Tj", "T*"]
    text_ops += [f"{_pdf_string(line)} Tj T*" for line in lines]
    text_ops.append("ET")
    stream = "\n".join(text_ops).encode("ascii")
    bodies = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Title " + _pdf_string(title).encode("ascii") + b" /Producer (Steward emulator) >>",
    ]

    def assemble(padding: bytes) -> bytes:
        out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + padding)
        offsets = []
        for number, body in enumerate(bodies, start=1):
            offsets.append(len(out))
            out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
        xref_at = len(out)
        out += f"xref\n0 {len(bodies) + 1}\n0000000000 65535 f \n".encode()
        out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
        out += f"trailer\n<< /Size {len(bodies) + 1} /Root 1 0 R /Info 6 0 R >>\nstartxref\n{xref_at}\n%%EOF\n".encode()
        return bytes(out)

    out = assemble(b"")
    if size is None or len(out) >= size:
        return out
    # Comment lines between the header and the first object keep the file valid at any length. The startxref
    # number grows with the padding, so settle the padding length in a couple of rounds.
    padding_length = size - len(out)
    for _ in range(3):
        out = assemble(_comment_lines(padding_length))
        if len(out) == size:
            break
        padding_length -= len(out) - size
    return out


def _comment_lines(length: int) -> bytes:
    line = b"%" + b" " * 78 + b"\n"
    padding = line * (length // len(line))
    remainder = length - len(padding)
    if remainder >= 2:
        padding += b"%" + b" " * (remainder - 2) + b"\n"
    elif remainder == 1:
        padding += b"\n"
    return padding


def _pad_zip(data: bytes, size: int | None) -> bytes:
    """Grow a zip to `size` bytes through its archive comment (the last field of the end record)."""
    missing = (size or 0) - len(data)
    if missing <= 0 or missing > 65_535:
        return data
    return data[:-2] + missing.to_bytes(2, "little") + b" " * missing


def _pad_text(data: bytes, size: int | None) -> bytes:
    missing = (size or 0) - len(data)
    if missing <= 0:
        return data
    filler = (b"-" * 71 + b"\n") * (missing // 72 + 1)
    return data + filler[:missing]
