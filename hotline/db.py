"""Engines, sessions and column types shared by every table.

The session owns the transaction: it commits when the unit of work succeeds and
rolls back when it raises. Services only flush.

On SQLite, a write session starts with ``BEGIN IMMEDIATE``: it takes the write
lock before it reads, so two requests that change one ticket run one after the
other and the second sees what the first wrote (rather than failing on a stale
snapshot). Read sessions begin deferred and never block writers (WAL mode).
On PostgreSQL, the workflow gateway locks the ticket row with SELECT ... FOR UPDATE.

A SQLite database holds citizens' names and phones: its file, and so its -wal and -shm
files, are readable by their owner only (0600).
"""

import contextlib
import gc
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import DateTime, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session

from hotline.crypto import Keyring, attach
from hotline.crypto import load as load_keys


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC; naive values are refused, not guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not UTC:  # (most arrive in UTC already: no conversion then)
            if value.tzinfo is None:
                raise ValueError(f"naive datetime {value!r}: store aware UTC times only")
            value = value.astimezone(UTC)
        # SQLite keeps no zone: store the UTC wall time and restore the zone on read.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def dialect_insert(dialect: str):
    """The INSERT of the database's dialect, with its ON CONFLICT clauses (PostgreSQL's or
    SQLite's: the two spell upserts the same way)."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def foreign_keys(connection) -> list[tuple[str, str, str, bool]]:
    """PostgreSQL: the foreign keys of the current schema, each as (table, name, definition as
    pg_get_constraintdef writes it, whether its rows were checked: false for one added NOT VALID)."""
    query = (
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint "
        "WHERE contype = 'f' AND connamespace = current_schema()::regnamespace ORDER BY 1, 2"
    )
    return [tuple(row) for row in connection.exec_driver_sql(query).all()]


def indexes(connection) -> list[tuple[str, str, str | None, bool]]:
    """The indexes of the database (PostgreSQL: of the current schema), each as (name, table,
    definition as the database writes it, whether a constraint owns it: a primary key's or a
    unique constraint's, made and dropped with it). SQLite writes no definition for those."""
    if connection.dialect.name == "sqlite":
        query = "SELECT name, tbl_name, sql, sql IS NULL FROM sqlite_master WHERE type = 'index' ORDER BY 2, 1"
    else:
        query = (
            "SELECT i.indexname, i.tablename, i.indexdef, EXISTS (SELECT 1 FROM pg_constraint c "
            "WHERE c.conindid = (quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass) "
            "FROM pg_indexes i WHERE i.schemaname = current_schema() ORDER BY 2, 1"
        )
    rows = connection.exec_driver_sql(query).all()
    return [(name, table, definition, bool(owned)) for name, table, definition, owned in rows]


def utcnow() -> datetime:
    """The current time, aware, in UTC (only for edges: logic takes `now` as an argument)."""
    return datetime.now(UTC)


def _keep_private(database: Path) -> None:
    """Make a SQLite database file readable and writable by its owner only: created empty
    with mode 0600 when missing, narrowed to it when found wider, and its -wal and -shm files
    with it. SQLite creates those with the database file's permissions, so a database that
    starts private stays private."""
    os.close(os.open(database, os.O_RDONLY | os.O_CREAT, 0o600))
    for path in (database, database.with_name(f"{database.name}-wal"), database.with_name(f"{database.name}-shm")):
        # Missing (no WAL yet), or someone else's file: nothing this process may change.
        with contextlib.suppress(FileNotFoundError, PermissionError):
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                path.chmod(mode & 0o700)


def _sqlite_engine(url: str, *, immediate: bool, echo: bool) -> Engine:
    engine = create_engine(
        url,
        echo=echo,
        pool_size=20,
        max_overflow=20,
        connect_args={"check_same_thread": False, "timeout": 30},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN, not the driver.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        conn.exec_driver_sql(begin)

    return engine


# The threads holding the collector off, and whether it ran before the first of them came.
_paused = {"holders": 0, "was_enabled": False}
_paused_lock = threading.Lock()


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held off for a piece of bulk work, and let run after.

    A bulk load or a batch of the scheduler's keeps hundreds of thousands of short-lived rows
    alive, none in a reference cycle: the collector's passes during it find nothing to free,
    while the objects that outlive them bring on full passes over the whole process (a tenth
    of a demo load; about 0.2 s every few hundred tickets of an escalation batch). Reference
    counting frees what it always frees. The collector is the process's: with several threads
    in such work at once (the sweep's lanes) it runs again when the last of them is done, and
    stays off if it was off before the first."""
    with _paused_lock:
        if _paused["holders"] == 0:
            _paused["was_enabled"] = gc.isenabled()
            gc.disable()
        _paused["holders"] += 1
    try:
        yield
    finally:
        with _paused_lock:
            _paused["holders"] -= 1
            if _paused["holders"] == 0 and _paused["was_enabled"]:
                gc.enable()


class Database:
    """The engines of one database and the sessions over them."""

    def __init__(self, url: str, *, echo: bool = False, keys: Keyring | None = None) -> None:
        self.url = url
        # The secrets of the personal data (hotline.crypto); loaded first, so that a missing
        # one stops the process before it serves anything.
        self.keys = keys or load_keys(url)
        self._write_lock: threading.RLock | contextlib.nullcontext = contextlib.nullcontext()
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                _keep_private(Path(parsed.database))
            self.engine = _sqlite_engine(url, immediate=True, echo=echo)
            self._write_lock = threading.RLock()
            self.read_engine = _sqlite_engine(url, immediate=False, echo=echo)
        else:
            self.engine = create_engine(url, echo=echo, pool_size=20, max_overflow=20, pool_pre_ping=True)
            self.read_engine = self.engine
        attach(self.engine, self.keys)
        attach(self.read_engine, self.keys)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A write unit of work: commit on success, roll back on error.

        On SQLite the writers of this process queue on a lock first: SQLite admits one
        writer at a time anyway, and a queue in order beats its busy-wait back-off, which
        lets an unlucky request wait a second while later ones overtake it.
        """
        with self._write_lock, Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A read-only unit of work; never takes the write lock."""
        # Closing (not rolling back) ends the transaction and keeps loaded rows readable.
        with Session(self.read_engine, expire_on_commit=False) as session:
            yield session

    def refresh_statistics(self, *, after_bulk: bool = False) -> bool:
        """Fresh statistics for the query planner.

        SQLite: ANALYZE, sampled (a fraction of a second even at millions of rows); without
        it SQLite may pick a barely selective index (an assignment's role) over a selective
        one (its ticket) and read every row. PostgreSQL's autovacuum keeps its own as tables
        change, but only after a while: right after a bulk load (`after_bulk`: the demo, a
        rebuild of the totals) its planner knows nothing of the new rows, so ANALYZE then."""
        if not self.is_sqlite:
            if not after_bulk:
                return False
            with self.engine.connect() as connection:
                connection.exec_driver_sql("ANALYZE")
                connection.commit()
            return True
        with self.session() as session:
            connection = session.connection()
            connection.exec_driver_sql("PRAGMA analysis_limit=1000")
            connection.exec_driver_sql("ANALYZE")
        return True

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
