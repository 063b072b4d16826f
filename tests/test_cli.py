"""The `hotline` command as a user runs it: a fresh SQLite file, real processes."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

HOTLINE = [sys.executable, "-m", "hotline"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "HOTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}


def run(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([*HOTLINE, *args], env=env, capture_output=True, text=True, timeout=120)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


@contextmanager
def serving(env: dict[str, str], ready_path: str = "/openapi.json") -> Iterator[tuple[str, httpx.Response]]:
    """`hotline serve` in a process of its own on a free port: its address, and its first
    answer to `ready_path`; stopped at the end."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [*HOTLINE, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", r
    finally:
        server.terminate()
        server.wait(10)


def test_users_create_and_token(env):
    run(env, "db", "upgrade")
    assert "created user" in run(env, "users", "create", "wang", "--role", "agent", "--password", "s3cret-pass").stdout
    p = run(env, "users", "create", "li", "--role", "handler", ok=False)
    assert p.returncode != 0 and "department" in p.stderr
    token = run(env, "users", "token", "wang").stdout
    assert token.count("\n") == 1 and token.startswith("hl_")


def test_an_integration_account_is_created_with_its_source_and_only_it(env):
    run(env, "db", "upgrade")
    p = run(env, "users", "create", "city", "--role", "integration", ok=False)
    assert p.returncode != 0 and "source" in p.stderr
    p = run(env, "users", "create", "wang", "--role", "agent", "--source", "city12345", ok=False)
    assert p.returncode != 0 and "source" in p.stderr
    out = run(env, "users", "create", "city", "--role", "integration", "--source", "city12345").stdout
    assert "created user city (integration)" in out
    assert run(env, "users", "token", "city").stdout.startswith("hl_")


def test_calendar_due_counts_working_days(env):
    # 2026-09-30 + 3 working days skips the National Day holiday: due on the make-up Saturday.
    out = run(env, "calendar", "due", "2026-09-30T10:00", "--working-days", "3").stdout.strip()
    assert out == "2026-10-10T23:59:59+08:00"
    out = run(env, "calendar", "due", "2026-11-27T19:00+08:00", "--working-days", "1").stdout.strip()
    assert out.startswith("2026-11-30")
    out = run(env, "calendar", "due", "2026-11-28T10:00", "--hours", "24").stdout.strip()
    assert out == "2026-11-29T10:00:00+08:00"


def test_calendar_provisional_then_imported(env, tmp_path):
    p = run(env, "calendar", "due", "2026-12-30T10:00", "--working-days", "3")
    assert "provisional" in p.stderr and "2027" in p.stderr
    assert p.stdout.strip() == "2027-01-04T23:59:59+08:00"  # Mon-Fri only
    csv = tmp_path / "2027.csv"
    csv.write_text("date,kind,name\n2027-01-01,holiday,元旦\n2027-01-04,holiday,元旦调休\n")
    assert "2027" in run(env, "calendar", "import", str(csv)).stdout
    p = run(env, "calendar", "due", "2026-12-30T10:00", "--working-days", "3")
    assert p.stdout.strip() == "2027-01-06T23:59:59+08:00" and "provisional" not in p.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("date,kind\n2027-13-01,holiday\n")
    p = run(env, "calendar", "import", str(bad), ok=False)
    assert "line 2" in p.stderr


def test_a_holiday_file_replaces_only_the_years_it_names_and_keeps_the_names(env, tmp_path):
    """A stray day of another year (a holiday over New Year) must not wipe that year: a file of
    several years needs --year, and the other years' days are then set one by one. The names
    go in with the days; a file with no day is refused; a file not in UTF-8 is said so."""
    from hotline.db import Database
    from hotline.models import CalendarDay

    run(env, "db", "upgrade")
    stray = tmp_path / "2027.csv"
    stray.write_text("date,kind,name\n2026-12-31,休,元旦\n2027-01-01,休,元旦\n2027-02-20,班,春节调休\n")
    p = run(env, "calendar", "import", str(stray), ok=False)
    assert "1 of 2026, 2 of 2027" in p.stderr and "--year" in p.stderr
    out = run(env, "calendar", "import", str(stray), "--year", "2027").stdout
    assert "imported 2 days for 2027 (each replaced whole); set 1 day(s) of other years alone (2026-12-31)" in out
    # 2026 kept its National Day holiday: 2026-09-30 + 3 working days is still the make-up Saturday.
    assert run(env, "calendar", "due", "2026-09-30T10:00", "--working-days", "3").stdout.strip() == (
        "2026-10-10T23:59:59+08:00"
    )
    db = Database(env["HOTLINE_DATABASE_URL"])
    try:
        with db.read_session() as s:
            days = {d.day.isoformat(): (d.working, d.name) for d in s.exec(select(CalendarDay)).all()}
    finally:
        db.dispose()
    assert days["2026-12-31"] == (False, "元旦") and days["2027-02-20"] == (True, "春节调休")
    assert days["2026-10-01"][0] is False  # the rest of 2026 is there
    p = run(env, "calendar", "import", str(stray), "--year", "2028", ok=False)
    assert "no day of 2028" in p.stderr
    empty = tmp_path / "empty.csv"
    empty.write_text("date,kind,name\n")
    assert "no dates" in run(env, "calendar", "import", str(empty), ok=False).stderr
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("date,kind,name\n2027-01-01,休,元旦\n".encode("gbk"))
    assert "not UTF-8" in run(env, "calendar", "import", str(gbk), ok=False).stderr


