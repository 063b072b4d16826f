"""users: the columns of the old hard lock-out go

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 15:40:00

users.failed_logins and users.locked_until belonged to the lock-out that let anyone lock any
account; sign-in is throttled with growing delays instead (hotline.web.throttle) and the
columns were read nowhere.

SQLite drops a column natively from 3.35 on. An older SQLite goes through batch mode, which
rebuilds the table and cannot copy the index on lower(username) (0010): it is created again.
"""

import sqlite3
import warnings
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hotline.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("failed_logins", "locked_until")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite" or sqlite3.sqlite_version_info >= (3, 35):
        for column in COLUMNS:
            op.execute(f"ALTER TABLE users DROP COLUMN {column}")
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*expression-based index")
        with op.batch_alter_table("users", schema=None) as batch_op:
            for column in COLUMNS:
                batch_op.drop_column(column)
    op.execute("DROP INDEX IF EXISTS uq_users_username_lower")
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True)


def downgrade() -> None:
    op.add_column("users", sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("users", sa.Column("locked_until", hotline.db.UTCDateTime(timezone=True), nullable=True))
