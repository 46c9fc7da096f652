from collections.abc import Sequence

from app.kit.repository import RepositoryBase
from app.models import GraphNotification, GraphSubscription, InboundEvent, WebhookDelivery


class WebhookDeliveryRepository(RepositoryBase[WebhookDelivery]):
    model = WebhookDelivery


class InboundEventRepository(RepositoryBase[InboundEvent]):
    model = InboundEvent

    async def get_by_delivery(self, delivery_id: str) -> InboundEvent | None:
        return await self.get_one_or_none(self.select().where(InboundEvent.delivery_id == delivery_id))


class GraphSubscriptionRepository(RepositoryBase[GraphSubscription]):
    model = GraphSubscription

    async def get_many(self, subscription_ids: set[str]) -> dict[str, GraphSubscription]:
        if not subscription_ids:
            return {}
        found = await self.get_all(self.select().where(GraphSubscription.id.in_(subscription_ids)))
        return {subscription.id: subscription for subscription in found}

    async def delete(self, subscription: GraphSubscription) -> None:
        await self.session.delete(subscription)
        await self.session.flush()


class GraphNotificationRepository(RepositoryBase[GraphNotification]):
    model = GraphNotification

    async def add_all(self, notifications: Sequence[GraphNotification]) -> None:
        self.session.add_all(notifications)
        await self.session.flush()

    async def list_for_subscription(self, subscription_id: str) -> Sequence[GraphNotification]:
        return await self.get_all(
            self.select().where(GraphNotification.subscription_id == subscription_id).order_by(GraphNotification.id)
        )