def test_serve_migrates_an_empty_database_and_answers(env):
    with serving(env) as (url, r):
        assert r.status_code == 200 and "/api/v1/tickets" in r.json()["paths"]
        run(env, "users", "create", "boss", "--role", "admin", "--password", "Long-enough-1")
        token = run(env, "users", "token", "boss").stdout.strip()
        h = {"Authorization": f"Bearer {token}"}
        r = httpx.post(f"{url}/api/v1/departments", json={"code": "water", "name": "水务局"}, headers=h)
        assert r.status_code == 201
        assert httpx.get(f"{url}/api/v1/tickets", headers=h).json()["total"] == 0


def test_serve_links_to_the_address_it_listens_on_unless_a_public_url_is_set(env):
    env = {k: v for k, v in env.items() if k != "HOTLINE_PUBLIC_URL"} | {"HOTLINE_EMBEDDED_SCHEDULER": "false"}
    for public in (None, "https://12345.example.gov.cn"):
        server_env = env | ({"HOTLINE_PUBLIC_URL": public} if public else {})
        with serving(server_env, "/open311/discovery.json") as (url, r):
            (endpoint,) = r.json()["endpoints"]
            assert endpoint["url"] == f"{public or url}/open311/v2"


def test_a_category_tree_is_imported_from_csv_whole_or_not_at_all(env, tmp_path):
    """A fresh install's tree from a file: parents wherever they stand, defaults by department
    code, a second run changes what the file changed; a bad row names its line and column,
    and nothing of the file is kept."""
    from hotline.db import Database, utcnow
    from hotline.directory import create_department
    from hotline.models import Category

    run(env, "db", "upgrade")
    db = Database(env["HOTLINE_DATABASE_URL"])
    try:
        with db.session() as s:
            create_department(s, code="zjj", name="区住建局", now=utcnow())
    finally:
        db.dispose()
    tree = tmp_path / "tree.csv"
    tree.write_text("code,name,parent,department\n0101,物业管理,01,zjj\n01,城乡建设,,\n0102,违法建设,01,\n")
    assert run(env, "categories", "import", str(tree)).stdout.strip() == "categories: 3 created, 0 updated"
    tree.write_text("code,name,parent\n0102,违章搭建,01\n")
    assert run(env, "categories", "import", str(tree)).stdout.strip() == "categories: 0 created, 1 updated"

    def rows() -> dict[str, tuple]:
        db = Database(env["HOTLINE_DATABASE_URL"])
        try:
            with db.read_session() as s:
                cats = s.exec(select(Category)).all()
                code_of = {c.id: c.code for c in cats}
                return {c.code: (c.name, code_of.get(c.parent_id), c.department_id is not None) for c in cats}
        finally:
            db.dispose()

    assert rows() == {
        "01": ("城乡建设", None, False),
        "0101": ("物业管理", "01", True),
        "0102": ("违章搭建", "01", False),
    }
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name,parent,department\n02,市场监管,,\n0201,食品安全,02,nowhere\n")
    p = run(env, "categories", "import", str(bad), ok=False)
    assert "line 3: department:" in p.stderr and "nothing was imported" in p.stderr
    assert "02" not in rows()  # the good first row went with the bad one
    cycle = tmp_path / "cycle.csv"
    cycle.write_text("code,name,parent\n03,甲,04\n04,乙,03\n")
    assert "a cycle" in run(env, "categories", "import", str(cycle), ok=False).stderr
    wide = tmp_path / "wide.csv"
    wide.write_text("code,name\n05,住房,城乡建设\n")  # a comma in a name, unquoted
    assert "line 2: more fields than the header names" in run(env, "categories", "import", str(wide), ok=False).stderr
    header = tmp_path / "header.csv"
    header.write_text("编码,名称\n01,城乡建设\n")
    assert "line 1: the header" in run(env, "categories", "import", str(header), ok=False).stderr
