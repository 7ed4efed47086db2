"""The widget's own id for a visitor message, stored once per conversation.

``messages.client_message_id``: 32 hex digits from the widget, else NULL. A
widget whose gateway was stopped before it said the message was received
sends it again with the same id; the partial unique index keeps one copy.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0014"
down_revision: Union[str, None] = "0013"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("client_message_id", sa.String(length=32), nullable=True))
    op.create_index(
        "uq_messages_conversation_id_client_message_id", "messages", ["conversation_id", "client_message_id"],
        unique=True, sqlite_where=sa.text("client_message_id IS NOT NULL"),
        postgresql_where=sa.text("client_message_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_messages_conversation_id_client_message_id", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("client_message_id")
