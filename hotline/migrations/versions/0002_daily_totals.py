"""daily running totals behind the performance indicators; indexes for their live parts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 17:00:00

The totals of a database that predates them are built by `hotline db upgrade` (and
`hotline serve`) right after the migration, with the application's own rules
(hotline.indicators.totals.ensure), not copied into this file.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "daily_totals",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("metric", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["department_id"], ["departments.id"]),
        sa.PrimaryKeyConstraint("day", "department_id", "metric"),
    )
    # With `role` first, a range of deadlines or replies of main assignments is one index
    # range (the planner otherwise takes the index on role alone and reads every row).
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_assignments_handle_by")
        batch_op.drop_index("ix_assignments_first_replied_at")
        batch_op.create_index("ix_assignments_role_handle_by", ["role", "handle_by"], unique=False)
        batch_op.create_index("ix_assignments_role_first_replied", ["role", "first_replied_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_assignments_role_first_replied")
        batch_op.drop_index("ix_assignments_role_handle_by")
        batch_op.create_index("ix_assignments_first_replied_at", ["first_replied_at"], unique=False)
        batch_op.create_index("ix_assignments_handle_by", ["handle_by"], unique=False)
    op.drop_table("daily_totals")
