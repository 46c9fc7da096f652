"""The Graph reads and writes execution needs, over the connector (which owns retries, budgets and errors).

One read the connector does not offer yet is the id of a mailbox's Recoverable Items "Deletions" folder: it
tells a message we already soft-deleted (it sits there) from one that changed since approval, so a restarted
execution never sends a second DELETE, which would purge the message before its grace window.
"""

from dataclasses import dataclass

from connectors.base import Forbidden, NotFound, PreconditionFailed
from connectors.graph.client import GraphClient
from connectors.graph.connector import GraphConnector
from connectors.graph.mail import ALREADY_DELETED_CODES
from connectors.graph.models import MailFolder
from connectors.graph.requests import mail_request, mailbox_claims

DELETIONS_FOLDER = "recoverableitemsdeletions"
MESSAGE_FIELDS = ("id", "changeKey", "parentFolderId")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one item at one stage."""

    state: str  # an ItemState value
    request_id: str | None = None
    detail: str | None = None


class GraphDisposal:
    def __init__(self, connector: GraphConnector, client: GraphClient) -> None:
        self._connector = connector
        self._sdk = client.sdk
        self._deletions: dict[str, str] = {}

    async def _deletions_folder(self, user_id: str) -> str:
        if user_id not in self._deletions:
            builder = self._sdk.users.by_user_id(user_id).mail_folders.by_mail_folder_id(DELETIONS_FOLDER)
            response = await self._connector.transport.send(
                mail_request(builder.to_get_request_information()), claims=mailbox_claims(user_id)
            )
            self._deletions[user_id] = response.parse(MailFolder).id
        return self._deletions[user_id]

    async def soft_delete_message(self, user_id: str, message_id: str, approved_etag: str | None) -> Outcome:
        """Move to Recoverable Items, only if the message is still what was approved."""
        try:
            current = await self._connector.mail.get_message(user_id, message_id, select=MESSAGE_FIELDS)
        except NotFound:
            return Outcome("already_absent", detail="not found before deleting")
        if current.parent_folder_id == await self._deletions_folder(user_id):
            return Outcome("soft_deleted", detail="already in Recoverable Items (settled by read)")
        # Outlook does not document If-Match on DELETE, so the approved version is compared here as well.
        if approved_etag and current.etag and current.etag != approved_etag:
            return Outcome("drifted", detail="the message changed since approval")
        try:
            result = await self._connector.mail.delete(user_id, message_id, etag=approved_etag)
        except PreconditionFailed as error:
            return Outcome("drifted", request_id=error.request_id, detail="If-Match refused: changed since approval")
        except Forbidden as error:
            return Outcome("failed", request_id=error.request_id, detail=f"refused: {error.code or error.message}")
        if result.status == "already_applied":
            return Outcome("already_absent", request_id=result.request_id, detail="absent (confirmed by a read)")
        return Outcome("soft_deleted", request_id=result.request_id)

    async def soft_delete_file(
        self, drive_id: str, item_id: str, approved_etag: str | None, *, resumed: bool
    ) -> Outcome:
        """To the recycle bin with If-Match on the approved eTag (412: the file changed, it stays)."""
        try:
            result = await self._connector.files.delete(drive_id, item_id, etag=approved_etag)
        except PreconditionFailed as error:
            return Outcome("drifted", request_id=error.request_id, detail="If-Match refused: changed since approval")
        except Forbidden as error:
            # SharePoint refuses deletes that a retention label or record forbids: retention wins, never retried.
            return Outcome("blocked_by_retention", request_id=error.request_id, detail=error.message[:500])
        if result.status == "already_applied":
            if resumed:
                return Outcome(
                    "soft_deleted", request_id=result.request_id, detail="in the recycle bin (settled by read)"
                )
            return Outcome("already_absent", request_id=result.request_id, detail="absent (confirmed by a read)")
        return Outcome("soft_deleted", request_id=result.request_id)

    async def purge_message(self, user_id: str, message_id: str) -> Outcome:
        try:
            result = await self._connector.mail.permanent_delete(user_id, message_id)
        except Forbidden as error:
            if error.code in ALREADY_DELETED_CODES:
                return Outcome("purged", request_id=error.request_id, detail="already purged")
            return Outcome("failed", request_id=error.request_id, detail=f"refused: {error.code or error.message}")
        detail = "absent (confirmed by a read)" if result.status == "already_applied" else None
        return Outcome("purged", request_id=result.request_id, detail=detail)

    async def file_still_deleted(self, drive_id: str, item_id: str) -> bool:
        """A soft-deleted file must still be gone when its stage closes (someone may have restored it)."""
        return not await self._connector.files.item_exists(drive_id, item_id)
