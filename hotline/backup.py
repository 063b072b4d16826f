"""Backups while serving, and restores (数据备份恢复): `hotline backup PATH`, `hotline restore PATH`.

SQLite: the online backup API copies every page in one read transaction, so the copy is the
database as it was at one moment, however much the server writes meanwhile (in WAL mode
readers and the writer do not wait for each other); the copy is a single file, checked with
`PRAGMA integrity_check` before it takes its name. A restore runs the same API the other way
(never a file copy over a database that may have open connections).

PostgreSQL: `pg_dump --format=custom`, run on a snapshot exported by a transaction of this
process, so the row counts printed are those of the dump; `pg_restore` brings it back in one
transaction.

A backup is written readable by its owner only (0600), under a temporary name beside PATH,
and takes PATH's name only when complete: an interrupted backup never leaves a file that
looks like one.
"""

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, make_url

from hotline import models
from hotline.db import Database
from hotline.errors import Conflict, HotlineError
from hotline.migrate import alembic_config

# The tables whose rows a backup's summary counts.
MAIN_TABLES = ("tickets", "ticket_events", "outbox", "users", "articles")
# Tables `hotline db upgrade` fills by itself: rows there do not make a database "not empty".
SEEDED = {"calendar_days", "calendar_years"}
SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"


@dataclass
class BackupReport:
    """What a backup wrote."""

    path: Path
    tables: int
    counts: dict[str, int] = field(default_factory=dict)
    size: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        rows = ", ".join(f"{name} {n:,}" for name, n in self.counts.items())
        return [
            f"wrote {self.path} ({self.size / 1_048_576:.1f} MiB) in {self.seconds:.1f} s",
            f"{self.tables} tables; {rows}",
        ]


# --------------------------------------------------------------------------- backup


def backup(db: Database, path: Path, *, force: bool = False) -> BackupReport:
    """A consistent copy of the database at `path` (0600), taken while it serves."""
    path = Path(path)
    if path.exists() and not force:
        raise Conflict(f"{path} exists: choose another name, or replace it with --force")
    if not path.parent.is_dir():
        raise HotlineError(f"{path.parent} is not a directory")
    started = time.monotonic()
    with _partial(path, force=force) as partial:
        report = _sqlite_backup(db, partial) if db.is_sqlite else _pg_backup(db, partial)
    report.path, report.size, report.seconds = path, path.stat().st_size, time.monotonic() - started
    return report


@contextlib.contextmanager
def _partial(path: Path, *, force: bool) -> Iterator[Path]:
    """A temporary file beside `path` (created 0600), which takes `path`'s name if the block
    succeeds and is removed if it fails."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(fd)
    partial = Path(name)
    try:
        yield partial
        with open(partial, "rb") as file:
            os.fsync(file.fileno())
        if force:
            os.replace(partial, path)
        else:
            try:
                os.link(partial, path)  # refuses to replace a file that appeared meanwhile
            except FileExistsError:
                raise Conflict(f"{path} exists: choose another name, or replace it with --force") from None
    finally:
        partial.unlink(missing_ok=True)


def _sqlite_file(db: Database) -> Path:
    database = make_url(db.url).database
    if not database or database == ":memory:":
        raise HotlineError("an in-memory database cannot be backed up or restored")
    return Path(database)


def _sqlite_backup(db: Database, partial: Path) -> BackupReport:
    source_path = _sqlite_file(db)
    if not source_path.is_file() or source_path.stat().st_size == 0:
        raise HotlineError(f"no database at {source_path}")
    source = sqlite3.connect(source_path, timeout=30)
    target = sqlite3.connect(partial)
    try:
        # One step (pages=-1): one read transaction over the whole copy, hence one moment.
        source.backup(target)
        # A single self-contained file, whatever the source's journal mode.
        target.execute("PRAGMA journal_mode=DELETE")
        problems = [row[0] for row in target.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise HotlineError(f"the copy failed its integrity check: {'; '.join(problems[:5])}")
        tables = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        names = [row[0] for row in target.execute(tables)]
        counts = {t: target.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in MAIN_TABLES if t in names}
    except sqlite3.Error as exc:
        raise HotlineError(f"the backup of {source_path} failed: {exc}") from None
    finally:
        target.close()
        source.close()
    return BackupReport(partial, tables=len(names), counts=counts)


def _pg_backup(db: Database, partial: Path) -> BackupReport:
    with db.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with connection.begin():
            pg_dump = pg_tool("pg_dump", _server_major(connection))
            # pg_dump reads the database as this transaction sees it, and so do the counts.
            snapshot = connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            names = _tables(connection)
            counts = {t: connection.exec_driver_sql(f'SELECT count(*) FROM "{t}"').scalar_one() for t in MAIN_TABLES}
            counts = {t: n for t, n in counts.items() if t in names}
            args, env = _libpq(db.url)
            with open(partial, "wb") as out:
                done = subprocess.run(
                    [pg_dump, "--format=custom", f"--snapshot={snapshot}", *args],
                    stdout=out,
                    stderr=subprocess.PIPE,
                    env=env,
                    text=False,
                )
            if done.returncode != 0:
                raise HotlineError(f"pg_dump failed: {done.stderr.decode(errors='replace').strip()}")
    return BackupReport(partial, tables=len(names), counts=counts)


# --------------------------------------------------------------------------- restore


def restore(db: Database, path: Path, *, force: bool = False) -> str | None:
    """Replace the configured database's contents with the backup at `path` (the server must
    be stopped). Returns a note when the restored schema is older than this version's."""
    path = Path(path)
    if not path.is_file():
        raise HotlineError(f"no backup at {path}")
    with open(path, "rb") as file:
        head = file.read(len(SQLITE_MAGIC))
    kind = "sqlite" if head == SQLITE_MAGIC else "postgresql" if head.startswith(PG_DUMP_MAGIC) else None
    if kind is None:
        raise HotlineError(f"{path} is neither a SQLite database nor a pg_dump archive")
    if kind != db.dialect:
        raise HotlineError(f"{path} is a {kind} backup; the configured database is {db.dialect}")
    held = _rows_held(db)
    if held and not force:
        named = ", ".join(held[:3]) + (", …" if len(held) > 3 else "")
        raise Conflict(
            f"the configured database is not empty ({len(held)} tables hold rows: {named}): "
            "restore into an empty one, or replace it with --force"
        )
    if db.is_sqlite:
        _sqlite_restore(db, path)
    else:
        _pg_restore(db, path, replace=force)
    return _schema_note(db)


