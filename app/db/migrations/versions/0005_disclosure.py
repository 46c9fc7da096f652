"""Compelled disclosure (demands, scope, objections, decisions, export approvals, exports) and reference consent.

Revision ID: 0005_disclosure
Revises: 0003_datamap
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_disclosure"
down_revision: str | None = "0003_datamap"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def _demand_child(table: str, *columns: sa.Column[object]) -> None:
    op.create_table(
        table,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("demand_id", sa.String(32), nullable=False),
        *columns,
        sa.ForeignKeyConstraint(
            ["demand_id"],
            ["disclosure_demand.id"],
            name=op.f(f"fk_{table}_demand_id_disclosure_demand"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    )
    op.create_index(op.f(f"ix_{table}_demand_id"), table, ["demand_id"])


def upgrade() -> None:
    op.create_table(
        "disclosure_demand",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("authority", sa.String(300), nullable=False),
        sa.Column("legal_basis", sa.String(500), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("data_description", sa.Text(), nullable=False),
        sa.Column("scope_mode", sa.String(16), nullable=False),
        sa.Column("scope_from", TIMESTAMP, nullable=True),
        sa.Column("scope_to", TIMESTAMP, nullable=True),
        sa.Column("scope_kinds", JSON, nullable=False),
        sa.Column("deadline", TIMESTAMP, nullable=False),
        sa.Column("objection_deadline", TIMESTAMP, nullable=False),
        sa.Column("gagged", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("scope_hash", sa.String(64), nullable=False),
        sa.Column("scope_version", sa.Integer(), nullable=False),
        sa.Column("received_by", sa.String(200), nullable=False),
        sa.Column("received_by_name", sa.String(300), nullable=False),
        sa.Column("notice_sent_at", TIMESTAMP, nullable=True),
        sa.Column("notice_recipients", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("closed_at", TIMESTAMP, nullable=True),
        sa.Column("closed_by", sa.String(200), nullable=True),
        sa.Column("close_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_disclosure_demand_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disclosure_demand")),
        sa.UniqueConstraint(
            "customer_id", "authority", "reference", name=op.f("uq_disclosure_demand_customer_id")
        ),
    )
    op.create_index(op.f("ix_disclosure_demand_customer_id"), "disclosure_demand", ["customer_id"])
    op.create_index(op.f("ix_disclosure_demand_status"), "disclosure_demand", ["status"])

    _demand_child(
        "disclosure_scope_item",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("container_id", sa.String(300), nullable=False),
        sa.Column("item_id", sa.String(300), nullable=False),
        sa.Column("etag", sa.String(300), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("name_hash", sa.String(64), nullable=True),
        sa.Column("item_date", TIMESTAMP, nullable=True),
        sa.Column("hold_id", sa.Integer(), nullable=True),
        sa.Column("in_scope", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("removed_at", TIMESTAMP, nullable=True),
        sa.Column("removed_by_decision_id", sa.Integer(), nullable=True),
        sa.Column("added_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["hold_id"], ["item_hold.id"], name=op.f("fk_disclosure_scope_item_hold_id_item_hold")
        ),
        sa.UniqueConstraint(
            "demand_id", "kind", "container_id", "item_id", name=op.f("uq_disclosure_scope_item_demand_id")
        ),
    )
    _demand_child(
        "disclosure_objection",
        sa.Column("objector", sa.String(300), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("grounds", sa.Text(), nullable=False),
        sa.Column("evidence_ref", sa.String(500), nullable=True),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
    )
    _demand_child(
        "disclosure_decision",
        sa.Column("decided_by", sa.String(300), nullable=False),
        sa.Column("decided_at", TIMESTAMP, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("removed_items", sa.Integer(), nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
    )
    _demand_child(
        "disclosure_approval",
        sa.Column("scope_hash", sa.String(64), nullable=False),
        sa.Column("approver", sa.String(200), nullable=False),
        sa.Column("approver_name", sa.String(300), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("decided_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("consumed_at", TIMESTAMP, nullable=True),
        sa.Column("voided_at", TIMESTAMP, nullable=True),
        sa.Column("void_reason", sa.Text(), nullable=True),
        sa.UniqueConstraint(
            "demand_id", "scope_hash", "approver", name=op.f("uq_disclosure_approval_demand_id")
        ),
    )
    _demand_child(
        "disclosure_export",
        sa.Column("scope_hash", sa.String(64), nullable=False),
        sa.Column("package_name", sa.String(200), nullable=False),
        sa.Column("package_sha256", sa.String(64), nullable=False),
        sa.Column("package_bytes", sa.BigInteger(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("total_bytes", sa.BigInteger(), nullable=False),
        sa.Column("items", JSON, nullable=False),
        sa.Column("approvers", JSON, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_by_name", sa.String(300), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("package_removed_at", TIMESTAMP, nullable=True),
    )
    op.create_table(
        "reference_consent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("obtained_at", TIMESTAMP, nullable=False),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_reference_consent_customer_id_customer"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_consent")),
    )
    op.create_index(op.f("ix_reference_consent_customer_id"), "reference_consent", ["customer_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_reference_consent_customer_id"), table_name="reference_consent")
    op.drop_table("reference_consent")
    for table in (
        "disclosure_export",
        "disclosure_approval",
        "disclosure_decision",
        "disclosure_objection",
        "disclosure_scope_item",
    ):
        op.drop_index(op.f(f"ix_{table}_demand_id"), table_name=table)
        op.drop_table(table)
    op.drop_index(op.f("ix_disclosure_demand_status"), table_name="disclosure_demand")
    op.drop_index(op.f("ix_disclosure_demand_customer_id"), table_name="disclosure_demand")
    op.drop_table("disclosure_demand")
