"""events for other systems: per-ticket sequence, subscriptions and deliveries

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 10:00:00

Placeholder, filled in by the delivery change.
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import hotline.db  # noqa: F401

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
