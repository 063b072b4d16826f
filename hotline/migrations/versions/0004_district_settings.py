"""the district's own settings (name, region code) and departments' organisation codes

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 10:00:00

The district's name lived only in the HOTLINE_DISTRICT_NAME setting, so a server started
without it named another district than the data it served. It now lives with the data, in
`district_settings` (one row, written by the demo loader and the administrators' page), with
the district's 12-digit administrative region code (行政区划代码); the setting stays as the
fallback when the table holds no name. Departments gain their 18-character organisation code
(统一社会信用代码). Both codes go with the ratings to the national rating system.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hotline.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "district_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True),
        sa.Column("region_code", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=True),
        sa.Column("updated_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_district_settings_one_row"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("org_code", sqlmodel.sql.sqltypes.AutoString(length=18), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.drop_column("org_code")
    op.drop_table("district_settings")
