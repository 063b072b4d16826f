"""assignments: the scheduler watches a community's own clocks (二级派单)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 19:00:00

assignments.next_due_at: when the scheduler next looks at a community's part of a ticket (its
sign-by, then its handle-by, inside the street office's), indexed so a sweep reads only the
parts that are due; assignments.escalation_step: the steps of the community's ladder done for
its running clock. Both added natively. A part still running is due at once: the first sweep
works out its next step (and takes those already due).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hotline.db

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("assignments", sa.Column("next_due_at", hotline.db.UTCDateTime(timezone=True), nullable=True))
    op.add_column("assignments", sa.Column("escalation_step", sa.Integer(), nullable=False, server_default="0"))
    op.create_index(op.f("ix_assignments_next_due_at"), "assignments", ["next_due_at"], unique=False)
    op.execute(
        "UPDATE assignments SET next_due_at = dispatched_at WHERE role = 'sub' AND status IN ('dispatched', 'signed')"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_assignments_next_due_at"), table_name="assignments")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_column("escalation_step")
        batch_op.drop_column("next_due_at")
