"""Indexes for the leads' report on large histories (issue 5).

``ix_messages_created_at``: a report from a date on (the /lead page's last
30 days, ``--since``) reads only the messages from that date.
``ix_messages_conversation_id_created_at_sender``: each conversation's
first message and whether the visitor wrote, read from the index alone
(no table rows), and the seek for "did this conversation begin earlier".

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""
from typing import Sequence, Union

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: Union[str, None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index("ix_messages_created_at", "messages", ["created_at"])
    op.create_index(
        "ix_messages_conversation_id_created_at_sender", "messages", ["conversation_id", "created_at", "sender"]
    )


def downgrade() -> None:
    op.drop_index("ix_messages_conversation_id_created_at_sender", table_name="messages")
    op.drop_index("ix_messages_created_at", table_name="messages")
