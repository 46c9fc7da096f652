"""Outlook operations: folders, message delta, the mail label, delete/move/permanentDelete, sendMail.

Every request counts against its mailbox's budget and asks for immutable ids.

About the mail label: Graph has no API that applies a Purview sensitivity label to an existing message
app-only. Steward writes the label's metadata the way Office clients store it, in the `msip_labels`
internet header (a named MAPI property, `MSIP_Label_<guid>_Enabled=true; ...`), plus a visible category, and
reads both back to confirm. This makes the label visible to people and to Steward's own sync, and clients
that read the header show it; it does not encrypt, add markings, or run Purview's policy (no audit event in
Purview, no label-based DLP until the service re-evaluates the item). See the README.
"""

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress as SdkEmailAddress
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message as SdkMessage
from msgraph.generated.models.recipient import Recipient as SdkRecipient
from msgraph.generated.models.single_value_legacy_extended_property import SingleValueLegacyExtendedProperty
from msgraph.generated.users.item.mail_folders.item.messages.delta.delta_request_builder import DeltaRequestBuilder
from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import MessagesRequestBuilder
from msgraph.generated.users.item.mail_folders.mail_folders_request_builder import MailFoldersRequestBuilder
from msgraph.generated.users.item.messages.item.message_item_request_builder import MessageItemRequestBuilder
from msgraph.generated.users.item.messages.item.move.move_post_request_body import MovePostRequestBody
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody
from msgraph.graph_service_client import GraphServiceClient

from connectors.base import ConnectorError, Forbidden, NotFound
from connectors.graph.models import MSIP_LABELS_PROPERTY_ID, CollectionPage, MailFolder, Message
from connectors.graph.paging import Cursor, DeltaPage, iterate_delta
from connectors.graph.requests import configured, mail_request, mailbox_claims
from connectors.graph.transport import GraphTransport
from connectors.graph.writes import WriteResult, confirm_absent, write_once

DEFAULT_MESSAGE_FIELDS = (
    "id",
    "subject",
    "from",
    "toRecipients",
    "ccRecipients",
    "receivedDateTime",
    "sentDateTime",
    "conversationId",
    "parentFolderId",
    "internetMessageId",
    "categories",
    "hasAttachments",
)
# A named property in Steward's own namespace: lets a sendMail be found in Sent Items after an ambiguous failure.
SEND_ID_PROPERTY_ID = "String {5b6e7f3a-9c1d-4e2f-8a7b-3c4d5e6f7a8b} Name StewardSendId"
# What a repeated DELETE answers: 404 with default ids, 403 ErrorCannotDeleteObject with immutable ids.
ALREADY_DELETED_CODES = frozenset({"ErrorCannotDeleteObject", "ErrorItemNotFound"})


@dataclass(frozen=True, slots=True)
class MailLabel:
    label_id: str
    name: str | None
    category: str | None


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    to: Sequence[str]
    subject: str
    body: str
    body_is_html: bool = False
    save_to_sent_items: bool = True


