"""Text from file bytes and mail bodies, in memory only, within the policy's size limits.

Nothing here writes to disk or keeps the text: callers scan it and drop it (see Classifier.scan_content).
"""

import io
import unicodedata
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import IO

from pypdf import PdfReader

from app.policy.schemas import TextExtraction, TextFormat

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
# Password- or IRM-protected docx/xlsx files are an encrypted package inside an OLE compound file.
_COMPOUND_FILE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_DOCX_PARTS = ("word/document.xml", "word/footnotes.xml", "word/endnotes.xml", "word/comments.xml")
_EXTENSIONS: dict[str, TextFormat] = {
    ".docx": "docx",
    ".docm": "docx",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".pdf": "pdf",
    ".txt": "txt",
    ".csv": "txt",
    ".md": "txt",
    ".htm": "html",
    ".html": "html",
}
_CONTENT_TYPES: dict[str, TextFormat] = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/pdf": "pdf",
    "text/plain": "txt",
    "text/csv": "txt",
    "text/html": "html",
}


class ExtractionError(Exception):
    """The content cannot be read as text (too large, unsupported, corrupt or encrypted); `reason` is a code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True, slots=True)
class ExtractedText:
    text: str
    format: TextFormat
    truncated: bool


def detect_format(data: bytes, *, filename: str | None = None, content_type: str | None = None) -> TextFormat | None:
    if filename:
        by_extension = _EXTENSIONS.get(PurePosixPath(filename.lower()).suffix)
        if by_extension:
            return by_extension
    if content_type:
        by_type = _CONTENT_TYPES.get(content_type.split(";")[0].strip().lower())
        if by_type:
            return by_type
    if data.startswith(b"%PDF-"):
        return "pdf"
    return None


def extract_text(
    data: bytes, limits: TextExtraction, *, filename: str | None = None, content_type: str | None = None
) -> ExtractedText:
    if len(data) > limits.max_input_bytes:
        raise ExtractionError("too-large", f"{len(data)} bytes > {limits.max_input_bytes}")
    text_format = detect_format(data, filename=filename, content_type=content_type)
    if text_format is None or text_format not in limits.formats:
        raise ExtractionError("unsupported-format", text_format or "unknown")
    builder = _TextBuilder(limits.max_text_chars)
    if text_format == "docx":
        _docx(data, limits, builder)
    elif text_format == "xlsx":
        _xlsx(data, limits, builder)
    elif text_format == "pdf":
        _pdf(data, limits, builder)
    elif text_format == "html":
        _html(_decode(data), builder)
    else:
        builder.add(_decode(data))
    return ExtractedText(text=unicodedata.normalize("NFC", builder.text()), format=text_format, truncated=builder.full)


def html_to_text(html: str, max_chars: int) -> str:
    """Visible text of an HTML mail body (Graph returns bodies as HTML unless asked for text)."""
    builder = _TextBuilder(max_chars)
    _html(html, builder)
    return unicodedata.normalize("NFC", builder.text())


class _TextBuilder:
    """Collects text up to a limit; `full` tells the scan that the rest of the content was not read."""

    def __init__(self, max_chars: int) -> None:
        self._parts: list[str] = []
        self._remaining = max_chars
        self.full = False

    def add(self, text: str) -> None:
        if self.full or not text:
            return
        if len(text) > self._remaining:
            text = text[: self._remaining]
            self.full = True
        self._parts.append(text)
        self._remaining -= len(text)

    def text(self) -> str:
        return "".join(self._parts)


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Legacy Vietnamese Windows text; cp1258 maps every byte except a few, which are replaced.
        return data.decode("cp1258", errors="replace")


def _open_zip(data: bytes, limits: TextExtraction) -> zipfile.ZipFile:
    if data.startswith(_COMPOUND_FILE_MAGIC):
        raise ExtractionError("encrypted", "protected Office file")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as error:
        raise ExtractionError("corrupt", str(error)) from None
    if sum(info.file_size for info in archive.infolist()) > limits.max_uncompressed_bytes:
        raise ExtractionError("too-large", "uncompressed parts exceed max_uncompressed_bytes")
    return archive


def _read_part(archive: zipfile.ZipFile, name: str, limits: TextExtraction) -> IO[bytes]:
    # The declared sizes were checked, but a crafted entry can inflate past them: read at most the cap.
    try:
        with archive.open(name) as member:
            data = member.read(limits.max_uncompressed_bytes + 1)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as error:
        raise ExtractionError("corrupt", f"{name}: {error}") from None
    if len(data) > limits.max_uncompressed_bytes:
        raise ExtractionError("too-large", f"{name} inflates beyond max_uncompressed_bytes")
    return io.BytesIO(data)


def _end_elements(stream: IO[bytes], name: str) -> Iterator[ET.Element]:
    # The standard parser is safe on these parts: expat >= 2.4.1 (this interpreter ships 2.5) refuses
    # entity-expansion bombs, and ElementTree never fetches external entities or DTDs.
    try:
        for _, element in ET.iterparse(stream, events=("end",)):  # noqa: S314
            yield element
    except ET.ParseError as error:
        raise ExtractionError("corrupt", f"{name}: {error}") from None


def _docx(data: bytes, limits: TextExtraction, builder: _TextBuilder) -> None:
    with _open_zip(data, limits) as archive:
        names = set(archive.namelist())
        if "word/document.xml" not in names:
            raise ExtractionError("corrupt", "no word/document.xml")
        extra = sorted(name for name in names if name.startswith(("word/header", "word/footer")))
        for name in [part for part in _DOCX_PARTS if part in names] + extra:
            for element in _end_elements(_read_part(archive, name, limits), name):
                if element.tag == f"{_W}t":
                    builder.add(element.text or "")
                elif element.tag in (f"{_W}tab", f"{_W}br"):
                    builder.add(" ")
                elif element.tag == f"{_W}p":
                    builder.add("\n")
                    element.clear()
            if builder.full:
                return


def _xlsx(data: bytes, limits: TextExtraction, builder: _TextBuilder) -> None:
    with _open_zip(data, limits) as archive:
        names = archive.namelist()
        shared: list[str] = []
        if "xl/sharedStrings.xml" in names:
            for element in _end_elements(_read_part(archive, "xl/sharedStrings.xml", limits), "sharedStrings"):
                if element.tag == f"{_S}si":
                    shared.append("".join(text.text or "" for text in element.iter(f"{_S}t")))
                    element.clear()
        sheets = sorted(name for name in names if name.startswith("xl/worksheets/") and name.endswith(".xml"))
        if not sheets:
            raise ExtractionError("corrupt", "no worksheets")
        for name in sheets:
            for element in _end_elements(_read_part(archive, name, limits), name):
                if element.tag == f"{_S}c":
                    builder.add(_cell_text(element, shared) + "\t")
                    element.clear()
                elif element.tag == f"{_S}row":
                    builder.add("\n")
                    element.clear()
            if builder.full:
                return


def _cell_text(cell: ET.Element, shared: list[str]) -> str:
    cell_type = cell.get("t", "n")
    if cell_type == "inlineStr":
        return "".join(text.text or "" for text in cell.iter(f"{_S}t"))
    value = cell.find(f"{_S}v")
    if value is None or value.text is None:
        return ""
    if cell_type == "s":
        index = int(value.text) if value.text.isdigit() else -1
        return shared[index] if 0 <= index < len(shared) else ""
    # Booleans and error codes carry no identifiers; numbers and formula strings can.
    return value.text if cell_type in ("n", "str") else ""


def _pdf(data: bytes, limits: TextExtraction, builder: _TextBuilder) -> None:
    # pypdf raises many exception types on malformed input; any of them means "cannot read this file".
    try:
        reader = PdfReader(io.BytesIO(data))
        locked = reader.is_encrypted and not reader.decrypt("")
        if not locked:
            for index, page in enumerate(reader.pages):
                if index >= limits.max_pdf_pages:
                    builder.full = True
                    return
                builder.add(page.extract_text() + "\n")
                if builder.full:
                    return
    except Exception as error:
        raise ExtractionError("corrupt", type(error).__name__) from None
    if locked:
        raise ExtractionError("encrypted")


class _VisibleText(HTMLParser):
    _HIDDEN = frozenset({"script", "style", "head", "title"})
    _BREAKS = frozenset({"p", "br", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table"})

    def __init__(self, builder: _TextBuilder) -> None:
        super().__init__(convert_charrefs=True)
        self._builder = builder
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden_depth += 1
        elif tag in self._BREAKS:
            self._builder.add("\n")
        elif tag == "td":
            self._builder.add("\t")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN and self._hidden_depth:
            self._hidden_depth -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self._builder.add(data)


def _html(html: str, builder: _TextBuilder) -> None:
    parser = _VisibleText(builder)
    parser.feed(html)
    parser.close()
