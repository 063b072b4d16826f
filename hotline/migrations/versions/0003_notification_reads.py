"""notices read by each person, not once for a whole department

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 15:00:00

A notice to a department's handlers used to carry one `read_at`: the first of them to
read it read it for all. Reads are now kept per user (`notification_reads`), with a
per-user watermark (`users.notices_read_before`) for "mark all as read". Existing users
get the time of this upgrade as their watermark: what was sent before it counts as read.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import hotline.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_reads",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("read_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("user_id", "notification_id"),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notices_read_before", hotline.db.UTCDateTime(timezone=True), nullable=True))
    users = sa.table("users", sa.column("notices_read_before", hotline.db.UTCDateTime(timezone=True)))
    op.execute(users.update().values(notices_read_before=datetime.now(UTC)))
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_department_role")
        batch_op.drop_index("ix_notifications_user_id")
        batch_op.create_index(
            "ix_notifications_department_role_created", ["department_id", "role", "created_at"], unique=False
        )
        batch_op.create_index("ix_notifications_user_created", ["user_id", "created_at"], unique=False)
        batch_op.drop_column("read_at")
    if op.get_bind().dialect.name == "postgresql":
        # Which (department, role) pairs occur together: without it PostgreSQL multiplies the
        # two columns' odds, expects rows for a pair that has none (role-wide notices to
        # handlers), and walks the created_at index instead of the addressee index (10 ms
        # instead of 0.1 ms per way at a million tickets).
        op.execute("CREATE STATISTICS st_notifications_addressee (mcv) ON department_id, role FROM notifications")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS st_notifications_addressee")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("read_at", hotline.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_index("ix_notifications_user_created")
        batch_op.drop_index("ix_notifications_department_role_created")
        batch_op.create_index("ix_notifications_user_id", ["user_id"], unique=False)
        batch_op.create_index("ix_notifications_department_role", ["department_id", "role"], unique=False)
    # The shared mark again: read when anyone read it.
    op.execute(
        "UPDATE notifications SET read_at = (SELECT min(r.read_at) FROM notification_reads r"
        " WHERE r.notification_id = notifications.id)"
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("notices_read_before")
    op.drop_table("notification_reads")
