"""Customers, tickets with their events, and feedback.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

A database made before migrations existed already has the ``feedback``
table (created by ``create_all``): it is kept, with its rows, and only
gains the CSAT range check.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# Every name is wrapped in op.f(): it is final, whatever naming convention the
# models' metadata declares.

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: Union[str, None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

OPEN_TICKET_WHERE = "status != 'resolved'"


def _when() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True)


def _create_feedback() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("article_id", sa.String(length=100), nullable=True),
        sa.Column("helpful", sa.Boolean(), nullable=True),
        sa.Column("csat", sa.SmallInteger(), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.CheckConstraint("csat BETWEEN 1 AND 5", name=op.f("ck_feedback_csat_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    op.create_index(op.f("ix_feedback_conversation_id"), "feedback", ["conversation_id"])
    op.create_index(op.f("ix_feedback_article_id"), "feedback", ["article_id"])


def _upgrade_legacy_feedback() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.create_check_constraint(op.f("ck_feedback_csat_range"), "csat BETWEEN 1 AND 5")


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("feedback"):
        _upgrade_legacy_feedback()
    else:
        _create_feedback()

    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("plan", sa.String(length=50), nullable=False),
        sa.Column("billing_period", sa.String(length=10), nullable=True),
        sa.Column("price", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("renews_at", _when(), nullable=True),
        sa.Column("trial_ends_at", _when(), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_customers_email_lower_case")),
        sa.CheckConstraint("status IN ('active', 'paused', 'cancelled')", name=op.f("ck_customers_status_known")),
        sa.CheckConstraint(
            "billing_period IS NULL OR billing_period IN ('monthly', 'annual')",
            name=op.f("ck_customers_billing_period_known"),
        ),
        sa.CheckConstraint("price >= 0", name=op.f("ck_customers_price_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("email", name=op.f("uq_customers_email")),
    )

    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("plan", sa.String(length=50), nullable=False),
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("assignee", sa.String(length=320), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("first_agent_reply_at", _when(), nullable=True),
        sa.Column("resolved_at", _when(), nullable=True),
        sa.Column("sla_due_at", _when(), nullable=False),
        sa.Column("handover", sa.JSON(), nullable=False),
        sa.CheckConstraint("status IN ('open', 'assigned', 'resolved')", name=op.f("ck_tickets_status_known")),
        sa.CheckConstraint("priority IN ('high', 'normal')", name=op.f("ck_tickets_priority_known")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_tickets_customer_id_customers"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_tickets_conversation_id"), "tickets", ["conversation_id"])
    op.create_index(op.f("ix_tickets_customer_id"), "tickets", ["customer_id"])
    # At most one ticket that is not resolved per conversation, enforced by the database.
    op.create_index(
        op.f("uq_tickets_open_conversation"),
        "tickets",
        ["conversation_id"],
        unique=True,
        sqlite_where=sa.text(OPEN_TICKET_WHERE),
        postgresql_where=sa.text(OPEN_TICKET_WHERE),
    )

    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("actor", sa.String(length=330), nullable=False),
        sa.Column("at", _when(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_events_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_events")),
    )
    op.create_index(op.f("ix_ticket_events_ticket_id"), "ticket_events", ["ticket_id"])


def downgrade() -> None:
    op.drop_table("ticket_events")
    op.drop_index("uq_tickets_open_conversation", table_name="tickets")
    op.drop_table("tickets")
    op.drop_table("customers")
    op.drop_table("feedback")
