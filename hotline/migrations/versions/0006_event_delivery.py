"""events for other systems: per-ticket sequence, subscriptions and deliveries

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 10:00:00

The outbox becomes the event log other systems read: each event gets an id for the outside
(`uid`), its ticket and that ticket's `sequence`, and who it concerns (`departments`,
`source`); delivery state moves to `deliveries`, one row per event and subscription.
Events written before this revision keep their payloads and get ids of their own.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hotline.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("secret", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("previous_secret", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("previous_secret_until", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["department_id"], ["departments.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uid", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.add_column(sa.Column("ticket_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("ticket_number", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch_op.add_column(sa.Column("sequence", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("departments", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column("recorded_at", hotline.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("fanned_out", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.execute(
        "UPDATE outbox SET uid = 'msg_legacy_' || id, ticket_number = key, recorded_at = created_at,"
        " ticket_id = (SELECT t.id FROM tickets t WHERE t.number = outbox.key)"
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("uid", existing_type=sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False)
        batch_op.alter_column("recorded_at", existing_type=hotline.db.UTCDateTime(timezone=True), nullable=False)
        batch_op.alter_column(
            "departments", existing_type=sqlmodel.sql.sqltypes.AutoString(length=200), server_default=None
        )
        batch_op.alter_column("fanned_out", existing_type=sa.Boolean(), server_default=None)
        batch_op.drop_index("ix_outbox_delivered_at")
        batch_op.create_index(
            "ix_outbox_not_fanned_out",
            ["id"],
            unique=False,
            sqlite_where=sa.text("fanned_out = 0"),
            postgresql_where=sa.text("NOT fanned_out"),
        )
        batch_op.create_index("ix_outbox_ticket_id", ["ticket_id"], unique=False)
        batch_op.create_unique_constraint("uq_outbox_uid", ["uid"])
        batch_op.create_foreign_key("fk_outbox_ticket_id", "tickets", ["ticket_id"], ["id"])
        batch_op.drop_column("attempts")
        batch_op.drop_column("delivered_at")
        batch_op.drop_column("key")
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("lease_until", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("last_attempt_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["outbox.id"]),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscription_id", "event_id", name="uq_delivery_event"),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_due", ["status", "next_attempt_at", "id"], unique=False)
        batch_op.create_index("ix_deliveries_event_id", ["event_id"], unique=False)
        batch_op.create_index("ix_deliveries_last_attempt", ["last_attempt_at"], unique=False)
        batch_op.create_index("ix_deliveries_ticket_order", ["subscription_id", "ticket_id", "sequence"], unique=False)
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_sequence", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.alter_column("event_sequence", existing_type=sa.Integer(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("event_sequence")
    op.drop_table("deliveries")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("delivered_at", hotline.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
    op.execute("UPDATE outbox SET key = coalesce(ticket_number, '')")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("key", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("attempts", existing_type=sa.Integer(), server_default=None)
        batch_op.drop_constraint("fk_outbox_ticket_id", type_="foreignkey")
        batch_op.drop_constraint("uq_outbox_uid", type_="unique")
        batch_op.drop_index("ix_outbox_ticket_id")
        batch_op.drop_index("ix_outbox_not_fanned_out")
        batch_op.create_index("ix_outbox_delivered_at", ["delivered_at"], unique=False)
        added = ("fanned_out", "recorded_at", "source", "departments", "sequence", "ticket_number", "ticket_id", "uid")
        for column in added:
            batch_op.drop_column(column)
    op.drop_table("subscriptions")
