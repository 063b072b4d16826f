"""The bulk writer of the demo (and of `hotline import tickets`): rows as the gateway would
have left them, written over one connection, one transaction a batch, in a thread of its own;
on PostgreSQL, a loader's forked workers write their own batches, each over a connection of
its own (Writer.reopen), and the loading process only sets up and finishes (start, close)."""

import os
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from operator import attrgetter
from queue import Empty, Queue, SimpleQueue
from threading import Thread
from typing import Any

from psycopg import postgres
from psycopg.adapt import Dumper
from psycopg.pq import Format
from sqlalchemy import func, inspect, select

from hotline.audit import GENESIS, canonical_details, canonical_of, link
from hotline.crypto import CALLER_HASHES, SEALED_COLUMNS
from hotline.db import UTCDateTime, dialect_insert, foreign_keys, indexes
from hotline.models import (
    Approval,
    Assignment,
    Call,
    Callback,
    Escalation,
    Message,
    Notification,
    RatingInvitation,
    Rectification,
    SupervisionOrder,
    Ticket,
    TicketCounter,
    TicketEvent,
)

# The columns the demo fills, in order; the others get the table's default. The rows the
# demo plays carry attributes of these names (hotline.demo.life), as the models do.
COLUMNS = {
    "tickets": (
        "id", "number", "external_id", "workflow", "type", "category_id", "urgency", "channel", "caller_name",
        "caller_phone", "confidential", "anonymous", "reply_wanted", "title", "content", "street", "community",
        "address", "lat", "lng", "state", "version", "main_department_id", "dispatch_count", "designated",
        "return_from_state", "master_id", "rehandle_count", "answer", "result", "close_reason", "created_by_id",
        "created_at", "updated_at", "dispatched_at", "signed_at", "replied_at", "closed_at", "sign_by", "handle_by",
        "callback_by", "deadlines_provisional", "handle_started_at", "callback_started_at", "extension_days",
        "suspended_seconds", "suspended_at", "due_at", "due_kind", "warn_at", "escalation_step", "next_due_at",
        "invitation_sent_at", "callbacks_exhausted_at", "line",
        # The caller's keyed hashes: computed from the phone and the name (see row_maker).
        *CALLER_HASHES,
    ),
    "ticket_events": (
        "id", "ticket_id", "event", "actor_id", "actor_name", "actor_role", "from_state", "to_state", "at", "details",
        "chain",
    ),
    "assignments": (
        "id", "ticket_id", "department_id", "role", "status", "dispatched_at", "signed_at", "signed_by_id",
        "replied_at", "replied_by_id", "result", "sign_by", "signed_on_time", "returned", "handle_by",
        "first_replied_at", "replied_on_time", "rehandles",
    ),
    "approvals": (
        "id", "ticket_id", "kind", "status", "department_id", "requested_by_id", "requested_at", "reason",
        "reason_code", "basis", "days", "from_state", "decided_by_id", "decided_at", "decision_reason",
    ),
    "callbacks": (
        "id", "ticket_id", "attempt", "reached", "solved", "rating", "comment", "source", "by_id", "at",
        "department_id",
    ),
    "escalations": ("id", "ticket_id", "department_id", "deadline_kind", "deadline_at", "step", "at", "by_scheduler"),
    "supervision_orders": (
        "id", "ticket_id", "department_id", "issued_at", "issued_by_id", "message", "status", "answered_at",
        "answered_by_id", "answer",
    ),
    "notifications": (
        "id", "user_id", "department_id", "role", "kind", "ticket_id", "title", "body", "created_at",
    ),
    "messages": ("id", "channel", "to", "body", "ticket_id", "created_at", "status"),
    "rating_invitations": (
        "id", "ticket_id", "token_hash", "created_at", "expires_at", "used_at", "revoked_at", "sent_by_id",
        "message_id",
    ),
    "rectifications": (
        "id", "ticket_id", "callback_id", "department_id", "status", "opened_at", "due_at", "provisional",
        "verification", "measures", "reported_at", "reported_by_id", "decided_at", "decided_by_id", "next_due_at",
        "decision_reason",
    ),
    "calls": (
        "id", "source", "call_id", "caller_phone", "agent_id", "dialled", "started_at", "created_at", "ticket_id",
    ),
}  # fmt: skip
TABLES = {
    table.name: table
    for table in (Ticket.__table__, TicketEvent.__table__, Assignment.__table__, Approval.__table__,
                  Callback.__table__, Escalation.__table__, SupervisionOrder.__table__, Notification.__table__,
                  Message.__table__, RatingInvitation.__table__, Rectification.__table__, Call.__table__)
}  # fmt: skip


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATES: dict[int, str] = {}  # days since 1970 -> "YYYY-MM-DD "
_CLOCK = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]


