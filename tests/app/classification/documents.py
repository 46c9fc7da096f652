"""Small, valid office documents and PDFs built in memory for the extraction tests."""

import io
import zipfile
from xml.sax.saxutils import escape

_W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_S_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def docx(*paragraphs: str, header: str | None = None) -> bytes:
    body = "".join(f"<w:p><w:r><w:t xml:space='preserve'>{escape(text)}</w:t></w:r></w:p>" for text in paragraphs)
    parts = {
        "[Content_Types].xml": "<Types xmlns='http://schemas.openxmlformats.org/package/2006/content-types'/>",
        "word/document.xml": f"<w:document xmlns:w='{_W_NS}'><w:body>{body}</w:body></w:document>",
    }
    if header is not None:
        parts["word/header1.xml"] = (
            f"<w:hdr xmlns:w='{_W_NS}'><w:p><w:r><w:t>{escape(header)}</w:t></w:r></w:p></w:hdr>"
        )
    return _zip(parts)


def xlsx(rows: list[list[str | int]]) -> bytes:
    """Strings go to the shared-string table (as Excel writes them); ints stay numeric cells."""
    shared: list[str] = []
    cells_xml = []
    for row_number, row in enumerate(rows, start=1):
        cells = []
        for value in row:
            if isinstance(value, int):
                cells.append(f"<c t='n'><v>{value}</v></c>")
            else:
                shared.append(value)
                cells.append(f"<c t='s'><v>{len(shared) - 1}</v></c>")
        cells_xml.append(f"<row r='{row_number}'>{''.join(cells)}</row>")
    strings = "".join(f"<si><t>{escape(text)}</t></si>" for text in shared)
    return _zip(
        {
            "[Content_Types].xml": "<Types xmlns='http://schemas.openxmlformats.org/package/2006/content-types'/>",
            "xl/sharedStrings.xml": f"<sst xmlns='{_S_NS}'>{strings}</sst>",
            "xl/worksheets/sheet1.xml": f"<worksheet xmlns='{_S_NS}'><sheetData>{''.join(cells_xml)}</sheetData>"
            "</worksheet>",
        }
    )


def pdf(*pages: str) -> bytes:
    """A PDF with one line of ASCII text per page (Helvetica), with a correct cross-reference table."""
    objects: list[bytes] = []
    page_ids = [4 + 2 * index for index in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{page_id} 0 R" for page_id in page_ids).encode()
    objects.append(b"<< /Type /Pages /Kids [" + kids + b"] /Count " + str(len(pages)).encode() + b" >>")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for page_id, text in zip(page_ids, pages, strict=True):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {page_id + 1} 0 R >>".encode()
        )
        objects.append(b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def _zip(parts: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return buffer.getvalue()
