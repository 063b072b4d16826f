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

from typing import Any

from sqlalchemy import event
from sqlalchemy.sql.dml import Insert
from sqlmodel import Session

# session.info keys: the rows waiting, by statement; what was waiting when each savepoint began.
_ROWS = "hotline.appends.rows"
_SAVED = "hotline.appends.saved"


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


@event.listens_for(Session, "after_transaction_create")
def _savepoint(session: Session, transaction) -> None:
    if transaction.nested:
        waiting = {statement: list(rows) for statement, rows in session.info.get(_ROWS, {}).items()}
        session.info.setdefault(_SAVED, {})[id(transaction)] = waiting


@event.listens_for(Session, "after_soft_rollback")
def _back_to_savepoint(session: Session, previous_transaction) -> None:
    if not previous_transaction.nested:
        return
    kept = session.info.get(_SAVED, {}).pop(id(previous_transaction), None)
    if kept is not None:
        session.info[_ROWS] = kept


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction) -> None:
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_ROWS, None)
        session.info.pop(_SAVED, None)
