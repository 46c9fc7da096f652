"""Initial tables: customer, sync_cursor, append-only audit_record.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)

SQLITE_APPEND_ONLY = [
    "CREATE TRIGGER audit_record_no_update BEFORE UPDATE ON audit_record "
    "BEGIN SELECT RAISE(ABORT, 'audit_record is append-only'); END",
    "CREATE TRIGGER audit_record_no_delete BEFORE DELETE ON audit_record "
    "BEGIN SELECT RAISE(ABORT, 'audit_record is append-only'); END",
]
POSTGRES_APPEND_ONLY = [
    "CREATE FUNCTION audit_record_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_record is append-only'; END $$",
    "CREATE TRIGGER audit_record_no_update_delete BEFORE UPDATE OR DELETE ON audit_record "
    "FOR EACH ROW EXECUTE FUNCTION audit_record_append_only()",
    "CREATE TRIGGER audit_record_no_truncate BEFORE TRUNCATE ON audit_record "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_record_append_only()",
]


def upgrade() -> None:
    op.create_table(
        "customer",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("legal_name", sa.String(300), nullable=False),
        sa.Column("domains", JSON, nullable=False),
        sa.Column("contacts", JSON, nullable=False),
        sa.Column("products", JSON, nullable=False),
        sa.Column("service_status", sa.String(16), nullable=False),
        sa.Column("service_ended_at", TIMESTAMP, nullable=True),
        sa.Column("do_not_disclose", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("marketing_opt_out", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("last_activity_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("service_status IN ('active', 'ended')", name=op.f("ck_customer_service_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer")),
    )
    op.create_table(
        "sync_cursor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_kind", sa.String(32), nullable=False),
        sa.Column("resource_key", sa.String(512), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("is_resync", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_cursor")),
        sa.UniqueConstraint("resource_key", name=op.f("uq_sync_cursor_resource_key")),
    )
    op.create_table(
        "audit_record",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_record")),
        sa.UniqueConstraint("prev_hash", name=op.f("uq_audit_record_prev_hash")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_record_hash")),
    )
    # Append-only is enforced by the database, not only by the code that writes the log.
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_APPEND_ONLY if dialect == "sqlite" else POSTGRES_APPEND_ONLY:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_record_no_truncate ON audit_record")
        op.execute("DROP TRIGGER audit_record_no_update_delete ON audit_record")
        op.execute("DROP FUNCTION audit_record_append_only()")
    else:
        op.execute("DROP TRIGGER audit_record_no_delete")
        op.execute("DROP TRIGGER audit_record_no_update")
    op.drop_table("audit_record")
    op.drop_table("sync_cursor")
    op.drop_table("customer")