def _sqlite_time(value: datetime) -> str:
    """An aware time as hotline.db.UTCDateTime stores it on SQLite: the UTC wall time with
    microseconds (from cached dates and clock times: the loader writes millions)."""
    delta = value - _EPOCH
    date = _DATES.get(delta.days)
    if date is None:
        date = _DATES[delta.days] = f"{_EPOCH + timedelta(days=delta.days):%Y-%m-%d }"
    micro = delta.microseconds
    return date + _CLOCK[delta.seconds] + (f".{micro:06d}" if micro else ".000000")


class Writer:
    """Bulk inserts over one connection, one transaction a batch.

    The rows are plain tuples handed to the driver (SQLite's executemany, PostgreSQL's COPY),
    their values in the form SQLAlchemy would bind: on SQLite the UTC text that
    hotline.db.UTCDateTime stores, on PostgreSQL aware datetimes; JSON as json.dumps writes it (a
    history row's details in their canonical form, hotline.audit.canonical_details).
    """

    def __init__(self, runtime, columns: dict[str, tuple[str, ...]] | None = None) -> None:
        self.db = runtime.db
        # The columns filled, by table: COLUMNS, or another loader's (hotline.ticket_import
        # fills a ticket's source too), the caller's hashes last as in COLUMNS.
        self.columns = {**COLUMNS, **(columns or {})}
        self.keys = self.db.keys
        self.sqlite = self.db.is_sqlite
        self.conn = self.db.engine.connect()
        self.written = dict.fromkeys(TABLES, 0)
        self.sql: dict[str, str] = {}
        self.tail: dict[str, tuple] = {}
        self.keep: dict[str, list[int] | None] = {}
        self.times: dict[str, list[int]] = {}
        self.types: dict[str, list[int]] = {}  # PostgreSQL: the type of each column COPY fills, by table
        quote = self.conn.dialect.identifier_preparer.quote
        inspector = inspect(self.conn)
        for name, table in TABLES.items():
            # The database's columns decide: what it lacks is left out, what the demo does not
            # fill gets the model's default.
            present = {c["name"]: c for c in inspector.get_columns(name)}
            columns = self.columns[name]
            keep = [i for i, c in enumerate(columns) if c in present]
            self.keep[name] = None if len(keep) == len(columns) else keep
            rest = [c for c in present if c not in columns]
            self.tail[name] = tuple(self._default(table, c, present[c]["nullable"]) for c in rest)
            names = [columns[i] for i in keep] + rest
            marks = ", ".join("?" * len(names))
            columns_sql = ", ".join(map(quote, names))
            # PostgreSQL takes the rows through COPY: one stream a table, not a statement a row;
            # in binary, the values sent as the server stores them (a fourth of the text
            # format's CPU here to write them, three fourths of it in the server to read them).
            self.sql[name] = (
                f"INSERT INTO {quote(name)} ({columns_sql}) VALUES ({marks})"
                if self.sqlite
                else f"COPY {quote(name)} ({columns_sql}) FROM STDIN (FORMAT BINARY)"
            )
            if not self.sqlite:
                self.types[name] = self._column_types(name, names)
            self.times[name] = [
                i for i, c in enumerate(columns) if self.sqlite and isinstance(table.c[c].type, UTCDateTime)
            ]
        self.conn.commit()
        self.indexes: list[tuple[str, str, str]] = []  # (name, table, definition) of those built after the load
        self.foreign_keys: list[tuple[str, str, str]] = []  # (table, name, definition) of those added after it
        # For this connection, while it loads: no wait for the disk at each commit (a load cut
        # short is loaded again into a new database), and on SQLite a larger page cache.
        if self.sqlite:
            self._pragmas(cache_size=-262144, synchronous="OFF")
        else:
            self._no_commit_wait()

    def _column_types(self, table: str, names: list[str]) -> list[int]:
        """PostgreSQL: the type oids of a table's columns, in the order given; refused here
        for a type the driver has no binary form of (an enum, a domain), rather than at the
        first COPY. (The values are not checked against them: the rows are the demo's and the
        import's own, made as the models' types want, and the tests write every table.)"""
        query = (
            "SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = %(table)s::regclass "
            "AND attnum > 0 AND NOT attisdropped"
        )
        types = dict(self.conn.exec_driver_sql(query, {"table": table}).all())
        for name in names:
            if types[name] != _JSONTextDumper.oid:
                postgres.adapters.get_dumper_by_oid(types[name], Format.BINARY)
        return [types[name] for name in names]

    def _no_commit_wait(self) -> None:
        self.conn.exec_driver_sql("SET synchronous_commit TO off")
        self.conn.commit()

    @property
    def parallel(self) -> bool:
        """Whether forked workers write their own batches (PostgreSQL: each session its own
        COPY; SQLite takes one writer at a time, so its workers hand their rows over)."""
        return not self.sqlite

    def reopen(self) -> None:
        """In a forked worker: write over a connection of its own. The loading process's
        connection, inherited, is left alone (closing it here would end that session): it is
        kept referenced, and the engine's pool is replaced without closing what it held."""
        _INHERITED.append(self.conn)
        self.db.engine.dispose(close=False)
        self.conn = self.db.engine.connect()
        self.written = dict.fromkeys(TABLES, 0)
        self.indexes = []  # the loading process builds them, after every worker's rows
        self._no_commit_wait()

    def release(self) -> None:
        """In a forked worker, when its batches are written: its connection closed."""
        self.conn.close()

    def write_here(self, batch: Any) -> Any:
        """In a forked worker: write the batch (its own transaction) and keep only what goes
        back to the loading process, the rows written of each table (`batch.written`)."""
        before = dict(self.written)
        self.write(batch)
        batch.written = {name: n - before[name] for name, n in self.written.items()}
        batch.rows = batch.counters = None
        return batch

    def add(self, written: dict[str, int]) -> None:
        """Count the rows a worker wrote (the sequences are moved past them at close)."""
        for name, n in written.items():
            self.written[name] += n

    def _pragmas(self, **values: Any) -> None:
        """Set SQLite pragmas on this connection, outside any transaction (as they must be)."""
        driver = self.conn.connection.dbapi_connection
        for name, value in values.items():
            driver.execute(f"PRAGMA {name}={value}")

    @staticmethod
    def _default(table, name: str, nullable: bool) -> Any:
        default = table.c[name].default if name in table.c else None
        if default is not None and default.is_scalar:
            return default.arg
        if default is None and nullable:
            return None
        raise RuntimeError(f"hotline.demo is out of date: it does not fill {table.name}.{name}")

    def row_maker(self, name: str):
        """A function from a row object (attributes named as the columns) to the tuple to
        insert: times as SQLite stores them, the personal data sealed and the caller hashed
        (hotline.crypto), as the models' column types and hotline.models._hash_caller would."""
        columns = self.columns[name]
        hashed = name == "tickets"
        get = attrgetter(*(columns[: -len(CALLER_HASHES)] if hashed else columns))
        times = self.times[name]
        key = self.keys.active
        sealed = [(columns.index(c), f"{name}.{c}".encode()) for c in SEALED_COLUMNS.get(name, ())]
        if not times and not sealed:
            return get
        # Hashed with the key that seals: a rotation's reload of the key file during the load
        # cannot leave a row sealed with one key and hashed with the other.
        hashes = lru_cache(maxsize=65536)(key.caller_hashes)

        def make(obj: Any) -> tuple:
            row = list(get(obj))
            for i in times:
                if row[i] is not None:
                    row[i] = _sqlite_time(row[i])
            if hashed:
                row += hashes(obj.caller_phone, obj.caller_name).values()
            for i, purpose in sealed:
                if row[i] is not None:
                    row[i] = key.seal(row[i], purpose)
            return tuple(row)

        return make

    def start(self, *, defer: bool = False) -> tuple[dict[str, int], dict[str, int]]:
        """The highest id of each table and the ticket counters, to continue after them.

        With `defer`, when every table written is empty, their secondary indexes (and on
        PostgreSQL their foreign keys) are dropped and made again, from the database's own
        definitions, when the writer closes, as pg_restore does: one sort an index rather than
        an insert into every index for every row, and one join a foreign key rather than a
        lookup of the referenced row for every row (on PostgreSQL a query and a row lock each:
        two thirds of the server's CPU in the COPYs of an import)."""
        with self.conn.begin():
            ids = {
                name: self.conn.execute(select(func.max(table.c.id))).scalar() or 0 for name, table in TABLES.items()
            }
            counters = dict(self.conn.execute(select(TicketCounter.day, TicketCounter.value)).all())
            if defer and not any(ids.values()):
                quote = self.conn.dialect.identifier_preparer.quote
                self.indexes = self._secondary_indexes()
                for name, _, _ in self.indexes:
                    self.conn.exec_driver_sql(f"DROP INDEX {quote(name)}")
                self.foreign_keys = [] if self.sqlite else self._foreign_keys()
                for table, name, _ in self.foreign_keys:
                    self.conn.exec_driver_sql(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
        return ids, counters

    def _foreign_keys(self) -> list[tuple[str, str, str]]:
        """PostgreSQL: the foreign keys of the written tables, with their tables and definitions
        (of one left unchecked, the definition without its NOT VALID)."""
        return [
            (table, name, definition.removesuffix(" NOT VALID"))
            for table, name, definition, _ in foreign_keys(self.conn)
            if table in TABLES
        ]

    def _secondary_indexes(self) -> list[tuple[str, str, str]]:
        """The indexes of the written tables that no constraint owns, with their tables and
        definitions."""
        return [
            (name, table, definition)
            for name, table, definition, owned in indexes(self.conn)
            if table in TABLES and not owned
        ]

    def write(self, batch: "Batch") -> None:
        with self.conn.begin():
            for name, rows in batch.rows.items():
                if rows:
                    keep, tail = self.keep[name], self.tail[name]
                    if keep is not None:
                        rows = [tuple(row[i] for i in keep) for row in rows]
                    if tail:
                        rows = [row + tail for row in rows]
                    if self.sqlite:
                        self.conn.exec_driver_sql(self.sql[name], rows)
                    else:
                        with self.conn.connection.cursor() as cursor:
                            cursor.adapters.register_dumper(_JSONText, _JSONTextDumper)
                            with cursor.copy(self.sql[name]) as copy:
                                copy.set_types(self.types[name])
                                for row in rows:
                                    copy.write_row(row)
                    self.written[name] += len(rows)
            if batch.counters:
                # Batches of one day may commit out of order (workers writing their own): the
                # counter keeps the greatest number given; the days in order, so that two
                # batches lock the rows they share in the same order (no deadlock).
                table = TicketCounter.__table__
                insert = dialect_insert("sqlite" if self.sqlite else "postgresql")(table)
                greatest = func.max if self.sqlite else func.greatest
                upsert = insert.on_conflict_do_update(
                    index_elements=["day"], set_={"value": greatest(table.c.value, insert.excluded.value)}
                )
                days = sorted(batch.counters.items())
                self.conn.execute(upsert, [{"day": day, "value": value} for day, value in days])

    def _finish_side_by_side(self) -> None:
        """PostgreSQL: the indexes and foreign keys dropped at start made again, over one
        session a core, side by side. The foreign keys are first added NOT VALID, at once (no
        row read), then each is validated: that takes SHARE UPDATE EXCLUSIVE on its table
        (which waits for an index build on that same table) and only ROW SHARE on the table it
        refers to, so one session checks a key while another builds an index of another table
        (CREATE INDEX locks its table in SHARE mode, which another CREATE INDEX shares). The
        sessions take the work from one queue, the indexes of the largest tables first, then
        the keys, each statement its own transaction (no lock held past it: no deadlock).
        A statement that fails does not stop the others: every index that can be built is,
        every key the rows keep is checked, and the first failure is raised with the others
        noted on it (a key left unchecked is still enforced on new rows; an upgrade checks it
        again, hotline.migrate.restore_foreign_keys)."""
        quote = self.conn.dialect.identifier_preparer.quote
        rows = self.written
        # (one built or added meanwhile, by an upgrade's restore_indexes or restore_foreign_keys, is kept)
        work = [_if_missing(index[2]) for index in sorted(self.indexes, key=lambda index: -rows.get(index[1], 0))]
        if self.foreign_keys:
            with self.conn.begin():
                present = {key[:2] for key in self._foreign_keys()}
                for table, name, definition in self.foreign_keys:
                    if (table, name) not in present:
                        self.conn.exec_driver_sql(
                            f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition} NOT VALID"
                        )
            keys = sorted(self.foreign_keys, key=lambda key: -rows.get(key[0], 0))
            work += [f"ALTER TABLE {quote(table)} VALIDATE CONSTRAINT {quote(name)}" for table, name, _ in keys]
        queue: SimpleQueue = SimpleQueue()
        for statement in work:
            queue.put(statement)
        sessions = worker_count(len(work), 2) or 1
        failures: list[Exception] = []
        with ThreadPoolExecutor(sessions, thread_name_prefix="bulk-finish") as pool:
            try:
                for finished in [pool.submit(self._finish, queue, failures) for _ in range(sessions)]:
                    finished.result()
            except BaseException:  # an interrupt (it reaches this thread): no statement is started after it
                _drain(queue)
                raise
        if failures:
            first, *others = failures
            for other in others:
                first.add_note(f"also failed: {(str(other).splitlines() or [repr(other)])[0]}")
            raise first

    def _finish(self, queue: SimpleQueue, failures: list[Exception]) -> None:
        """One session of _finish_side_by_side: statements from the queue until it is empty.
        A statement that fails is kept in `failures` and the session goes on; an interrupt
        (here, or in the thread that waits for the sessions) empties the queue, so the other
        sessions stop after their current statement."""
        with self.db.engine.connect() as connection:
            while True:
                try:
                    statement = queue.get_nowait()
                except Empty:
                    return
                try:
                    with connection.begin():
                        # (a key's check runs its join with maintenance_work_mem too)
                        connection.exec_driver_sql("SET LOCAL maintenance_work_mem TO '256MB'")
                        connection.exec_driver_sql("SET LOCAL max_parallel_maintenance_workers TO 0")
                        connection.exec_driver_sql(statement)
                except Exception as exc:
                    failures.append(exc)
                except BaseException:
                    _drain(queue)
                    raise

    def close(self) -> None:
        try:
            if not self.sqlite and any(self.written.values()):
                # The ids were given here: move each sequence past them, before the finish (one
                # that fails leaves the rows there, and the next insert must not reuse an id).
                # (Not if it wrote none: the import sets a writer up before it knows it will write.)
                with self.conn.begin():
                    for name in TABLES:
                        self.conn.exec_driver_sql(
                            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), MAX(id)) FROM {name} "
                            "HAVING MAX(id) IS NOT NULL"
                        )
            if self.sqlite and self.indexes:
                with self.conn.begin():
                    for _, _, definition in self.indexes:
                        self.conn.exec_driver_sql(_if_missing(definition))
            elif self.indexes or self.foreign_keys:
                self._finish_side_by_side()
            self.indexes, self.foreign_keys = [], []
        finally:
            try:  # the connection goes back to the pool as hotline.db set it up
                if self.sqlite:
                    self._pragmas(cache_size=-2000, synchronous="NORMAL")  # hotline.db's
                else:
                    self.conn.rollback()
                    self.conn.exec_driver_sql("RESET synchronous_commit")
                    self.conn.commit()
            finally:
                self.conn.close()


