"""knowledge base in use: answers, flags, gaps

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 12:41:59

Which article a direct answer came from (tickets.article_id), the ticket an article was
drafted from, the expiry warning, flags on articles and the knowledge gaps.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hotline.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "article_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("comment", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("by_id", sa.Integer(), nullable=True),
        sa.Column("at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
        ),
        sa.ForeignKeyConstraint(
            ["by_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("article_flags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_article_flags_article_id"), ["article_id"], unique=False)
        batch_op.create_index("ix_article_flags_open", ["resolved_at", "article_id"], unique=False)

    op.create_table(
        "knowledge_gaps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("question", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("asked", sa.Integer(), nullable=False),
        sa.Column("by_agents", sa.Integer(), nullable=False),
        sa.Column("by_assistant", sa.Integer(), nullable=False),
        sa.Column("first_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_by_id", sa.Integer(), nullable=True),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
        ),
        sa.ForeignKeyConstraint(
            ["closed_by_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("knowledge_gaps", schema=None) as batch_op:
        batch_op.create_index("ix_knowledge_gaps_open", ["closed_at", "asked"], unique=False)

    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_ticket_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("expiry_warned_for", sa.Date(), nullable=True))
        batch_op.create_foreign_key("fk_articles_source_ticket_id", "tickets", ["source_ticket_id"], ["id"])

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("article_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_tickets_article_id"), ["article_id"], unique=False)
        batch_op.create_foreign_key("fk_tickets_article_id", "articles", ["article_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_constraint("fk_tickets_article_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_tickets_article_id"))
        batch_op.drop_column("article_id")

    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.drop_constraint("fk_articles_source_ticket_id", type_="foreignkey")
        batch_op.drop_column("expiry_warned_for")
        batch_op.drop_column("source_ticket_id")

    with op.batch_alter_table("knowledge_gaps", schema=None) as batch_op:
        batch_op.drop_index("ix_knowledge_gaps_open")

    op.drop_table("knowledge_gaps")
    with op.batch_alter_table("article_flags", schema=None) as batch_op:
        batch_op.drop_index("ix_article_flags_open")
        batch_op.drop_index(batch_op.f("ix_article_flags_article_id"))

    op.drop_table("article_flags")
