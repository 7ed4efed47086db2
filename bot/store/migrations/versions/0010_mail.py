"""E-mail as a second channel of a handed-off conversation.

``tickets.contact_email``: where the team's replies go when the visitor left the chat;
``outgoing_mail``: e-mails to send (claimed by one gateway at a time, retried);
``inbound_mail``: e-mail replies taken in, by Message-ID (a redelivery is not added twice);
``conversation_owners``: who a widget conversation belongs to (an e-mail's link cannot lure a
signed-in visitor into writing in someone else's conversation).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: Union[str, None] = "0009"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

PENDING = "status = 'pending' AND kind = 'conversation'"


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("contact_email", sa.String(320), nullable=True))
    op.create_table(
        "outgoing_mail",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=True),
        sa.Column("to_address", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(300), nullable=True),
        sa.Column("body_text", sa.Text(), nullable=True),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("covers_message_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('conversation', 'prepared')", name=op.f("ck_outgoing_mail_kind_known")),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'cancelled', 'failed')", name=op.f("ck_outgoing_mail_status_known")
        ),
    )
    op.create_index("ix_outgoing_mail_ticket_id", "outgoing_mail", ["ticket_id"])
    op.create_index("ix_outgoing_mail_status_next_attempt_at", "outgoing_mail", ["status", "next_attempt_at"])
    op.create_index(
        "uq_outgoing_mail_pending_ticket", "outgoing_mail", ["ticket_id"], unique=True,
        sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING),
    )
    op.create_table(
        "inbound_mail",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message_id_header", sa.String(998), nullable=False),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("message_id_header", name=op.f("uq_inbound_mail_message_id_header")),
    )
    op.create_index("ix_inbound_mail_ticket_id", "inbound_mail", ["ticket_id"])
    op.create_table(
        "conversation_owners",
        sa.Column("conversation_id", sa.String(255), primary_key=True),
        sa.Column("owner", sa.String(80), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("conversation_owners")
    op.drop_table("inbound_mail")
    op.drop_table("outgoing_mail")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("contact_email")
