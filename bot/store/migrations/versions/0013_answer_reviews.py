"""The leads' spot-checks of confident answers.

``answer_reviews``: one verdict ("right" or "wrong") per bot article answer,
with the visitor's message it answered; wrong ones join the leads' missed messages.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0013"
down_revision: Union[str, None] = "0012"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "answer_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("answer_message_id", sa.Integer(), nullable=False),
        sa.Column("question_message_id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.String(length=100), nullable=False),
        sa.Column("verdict", sa.String(length=5), nullable=False),
        sa.Column("reviewed_by", sa.String(length=320), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("verdict IN ('right', 'wrong')", name=op.f("ck_answer_reviews_verdict_known")),
        sa.ForeignKeyConstraint(
            ["answer_message_id"], ["messages.id"], name=op.f("fk_answer_reviews_answer_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["question_message_id"], ["messages.id"], name=op.f("fk_answer_reviews_question_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answer_reviews")),
        sa.UniqueConstraint("answer_message_id", name=op.f("uq_answer_reviews_answer_message_id")),
    )
    op.create_index("ix_answer_reviews_question_message_id", "answer_reviews", ["question_message_id"])
    op.create_index("ix_answer_reviews_reviewed_at", "answer_reviews", ["reviewed_at"])


def downgrade() -> None:
    op.drop_table("answer_reviews")
