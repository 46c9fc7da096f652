"""Reading an item's text for classification: in memory, size-capped, scanned and dropped in the same call.

Only findings (keyed hashes of identifiers) leave this module; a body or a file's bytes never outlive the call
that read them and are never logged.
"""

from dataclasses import dataclass

from msgraph.generated.users.item.messages.item.message_item_request_builder import MessageItemRequestBuilder
from pydantic import BaseModel, ConfigDict, Field

from app.classification import Classifier, ContentScan
from app.classification.extraction import detect_format, html_to_text
from connectors.base import ConnectorError, Forbidden, Locked, NotFound
from connectors.graph.connector import GraphConnector
from connectors.graph.errors import TooLarge
from connectors.graph.requests import configured, mail_request, mailbox_claims, prefer


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    content_type: str = Field(default="text", alias="contentType")
    content: str = ""


class _MessageBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    body: _Body = Field(default_factory=_Body)


@dataclass(frozen=True, slots=True)
class ScanResult:
    scan: ContentScan
    read: bool  # False: the content was not read (see scan.skipped)


class ContentReader:
    def __init__(self, connector: GraphConnector, classifier: Classifier) -> None:
        self._connector = connector
        self._classifier = classifier
        self._limits = classifier.policy.classification.text_extraction

    async def message(self, user_id: str, message_id: str) -> ScanResult:
        """Scan a message body (asked for as plain text; HTML is reduced to its visible text)."""
        if not self._limits.enabled:
            return ScanResult(ContentScan(findings=(), skipped="extraction-disabled"), read=False)
        # msgraph-sdk builds the request; the connector's transport sends it (budget, retries, immutable ids).
        # MailOperations has no body read of its own yet.
        builder = self._connector.transport.client.sdk.users.by_user_id(user_id).messages.by_message_id(message_id)
        query = MessageItemRequestBuilder.MessageItemRequestBuilderGetQueryParameters(select=["body"])
        request = mail_request(builder.to_get_request_information(configured(query)))
        prefer(request, 'outlook.body-content-type="text"')
        try:
            response = await self._connector.transport.send(request, claims=mailbox_claims(user_id))
        except (NotFound, Forbidden) as refused:
            return ScanResult(ContentScan(findings=(), skipped=_code(refused)), read=False)
        body = response.parse(_MessageBody).body
        if len(body.content.encode()) > self._limits.max_input_bytes:
            return ScanResult(ContentScan(findings=(), skipped="too-large"), read=False)
        text = body.content
        if body.content_type.lower() == "html":
            text = html_to_text(text, self._limits.max_text_chars)
        return ScanResult(ContentScan(findings=self._classifier.scan_text(text)), read=True)

    async def file(self, drive_id: str, item_id: str, *, name: str, mime_type: str | None) -> ScanResult:
        """Download (up to the policy's cap) and scan a file whose format the policy reads."""
        if not self._limits.enabled:
            return ScanResult(ContentScan(findings=(), skipped="extraction-disabled"), read=False)
        text_format = detect_format(b"", filename=name, content_type=mime_type)
        if text_format is None or text_format not in self._limits.formats:
            return ScanResult(ContentScan(findings=(), skipped="unsupported-format"), read=False)
        data = bytearray()
        try:
            async for chunk in self._connector.files.download(
                drive_id, item_id, max_bytes=self._limits.max_input_bytes
            ):
                data.extend(chunk)
        except TooLarge:
            return ScanResult(ContentScan(findings=(), skipped="too-large"), read=False)
        except (NotFound, Forbidden, Locked) as refused:
            return ScanResult(ContentScan(findings=(), skipped=_code(refused)), read=False)
        scan = self._classifier.scan_content(bytes(data), filename=name, content_type=mime_type)
        return ScanResult(scan, read=scan.skipped is None)


def _code(error: ConnectorError) -> str:
    if isinstance(error, NotFound):
        return "gone"
    if isinstance(error, Locked):
        return "locked"
    return "forbidden"
