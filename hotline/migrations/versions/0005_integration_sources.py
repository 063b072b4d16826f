"""outside platforms: accounts with a source, tickets keyed by (source, external_id), ratings from outside

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 10:00:00

System accounts of outside platforms carry a `source` (users.source). A ticket carries the
source it came from (tickets.source: the account's source, or "hotline" for the centre's own
intake, which existing tickets get), and an outside platform's id is unique per source: the
unique key on tickets.external_id becomes one on (source, external_id). What a platform sent
that the district does not know is kept in tickets.source_details. A rating from the rating
system is a callback with its channel and its own id (callbacks.channel, callbacks.external_id,
unique).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# SQLite gave the old unique key on tickets.external_id no name; batch mode finds it by this one.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _old_external_id_key() -> str:
    return "tickets_external_id_key" if op.get_bind().dialect.name == "postgresql" else "uq_tickets_external_id"


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=32), nullable=True))
    with op.batch_alter_table("tickets", schema=None, naming_convention=NAMING) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=32), server_default="hotline", nullable=False))
        batch_op.add_column(sa.Column("source_details", sa.JSON(), nullable=True))
        batch_op.drop_constraint(_old_external_id_key(), type_="unique")
        batch_op.create_unique_constraint("uq_tickets_source_external_id", ["source", "external_id"])
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("external_id", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint("uq_callbacks_external_id", ["external_id"])


def downgrade() -> None:
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.drop_constraint("uq_callbacks_external_id", type_="unique")
        batch_op.drop_column("external_id")
        batch_op.drop_column("channel")
    with op.batch_alter_table("tickets", schema=None, naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint("uq_tickets_source_external_id", type_="unique")
        batch_op.create_unique_constraint(_old_external_id_key(), ["external_id"])
        batch_op.drop_column("source_details")
        batch_op.drop_column("source")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("source")
