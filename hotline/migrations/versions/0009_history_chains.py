"""every ticket's history a hash chain

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 14:00:00

`ticket_events.chain`: SHA-256 of the ticket's previous chain and the row's content
(hotline.audit); the rows already there are sealed here, ticket by ticket, in id order. The
index on the ticket becomes one on (ticket, id): the chain's last link and the check read
a ticket's rows in order.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain", sa.String(length=64), server_default="", nullable=False))
        batch_op.drop_index("ix_ticket_events_ticket_id")
        batch_op.create_index("ix_ticket_events_ticket_id_id", ["ticket_id", "id"], unique=False)
    _seal_existing()


def _seal_existing() -> None:
    from hotline.audit import GENESIS, canonical, link
    from hotline.db import UTCDateTime

    bind = op.get_bind()
    events = sa.table(
        "ticket_events",
        sa.column("id", sa.Integer),
        sa.column("ticket_id", sa.Integer),
        sa.column("event", sa.String),
        sa.column("actor_id", sa.Integer),
        sa.column("actor_name", sa.String),
        sa.column("actor_role", sa.String),
        sa.column("from_state", sa.String),
        sa.column("to_state", sa.String),
        sa.column("at", UTCDateTime(timezone=True)),
        sa.column("details", sa.JSON),
        sa.column("chain", sa.String),
    )
    update = events.update().where(events.c.id == sa.bindparam("row_id")).values(chain=sa.bindparam("sealed"))
    after, ticket, previous = (0, 0), None, GENESIS
    while True:
        rows = bind.execute(
            sa.select(events)
            .where(sa.tuple_(events.c.ticket_id, events.c.id) > after)
            .order_by(events.c.ticket_id, events.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        sealed = []
        for r in rows:
            if r.ticket_id != ticket:
                ticket, previous = r.ticket_id, GENESIS
            content = canonical(
                r.ticket_id, r.event, r.actor_id, r.actor_name, r.actor_role, r.from_state, r.to_state, r.at, r.details
            )
            previous = link(previous, content)
            sealed.append({"row_id": r.id, "sealed": previous})
        bind.execute(update, sealed)
        after = (rows[-1].ticket_id, rows[-1].id)


def downgrade() -> None:
    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_events_ticket_id_id")
        batch_op.create_index("ix_ticket_events_ticket_id", ["ticket_id"], unique=False)
        batch_op.drop_column("chain")
