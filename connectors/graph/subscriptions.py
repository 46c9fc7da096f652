"""Change-notification subscriptions: create, renew, delete, list.

Creating is not idempotent (each POST makes a new subscription, and duplicates double every notification), so
an ambiguous failure is settled by listing our subscriptions and looking for the one we asked for.
Outlook subscriptions are created with Prefer: IdType="ImmutableId", the only time that preference counts.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from msgraph.generated.models.subscription import Subscription as SdkSubscription
from msgraph.graph_service_client import GraphServiceClient

from connectors.base import NotFound
from connectors.graph.models import CollectionPage, Subscription
from connectors.graph.requests import mail_request, tenant_claims
from connectors.graph.transport import GraphTransport
from connectors.graph.writes import WriteResult, confirm_absent, write_once

# Graph rounds and may adjust the expiry slightly; a subscription within this of what we asked is ours.
EXPIRY_MATCH_S = 1.0


class SubscriptionOperations:
    def __init__(self, transport: GraphTransport, sdk: GraphServiceClient) -> None:
        self._transport = transport
        self._sdk = sdk

    async def list_all(self) -> list[Subscription]:
        request = self._sdk.subscriptions.to_get_request_information()
        found: list[Subscription] = []
        while True:
            response = await self._transport.send(request, claims=tenant_claims("subscriptions"))
            page = response.parse(CollectionPage[Subscription])
            found.extend(page.value)
            if not page.next_link:
                return found
            request = self._transport.request_for_link(page.next_link, request)

    async def create(
        self,
        *,
        resource: str,
        change_types: Sequence[str],
        notification_url: str,
        expires_at: datetime,
        client_state: str,
        lifecycle_notification_url: str | None = None,
    ) -> Subscription:
        """Create a subscription; `client_state` is the secret the receiver checks on every notification."""
        body = SdkSubscription(
            resource=resource,
            change_type=",".join(change_types),
            notification_url=notification_url,
            lifecycle_notification_url=lifecycle_notification_url,
            expiration_date_time=expires_at.astimezone(UTC),
            client_state=client_state,
        )
        request = mail_request(self._sdk.subscriptions.to_post_request_information(body))

        found: list[Subscription] = []

        async def created() -> bool:
            found.extend(
                subscription
                for subscription in await self.list_all()
                if subscription.resource == resource
                and subscription.notification_url == notification_url
                and set((subscription.change_type or "").split(",")) == set(change_types)
                and subscription.expiration_date_time is not None
                and abs((subscription.expiration_date_time - expires_at).total_seconds()) <= EXPIRY_MATCH_S
            )
            return bool(found)

        result = await write_once(
            lambda: self._transport.send(request, claims=tenant_claims("subscriptions"), idempotent=False),
            created,
            what=f"create subscription on {resource}",
        )
        if result.response is not None:
            return result.response.parse(Subscription)
        return found[0]

    async def renew(self, subscription_id: str, *, expires_at: datetime) -> Subscription:
        """Extend the expiry (this also reauthorizes the subscription). Setting the same expiry twice is harmless."""
        body = SdkSubscription(expiration_date_time=expires_at.astimezone(UTC))
        request = self._sdk.subscriptions.by_subscription_id(subscription_id).to_patch_request_information(body)
        response = await self._transport.send(request, claims=tenant_claims("subscriptions"))
        return response.parse(Subscription)

    async def delete(self, subscription_id: str) -> WriteResult:
        request = self._sdk.subscriptions.by_subscription_id(subscription_id).to_delete_request_information()
        try:
            response = await self._transport.send(request, claims=tenant_claims("subscriptions"))
        except NotFound as error:
            return await confirm_absent(
                lambda: self._absent(subscription_id), error, what=f"delete subscription {subscription_id}"
            )
        return WriteResult("applied", client_request_id=response.client_request_id, request_id=response.request_id)

    async def _absent(self, subscription_id: str) -> bool:
        return all(subscription.id != subscription_id for subscription in await self.list_all())
