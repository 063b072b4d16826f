"""outside platforms: accounts with a source, tickets keyed by (source, external_id), ratings from outside

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 10:00:00

Placeholder, filled in by the city-link change.
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import hotline.db  # noqa: F401

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
