"""The support leads' inbox decisions and retraining jobs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: Union[str, None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _when() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inbox_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=100), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(length=320), nullable=False),
        sa.Column("decided_at", _when(), nullable=False),
        sa.CheckConstraint(
            "action IN ('article', 'intent', 'new_article', 'dismiss')", name=op.f("ck_inbox_decisions_action_known")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_inbox_decisions_message_id_messages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_decisions")),
        sa.UniqueConstraint("message_id", name=op.f("uq_inbox_decisions_message_id")),
    )
    op.create_table(
        "retrain_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("stage", sa.String(length=40), nullable=False),
        sa.Column("progress", sa.SmallInteger(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("model_path", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.Column("finished_at", _when(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'loaded', 'refused', 'failed')", name=op.f("ck_retrain_jobs_status_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_jobs")),
    )
    # At most one retraining job runs at a time, across every gateway process.
    op.create_index(
        op.f("ix_retrain_jobs_one_active"),
        "retrain_jobs",
        ["status"],
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_retrain_jobs_one_active"), table_name="retrain_jobs")
    op.drop_table("retrain_jobs")
    op.drop_table("inbox_decisions")
