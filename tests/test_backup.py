"""Backups (数据备份恢复): taken while a real server takes tickets, restored into another
database and compared with the source table by table, row by row; the files the server and
the backups create are readable by their owner only."""

import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from alembic import command

from hotline.db import Database
from hotline.migrate import alembic_config
from tests.processes import free_port, hotline, query, scalar, scratch_databases, serving, table_rows

ROOT = Path(__file__).resolve().parent.parent
KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class Intake(threading.Thread):
    """An agent logging tickets over HTTP, one after another, until stopped: their ids."""

    def __init__(self, base: str, token: str) -> None:
        super().__init__(daemon=True)
        self.base, self.token = base, token
        self.created: list[int] = []
        self.errors: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.token}"}, timeout=30) as c:
            n = 0
            while not self.done.is_set():
                n += 1
                r = c.post("/api/v1/tickets", json={"type": "consultation", "content": f"备份期间的来电 {n}"})
                if r.status_code == 201:
                    self.created.append(r.json()["id"])
                else:
                    self.errors.append(f"{r.status_code} {r.text[:200]}")

    def wait_for(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.created) < n:
            assert not self.errors, self.errors
            assert time.monotonic() < deadline, f"only {len(self.created)} tickets logged"
            time.sleep(0.05)

    def stop(self) -> None:
        self.done.set()
        self.join(60)
        assert not self.errors, self.errors


def printed_counts(out: str) -> dict[str, int]:
    """The row counts `hotline backup` printed ("tickets 1,234, ticket_events …")."""
    return {name: int(n.replace(",", "")) for name, n in re.findall(r"(\w+) ([\d,]+)(?:,|$)", out.splitlines()[-1])}


def assert_consistent(url: str) -> None:
    """A copy of one moment: no history, assignment or event without its ticket, a 'create'
    row for every ticket, each ticket's events numbered 1..n, the running totals in agreement."""
    for table in ("ticket_events", "assignments", "outbox"):
        orphans = scalar(
            url, f"SELECT count(*) FROM {table} x LEFT JOIN tickets t ON t.id = x.ticket_id WHERE t.id IS NULL"
        )
        assert orphans == 0, f"{table}: {orphans} rows without their ticket"
    tickets = scalar(url, "SELECT count(*) FROM tickets")
    assert scalar(url, "SELECT count(*) FROM ticket_events WHERE event = 'create'") == tickets
    gaps = query(
        url,
        "SELECT ticket_id, min(sequence), max(sequence), count(*) FROM outbox WHERE ticket_id IS NOT NULL "
        "GROUP BY ticket_id HAVING min(sequence) <> 1 OR max(sequence) <> count(*)",
    )
    assert not gaps, f"events numbered with gaps: {gaps[:5]}"
    today = date.today()
    hotline(url, "stats", "check", "--from", str(today - timedelta(days=200)), "--to", str(today + timedelta(days=1)))


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_a_backup_taken_while_serving_restores_every_row(kind, tmp_path):
    with scratch_databases(kind, tmp_path, "backup_src", "backup_dst") as (source, copy):
        hotline(source, "demo-data", "--tickets", "300")
        token = hotline(source, "users", "token", "agent1").stdout.strip()
        backup = tmp_path / ("hotline.db" if kind == "sqlite" else "hotline.dump")
        with serving(source, tmp_path / "serve.log") as base:
            intake = Intake(base, token)
            intake.start()
            try:
                intake.wait_for(10)
                logged_before = list(intake.created)
                out = hotline(source, "backup", str(backup)).stdout
                intake.wait_for(len(intake.created) + 10)
            finally:
                intake.stop()
            if kind == "sqlite":
                files = [tmp_path / f"backup_src.db{suffix}" for suffix in ("", "-wal", "-shm")]
                assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert mode(backup) == 0o600
        assert "wrote" in out and "tables" in out

        # The copy of one moment, taken while tickets came in.
        hotline(copy, "restore", str(backup))
        counts = printed_counts(out)
        assert counts["tickets"] == scalar(copy, "SELECT count(*) FROM tickets")
        assert counts["ticket_events"] == scalar(copy, "SELECT count(*) FROM ticket_events")
        assert 300 + 10 <= counts["tickets"] < 300 + len(intake.created)
        restored_ids = {r[0] for r in query(copy, "SELECT id FROM tickets")}
        assert set(logged_before) <= restored_ids
        assert_consistent(copy)
        # Every row it holds is in the source as it is now: the later intake only added rows,
        # except to the day's ticket counter, which it moved on.
        now, then = table_rows(source), table_rows(copy)
        assert set(then) == set(now)
        for table in set(now) - {"ticket_counters"}:
            # (repr: a JSON column reads as a dict, which a set cannot hold)
            assert set(map(repr, then[table])) <= set(map(repr, now[table])), f"{table}: rows the source never had"
        counters = dict(now["ticket_counters"])
        assert all(value <= counters[day] for day, value in then["ticket_counters"])

        # Quiet now: a second backup (over the first: --force) and restore (over the copy: --force).
        refused = hotline(source, "backup", str(backup), ok=False)
        assert refused.returncode == 1 and "exists" in refused.stderr
        hotline(source, "backup", str(backup), "--force")
        refused = hotline(copy, "restore", str(backup), ok=False)
        assert refused.returncode == 1 and "not empty" in refused.stderr
        hotline(copy, "restore", str(backup), "--force")
        now, then = table_rows(source), table_rows(copy)
        assert set(now) == set(then)
        for table in now:
            assert now[table] == then[table], f"{table} differs after the restore"
        assert len(now["tickets"]) == 300 + len(intake.created)


