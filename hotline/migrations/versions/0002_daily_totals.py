"""daily running totals behind the performance indicators

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 17:00:00

The totals of a database that predates them are built by `hotline db upgrade` (and
`hotline serve`) right after the migration, with the application's own rules
(hotline.totals.ensure), not copied into this file.
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


def downgrade() -> None:
    op.drop_table("daily_totals")
