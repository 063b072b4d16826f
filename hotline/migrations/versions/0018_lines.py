"""tickets.line: the hotline number a ticket came in on (一个号码); calls by start time

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 19:00:00

tickets.line: 12345, or a merged line such as 12315 (workflows/selection.yaml, `lines`);
existing tickets are 12345's. Indexed with the intake time, so that a merged line's tickets
of a period are read apart. calls.started_at is indexed for the supervisors' call analysis.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Natively on SQLite too (op.add_column outside a batch): a rebuild of tickets would trip
    # the foreign keys that refer to it.
    op.add_column(
        "tickets",
        sa.Column("line", sqlmodel.sql.sqltypes.AutoString(length=20), server_default="12345", nullable=False),
    )
    op.create_index("ix_tickets_line_created", "tickets", ["line", "created_at"], unique=False)
    op.create_index("ix_calls_started_at", "calls", ["started_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_calls_started_at", table_name="calls")
    op.drop_index("ix_tickets_line_created", table_name="tickets")
    # Natively (SQLite 3.35 and later), as 0013 does.
    op.execute("ALTER TABLE tickets DROP COLUMN line")
