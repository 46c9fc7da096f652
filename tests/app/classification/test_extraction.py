import io
import zipfile

import pytest

from app.classification import ExtractionError, extract_text, html_to_text
from app.policy import Policy, parse_policy
from tests.app.classification.documents import docx, pdf, xlsx

LIMITS = Policy().classification.text_extraction


def limits(**overrides: object):
    return LIMITS.model_copy(update=overrides)


class TestFormats:
    def test_docx_paragraphs_and_headers(self):
        data = docx("Hợp đồng số HĐ-2024/0001", "Mã số thuế: 0100047516", header="CÔNG TY TNHH MINH PHÁT")
        extracted = extract_text(data, LIMITS, filename="Hop dong.docx")
        assert extracted.format == "docx"
        assert "Mã số thuế: 0100047516\n" in extracted.text
        assert "CÔNG TY TNHH MINH PHÁT" in extracted.text
        assert not extracted.truncated

    def test_xlsx_shared_strings_and_numbers(self):
        data = xlsx([["Khách hàng", "SĐT"], ["Minh Phát", "0912 345 678"], [100047516, 42]])
        text = extract_text(data, LIMITS, filename="ds.xlsx").text
        assert text.splitlines() == ["Khách hàng\tSĐT\t", "Minh Phát\t0912 345 678\t", "100047516\t42\t"]

    def test_pdf_pages(self):
        text = extract_text(pdf("Tax code 0100047516", "CCCD 001087123456"), LIMITS, filename="scan.pdf").text
        assert "0100047516" in text
        assert "001087123456" in text

    def test_pdf_page_limit(self):
        extracted = extract_text(pdf("first 1", "second 2", "third 3"), limits(max_pdf_pages=2), filename="a.pdf")
        assert "second" in extracted.text
        assert "third" not in extracted.text
        assert extracted.truncated

    def test_format_from_content_type_and_magic(self):
        assert extract_text(pdf("x"), LIMITS).format == "pdf"
        assert extract_text(b"hello", LIMITS, content_type="text/plain; charset=utf-8").text == "hello"

    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            ("Mã số thuế".encode(), "Mã số thuế"),
            ("\ufeffMã số".encode(), "Mã số"),
            ("Mã số".encode("utf-16"), "Mã số"),
            ("Ma\u0303 s\u00f4\u0301".encode("cp1258"), "Mã số"),  # Windows-1258 writes tones as combining marks
        ],
    )
    def test_text_encodings(self, data, expected):
        assert extract_text(data, LIMITS, filename="a.txt").text == expected

    def test_html_mail_body(self):
        html = "<html><head><style>p{}</style></head><body><p>SĐT:&nbsp;0912 345 678</p><script>x=1</script></body>"
        assert html_to_text(html, 1000).strip() == "SĐT:\xa00912 345 678"


class TestLimitsAndDamage:
    def test_too_large_input_is_not_read(self):
        with pytest.raises(ExtractionError) as caught:
            extract_text(b"x" * 101, limits(max_input_bytes=100), filename="a.txt")
        assert caught.value.reason == "too-large"

    def test_text_is_truncated_at_the_character_limit(self):
        extracted = extract_text(b"a" * 50, limits(max_text_chars=10), filename="a.txt")
        assert (extracted.text, extracted.truncated) == ("a" * 10, True)

    def test_zip_bomb_is_refused(self):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("word/document.xml", "<a>" + " " * 2_000_000 + "</a>")
        assert len(buffer.getvalue()) < 10_000
        with pytest.raises(ExtractionError) as caught:
            extract_text(buffer.getvalue(), limits(max_uncompressed_bytes=1_000_000), filename="bomb.docx")
        assert caught.value.reason == "too-large"

    def test_entity_expansion_is_refused(self):
        bomb = (
            "<?xml version='1.0'?><!DOCTYPE l [<!ENTITY a 'aaaaaaaaaa'>"
            + "".join(f"<!ENTITY {chr(98 + i)} '{('&' + chr(97 + i) + ';') * 10}'>" for i in range(8))
            + "]><w:document xmlns:w='http://schemas.openxmlformats.org/wordprocessingml/2006/main'>"
            "<w:body><w:p><w:r><w:t>&i;</w:t></w:r></w:p></w:body></w:document>"
        )
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("word/document.xml", bomb)
        with pytest.raises(ExtractionError) as caught:
            extract_text(buffer.getvalue(), LIMITS, filename="laughs.docx")
        assert caught.value.reason == "corrupt"

    @pytest.mark.parametrize(
        ("data", "filename", "reason"),
        [
            (b"not a zip", "a.docx", "corrupt"),
            (b"%PDF-1.4 garbage", "a.pdf", "corrupt"),
            (docx("x")[:-30], "a.docx", "corrupt"),
            (b"PK\x05\x06" + b"\x00" * 18, "a.xlsx", "corrupt"),
            (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504, "protected.docx", "encrypted"),
            (b"\x00\x01binary", "a.exe", "unsupported-format"),
            (b"anything", None, "unsupported-format"),
        ],
    )
    def test_damaged_or_unknown_content(self, data, filename, reason):
        with pytest.raises(ExtractionError) as caught:
            extract_text(data, LIMITS, filename=filename)
        assert caught.value.reason == reason

    def test_formats_can_be_turned_off(self):
        policy = parse_policy("classification:\n  text_extraction:\n    formats: [txt]\n")
        with pytest.raises(ExtractionError, match="unsupported-format"):
            extract_text(pdf("x"), policy.classification.text_extraction, filename="a.pdf")
