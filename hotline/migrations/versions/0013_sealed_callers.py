"""tickets, messages, outbox: the callers' names and phones sealed at rest, keyed hashes beside

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 16:10:00

tickets.caller_name, tickets.caller_phone and messages.to hold AES-256-GCM ciphertext
(hotline.crypto), longer than the values: unbounded on PostgreSQL (SQLite bounds no text);
outbox.payload (an event's ticket names its caller) a sealed JSON string.
The keyed hashes of the phone, of its last four digits and of the name take the lookups; the
index on the phone goes (a sealed value is never looked up). Every value already stored is
sealed here, with the key the settings give (HOTLINE_SECRET_KEY, HOTLINE_KEY_FILE, or on
SQLite the key file beside the database): `hotline db upgrade` must run with the servers'
key.
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hotline import crypto

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HASHES = ("caller_phone_hash", "caller_tail_hash", "caller_name_hash")
# The tables with sealed columns at this revision (later ones seal their own from the start).
TABLES = ("tickets", "messages", "outbox")
WIDENED = (("tickets", "caller_name", 50), ("tickets", "caller_phone", 30), ("messages", "to", 30))


def _keyring(bind) -> crypto.Keyring:
    try:
        return crypto.keyring_of(bind)
    except crypto.SecretKeyError:  # alembic's own engine (the `alembic` command)
        return crypto.load(bind.engine.url.render_as_string(hide_password=False))


def upgrade() -> None:
    bind = op.get_bind()
    for name in HASHES:
        op.add_column("tickets", sa.Column(name, sa.String(length=32), nullable=True))
        op.create_index(f"ix_tickets_{name}", "tickets", [name])
    op.drop_index("ix_tickets_caller_phone", table_name="tickets")
    if bind.dialect.name != "sqlite":
        for table, column, _ in WIDENED:
            op.alter_column(table, column, type_=sa.String())
    crypto.reseal(bind, _keyring(bind), commit=False, tables=TABLES)


def downgrade() -> None:
    bind = op.get_bind()
    ring = _keyring(bind)
    for table in TABLES:
        for column in crypto.SEALED_COLUMNS[table]:
            kind = sa.JSON if (table, column) in crypto.JSON_COLUMNS else sa.String
            t = sa.table(table, sa.column("id", sa.Integer), sa.column(column, kind))
            rows = bind.execute(sa.select(t.c.id, t.c[column]).where(t.c[column].is_not(None))).all()
            opened = [
                {"b_id": i, "v": ring.open(v, f"{table}.{column}".encode())}
                for i, v in rows
                if isinstance(v, str) and ring.key_id(v)
            ]
            if kind is sa.JSON:
                opened = [{**o, "v": json.loads(o["v"])} for o in opened]
            if opened:
                stmt = t.update().where(t.c.id == sa.bindparam("b_id")).values({column: sa.bindparam("v")})
                bind.execute(stmt, opened)
    if bind.dialect.name != "sqlite":
        for table, column, length in WIDENED:
            op.alter_column(table, column, type_=sa.String(length=length))
    op.create_index("ix_tickets_caller_phone", "tickets", ["caller_phone"])
    for name in HASHES:
        op.drop_index(f"ix_tickets_{name}", table_name="tickets")
        # Natively (SQLite 3.35 and later): a batch rebuild of tickets would trip its foreign keys.
        op.execute(f"ALTER TABLE tickets DROP COLUMN {name}")
