"""Leader election: one process among many runs the scheduler's jobs.

Every `serve` worker with the embedded scheduler, and every `hotline scheduler`, builds a
scheduler whose jobs stay paused until this process leads; a `Leadership.tick`, every third
of the lease, takes or keeps the lead and resumes or pauses the jobs accordingly.

- PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) held on a connection
  of its own, outside the pool. The server releases it when that session ends, at once when
  the process dies (kill -9 closes its socket) or when TCP keepalives find the peer gone. Each
  tick checks the connection (`SELECT 1`): a leader whose connection failed stops at once.
- SQLite: a lease row (`scheduler_leases`), taken in a write transaction when it is missing,
  expired or ours, renewed every tick, and given up on a clean stop. A leader that dies leaves
  it to expire: another process takes over within the lease (30 s by default).

On both, the leader writes the lease row, so every process (and /readyz) knows who leads. The
jobs themselves stay safe if two processes ever ran them at once (a leader paused past its
lease): the sweep locks what it escalates, and the escalation table's unique key is the last
guard; the lead only keeps the work from being done twice.
"""

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, create_engine, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from hotline.db import Database, dialect_insert, utcnow
from hotline.models import SchedulerLease

log = logging.getLogger("hotline.leader")

NAME = "scheduler"
# The advisory lock's key: "hotline1" as a 32-bit number (any constant other programs
# sharing the database do not use).
LOCK_KEY = 0x686C3031
# TCP keepalives on the lock's connection: a leader's machine that vanishes without closing
# its socket loses the lock within about 25 s.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}


def holder_name() -> str:
    """This process, as the lease names it: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Lease:
    holder: str
    acquired_at: datetime
    expires_at: datetime


def current_lease(db: Database, now: datetime | None = None) -> Lease | None:
    """The scheduler's leader as the lease row tells it, None when no lease is current."""
    now = now or utcnow()
    with db.read_session() as session:
        row = session.execute(select(SchedulerLease).where(SchedulerLease.name == NAME)).scalar_one_or_none()
    if row is None or row.expires_at <= now:
        return None
    return Lease(row.holder, row.acquired_at, row.expires_at)


class Leadership:
    """This process's part in the election. `tick()` takes or keeps the lead and says whether
    this process leads; `on_change(leading)` is called when that changes."""

    def __init__(self, db: Database, lease_seconds: float, on_change=None) -> None:
        self.db = db
        self.lease = timedelta(seconds=lease_seconds)
        self.holder = holder_name()
        self.on_change = on_change
        self.leading = False
        self._conn: Connection | None = None  # PostgreSQL: the lock's own session
        self._engine = None
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- the tick

    def tick(self) -> bool:
        """Take or keep the lead (or lose it); returns whether this process leads now."""
        with self._lock:
            try:
                leading = self._hold_lock() if not self.db.is_sqlite else True
                leading = leading and self._write_lease(utcnow(), force=not self.db.is_sqlite)
            except Exception:
                log.exception("leader election: the database did not answer; not leading")
                self._drop_lock()
                leading = False
            self._set(leading)
            return leading

    def _set(self, leading: bool) -> None:
        if leading == self.leading:
            return
        self.leading = leading
        log.info("scheduler: %s (%s)", "leading" if leading else "not leading", self.holder)
        if self.on_change is not None:
            self.on_change(leading)

    def _write_lease(self, now: datetime, *, force: bool) -> bool:
        """Write the lease row as ours, if it is missing, expired or ours (always, with
        `force`: the advisory lock already decided). Whether it is ours now."""
        table = SchedulerLease.__table__
        values = {"holder": self.holder, "renewed_at": now, "expires_at": now + self.lease}
        stmt = dialect_insert(self.db.dialect)(table).values(name=NAME, acquired_at=now, **values)
        update = {
            **{k: stmt.excluded[k] for k in values},
            # A new holder's own start; a renewal keeps the first.
            "acquired_at": case(
                (table.c.holder == stmt.excluded.holder, table.c.acquired_at), else_=stmt.excluded.acquired_at
            ),
        }
        where = None if force else (table.c.holder == stmt.excluded.holder) | (table.c.expires_at <= now)
        stmt = stmt.on_conflict_do_update(index_elements=[table.c.name], set_=update, where=where)
        with self.db.session() as session:
            session.execute(stmt)
            holder = session.execute(select(SchedulerLease.holder).where(SchedulerLease.name == NAME)).scalar_one()
        return holder == self.holder

    # ---------------------------------------------------------------- PostgreSQL's lock

    def _hold_lock(self) -> bool:
        """Whether this process holds the advisory lock, taking it if it is free."""
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))  # the health check of the lock's session
                return True
            except Exception:
                log.warning("scheduler: the leader's lock connection failed; the lock is lost")
                self._drop_lock()
                return False
        if self._engine is None:
            self._engine = create_engine(
                self.db.url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args=KEEPALIVES
            )
        conn = self._engine.connect()
        if conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar_one():
            self._conn = conn
            return True
        conn.close()
        return False

    def _drop_lock(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()  # ends the session, and with it the lock
            except Exception:
                log.debug("closing the lock's connection failed", exc_info=True)
            self._conn = None

    # ---------------------------------------------------------------- stopping

    def resign(self) -> None:
        """Give the lead up (a clean stop): the others take over at their next tick."""
        with self._lock:
            if self.leading:
                try:
                    with self.db.session() as session:
                        row = session.get(SchedulerLease, NAME)
                        if row is not None and row.holder == self.holder:
                            row.expires_at = utcnow()
                except Exception:
                    log.exception("giving up the scheduler's lease failed; it expires by itself")
            self._drop_lock()
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
            self._set(False)
