"""Deletion: plans and their manifests, approvals, holds, proofs of disposal, outbox, audit checkpoints, tasks.

Revision ID: 0004_deletion
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_deletion"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)

# Checkpoints are append-only like the log they sign; a proof of disposal cannot be deleted before its
# retention ends. Enforced by the database, not only by the code.
SQLITE_GUARDS = [
    "CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint "
    "BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END",
    "CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint "
    "BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END",
    "CREATE TRIGGER disposal_record_retained BEFORE DELETE ON disposal_record "
    "WHEN OLD.retain_until > strftime('%Y-%m-%d %H:%M:%f', 'now') "
    "BEGIN SELECT RAISE(ABORT, 'disposal_record is kept until retain_until'); END",
]
POSTGRES_GUARDS = [
    "CREATE FUNCTION audit_checkpoint_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_checkpoint is append-only'; END $$",
    "CREATE TRIGGER audit_checkpoint_no_update_delete BEFORE UPDATE OR DELETE ON audit_checkpoint "
    "FOR EACH ROW EXECUTE FUNCTION audit_checkpoint_append_only()",
    "CREATE FUNCTION disposal_record_retained() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN IF OLD.retain_until > now() THEN RAISE EXCEPTION 'disposal_record is kept until retain_until'; "
    "END IF; RETURN OLD; END $$",
    "CREATE TRIGGER disposal_record_retained BEFORE DELETE ON disposal_record "
    "FOR EACH ROW EXECUTE FUNCTION disposal_record_retained()",
]


def upgrade() -> None:
    op.create_table(
        "audit_checkpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("prev_signature", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoint")),
        sa.UniqueConstraint("signature", name=op.f("uq_audit_checkpoint_signature")),
    )
    op.create_table(
        "deletion_plan",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("customer_ids", JSON, nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("trigger_details", JSON, nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_by_name", sa.String(length=300), nullable=False),
        sa.Column("requested_by_is_service", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("include_shared", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("manifest_hash", sa.String(length=64), nullable=False),
        sa.Column("manifest_version", sa.Integer(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("total_bytes", sa.BigInteger(), nullable=False),
        sa.Column("excluded_count", sa.Integer(), nullable=False),
        sa.Column("required_approvals", sa.Integer(), nullable=False),
        sa.Column("cap_reasons", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("submitted_at", TIMESTAMP, nullable=True),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("reminded_at", TIMESTAMP, nullable=True),
        sa.Column("escalated_at", TIMESTAMP, nullable=True),
        sa.Column("decided_at", TIMESTAMP, nullable=True),
        sa.Column("execution_started_at", TIMESTAMP, nullable=True),
        sa.Column("soft_completed_at", TIMESTAMP, nullable=True),
        sa.Column("purge_due_at", TIMESTAMP, nullable=True),
        sa.Column("completed_at", TIMESTAMP, nullable=True),
        sa.Column("card_conversation_id", sa.String(length=300), nullable=True),
        sa.Column("card_activity_id", sa.String(length=200), nullable=True),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deletion_plan")),
    )
    with op.batch_alter_table("deletion_plan", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deletion_plan_status"), ["status"], unique=False)

    op.create_table(
        "deletion_request",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("requester_name", sa.String(length=300), nullable=False),
        sa.Column("requester_email", sa.String(length=320), nullable=False),
        sa.Column("identity_check", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("received_by", sa.String(length=200), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("plan_id", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deletion_request")),
    )
    with op.batch_alter_table("deletion_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deletion_request_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "item_hold",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("container_id", sa.String(length=300), nullable=True),
        sa.Column("item_id", sa.String(length=300), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("source_ref", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("released_at", TIMESTAMP, nullable=True),
        sa.Column("released_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_hold")),
    )
    with op.batch_alter_table("item_hold", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_item_hold_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_item_hold_item_id"), ["item_id"], unique=False)

    op.create_table(
        "job_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_run")),
    )
    with op.batch_alter_table("job_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_run_job_id"), ["job_id"], unique=False)

    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("claimed_until", TIMESTAMP, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_message")),
        sa.UniqueConstraint("key", name=op.f("uq_outbox_message_key")),
    )
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_message_status"), ["status"], unique=False)

    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(191), nullable=False),
        sa.Column("next_run_time", sa.Float(25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apscheduler_jobs")),
    )
    with op.batch_alter_table("apscheduler_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_apscheduler_jobs_next_run_time"), ["next_run_time"], unique=False)

    op.create_table(
        "scheduler_lease",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_lease")),
    )
    op.create_table(
        "task",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("unit", sa.String(length=200), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", TIMESTAMP, nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_until", TIMESTAMP, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_task")),
    )
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_state"), ["state"], unique=False)

    op.create_table(
        "approval",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.String(length=32), nullable=False),
        sa.Column("manifest_hash", sa.String(length=64), nullable=False),
        sa.Column("approver", sa.String(length=200), nullable=False),
        sa.Column("approver_name", sa.String(length=300), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("decided_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("voided_at", TIMESTAMP, nullable=True),
        sa.Column("void_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["plan_id"], ["deletion_plan.id"], name=op.f("fk_approval_plan_id_deletion_plan")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval")),
        sa.UniqueConstraint("plan_id", "manifest_hash", "approver", name=op.f("uq_approval_plan_id")),
    )
    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_approval_plan_id"), ["plan_id"], unique=False)

    op.create_table(
        "plan_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.String(length=32), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("container_id", sa.String(length=300), nullable=False),
        sa.Column("item_id", sa.String(length=300), nullable=False),
        sa.Column("etag", sa.String(length=300), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("name_hash", sa.String(length=64), nullable=False),
        sa.Column("customer_ids", JSON, nullable=False),
        sa.Column("shared_with", JSON, nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("exclusion_reason", sa.String(length=64), nullable=True),
        sa.Column("exclusion_detail", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("soft_deleted_at", TIMESTAMP, nullable=True),
        sa.Column("purge_due_at", TIMESTAMP, nullable=True),
        sa.Column("purged_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["plan_id"], ["deletion_plan.id"], name=op.f("fk_plan_item_plan_id_deletion_plan")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_item")),
        sa.UniqueConstraint("plan_id", "kind", "container_id", "item_id", name=op.f("uq_plan_item_plan_id")),
    )
    with op.batch_alter_table("plan_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plan_item_plan_id"), ["plan_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_plan_item_state"), ["state"], unique=False)

    op.create_table(
        "disposal_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.String(length=32), nullable=False),
        sa.Column("plan_item_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("customer_ids", JSON, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("container_id", sa.String(length=300), nullable=False),
        sa.Column("item_id", sa.String(length=300), nullable=False),
        sa.Column("name_hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("manifest_hash", sa.String(length=64), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_by_name", sa.String(length=300), nullable=False),
        sa.Column("approvers", JSON, nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("soft_deleted_at", TIMESTAMP, nullable=True),
        sa.Column("soft_request_id", sa.String(length=100), nullable=True),
        sa.Column("purge_mode", sa.String(length=32), nullable=True),
        sa.Column("purge_due_at", TIMESTAMP, nullable=True),
        sa.Column("purged_at", TIMESTAMP, nullable=True),
        sa.Column("purge_request_id", sa.String(length=100), nullable=True),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.Column("retain_until", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["deletion_plan.id"], name=op.f("fk_disposal_record_plan_id_deletion_plan")
        ),
        sa.ForeignKeyConstraint(
            ["plan_item_id"], ["plan_item.id"], name=op.f("fk_disposal_record_plan_item_id_plan_item")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disposal_record")),
        sa.UniqueConstraint("plan_item_id", name=op.f("uq_disposal_record_plan_item_id")),
    )
    with op.batch_alter_table("disposal_record", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_disposal_record_plan_id"), ["plan_id"], unique=False)
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_GUARDS if dialect == "sqlite" else POSTGRES_GUARDS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER disposal_record_retained ON disposal_record")
        op.execute("DROP FUNCTION disposal_record_retained()")
        op.execute("DROP TRIGGER audit_checkpoint_no_update_delete ON audit_checkpoint")
        op.execute("DROP FUNCTION audit_checkpoint_append_only()")
    else:
        op.execute("DROP TRIGGER disposal_record_retained")
        op.execute("DROP TRIGGER audit_checkpoint_no_delete")
        op.execute("DROP TRIGGER audit_checkpoint_no_update")

    with op.batch_alter_table("disposal_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disposal_record_plan_id"))

    op.drop_table("disposal_record")
    with op.batch_alter_table("plan_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plan_item_state"))
        batch_op.drop_index(batch_op.f("ix_plan_item_plan_id"))

    op.drop_table("plan_item")
    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_plan_id"))

    op.drop_table("approval")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_state"))
        batch_op.drop_index(batch_op.f("ix_task_kind"))

    op.drop_table("task")
    op.drop_table("scheduler_lease")
    with op.batch_alter_table("apscheduler_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_apscheduler_jobs_next_run_time"))

    op.drop_table("apscheduler_jobs")
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_message_status"))

    op.drop_table("outbox_message")
    with op.batch_alter_table("job_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_run_job_id"))

    op.drop_table("job_run")
    with op.batch_alter_table("item_hold", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_item_hold_item_id"))
        batch_op.drop_index(batch_op.f("ix_item_hold_customer_id"))

    op.drop_table("item_hold")
    with op.batch_alter_table("deletion_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deletion_request_customer_id"))

    op.drop_table("deletion_request")
    with op.batch_alter_table("deletion_plan", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deletion_plan_status"))

    op.drop_table("deletion_plan")
    op.drop_table("audit_checkpoint")
