"""Inbound events: admin webhook deliveries and events, Graph subscriptions and their notifications.

Revision ID: 0007_webhooks
Revises: 0004_deletion
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_webhooks"
down_revision: str | None = "0004_deletion"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_delivery")),
    )
    op.create_table(
        "inbound_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("handled_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_delivery.id"],
            name=op.f("fk_inbound_event_delivery_id_webhook_delivery"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_event")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_inbound_event_delivery_id")),
    )
    op.create_index(op.f("ix_inbound_event_type"), "inbound_event", ["type"])
    op.create_index(op.f("ix_inbound_event_customer_id"), "inbound_event", ["customer_id"])
    op.create_index(op.f("ix_inbound_event_state"), "inbound_event", ["state"])
    op.create_table(
        "graph_subscription",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("resource", sa.String(1000), nullable=False),
        sa.Column("change_types", sa.String(100), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("client_state_sha256", sa.String(64), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_graph_subscription")),
    )
    op.create_table(
        "graph_notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subscription_id", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("change_type", sa.String(32), nullable=True),
        sa.Column("lifecycle_event", sa.String(32), nullable=True),
        sa.Column("resource", sa.String(1000), nullable=True),
        sa.Column("resource_id", sa.String(512), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("processed_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_graph_notification")),
    )
    op.create_index(op.f("ix_graph_notification_subscription_id"), "graph_notification", ["subscription_id"])
    op.create_index("ix_graph_notification_state_id", "graph_notification", ["state", "id"])


def downgrade() -> None:
    op.drop_index("ix_graph_notification_state_id", table_name="graph_notification")
    op.drop_index(op.f("ix_graph_notification_subscription_id"), table_name="graph_notification")
    op.drop_table("graph_notification")
    op.drop_table("graph_subscription")
    op.drop_index(op.f("ix_inbound_event_state"), table_name="inbound_event")
    op.drop_index(op.f("ix_inbound_event_customer_id"), table_name="inbound_event")
    op.drop_index(op.f("ix_inbound_event_type"), table_name="inbound_event")
    op.drop_table("inbound_event")
    op.drop_table("webhook_delivery")