def _drain(queue: SimpleQueue) -> None:
    """Take every statement left off the queue (the sessions stop after their current one)."""
    with suppress(Empty):
        while True:
            queue.get_nowait()


class _JSONText:
    """Only a key for _JSONTextDumper's registration (no value is of this class)."""


class _JSONTextDumper(Dumper):
    """A json column's value in binary COPY: the rows carry their JSON encoded already (the
    text SQLite stores), which binary json is, as bytes; the driver's own dumper would
    encode the text again, as a JSON string."""

    format = Format.BINARY
    oid = postgres.types["json"].oid

    def dump(self, obj: str) -> bytes:
        return obj.encode()


# In a forked worker: the loading process's connection, never used nor closed there.
_INHERITED: list = []


# The most worker processes a bulk load forks.
MAX_WORKERS = 4


def worker_count(n: int, parallel_from: int) -> int:
    """Worker processes for a bulk load of `n` tickets: one a core (at most MAX_WORKERS), none
    below `parallel_from` (starting them would cost more than they save)."""
    return 0 if n < parallel_from else max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def _if_missing(definition: str) -> str:
    """An index's CREATE statement, made to do nothing when the index exists."""
    return _CREATE_INDEX.sub(r"CREATE \1INDEX IF NOT EXISTS ", definition, count=1)


