"""Append-only rows (history, notices, events, escalation steps) written with Core, a table's
at once: one executemany INSERT per table for a unit of work's rows, not an ORM object each.

Rows wait in the session (`add`) and are written, in the order they were added, before
anything in the unit of work could read them: before each flush (so before any autoflushing
query, the ORM's own writes and the commit's flush), before any query through the session
that autoflushes even when the ORM has nothing to flush, and before the commit or a
savepoint's release. A query under `no_autoflush` does not write them, as it flushes nothing
else: what it cannot see yet is what was added since the last flush, as with ORM objects. A
savepoint rolled back takes its rows with it, and gives back the ones it had written of those
waiting when it began.

Only rows that nothing reads back by id in the same unit of work, and that refer only to
rows already written (a ticket with its id), belong here.
"""

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.sql.dml import Insert
from sqlmodel import Session

# session.info key: the rows waiting, by statement.
_ROWS = "hotline.appends.rows"


def add(session: Session, statement: Insert, row: dict[str, Any]) -> None:
    """A row to insert with `statement` before the unit of work reads or commits. Every row
    of one statement has the same keys (they are written with one executemany)."""
    session.info.setdefault(_ROWS, {}).setdefault(statement, []).append(row)


def write(session: Session) -> None:
    """Insert the rows waiting, each statement's in one executemany, in the order added."""
    waiting = session.info.get(_ROWS)
    if not waiting:
        return
    session.info[_ROWS] = {}
    connection = session.connection()
    for statement, rows in waiting.items():
        connection.execute(statement, rows)


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context, _instances) -> None:
    write(session)


@event.listens_for(Session, "do_orm_execute")
def _before_query(state) -> None:
    # What autoflush would do for ORM rows: a read through the session sees the rows added.
    session = state.session
    if session.info.get(_ROWS) and session.autoflush and state.execution_options.get("autoflush", True):
        write(session)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    write(session)


def kept_through_savepoints(key: str, snapshot: Callable[[Any], Any]) -> None:
    """Session state under `session.info[key]` that follows the transaction: a savepoint keeps
    a `snapshot` of it when it begins and puts that back when it is rolled back; the outer
    transaction's end forgets it."""
    saved = f"{key}.saved"

    @event.listens_for(Session, "after_transaction_create")
    def _savepoint(session: Session, transaction) -> None:
        if transaction.nested:
            session.info.setdefault(saved, {})[id(transaction)] = snapshot(session.info.get(key, {}))

    @event.listens_for(Session, "after_soft_rollback")
    def _back_to_savepoint(session: Session, previous_transaction) -> None:
        if not previous_transaction.nested:
            return
        kept = session.info.get(saved, {}).pop(id(previous_transaction), None)
        if kept is not None:
            session.info[key] = kept

    @event.listens_for(Session, "after_transaction_end")
    def _forget(session: Session, transaction) -> None:
        # (a savepoint's snapshot stays until the outer transaction ends: its rollback is
        # announced after its end)
        if transaction.parent is None and not transaction.nested:
            session.info.pop(key, None)
            session.info.pop(saved, None)


kept_through_savepoints(_ROWS, lambda waiting: {statement: list(rows) for statement, rows in waiting.items()})
