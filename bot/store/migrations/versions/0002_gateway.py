"""Messages of gateway conversations, and staff accounts for the agent inbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# Every name is wrapped in op.f(): it is final, whatever naming convention the
# models' metadata declares.

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: Union[str, None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _when() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("sender", sa.String(length=10), nullable=False),
        sa.Column("author", sa.String(length=320), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.CheckConstraint(
            "sender IN ('visitor', 'bot', 'agent', 'system')", name=op.f("ck_messages_sender_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        # Message ids are the conversation's order: never reused on SQLite either.
        sqlite_autoincrement=True,
    )
    # Leading column conversation_id: also serves lookups by conversation alone.
    op.create_index(op.f("ix_messages_conversation_id_id"), "messages", ["conversation_id", "id"])

    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_staff_email_lower_case")),
        sa.CheckConstraint("role IN ('agent', 'lead')", name=op.f("ck_staff_role_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_email")),
    )


def downgrade() -> None:
    op.drop_table("staff")
    op.drop_index(op.f("ix_messages_conversation_id_id"), table_name="messages")
    op.drop_table("messages")
