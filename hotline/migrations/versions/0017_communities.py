"""departments: a community (社区) names its street office, for second-level dispatch

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 16:00:00

departments.parent_id: a community's street office (街道), which may pass it tickets (二级派单,
docs/workflow.md). Existing departments keep NULL: the units the centre dispatches to.
A community's part in a ticket is an assignment with the role `sub`; assignments.role is
free text (8 characters), so it needs no change.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # Natively: a batch rebuild would drop departments, which the tickets refer to.
        if "parent_id" not in {c["name"] for c in sa.inspect(bind).get_columns("departments")}:
            op.execute("ALTER TABLE departments ADD COLUMN parent_id INTEGER REFERENCES departments (id)")
        op.create_index("ix_departments_parent_id", "departments", ["parent_id"], unique=False)
        return
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_departments_parent_id"), ["parent_id"], unique=False)
        batch_op.create_foreign_key("fk_departments_parent_id", "departments", ["parent_id"], ["id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite drops no column that is a foreign key, and rebuilding departments is refused
        # while tickets refer to it: the column stays, nullable and unknown to the older code
        # (an upgrade again finds it there).
        op.drop_index("ix_departments_parent_id", table_name="departments")
        return
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.drop_constraint("fk_departments_parent_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_departments_parent_id"))
        batch_op.drop_column("parent_id")
