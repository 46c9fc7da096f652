"""Customer registry fields, the data map (items and their customers), explicit activity events, cursor state.

Revision ID: 0003_datamap
Revises: 0007_webhooks
Create Date: 2026-11-25
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_datamap"
down_revision: str | None = "0007_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def _customer_columns() -> list[sa.Column[Any]]:
    # Built afresh each time: a Column object can belong to one table only, and tests upgrade twice.
    return [
        sa.Column("tax_codes", JSON, server_default=sa.text("'[]'"), nullable=False),
        sa.Column("business_phone", sa.String(64), nullable=True),
        sa.Column("address", sa.String(500), nullable=True),
        sa.Column("last_activity_kind", sa.String(32), nullable=True),
        sa.Column("last_mail_at", TIMESTAMP, nullable=True),
        sa.Column("last_file_at", TIMESTAMP, nullable=True),
        sa.Column("last_event_at", TIMESTAMP, nullable=True),
        sa.Column("last_event_kind", sa.String(32), nullable=True),
        sa.Column("imported_activity_at", TIMESTAMP, nullable=True),
    ]


def _sync_cursor_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("is_delta", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("resync_started_at", TIMESTAMP, nullable=True),
    ]


def upgrade() -> None:
    for column in _customer_columns():
        op.add_column("customer", column)
    for column in _sync_cursor_columns():
        op.add_column("sync_cursor", column)
    op.create_table(
        "datamap_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("container_id", sa.String(300), nullable=False),
        sa.Column("item_id", sa.String(300), nullable=False),
        sa.Column("folder_id", sa.String(300), nullable=True),
        sa.Column("etag", sa.String(300), nullable=True),
        sa.Column("name_hash", sa.String(64), nullable=True),
        sa.Column("mime_type", sa.String(255), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("item_created_at", TIMESTAMP, nullable=True),
        sa.Column("item_modified_at", TIMESTAMP, nullable=True),
        sa.Column("scan_status", sa.String(16), nullable=False),
        sa.Column("scan_detail", sa.String(64), nullable=True),
        sa.Column("findings", JSON, nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("category_reason", sa.String(300), nullable=False),
        sa.Column("target_label_id", sa.String(64), nullable=True),
        sa.Column("label_state", sa.String(16), nullable=False),
        sa.Column("label_reason", sa.String(64), nullable=True),
        sa.Column("label_detail", sa.String(500), nullable=True),
        sa.Column("label_applied_id", sa.String(64), nullable=True),
        sa.Column("label_monitor_url", sa.Text(), nullable=True),
        sa.Column("label_updated_at", TIMESTAMP, nullable=True),
        sa.Column("first_seen_at", TIMESTAMP, nullable=False),
        sa.Column("synced_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datamap_item")),
        sa.UniqueConstraint("kind", "container_id", "item_id", name=op.f("uq_datamap_item_kind")),
    )
    op.create_index("ix_datamap_item_label_state", "datamap_item", ["label_state"])
    op.create_index("ix_datamap_item_container_folder", "datamap_item", ["container_id", "folder_id"])
    op.create_table(
        "datamap_link",
        sa.Column("item_pk", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("reasons", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["item_pk"], ["datamap_item.id"], name=op.f("fk_datamap_link_item_pk_datamap_item"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_datamap_link_customer_id_customer"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("item_pk", "customer_id", name=op.f("pk_datamap_link")),
    )
    op.create_index(op.f("ix_datamap_link_customer_id"), "datamap_link", ["customer_id"])
    op.create_table(
        "customer_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_customer_event_customer_id_customer"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_event")),
        sa.UniqueConstraint("customer_id", "kind", "reference", name=op.f("uq_customer_event_customer_id")),
    )
    op.create_index(op.f("ix_customer_event_customer_id"), "customer_event", ["customer_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_customer_event_customer_id"), table_name="customer_event")
    op.drop_table("customer_event")
    op.drop_index(op.f("ix_datamap_link_customer_id"), table_name="datamap_link")
    op.drop_table("datamap_link")
    op.drop_index("ix_datamap_item_container_folder", table_name="datamap_item")
    op.drop_index("ix_datamap_item_label_state", table_name="datamap_item")
    op.drop_table("datamap_item")
    for column in reversed(_sync_cursor_columns()):
        op.drop_column("sync_cursor", column.name)
    for column in reversed(_customer_columns()):
        op.drop_column("customer", column.name)
