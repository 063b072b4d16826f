"""one scheduler among many workers; flat sweeps

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 16:00:00

`scheduler_leases`: which process runs the scheduler's jobs (hotline.ops.leader).
`calendar_warnings`: the years whose missing holidays the administrators were told of (the
calendar check read the notices for it, unindexed, every minute). `surge_counts`: tickets per
local day, category and community, the surge check's baseline (filled by the check itself for
the days it needs, so nothing is copied here).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hotline.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduler_leases",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=120), nullable=False),
        sa.Column("acquired_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "calendar_warnings",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("warned_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("year"),
    )
    op.create_table(
        "surge_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("street", sa.String(length=50), nullable=False),
        sa.Column("community", sa.String(length=50), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "category_id", "street", "community"),
    )
    op.create_index("ix_surge_counts_key", "surge_counts", ["street", "community", "category_id", "day"])
    # The years already warned about, from the notices sent before this upgrade.
    op.execute(
        "INSERT INTO calendar_warnings (year, warned_at) SELECT CAST(substr(title, 4, 4) AS INTEGER), min(created_at)"
        " FROM notifications WHERE kind = 'calendar' AND title LIKE '缺少 ____ 年节假日数据'"
        " GROUP BY CAST(substr(title, 4, 4) AS INTEGER)"
    )


def downgrade() -> None:
    op.drop_index("ix_surge_counts_key", table_name="surge_counts")
    op.drop_table("surge_counts")
    op.drop_table("calendar_warnings")
    op.drop_table("scheduler_leases")
