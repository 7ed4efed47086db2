"""Messages carry their deskmate kind and article id as columns (issue 5: the report without JSON).

``messages.kind`` is ``payload.metadata.deskmate.type`` and
``messages.article_id`` is ``payload.metadata.deskmate.article_id``, each
when it is a JSON string (else NULL), cut to the column's length. The
store fills them on every write (bot.store.messages); this revision fills
them for the messages already stored, with one UPDATE using the backend's
own JSON functions, and indexes what the report reads.

``ix_messages_kind_created_at`` (kind, created_at, sender, conversation_id,
article_id; only rows with a kind, about 43 % of the messages): the
report's bot replies (article, suggestions, rephrase) from a date on are an
index range per kind, read from the index alone, instead of a scan of every
message and its payload. Covering it cut the report by a further ~25 %
against a plain (kind, created_at) index (bench/README.md).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: Union[str, None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

KIND_CHARS = 20
ARTICLE_ID_CHARS = 100

# Only messages whose payload has a string metadata.deskmate.type or .article_id are touched.
BACKFILL = {
    "sqlite": f"""
        UPDATE messages SET
            kind = CASE WHEN json_type(payload, '$.metadata.deskmate.type') = 'text'
                        THEN substr(json_extract(payload, '$.metadata.deskmate.type'), 1, {KIND_CHARS}) END,
            article_id = CASE WHEN json_type(payload, '$.metadata.deskmate.article_id') = 'text'
                              THEN substr(json_extract(payload, '$.metadata.deskmate.article_id'), 1, {ARTICLE_ID_CHARS})
                         END
        WHERE json_type(payload, '$.metadata.deskmate.type') = 'text'
           OR json_type(payload, '$.metadata.deskmate.article_id') = 'text'
    """,
    "postgresql": f"""
        UPDATE messages SET
            kind = CASE WHEN json_typeof(payload #> '{{metadata,deskmate,type}}') = 'string'
                        THEN left(payload #>> '{{metadata,deskmate,type}}', {KIND_CHARS}) END,
            article_id = CASE WHEN json_typeof(payload #> '{{metadata,deskmate,article_id}}') = 'string'
                              THEN left(payload #>> '{{metadata,deskmate,article_id}}', {ARTICLE_ID_CHARS}) END
        WHERE json_typeof(payload #> '{{metadata,deskmate,type}}') = 'string'
           OR json_typeof(payload #> '{{metadata,deskmate,article_id}}') = 'string'
    """,
}


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default) on both backends: no table copy.
    op.add_column("messages", sa.Column("kind", sa.String(KIND_CHARS), nullable=True))
    op.add_column("messages", sa.Column("article_id", sa.String(ARTICLE_ID_CHARS), nullable=True))
    dialect = op.get_bind().dialect.name
    if dialect not in BACKFILL:
        raise NotImplementedError(f"no backfill of messages.kind for {dialect}")
    op.execute(BACKFILL[dialect])
    op.create_index(
        "ix_messages_kind_created_at", "messages", ["kind", "created_at", "sender", "conversation_id", "article_id"],
        sqlite_where=sa.text("kind IS NOT NULL"), postgresql_where=sa.text("kind IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_kind_created_at", table_name="messages")
    op.drop_column("messages", "article_id")
    op.drop_column("messages", "kind")
