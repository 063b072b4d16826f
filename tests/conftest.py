"""Fixtures: a migrated database per test (SQLite always; PostgreSQL where a server is up).

PostgreSQL tests run against HOTLINE_TEST_POSTGRES_URL (default: the local server's
`test` database). Without a server they skip with the reason, except under CI=true,
where a missing server fails the run.

The personal data's secret (hotline.crypto) is one per test process, in HOTLINE_SECRET_KEY
unless given: the servers and commands the tests start inherit it, and PostgreSQL, which
will not start without one, has it. tests/test_crypto.py tries the other sources.
"""

import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hotline.config import Settings
from hotline.db import Database
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.main import create_app
from hotline.migrate import upgrade
from hotline.runtime import Runtime
from tests.helpers import District, build_district

os.environ.setdefault("HOTLINE_SECRET_KEY", secrets.token_urlsafe(32))
PG_URL = os.environ.get("HOTLINE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
# Tables that keep their rows between PostgreSQL tests (schema bookkeeping, holiday data).
KEEP = {"alembic_version", "calendar_days", "calendar_years"}


class Clock:
    """An injectable clock: tests move time on by hand."""

    def __init__(self, start: datetime) -> None:
        self.value = start

    def __call__(self) -> datetime:
        return self.value

    def set(self, value: datetime) -> None:
        self.value = value

    def advance(self, **kwargs: float) -> datetime:
        self.value += timedelta(**kwargs)
        return self.value


def local(*args: int) -> datetime:
    """A time in Asia/Shanghai."""
    return datetime(*args, tzinfo=LOCAL_TZ)


def _postgres_reason() -> str | None:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect means: no server here
        return (
            f"no PostgreSQL server at {make_url(PG_URL).render_as_string(hide_password=True)}: {exc.__class__.__name__}"
        )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test worker's own on the PostgreSQL server, migrated once."""
    # A database per test process and run: concurrent runs (two checkouts, two people on
    # one server) never clear or drop each other's.
    worker_id = os.environ.get("PYTEST_XDIST_WORKER") or "p"
    run_id = (os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid()))[:10]
    reason = _postgres_reason()
    if reason:
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    base = make_url(PG_URL)
    name = f"hotline_test_{run_id}_{worker_id}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = base.set(database=name).render_as_string(hide_password=False)
    db = Database(url)
    upgrade(db)
    db.dispose()
    yield url
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> str:
    """A migrated SQLite file, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "hotline.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()  # the last connection to close checkpoints the WAL into the file
    return str(path)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request, tmp_path) -> Iterator[Database]:
    """An empty, migrated database: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "hotline.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        db = Database(f"sqlite:///{path}")
    else:
        db = Database(request.getfixturevalue("postgres_url"))
        with db.engine.begin() as conn:
            tables = [
                r[0]
                for r in conn.execute(text("select tablename from pg_tables where schemaname = 'public'"))
                if r[0] not in KEEP
            ]
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            # Holiday years a test imported leave with it; the seeded ones stay.
            for (year,) in conn.execute(text("select year from calendar_years where source <> 'chinese-calendar'")):
                conn.execute(
                    text("delete from calendar_days where day >= :lo and day <= :hi"),
                    {"lo": f"{year}-01-01", "hi": f"{year}-12-31"},
                )
            conn.execute(text("delete from calendar_years where source <> 'chinese-calendar'"))
    yield db
    db.dispose()


@pytest.fixture
def settings(database: Database, tmp_path) -> Settings:
    return Settings(database_url=database.url, embedded_scheduler=False, attachments_dir=tmp_path / "attachments")


@pytest.fixture
def clock() -> Clock:
    # A Monday morning in office hours.
    return Clock(local(2026, 11, 2, 9, 0))


@pytest.fixture
def runtime(database: Database, settings: Settings, clock: Clock) -> Runtime:
    rt = Runtime(database, settings)
    rt.clock = clock
    return rt


@pytest.fixture
def client(runtime: Runtime, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, runtime=runtime)) as c:
        yield c


@pytest.fixture
def server(runtime: Runtime, settings: Settings) -> Iterator[str]:
    """The app served over real HTTP by uvicorn on a free local port, in a thread."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings, runtime=runtime), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(5)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright; skips without it (fails under CI=true)."""
    if not os.path.exists(CHROMIUM):
        if IN_CI:
            pytest.fail(f"CI=true but no Chromium at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    pg = context.new_page()
    pg.set_default_timeout(10000)
    yield pg
    context.close()


@pytest.fixture
def district(runtime: Runtime) -> District:
    """Departments, categories, routing rules and a user with a token for every role."""
    return build_district(runtime)
