"""the district's own settings (name, region code) and departments' organisation codes

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 10:00:00

Placeholder, filled in by the district-settings change.
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import hotline.db  # noqa: F401

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
