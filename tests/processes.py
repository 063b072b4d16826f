"""The `hotline` command in processes of its own, on scratch databases of a test's own: for
the tests of backups and of crashes (a real server, a real `kill -9`)."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from tests.conftest import IN_CI, PG_URL, _postgres_reason

HOTLINE = [sys.executable, "-m", "hotline"]


def hotline(url: str, *args: str, ok: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`hotline ARGS` on the database at `url`, to its end."""
    environment = {**os.environ, **(env or {}), "HOTLINE_DATABASE_URL": url}
    done = subprocess.run([*HOTLINE, *args], env=environment, capture_output=True, text=True, timeout=300)
    if ok:
        assert done.returncode == 0, f"hotline {' '.join(args)}: {done.stderr}"
    return done


def start(url: str, *args: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`hotline ARGS` on the database at `url`, left running; its output goes to `log`."""
    environment = {**os.environ, **(env or {}), "HOTLINE_DATABASE_URL": url}
    with open(log, "ab") as out:
        return subprocess.Popen([*HOTLINE, *args], env=environment, stdout=out, stderr=subprocess.STDOUT)


def kill_hard(process: subprocess.Popen) -> None:
    """`kill -9`: no clean-up, no rollback but the database's own."""
    process.send_signal(signal.SIGKILL)
    process.wait(30)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            kill_hard(process)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(url: str, log: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """`hotline serve` on a free port (the scheduler off unless `env` says otherwise): its address."""
    port = free_port()
    server = start(
        url,
        "serve",
        "--port",
        str(port),
        "--no-access-log",
        log=log,
        env={"HOTLINE_EMBEDDED_SCHEDULER": "false", **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/openapi.json", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        yield base
    finally:
        stop(server)


@contextmanager
def scratch_databases(kind: str, tmp_path: Path, *names: str) -> Iterator[list[str]]:
    """Empty databases of this test's own, one per name: SQLite files, or PostgreSQL databases
    on the test server (dropped afterwards)."""
    if kind == "sqlite":
        yield [f"sqlite:///{tmp_path / f'{name}.db'}" for name in names]
        return
    reason = _postgres_reason()
    if reason:
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    base = make_url(PG_URL)
    databases = [f"hotline_{name}_{os.getpid()}" for name in names]
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for database in databases:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{database}"'))
        yield [base.set(database=d).render_as_string(hide_password=False) for d in databases]
    finally:
        with admin.connect() as conn:
            for database in databases:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def table_rows(url: str) -> dict[str, list[tuple]]:
    """Every row of every table, each table in the order of its primary key."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            schema = inspect(conn)
            rows = {}
            for table in schema.get_table_names():
                if table.startswith("sqlite_"):  # the planner's statistics, not data
                    continue
                key = schema.get_pk_constraint(table)["constrained_columns"] or [
                    c["name"] for c in schema.get_columns(table)
                ]
                order = ", ".join(f'"{c}"' for c in key)
                rows[table] = [tuple(r) for r in conn.execute(text(f'SELECT * FROM "{table}" ORDER BY {order}'))]
            return rows
    finally:
        engine.dispose()


def scalar(url: str, sql: str, **params) -> object:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()
    finally:
        engine.dispose()


def query(url: str, sql: str, **params) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()