def test_a_restored_older_schema_asks_for_the_upgrade(tmp_path):
    old, new = f"sqlite:///{tmp_path / 'old.db'}", f"sqlite:///{tmp_path / 'new.db'}"
    command.upgrade(alembic_config(old), "0007")
    hotline(old, "backup", str(tmp_path / "old-backup.db"))
    done = hotline(new, "restore", str(tmp_path / "old-backup.db"))
    assert "revision 0007" in done.stderr and "hotline db upgrade" in done.stderr
    hotline(new, "db", "upgrade")
    assert scalar(new, "SELECT version_num FROM alembic_version") != "0007"


def test_a_backup_of_the_other_kind_or_of_nothing_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'hotline.db'}"
    fake = tmp_path / "fake.dump"
    fake.write_bytes(b"PGDMP\x01\x0e\x00")
    refused = hotline(url, "restore", str(fake), ok=False)
    assert refused.returncode == 1 and "postgresql backup" in refused.stderr
    refused = hotline(f"sqlite:///{tmp_path / 'none.db'}", "backup", str(tmp_path / "b.db"), ok=False)
    assert refused.returncode == 1 and not (tmp_path / "b.db").exists()
    assert not list(tmp_path.glob(".*partial"))


def test_a_database_found_readable_by_others_is_narrowed_to_its_owner(tmp_path):
    path = tmp_path / "wide.db"
    for name in ("wide.db", "wide.db-wal"):
        (tmp_path / name).touch(mode=0o644)
        os.chmod(tmp_path / name, 0o644)
    Database(f"sqlite:///{path}").dispose()
    assert mode(path) == 0o600 and mode(tmp_path / "wide.db-wal") == 0o600


@pytest.mark.slow
def test_make_demo_writes_the_credentials_for_their_owner_only(tmp_path):
    var = tmp_path / "var"
    env = {**os.environ, "HOTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}
    port = str(free_port())
    demo = subprocess.Popen(
        # -o and BIN: the installation running this test; never install from a test.
        ["make", "-s", "-o", ".venv/.installed", "demo", f"BIN={Path(sys.executable).parent}"]
        + [f"VAR={var}", "DEMO_TICKETS=10", f"PORT={port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (var / ".demo-loaded").exists():
            assert demo.poll() is None, "make demo stopped"
            assert time.monotonic() < deadline, "make demo did not load the demo"
            time.sleep(0.2)
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(30)
    credentials = var / "demo-credentials.txt"
    from hotline.demo.district import DEMO_PASSWORD

    assert DEMO_PASSWORD in credentials.read_text()
    assert mode(credentials) == 0o600 and mode(var) == 0o700
    assert mode(tmp_path / "demo.db") == 0o600


@pytest.mark.postgres
def test_without_pg_dump_the_backup_says_what_to_install(tmp_path):
    with scratch_databases("postgresql", tmp_path, "backup_tools") as (url,):
        # A PATH with neither pg_dump nor pg_config on it.
        refused = hotline(url, "backup", str(tmp_path / "b.dump"), ok=False, env={"PATH": str(tmp_path)})
        assert refused.returncode == 1 and "pg_dump not found" in refused.stderr
        assert "postgresql-client-" in refused.stderr and not (tmp_path / "b.dump").exists()
