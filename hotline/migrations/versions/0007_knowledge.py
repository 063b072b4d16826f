"""the knowledge base: articles, their versions, and the search index

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 11:00:00

The search index is a table of each database's own kind, outside the models' metadata
(hotline.knowledge.index): on SQLite an FTS5 table over the segmented title, keywords and
body; on PostgreSQL a weighted tsvector per article with a GIN index.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hotline.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "articles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("department", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("region", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["department_id"], ["departments.id"]),
        sa.ForeignKeyConstraint(["updated_by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("department", "title", name="uq_articles_department_title"),
        sa.UniqueConstraint("external_id"),
    )
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.create_index("ix_articles_category", ["category"], unique=False)
        batch_op.create_index("ix_articles_department_id", ["department_id"], unique=False)
        batch_op.create_index("ix_articles_status_public", ["status", "public"], unique=False)
        batch_op.create_index("ix_articles_valid_until", ["valid_until"], unique=False)
    op.create_table(
        "article_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("by_id", sa.Integer(), nullable=True),
        sa.Column("by_name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"]),
        sa.ForeignKeyConstraint(["by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("article_id", "version", name="uq_article_version"),
    )
    with op.batch_alter_table("article_versions", schema=None) as batch_op:
        batch_op.create_index("ix_article_versions_article_id", ["article_id"], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE knowledge_index USING fts5(title, keywords, body, tokenize = 'unicode61')")
    else:
        op.execute(
            "CREATE TABLE knowledge_index (article_id integer PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,"
            " document tsvector NOT NULL)"
        )
        op.execute("CREATE INDEX ix_knowledge_index_document ON knowledge_index USING gin (document)")


def downgrade() -> None:
    op.execute("DROP TABLE knowledge_index")
    op.drop_table("article_versions")
    op.drop_table("articles")
