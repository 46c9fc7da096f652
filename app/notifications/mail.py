"""Sending customer notices through Graph sendMail from the configured mailbox."""

from app.notifications.relay import DeliveryError
from connectors.base import ConnectorError
from connectors.graph.connector import GraphConnector
from connectors.graph.mail import OutgoingMail


class GraphMailer:
    def __init__(self, connector: GraphConnector, mailbox: str) -> None:
        self._connector = connector
        self._mailbox = mailbox

    async def send(self, to: list[str], subject: str, body: str) -> str | None:
        try:
            result = await self._connector.mail.send_mail(
                self._mailbox, OutgoingMail(to=to, subject=subject, body=body)
            )
        except ConnectorError as exc:
            # sendMail is never replayed blindly (the connector settles ambiguity by looking in Sent Items).
            raise DeliveryError(f"sendMail failed: {exc}") from None
        return result.request_id
