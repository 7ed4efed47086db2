"""An authenticator code works once (RFC 6238 section 5.2: no replay within its window).

``staff.totp_last_step``: the TOTP time step (Unix seconds // 30) of the
last code that signed this account in; a code from that step or an older one
is refused. NULL until the first use.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: Union[str, None] = "0007"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.drop_column("totp_last_step")
