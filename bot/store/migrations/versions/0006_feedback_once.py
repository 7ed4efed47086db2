"""One verdict per answer, one rating per ticket (issue 11: forged or repeated feedback).

``feedback.answer_message_id``: the bot's answer a helpful / not-helpful
verdict is about (a later click on the same answer changes the verdict);
``feedback.ticket_id``: the ticket a 1-5 rating is about (the bot asked for
it when the ticket closed; a later rating changes it). Both unique (NULLs
are distinct on SQLite and PostgreSQL: rows stored before keep NULL).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: Union[str, None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("answer_message_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("ticket_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_feedback_answer_message_id_messages", "messages", ["answer_message_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_foreign_key("fk_feedback_ticket_id_tickets", "tickets", ["ticket_id"], ["id"], ondelete="CASCADE")
    op.create_index("uq_feedback_answer_message_id", "feedback", ["answer_message_id"], unique=True)
    op.create_index("uq_feedback_ticket_id", "feedback", ["ticket_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_feedback_ticket_id", table_name="feedback")
    op.drop_index("uq_feedback_answer_message_id", table_name="feedback")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_constraint("fk_feedback_ticket_id_tickets", type_="foreignkey")
        batch.drop_constraint("fk_feedback_answer_message_id_messages", type_="foreignkey")
        batch.drop_column("ticket_id")
        batch.drop_column("answer_message_id")