def msip_labels_value(*, label_id: str, label_name: str, tenant_id: str, set_at: datetime) -> str:
    """The msip_labels header value MIP clients write for an email (concept-mip-metadata: one header, "; ")."""
    prefix = f"MSIP_Label_{label_id}_"
    pairs = (
        ("Enabled", "true"),
        ("SetDate", set_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("Method", "Privileged"),
        ("Name", label_name),
        ("SiteId", tenant_id),
        ("ContentBits", "0"),
    )
    return "; ".join(f"{prefix}{key}={value}" for key, value in pairs)


def parse_msip_labels(value: str) -> dict[str, dict[str, str]]:
    """label id -> its attributes, from an msip_labels header value."""
    labels: dict[str, dict[str, str]] = {}
    for pair in value.split(";"):
        key, _, attribute_value = pair.strip().partition("=")
        if not key.startswith("MSIP_Label_"):
            continue
        label_id, _, attribute = key.removeprefix("MSIP_Label_").rpartition("_")
        if label_id and attribute:
            labels.setdefault(label_id, {})[attribute] = attribute_value
    return labels


class MailOperations:
    def __init__(self, transport: GraphTransport, sdk: GraphServiceClient, *, label_category_prefix: str) -> None:
        self._transport = transport
        self._sdk = sdk
        self.label_category_prefix = label_category_prefix

    # Reading -----------------------------------------------------------------------------------------------

    async def mail_folders(self, user_id: str) -> list[MailFolder]:
        """Every folder of the mailbox, child folders included (folders are few; their ids are stable)."""
        folders: list[MailFolder] = []
        query = MailFoldersRequestBuilder.MailFoldersRequestBuilderGetQueryParameters(
            top=100, select=["id", "displayName", "parentFolderId", "childFolderCount", "totalItemCount"]
        )
        builder = self._sdk.users.by_user_id(user_id).mail_folders
        pending: list[RequestInformation] = [builder.to_get_request_information(configured(query))]
        while pending:
            request = mail_request(pending.pop())
            response = await self._transport.send(request, claims=mailbox_claims(user_id))
            page = response.parse(CollectionPage[MailFolder])
            folders.extend(page.value)
            if page.next_link:
                pending.append(self._transport.request_for_link(page.next_link, request))
            for folder in page.value:
                if folder.child_folder_count:
                    children = builder.by_mail_folder_id(folder.id).child_folders
                    pending.append(children.to_get_request_information(configured(query)))
        return folders

    def message_delta(
        self,
        user_id: str,
        folder_id: str,
        *,
        cursor: Cursor | None = None,
        select: Sequence[str] = DEFAULT_MESSAGE_FIELDS,
        page_size: int | None = 100,
    ) -> AsyncIterator[DeltaPage[Message]]:
        """Pages of message changes in one folder (delta is per folder); see paging.py for the cursor contract."""
        builder = self._sdk.users.by_user_id(user_id).mail_folders.by_mail_folder_id(folder_id).messages.delta

        def initial() -> RequestInformation:
            query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=list(select))
            return mail_request(builder.to_get_request_information(configured(query)), page_size)

        claims = mailbox_claims(user_id)
        return iterate_delta(self._transport, initial, Message, claims=lambda _request, _first: claims, cursor=cursor)

    async def get_message(self, user_id: str, message_id: str, *, select: Sequence[str] = ("id",)) -> Message:
        query = MessageItemRequestBuilder.MessageItemRequestBuilderGetQueryParameters(select=list(select))
        request = self._message(user_id, message_id).to_get_request_information(configured(query))
        response = await self._transport.send(mail_request(request), claims=mailbox_claims(user_id))
        return response.parse(Message)

    async def message_exists(self, user_id: str, message_id: str) -> bool:
        try:
            await self.get_message(user_id, message_id)
        except NotFound:
            return False
        return True

    def _message(self, user_id: str, message_id: str) -> MessageItemRequestBuilder:
        return self._sdk.users.by_user_id(user_id).messages.by_message_id(message_id)

    # The mail label ----------------------------------------------------------------------------------------

    async def _labelled_message(self, user_id: str, message_id: str) -> Message:
        query = MessageItemRequestBuilder.MessageItemRequestBuilderGetQueryParameters(
            select=["id", "categories"],
            expand=[f"singleValueExtendedProperties($filter=id eq '{MSIP_LABELS_PROPERTY_ID}')"],
        )
        request = self._message(user_id, message_id).to_get_request_information(configured(query))
        response = await self._transport.send(mail_request(request), claims=mailbox_claims(user_id))
        return response.parse(Message)

    def _label_of(self, message: Message) -> MailLabel | None:
        header = message.extended_property(MSIP_LABELS_PROPERTY_ID)
        if not header:
            return None
        enabled = [
            (label_id, attributes)
            for label_id, attributes in parse_msip_labels(header).items()
            if attributes.get("Enabled", "").lower() == "true"
        ]
        if not enabled:
            return None
        label_id, attributes = enabled[0]
        category = next((c for c in message.categories if c.startswith(self.label_category_prefix)), None)
        return MailLabel(label_id=label_id, name=attributes.get("Name"), category=category)

    async def read_label(self, user_id: str, message_id: str) -> MailLabel | None:
        return self._label_of(await self._labelled_message(user_id, message_id))

    async def write_label(
        self, user_id: str, message_id: str, *, label_id: str, label_name: str, tenant_id: str
    ) -> MailLabel:
        """Write the label header and its category (keeping the user's other categories), then confirm."""
        current = await self._labelled_message(user_id, message_id)
        category = f"{self.label_category_prefix}{label_name}"
        categories = [c for c in current.categories if not c.startswith(self.label_category_prefix)] + [category]
        header = msip_labels_value(
            label_id=label_id, label_name=label_name, tenant_id=tenant_id, set_at=self._transport.clock.now()
        )
        patch = SdkMessage(
            categories=categories,
            single_value_extended_properties=[
                SingleValueLegacyExtendedProperty(id=MSIP_LABELS_PROPERTY_ID, value=header)
            ],
        )
        request = self._message(user_id, message_id).to_patch_request_information(patch)
        # Setting the same header and categories twice leaves the same state, so a retry is harmless.
        await self._transport.send(mail_request(request), claims=mailbox_claims(user_id))
        confirmed = self._label_of(await self._labelled_message(user_id, message_id))
        if confirmed is None or confirmed.label_id.lower() != label_id.lower() or confirmed.category != category:
            raise ConnectorError(f"the label written to message {message_id} did not read back as written")
        return confirmed

    # Deleting and moving -----------------------------------------------------------------------------------

    async def delete(self, user_id: str, message_id: str, *, etag: str | None = None) -> WriteResult:
        """Soft delete (Recoverable Items). A repeat answers 404 or 403, so absence is confirmed by a read."""
        request = self._message(user_id, message_id).to_delete_request_information()
        if etag:
            request.headers["If-Match"] = etag
        try:
            response = await self._transport.send(mail_request(request), claims=mailbox_claims(user_id))
        except (NotFound, Forbidden) as error:
            if isinstance(error, Forbidden) and error.code not in ALREADY_DELETED_CODES:
                raise
            return await confirm_absent(
                lambda: self._absent(user_id, message_id), error, what=f"delete message {message_id}"
            )
        return WriteResult("applied", client_request_id=response.client_request_id, request_id=response.request_id)

    async def move(self, user_id: str, message_id: str, *, destination_folder: str) -> Message:
        """Move to a folder (id or well-known name); returns the moved message (same id with immutable ids)."""
        body = MovePostRequestBody(destination_id=destination_folder)
        request = self._message(user_id, message_id).move.to_post_request_information(body)

        async def moved() -> bool:
            message = await self.get_message(user_id, message_id, select=("id", "parentFolderId"))
            return message.parent_folder_id == await self._folder_id(user_id, destination_folder)

        result = await write_once(
            lambda: self._transport.send(mail_request(request), claims=mailbox_claims(user_id), idempotent=False),
            moved,
            what=f"move message {message_id}",
        )
        if result.response is not None:
            return result.response.parse(Message)
        return await self.get_message(user_id, message_id, select=DEFAULT_MESSAGE_FIELDS)

    async def permanent_delete(self, user_id: str, message_id: str) -> WriteResult:
        """Purge the message (not restorable by the user; kept by Exchange while the mailbox is on hold)."""
        request = self._message(user_id, message_id).permanent_delete.to_post_request_information()
        try:
            return await write_once(
                lambda: self._transport.send(mail_request(request), claims=mailbox_claims(user_id), idempotent=False),
                lambda: self._absent(user_id, message_id),
                what=f"permanentDelete message {message_id}",
            )
        except NotFound as error:
            return await confirm_absent(
                lambda: self._absent(user_id, message_id), error, what=f"permanentDelete message {message_id}"
            )

    async def _absent(self, user_id: str, message_id: str) -> bool:
        return not await self.message_exists(user_id, message_id)

    async def _folder_id(self, user_id: str, folder: str) -> str:
        request = (
            self._sdk.users.by_user_id(user_id).mail_folders.by_mail_folder_id(folder).to_get_request_information()
        )
        response = await self._transport.send(mail_request(request), claims=mailbox_claims(user_id))
        return response.parse(MailFolder).id

    # Sending -----------------------------------------------------------------------------------------------

    async def send_mail(self, user_id: str, mail: OutgoingMail) -> WriteResult:
        """Send as `user_id`. Tagged with a send id so an ambiguous failure is settled by looking in Sent Items."""
        send_id = str(uuid.uuid4())
        message = SdkMessage(
            subject=mail.subject,
            body=ItemBody(content_type=BodyType.Html if mail.body_is_html else BodyType.Text, content=mail.body),
            to_recipients=[SdkRecipient(email_address=SdkEmailAddress(address=address)) for address in mail.to],
            single_value_extended_properties=[SingleValueLegacyExtendedProperty(id=SEND_ID_PROPERTY_ID, value=send_id)],
        )
        body = SendMailPostRequestBody(message=message, save_to_sent_items=mail.save_to_sent_items)
        request = self._sdk.users.by_user_id(user_id).send_mail.to_post_request_information(body)

        async def sent() -> bool:
            if not mail.save_to_sent_items:
                raise ConnectorError("the message was not saved to Sent Items, so whether it left is unknown")
            return await self._sent_item_exists(user_id, send_id)

        return await write_once(
            lambda: self._transport.send(mail_request(request), claims=mailbox_claims(user_id), idempotent=False),
            sent,
            what="sendMail",
        )

    async def _sent_item_exists(self, user_id: str, send_id: str) -> bool:
        query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
            select=["id"],
            top=1,
            filter=(
                f"singleValueExtendedProperties/any(ep: ep/id eq '{SEND_ID_PROPERTY_ID}' and ep/value eq '{send_id}')"
            ),
        )
        folder = self._sdk.users.by_user_id(user_id).mail_folders.by_mail_folder_id("sentitems").messages
        request = folder.to_get_request_information(configured(query))
        response = await self._transport.send(mail_request(request), claims=mailbox_claims(user_id))
        return bool(response.parse(CollectionPage[Message]).value)
