"""A customer's data map (counts and a page of items with the rules that tie each to the customer), and keeping
stored verdicts in step with consent flags changed since the items were classified."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.service import customers_service
from app.datamap.repository import DatamapItemRepository
from app.datamap.schemas import AttributionReason, CustomerDatamap, DatamapCounts, DatamapItemRead
from app.models import LabelState
from app.policy.labels import LabelMap
from app.policy.schemas import Policy

HIGHLY_CONFIDENTIAL = "highly_confidential"


class DatamapService:
    async def for_customer(
        self, session: AsyncSession, customer_id: str, *, kind: str | None, after: int, limit: int
    ) -> CustomerDatamap:
        await customers_service.get(session, customer_id)  # 404 for an unknown customer
        items = DatamapItemRepository(session)
        counts = DatamapCounts(items=0, by_kind={}, by_category={}, by_label_state={})
        for item_kind, category, state, count in await items.customer_counts(customer_id):
            counts.items += count
            counts.by_kind[item_kind] = counts.by_kind.get(item_kind, 0) + count
            counts.by_category[category] = counts.by_category.get(category, 0) + count
            counts.by_label_state[state] = counts.by_label_state.get(state, 0) + count
        rows = await items.for_customer(customer_id, kind=kind, after_pk=after, limit=limit + 1)
        shown = rows[:limit]
        return CustomerDatamap(
            customer_id=customer_id,
            counts=counts,
            items=[
                DatamapItemRead(
                    kind=item.kind,
                    container_id=item.container_id,
                    item_id=item.item_id,
                    folder_id=item.folder_id,
                    etag=item.etag,
                    name_hash=item.name_hash,
                    mime_type=item.mime_type,
                    size=item.size,
                    item_created_at=item.item_created_at,
                    item_modified_at=item.item_modified_at,
                    category=item.category,
                    category_reason=item.category_reason,
                    label_state=item.label_state,
                    label_reason=item.label_reason,
                    scan_status=item.scan_status,
                    reasons=[AttributionReason.model_validate(reason) for reason in link.reasons],
                )
                for item, link in shown
            ],
            next_after=shown[-1][0].id if len(rows) > limit and shown else None,
        )

    async def protect_do_not_disclose(
        self, session: AsyncSession, *, policy: Policy, labels: LabelMap, now: datetime
    ) -> int:
        """Raise the items of customers who asked not to be disclosed (since their items were classified) to
        highly confidential, as the classifier would (app.classification.verdict); the labeler then applies the
        label. Lifting the flag lowers nothing: labels are never downgraded, and over-protecting is the safe side.
        """
        target = labels.by_category[HIGHLY_CONFIDENTIAL] if HIGHLY_CONFIDENTIAL in policy.labels.apply_to else None
        raised = await DatamapItemRepository(session).of_protected_customers_below(HIGHLY_CONFIDENTIAL)
        for item in raised:
            item.category, item.category_reason = HIGHLY_CONFIDENTIAL, "a customer asked not to disclose"
            item.target_label_id = target.id if target else None
            if target is not None and item.label_state != LabelState.in_progress:
                item.label_state, item.label_reason, item.label_detail = LabelState.pending, None, None
                item.label_updated_at = now
        return len(raised)


datamap_service = DatamapService()