def _rows_held(db: Database) -> list[str]:
    """The tables of the configured database that hold rows (those the migrations seed aside)."""
    with db.read_engine.connect() as connection:
        present = _tables(connection)
        held = [
            t
            for t in models.SQLModel.metadata.tables
            if t in present
            and t not in SEEDED
            and connection.execute(text(f'SELECT EXISTS (SELECT 1 FROM "{t}")')).scalar_one()
        ]
        connection.rollback()
    # The tables people know first.
    return sorted(held, key=lambda t: (t not in MAIN_TABLES, t))


def _sqlite_restore(db: Database, path: Path) -> None:
    # The file is there, private, since the configuration's Database was made (hotline.db).
    target_path = _sqlite_file(db)
    db.dispose()
    source = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        problems = [row[0] for row in source.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise HotlineError(f"{path} failed its integrity check: {'; '.join(problems[:5])}")
        target = sqlite3.connect(target_path, timeout=30)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=WAL")
        finally:
            target.close()
    except sqlite3.Error as exc:
        raise HotlineError(f"restoring into {target_path} failed: {exc} (is the server stopped?)") from None
    finally:
        source.close()


def _pg_restore(db: Database, path: Path, *, replace: bool) -> None:
    with db.engine.connect() as connection:
        pg_restore = pg_tool("pg_restore", _server_major(connection))
        # Replace means replace: tables the backup does not have (a newer schema's) go too.
        tables = _tables(connection) if replace else set()
        if tables:
            names = ", ".join(f'public."{t}"' for t in sorted(tables))
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {names} CASCADE")
        connection.commit()
    db.dispose()
    args, env = _libpq(db.url)
    done = subprocess.run(
        [pg_restore, "--clean", "--if-exists", "--no-owner", "--no-acl", "--single-transaction", *args, str(path)],
        capture_output=True,
        env=env,
        text=True,
    )
    if done.returncode != 0:
        raise HotlineError(f"pg_restore failed: {done.stderr.strip()}")


def _schema_note(db: Database) -> str | None:
    """None when the restored schema is this version's; a note when it is older; an error when
    it is not a schema this version knows."""
    script = ScriptDirectory.from_config(alembic_config(db.url))
    engine = create_engine(db.url)
    try:
        with engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    head = script.get_current_head()
    if revision == head:
        return None
    if revision is None:
        raise HotlineError("the restored database has no migration revision: it is not a hotline database")
    known = {r.revision for r in script.walk_revisions()}
    if revision not in known:
        raise HotlineError(
            f"the restored database is at revision {revision}, which this version does not know "
            "(a backup of a newer hotline): run that version"
        )
    return (
        f"the restored database is at revision {revision}, older than this version's {head}: run `hotline db upgrade`"
    )


# --------------------------------------------------------------------------- PostgreSQL's tools


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _server_major(connection: Connection) -> int:
    return int(connection.exec_driver_sql("SHOW server_version_num").scalar_one()) // 10_000


def _libpq(url: str) -> tuple[list[str], dict[str, str]]:
    """The connection as pg_dump and pg_restore take it; the password in the environment, not
    on a command line others can read."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return [f"--dbname={plain}"], env


def _major(program: str) -> int | None:
    try:
        out = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return None
    found = re.search(r"\(PostgreSQL\) (\d+)", out)
    return int(found.group(1)) if found else None


def pg_tool(name: str, server_major: int) -> str:
    """`pg_dump` or `pg_restore` of the server's major version or newer: from PATH, or from
    `pg_config --bindir`."""
    candidates = [shutil.which(name)]
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=30).stdout
            candidates.append(str(Path(bindir.strip()) / name))
    found = [(c, _major(c)) for c in dict.fromkeys(c for c in candidates if c and Path(c).is_file())]
    found = [(c, major) for c, major in found if major is not None]
    if not found:
        raise HotlineError(
            f"{name} not found on PATH or in `pg_config --bindir`: install the PostgreSQL client "
            f"(postgresql-client-{server_major})"
        )
    for program, major in found:
        if major >= server_major:
            return program
    versions = ", ".join(f"{c} is {major}" for c, major in found)
    raise HotlineError(
        f"{name} is older than the server ({versions}; the server is {server_major}): "
        f"install postgresql-client-{server_major}"
    )
