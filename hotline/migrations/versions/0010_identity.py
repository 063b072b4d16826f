"""identity: usernames unique in any case, forced password change, session activity

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 13:30:00

users.must_change_password (a password someone else set is changed at the next sign-in);
a unique index on lower(username); web_sessions.last_seen_at (the idle time-out), address
and user_agent (the administrators' list of a user's sessions).

Usernames that differ only in case may exist already: the oldest account keeps its name,
each later one is renamed `<name>.dup<id>` (lower case) and printed, for an administrator to
deactivate or to tell its owner.
"""

import warnings
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hotline.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rename_case_duplicates() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, username FROM users ORDER BY id")).all()
    taken = {name.lower() for _, name in rows}
    seen: set[str] = set()
    for user_id, name in rows:
        key = name.lower()
        if key not in seen:
            seen.add(key)
            continue
        new = f"{key[: 64 - len(f'.dup{user_id}')]}.dup{user_id}"
        while new in taken:
            new = f"x{new}"[:64]
        taken.add(new)
        bind.execute(sa.text("UPDATE users SET username = :new WHERE id = :id"), {"new": new, "id": user_id})
        print(f"migration 0010: the username {name!r} differs only in case from an older one: renamed {new!r}")


def upgrade() -> None:
    _rename_case_duplicates()
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Outside the batch: SQLite's batch mode cannot copy an index on an expression. (A later
    # batch migration that recreates the users table on SQLite must create it again.)
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True)

    # SQLite's batch mode reflects the users table too (a foreign key), and warns that it
    # cannot reflect the index on lower(username): known, and harmless here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*expression-based index")
        with op.batch_alter_table("web_sessions", schema=None) as batch_op:
            batch_op.add_column(sa.Column("last_seen_at", hotline.db.UTCDateTime(timezone=True), nullable=True))
            batch_op.add_column(sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
            batch_op.add_column(sa.Column("user_agent", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        op.execute("UPDATE web_sessions SET last_seen_at = created_at")
        with op.batch_alter_table("web_sessions", schema=None) as batch_op:
            batch_op.alter_column("last_seen_at", existing_type=hotline.db.UTCDateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*expression-based index")
        with op.batch_alter_table("web_sessions", schema=None) as batch_op:
            batch_op.drop_column("user_agent")
            batch_op.drop_column("address")
            batch_op.drop_column("last_seen_at")
    op.drop_index("uq_users_username_lower", table_name="users")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("must_change_password")
