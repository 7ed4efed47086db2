"""How far each visitor has read their conversation (the unread badge on the chat button).

``conversation_reads``: one row per conversation whose widget has been open
and visible: the newest message id it had then, and when.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: Union[str, None] = "0008"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "conversation_reads",
        sa.Column("conversation_id", sa.String(255), primary_key=True),
        sa.Column("seen_message_id", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("conversation_reads")