_CREATE_INDEX = re.compile(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+", re.I)


class Pipe:
    """Writes batches in a thread of its own: the database works (SQLite and psycopg let go
    of the GIL meanwhile) while the next batch is played."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self.queue: Queue = Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = Thread(target=self._run, name="demo-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (batch := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.writer.write(batch)
                except BaseException as exc:  # handed to the loader, which raises it
                    self.error = exc

    def put(self, batch: "Batch") -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(batch)

    def close(self) -> None:
        """Wait for the last batch; raise what the writer raised."""
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


class Batch:
    """Rows waiting to be written, as tuples in the order of COLUMNS."""

    # The tables whose rows the ticket's life keeps as objects, by the ticket's attribute.
    CHILDREN = (
        ("assignments", "assignments"),
        ("approvals", "approvals"),
        ("callbacks", "callbacks"),
        ("supervision_orders", "orders"),
        ("messages", "messages"),
        ("rating_invitations", "invitations"),
        ("rectifications", "rectifications"),
        ("calls", "calls"),
    )

    def __init__(self, sqlite: bool, ids: dict[str, int], makers: dict[str, Any]) -> None:
        self.rows: dict[str, list[tuple]] = {name: [] for name in TABLES}
        self.counters: dict[str, int] = {}
        self.dt = _sqlite_time if sqlite else None
        self.ids = ids  # the running ids of the rows numbered only here
        self.makers = makers
        self.places: dict[int, int] = {}  # ticket id -> its row's place in rows["tickets"]
        self.heads: dict[int, str] = {}  # ticket id -> the chain of its last history row

    def __len__(self) -> int:
        return len(self.rows["tickets"])

    def time(self, value: datetime | None) -> Any:
        if value is None or self.dt is None:
            return value
        return self.dt(value)

    def changed(self, tk: Any, event: tuple) -> None:
        """A ticket of this batch changed after it was added (a duplicate merged into it)."""
        self.rows["tickets"][self.places[tk.id]] = self.makers["tickets"](tk)
        self.event(tk.id, event)

    def event(self, ticket_id: int, event: tuple) -> None:
        """A history row: (event, actor, from state, to state, at, details)."""
        name, actor, from_state, to_state, at, details = event
        self.ids["ticket_events"] += 1
        # Each ticket's history is a hash chain (hotline.audit); a ticket's rows are all in its batch.
        # The details are stored as their canonical JSON: encoded once, for the chain and the
        # column (the same value as the engine's json.dumps text, read back).
        text = canonical_details(details)
        content = canonical_of(ticket_id, name, actor.id, actor.username, actor.role, from_state, to_state, at, text)
        chain = self.heads[ticket_id] = link(self.heads.get(ticket_id, GENESIS), content)
        self.rows["ticket_events"].append(
            (self.ids["ticket_events"], ticket_id, name, actor.id, actor.username, actor.role, from_state, to_state,
             at if self.dt is None else self.dt(at), text, chain)
        )  # fmt: skip

    def add(self, tk: Any) -> None:
        """A played ticket and every row its life left."""
        rows, makers, time, ids = self.rows, self.makers, self.time, self.ids
        self.places[tk.id] = len(rows["tickets"])
        rows["tickets"].append(makers["tickets"](tk))
        for event in tk.events:
            self.event(tk.id, event)
        for table, attribute in self.CHILDREN:
            make = makers[table]
            rows[table] += [make(row) for row in getattr(tk, attribute)]
        out = rows["escalations"]
        for (kind, deadline, step), (department_id, at) in tk.escalations.items():
            ids["escalations"] += 1
            out.append((ids["escalations"], tk.id, department_id, kind, time(deadline), step, time(at), True))
        out = rows["notifications"]
        for department_id, role, kind, title, body, at in tk.notices:
            ids["notifications"] += 1
            out.append((ids["notifications"], None, department_id, role, kind, tk.id, title, body, time(at)))
