"""attachments and calls: a ticket's files (their bytes kept outside the database), and the
incoming calls the telephone system reports (来电弹屏)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hotline.db

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("storage_key", sa.String(length=32), nullable=True),
        sa.Column("thumbnail_key", sa.String(length=32), nullable=True),
        sa.Column("reference", sa.String(length=500), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("removed_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("storage_key"),
        sa.UniqueConstraint("thumbnail_key"),
    )
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attachments_ticket_id"), ["ticket_id"], unique=False)
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("caller_phone", sa.String(), nullable=False),  # sealed (hotline.crypto)
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("dialled", sa.String(length=20), nullable=True),
        sa.Column("started_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "call_id", name="uq_calls_source_call_id"),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index("ix_calls_agent_id_id", ["agent_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_ticket_id"), ["ticket_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calls_ticket_id"))
        batch_op.drop_index("ix_calls_agent_id_id")
    op.drop_table("calls")
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachments_ticket_id"))
    op.drop_table("attachments")
