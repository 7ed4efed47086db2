"""Promises from facts (issue 13 point 3): who is signed in, alerts to the on-call people, the due notice.

``agent_presence``: one row per open agent-inbox socket, refreshed by its gateway, with an expiry (a
gateway that stopped leaves rows that expire). ``oncall_alerts``: one row per ticket and interval
(unique), the claim that makes several gateways alert once, with its retries. ``tickets.due_notice_at``:
when the visitor was told the first-reply due time is about to pass.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: Union[str, None] = "0010"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "agent_presence",
        sa.Column("socket_id", sa.String(100), primary_key=True),
        sa.Column("gateway_id", sa.String(40), nullable=False),
        sa.Column("staff_email", sa.String(320), nullable=False),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_agent_presence_expires_at", "agent_presence", ["expires_at"])
    op.create_index("ix_agent_presence_gateway_id", "agent_presence", ["gateway_id"])
    op.create_table(
        "oncall_alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "ticket_id", sa.Integer(),
            sa.ForeignKey("tickets.id", ondelete="CASCADE", name="fk_oncall_alerts_ticket_id_tickets"),
            nullable=False,
        ),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(30), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(40), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("mailed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
    )
    op.create_index("uq_oncall_alerts_ticket_id_slot", "oncall_alerts", ["ticket_id", "slot"], unique=True)
    op.create_index("ix_oncall_alerts_sent_at_next_try_at", "oncall_alerts", ["sent_at", "next_try_at"])
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("due_notice_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("due_notice_at")
    op.drop_table("oncall_alerts")
    op.drop_table("agent_presence")
