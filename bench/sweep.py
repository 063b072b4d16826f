"""The scheduler's sweep against the size of the open backlog, on SQLite and on PostgreSQL.

    .venv/bin/python bench/sweep.py [--sizes 10000,100000,1000000] [--db sqlite,postgresql]
                                    [--code HEAD] [--profile]

For each database and size, builds a database of N open tickets (`upgrade(db)` and the test
district first, then bulk Core inserts in batches, ids assigned here). Every ticket is a copy
of a template made through the real gateway (a complaint created, dispatched, and signed by the
department), its create/dispatch/sign instants moved to its own minute: state in_progress, one
signed main assignment, the handling clock running, every column as the gateway sets it. A
further gateway-made ticket is compared column by column with its generated row before any
timing. Then, with the sweep's clock at Wednesday 2026-11-18 10:00 (Asia/Shanghai, office hours):

  nothing due   `sweep(runtime, now=...)` with no ticket due: one warm-up, then the median of
                --runs sweeps; then as many again with each phase the sweep calls timed
                (check_calendar, check_surges, ... whichever the measured code has)
  naive         the usual design (django-helpdesk's escalate_tickets, Frappe, Odoo): load every
                open ticket (state not archived/merged/cancelled) and check its deadline in
                Python. `orm`: full ORM rows, streamed (yield_per); `columns`: only the columns
                the check needs (the cheapest form of that design)
  1% due        every 100th ticket made overdue (deadline 2026-11-17 23:59:59, already warned:
                escalation_step 1, next_due_at = due_at), so the sweep's next step is `urge`;
                one sweep, timed; tickets/second of escalation. Verified afterwards: each due
                ticket has exactly one `urge` event, escalation, notice and outbox message, and
                sits at step 2 with next_due_at at its supervision time; no other ticket, event
                or assignment was touched, and every history chain holds (`hotline audit verify`).
                --due-runs > 1 resets the due rows between runs.

Each figure is wall time, and CPU time: of this process, plus for PostgreSQL the server
backends serving it (from /proc). The machine is shared; before each timed phase the script
waits (up to --quiet-wait s) for other processes to use under --quiet-cores cores, and records
what they used. On a busy machine the CPU figures are the ones to compare.

--code REV measures a commit (a `git archive` snapshot, run in a child process) rather than
the work tree as it is at the moment. With --profile, the 1%-due sweep is run once more under
py-spy (attached to this process) at the largest size of each database; the top costs and the
SQL statements per escalated ticket go to bench/results/sweep-profile-<db>.txt (profiled runs
are not the headline figures).

Prints a table and writes bench/results/sweep.json (--merge keeps the entries of other
databases and sizes from an earlier run). PostgreSQL: scratch database --pg-db (`bench_sweep`)
on --pg-url's server, dropped afterwards. Not part of the test suite.
"""

import argparse
import gc
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, create_engine, event, text
from sqlalchemy import select as core_select
from sqlalchemy.engine import make_url
from sqlmodel import select

import hotline
import hotline.scheduler
from hotline import audit
from hotline.config import Settings
from hotline.db import Database, UTCDateTime
from hotline.deadlines import sla
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.migrate import upgrade
from hotline.models import (
    Assignment,
    Category,
    Department,
    Escalation,
    Notification,
    OutboxMessage,
    SupervisionOrder,
    Ticket,
    TicketEvent,
    User,
)
from hotline.runtime import Runtime
from hotline.scheduler import BATCH, sweep

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
# The tree hotline is imported from: the work tree, or the snapshot of --code REV.
CODE_ROOT = Path(hotline.__file__).resolve().parent.parent
SNAPSHOT_ENV = "HOTLINE_BENCH_SNAPSHOT"

# The sweep's clock: a Wednesday in office hours (notices are not deferred to the morning).
NOW = datetime(2026, 11, 18, 10, 0, tzinfo=LOCAL_TZ)
# Open tickets were dispatched on these working days (handle limit: 7 working days, so their
# yellow time, 23:59:59 of the 6th working day, is 2026-11-18 23:59:59 at the earliest).
OPEN_DAYS = [date(2026, 11, d) for d in (10, 11, 12, 13, 16, 17, 18)]
# Overdue tickets were dispatched on Friday 2026-11-06: handle-by 11-17 23:59:59 (overdue at
# NOW), supervision one working day later (11-18 23:59:59, not yet at NOW).
DUE_DAY = date(2026, 11, 6)
DUE_EVERY = 100  # every 100th ticket is the 1% due set
FINAL_STATES = ("archived", "merged", "cancelled")
WORKFLOW = "default"
TICKET_TYPE = "complaint"
SIGN_DELAY = timedelta(minutes=20)
CREATE_LEAD = timedelta(minutes=5)
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_DB = "bench_sweep"  # the default of --pg-db


# --------------------------------------------------------------------------- ticket rows


def _slots(day: date, until: datetime | None = None) -> list[datetime]:
    """Dispatch times: every minute of the office day 08:30-17:30 (before `until`)."""
    start = datetime.combine(day, datetime.min.time(), LOCAL_TZ).replace(hour=8, minute=30)
    out = []
    for m in range(9 * 60):
        at = start + timedelta(minutes=m)
        if until is not None and at + SIGN_DELAY >= until:
            break
        out.append(at.astimezone(UTC))
    return out


class Rows:
    """Ticket and assignment rows exactly as the gateway leaves a dispatched, signed complaint.

    For each dispatch day, one ticket is made through the real gateway (`make_dispatched`,
    then `sign` by the department's handler) in a small template database; every generated
    ticket copies the row of its day's template, with the instants of the create, dispatch and
    sign moved to its own minute (deadlines in working days depend on the date only; the
    check in `templates_and_check` confirms it). So every column the gateway sets, including ones
    added after this script was written, is as the gateway sets it.
    """

    def __init__(self, templates: dict[date, tuple[dict, dict]], departments: list[int]) -> None:
        self.templates = templates
        self.departments = departments
        self.open_slots = [t for d in OPEN_DAYS for t in _slots(d, until=NOW)]
        self.due_slots = _slots(DUE_DAY)
        self.open_rows = [self.at(t) for t in self.open_slots]
        self.due_rows = [self.at(t, overdue=True) for t in self.due_slots]
        self.version = templates[OPEN_DAYS[0]][0]["version"]
        self.counters: Counter = Counter()

    def at(self, when: datetime, *, overdue: bool = False) -> tuple[dict, dict]:
        """The template of `when`'s day, its event instants moved to `when`."""
        ticket, assignment = self.templates[when.astimezone(LOCAL_TZ).date()]
        delta = when - ticket["dispatched_at"]
        instants = {ticket["dispatched_at"], ticket["signed_at"], ticket["created_at"]}

        def moved(row: dict) -> dict:
            return {k: v + delta if isinstance(v, datetime) and v in instants else v for k, v in row.items()}

        t, a = moved(ticket), moved(assignment)
        if overdue:
            # Warned at its yellow time (escalation_step 1); the next step is `urge` at the deadline.
            t["escalation_step"] = 1
            t["next_due_at"] = t["due_at"]
            assert t["warn_at"] <= t["due_at"] <= NOW, t
        else:
            assert t["escalation_step"] == 0 and t["next_due_at"] == t["warn_at"] > NOW, t
        return t, a

    def slot(self, i: int) -> int:
        return (i * 7919) % len(self.open_slots)

    def department(self, i: int) -> int:
        return self.departments[i % len(self.departments)]

    def ticket(self, i: int, template: dict | None = None) -> dict[str, Any]:
        row = (template or self.open_rows[self.slot(i)][0]).copy()
        day = row["created_at"].astimezone(LOCAL_TZ).strftime("%Y%m%d")
        self.counters[day] += 1
        row["id"] = i
        row["number"] = f"{day}{self.counters[day]:06d}"
        row["caller_phone"] = f"138{i % 100_000_000:08d}"
        row["main_department_id"] = self.department(i)
        return row

    def assignment(self, i: int, template: dict | None = None) -> dict[str, Any]:
        row = (template or self.open_rows[self.slot(i)][1]).copy()
        row["id"] = row["ticket_id"] = i
        row["department_id"] = self.department(i)
        return row

    def overdue(self, i: int) -> tuple[dict, dict]:
        """The columns that make ticket i (and its assignment) overdue, for UPDATEs keyed on b_id."""
        t, a = self.due_rows[(i // DUE_EVERY) % len(self.due_rows)]
        keep = {"id", "number", "caller_phone", "main_department_id"}
        return (
            {"b_id": i, **{k: v for k, v in t.items() if k not in keep}},
            {"b_id": i, **{k: v for k, v in a.items() if k not in ("id", "ticket_id", "department_id")}},
        )


def _gateway_ticket(runtime: Runtime, at: datetime) -> tuple[dict, dict]:
    """A complaint made, dispatched (to housing) and signed through the gateway; its rows."""
    from hotline.workflow.engine import Actor, fire

    sys.path.insert(0, str(CODE_ROOT))
    from tests.helpers import make_dispatched

    (tid,) = make_dispatched(runtime, 1, now=at)
    with runtime.db.session() as s:
        handler = s.exec(select(User).where(User.username == "housing_h")).one()
        fire(s, runtime, tid, "sign", Actor.of(handler), {}, now=at + SIGN_DELAY)
    tickets, assignments = Ticket.__table__, Assignment.__table__
    with runtime.db.engine.connect() as conn:
        t = dict(conn.execute(core_select(tickets).where(tickets.c.id == tid)).mappings().one())
        a = dict(conn.execute(core_select(assignments).where(assignments.c.ticket_id == tid)).mappings().one())
    return t, a


def templates_and_check(tmp: Path) -> tuple[dict[date, tuple[dict, dict]], dict[str, Any]]:
    """The templates of every dispatch day, and a check of a generated row against the gateway."""
    runtime = _runtime(f"sqlite:///{tmp / 'templates.db'}")
    upgrade(runtime.db)
    _district(runtime)
    templates = {}
    for day in [*OPEN_DAYS, DUE_DAY]:
        at = datetime.combine(day, datetime.min.time(), LOCAL_TZ).replace(hour=8, minute=30).astimezone(UTC)
        templates[day] = _gateway_ticket(runtime, at)
    departments, _ = _ids(runtime)
    rows = Rows(templates, departments)
    # Another ticket at another minute of another day, through the gateway, against its generated row.
    at = rows.open_slots[len(rows.open_slots) // 2 + 97]
    real, real_a = _gateway_ticket(runtime, at)
    ours_t, ours_a = rows.at(at)
    ours = rows.ticket(real["id"], ours_t)
    ours_a = rows.assignment(real["id"], ours_a)
    housing = templates[OPEN_DAYS[0]][0]["main_department_id"]
    ours["main_department_id"] = ours_a["department_id"] = housing
    ignore = {"number", "caller_phone"}
    diff = {k: (real[k], ours.get(k)) for k in real if k not in ignore and real[k] != ours.get(k)}
    diff |= {f"assignment.{k}": (real_a[k], ours_a.get(k)) for k in real_a if k != "id" and real_a[k] != ours_a.get(k)}
    runtime.db.dispose()
    check = {
        "ticket_at": at.isoformat(),
        "compared_columns": len(real) - len(ignore) + len(real_a) - 1,
        "differences": {k: [str(a), str(b)] for k, (a, b) in diff.items()},
    }
    return templates, check


def code_version() -> dict[str, Any]:
    """The commit measured, and the files that differed from it."""

    def git(*argv: str) -> str:
        try:
            return subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    if os.environ.get(SNAPSHOT_ENV):
        return {"commit": os.environ[SNAPSHOT_ENV], "snapshot": True, "modified": []}
    return {
        "commit": git("rev-parse", "HEAD"),
        "snapshot": False,
        "modified": git("status", "--porcelain", "--", "hotline", "workflows").splitlines(),
    }


def run_snapshot(rev: str) -> int:
    """Run this script again on `git archive REV` (the work tree may be changing meanwhile)."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    snap = Path(tempfile.mkdtemp(prefix="hotline-code-"))
    try:
        archive = subprocess.Popen(["git", "archive", commit], cwd=ROOT, stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(snap)], stdin=archive.stdout, check=True)
        archive.wait()
        print(f"measuring commit {commit[:12]} (a snapshot in {snap})", flush=True)
        argv, skip = [], False
        for a in sys.argv[1:]:
            if skip:
                skip = False
            elif a == "--code":
                skip = True
            elif not a.startswith("--code="):
                argv.append(a)
        env = {**os.environ, "PYTHONPATH": str(snap), SNAPSHOT_ENV: commit}
        child = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *argv], env=env)
        try:
            return child.wait()
        except BaseException:
            child.terminate()
            child.wait()
            raise
    finally:
        shutil.rmtree(snap, ignore_errors=True)


def _district(runtime: Runtime) -> None:
    sys.path.insert(0, str(CODE_ROOT))
    from tests.helpers import build_district

    build_district(runtime)


def _ids(runtime: Runtime) -> tuple[list[int], int]:
    with runtime.db.read_session() as s:
        departments = list(s.exec(select(Department.id).order_by(Department.id)).all())
        category = s.exec(select(Category.id).where(Category.code == "0101")).one()
    return departments, category


def _runtime(url: str) -> Runtime:
    db = Database(url)
    return Runtime(db, Settings(database_url=url, embedded_scheduler=False))


# --------------------------------------------------------------------------- building


def _create_pg(base_url: str, name: str) -> str:
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def _drop_pg(base_url: str, name: str) -> None:
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def build(runtime: Runtime, size: int, batch: int, templates) -> tuple[Rows, float]:
    """Migrate, make the district, bulk-insert `size` open tickets; seconds taken by the inserts."""
    upgrade(runtime.db)
    _district(runtime)
    departments, _ = _ids(runtime)
    rows = Rows(templates, departments)
    tickets, assignments = Ticket.__table__, Assignment.__table__
    t0 = time.perf_counter()
    for start in range(1, size + 1, batch):
        ids = range(start, min(start + batch, size + 1))
        with runtime.db.engine.begin() as conn:
            conn.execute(tickets.insert(), [rows.ticket(i) for i in ids])
            conn.execute(assignments.insert(), [rows.assignment(i) for i in ids])
        done = ids[-1]
        if done % (batch * 10) == 0 or done == size:
            rate = done / (time.perf_counter() - t0)
            print(f"    {done:>9,} tickets inserted ({rate:,.0f}/s)", flush=True)
    with runtime.db.engine.begin() as conn:
        if not runtime.db.is_sqlite:
            for table in ("tickets", "assignments"):
                conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
                )
    seconds = time.perf_counter() - t0
    settle(runtime, vacuum=True)
    return rows, seconds


def settle(runtime: Runtime, *, vacuum: bool) -> None:
    """Let the database settle after bulk writes, so that timings do not include it."""
    if runtime.db.is_sqlite:
        raw = runtime.db.engine.raw_connection()  # the driver in autocommit mode: no BEGIN
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
        return
    with runtime.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if vacuum:
            # What autovacuum does to a table soon after it is loaded: statistics and the
            # visibility map (index-only scans).
            conn.execute(text("VACUUM ANALYZE tickets"))
            conn.execute(text("VACUUM ANALYZE assignments"))
        conn.execute(text("CHECKPOINT"))


def db_bytes(runtime: Runtime, path: Path | None) -> int:
    if runtime.db.is_sqlite:
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    with runtime.db.engine.connect() as conn:
        return conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()


def query_plan(runtime: Runtime) -> list[str]:
    """The plan of the sweep's query (the same statement `sweep` runs)."""
    sql = "SELECT id FROM tickets WHERE next_due_at <= :now ORDER BY next_due_at LIMIT :n"
    prefix = "EXPLAIN QUERY PLAN " if runtime.db.is_sqlite else "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "
    stmt = text(prefix + sql).bindparams(bindparam("now", type_=UTCDateTime))
    with runtime.db.read_engine.connect() as conn:
        result = conn.execute(stmt, {"now": NOW, "n": BATCH}).all()
    return [str(r[-1]) for r in result]


# --------------------------------------------------------------------------- the measurements


def _cpu_snapshot() -> tuple[int, int]:
    """(jiffies the machine was busy, jiffies this process used) since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:9]]
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(values) - values[3] - values[4], int(fields[11]) + int(fields[12])


def others_cpu(window: float = 1.0) -> float:
    """Cores kept busy by other processes during `window` seconds (this one idle meanwhile)."""
    try:
        busy0, own0 = _cpu_snapshot()
        time.sleep(window)
        busy1, own1 = _cpu_snapshot()
    except OSError:
        return 0.0
    return round(((busy1 - busy0) - (own1 - own0)) / os.sysconf("SC_CLK_TCK") / window, 2)


def _jiffies(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return 0


class CpuMeter:
    """CPU seconds spent by this process and by the database's server processes serving it.

    On a shared machine, wall time includes waiting for other processes' CPU; the CPU spent is
    what the work costs. SQLite: this process. PostgreSQL: this process plus the backends
    connected to the scratch database (read from /proc; the server runs on this machine).
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.own = 0.0
        self.server: dict[int, int] = {}

    def _backends(self) -> dict[int, int]:
        if self.runtime.db.is_sqlite:
            return {}
        with self.runtime.db.engine.connect() as conn:
            pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).scalars()
            return {pid: _jiffies(pid) for pid in pids}

    def start(self) -> None:
        self.server = self._backends()
        self.own = time.process_time()

    def stop(self) -> tuple[float, float]:
        """(own CPU seconds, server CPU seconds) since start."""
        own = time.process_time() - self.own
        after = self._backends()
        server = sum(j - self.server.get(pid, 0) for pid, j in after.items()) / os.sysconf("SC_CLK_TCK")
        return own, server


class Quiet:
    """Before each timed phase: wait (up to max_wait s) until other processes use < limit cores.

    The machine has 2 cores; the sweep, its database server and anything else running share
    them. What was measured is recorded with each figure.
    """

    def __init__(self, limit: float, max_wait: float) -> None:
        self.limit, self.max_wait = limit, max_wait

    def wait(self, what: str) -> float:
        t0 = time.monotonic()
        busy = others_cpu()
        while busy >= self.limit and time.monotonic() - t0 < self.max_wait:
            busy = others_cpu(2.0)
        if busy >= self.limit:
            print(f"    note: {what} timed while other processes used {busy} cores", flush=True)
        return busy


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


# The functions `sweep` calls, timed one by one in the nothing-due runs (those that exist in
# the code measured); the rest of a sweep is the read of the next_due_at index and the sessions.
PHASES = ("check_calendar", "check_surges", "_escalate_rectifications", "_escalate")


class Phases:
    """Wraps the sweep's phases (module globals of hotline.scheduler) with timers."""

    def __init__(self) -> None:
        self.spent: Counter = Counter()
        self.saved: dict[str, Any] = {}

    def __enter__(self) -> "Phases":
        for name in PHASES:
            fn = getattr(hotline.scheduler, name, None)
            if callable(fn):
                self.saved[name] = fn
                setattr(hotline.scheduler, name, self._timed(name, fn))
        return self

    def _timed(self, name: str, fn):
        def run(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.spent[name] += time.perf_counter() - t0

        return run

    def __exit__(self, *_exc) -> None:
        for name, fn in self.saved.items():
            setattr(hotline.scheduler, name, fn)

    def take(self) -> dict[str, float]:
        out = dict(self.spent)
        self.spent.clear()
        return out


def time_nothing_due(runtime: Runtime, runs: int, quiet: Quiet) -> dict[str, Any]:
    report = sweep(runtime, now=NOW)  # warm: connections, statement caches, the calendar notice
    assert not report.steps and not report.skipped and not report.deferred, report.lines()
    busy = quiet.wait("nothing due")
    times, cpu = [], []
    meter = CpuMeter(runtime)
    for _ in range(runs):
        meter.start()
        t0 = time.perf_counter()
        report = sweep(runtime, now=NOW)
        times.append(time.perf_counter() - t0)
        cpu.append(sum(meter.stop()))
        assert not report.steps and not report.skipped and not report.deferred, report.lines()
    # Where the time goes: the same sweeps again with the phases timed.
    phases: dict[str, list[float]] = {}
    with Phases() as timer:
        for _ in range(runs):
            t0 = time.perf_counter()
            sweep(runtime, now=NOW)
            total = time.perf_counter() - t0
            spent = timer.take()
            for name in timer.saved:
                phases.setdefault(name, []).append(spent.get(name, 0.0))
            phases.setdefault("rest (index read of next_due_at, sessions)", []).append(total - sum(spent.values()))
    return {
        "runs_ms": [ms(t) for t in times],
        "median_ms": ms(statistics.median(times)),
        "min_ms": ms(min(times)),
        "max_ms": ms(max(times)),
        "cpu_median_ms": ms(statistics.median(cpu)),
        "phases_median_ms": {k: ms(statistics.median(v)) for k, v in phases.items()},
        "others_cpu_cores": busy,
    }


def naive_orm(runtime: Runtime) -> tuple[int, int]:
    """Every open ticket as a full ORM object, its deadline checked in Python."""
    seen = due = 0
    with runtime.db.read_session() as s:
        stmt = select(Ticket).where(Ticket.state.not_in(FINAL_STATES)).execution_options(yield_per=2000)
        for t in s.exec(stmt):
            seen += 1
            if t.due_at is not None and (t.due_at <= NOW or (t.warn_at is not None and t.warn_at <= NOW)):
                due += 1
    return seen, due


def naive_columns(runtime: Runtime) -> tuple[int, int]:
    """Every open ticket, only the columns the check needs."""
    seen = due = 0
    with runtime.db.read_session() as s:
        stmt = (
            select(Ticket.id, Ticket.due_at, Ticket.warn_at, Ticket.escalation_step)
            .where(Ticket.state.not_in(FINAL_STATES))
            .execution_options(yield_per=5000)
        )
        for _id, due_at, warn_at, _step in s.exec(stmt):
            seen += 1
            if due_at is not None and (due_at <= NOW or (warn_at is not None and warn_at <= NOW)):
                due += 1
    return seen, due


def time_naive(runtime: Runtime, fn, runs: int, size: int, quiet: Quiet) -> dict[str, Any]:
    times, busy, cpu = [], [], []
    meter = CpuMeter(runtime)
    for _ in range(runs):
        gc.collect()
        busy.append(quiet.wait("naive sweep"))
        meter.start()
        t0 = time.perf_counter()
        seen, due = fn(runtime)
        times.append(time.perf_counter() - t0)
        cpu.append(sum(meter.stop()))
        assert (seen, due) == (size, 0), (seen, due)
    return {
        "runs_ms": [ms(t) for t in times],
        "median_ms": ms(statistics.median(times)),
        "cpu_median_ms": ms(statistics.median(cpu)),
        "rows": size,
        "others_cpu_cores": max(busy),
    }


def due_ids(size: int) -> range:
    return range(DUE_EVERY, size + 1, DUE_EVERY)


def make_due(runtime: Runtime, rows: Rows, size: int) -> int:
    """Make the 1% due set overdue (again): clocks, step 1, and no trace of an earlier sweep."""
    tickets = Ticket.__table__
    ids = due_ids(size)
    with runtime.db.engine.begin() as conn:
        for table in (TicketEvent, Escalation, OutboxMessage, SupervisionOrder):
            conn.execute(table.__table__.delete())
        conn.execute(Notification.__table__.delete().where(Notification.__table__.c.kind != "calendar"))
        assignments = Assignment.__table__
        stmt = tickets.update().where(tickets.c.id == bindparam("b_id"))
        stmt_a = assignments.update().where(assignments.c.ticket_id == bindparam("b_id"))
        for start in range(0, len(ids), 5000):
            pairs = [rows.overdue(i) for i in ids[start : start + 5000]]
            conn.execute(stmt, [t for t, _ in pairs])
            conn.execute(stmt_a, [a for _, a in pairs])
    settle(runtime, vacuum=False)
    return len(ids)


def verify(runtime: Runtime, rows: Rows, size: int, report) -> dict[str, Any]:
    """After the 1% sweep: each due ticket urged exactly once, nothing else touched."""
    n = len(due_ids(size))
    with runtime.db.read_session() as s:
        cal = runtime.calendar(s)
    sup = sla.step_time(cal, runtime.workflows.get(WORKFLOW), Ticket(**rows.due_rows[0][0]), 2)
    v = rows.version
    q = {
        "due_tickets_at_step_2": (
            f"SELECT count(*) FROM tickets WHERE id % :k = 0 AND escalation_step = 2 AND version = {v + 1} "
            "AND state = 'in_progress' AND next_due_at > :now AND updated_at = :now"
        ),
        "due_tickets_not_at_step_2": (
            f"SELECT count(*) FROM tickets WHERE id % :k = 0 AND NOT (escalation_step = 2 AND version = {v + 1} "
            "AND state = 'in_progress' AND next_due_at > :now AND updated_at = :now)"
        ),
        "other_tickets_touched": (
            f"SELECT count(*) FROM tickets WHERE id % :k <> 0 AND (version <> {v} OR escalation_step <> 0 "
            "OR next_due_at <= :now OR updated_at >= :now OR state <> 'in_progress')"
        ),
        "assignments_touched": "SELECT count(*) FROM assignments WHERE status <> 'signed'",
        "events": "SELECT count(*) FROM ticket_events",
        "urge_events_on_due_tickets": (
            "SELECT count(*) FROM ticket_events WHERE event = 'urge' AND ticket_id % :k = 0 "
            "AND actor_role = 'system' AND from_state = 'in_progress' AND to_state = 'in_progress'"
        ),
        "tickets_with_events": "SELECT count(DISTINCT ticket_id) FROM ticket_events",
        "escalations": "SELECT count(*) FROM escalations",
        "urge_escalations_on_due_tickets": (
            "SELECT count(*) FROM escalations e JOIN tickets t ON t.id = e.ticket_id WHERE e.step = 'urge' "
            "AND e.deadline_kind = 'handle' AND e.deadline_at = t.due_at AND e.ticket_id % :k = 0 "
            "AND e.department_id = t.main_department_id AND e.by_scheduler"
        ),
        "tickets_with_escalations": "SELECT count(DISTINCT ticket_id) FROM escalations",
        "notices": "SELECT count(*) FROM notifications WHERE kind <> 'calendar'",
        "urge_notices_to_the_department": (
            "SELECT count(*) FROM notifications n JOIN tickets t ON t.id = n.ticket_id WHERE n.kind = 'urge' "
            "AND n.role = 'handler' AND n.department_id = t.main_department_id AND t.id % :k = 0"
        ),
        # Each urge tells other systems twice: the ticket's change, and the notice it sent.
        "outbox_changes": "SELECT count(*) FROM outbox WHERE topic = 'ticket.changed'",
        "outbox_notices": "SELECT count(*) FROM outbox WHERE topic = 'notice'",
        "outbox_other": "SELECT count(*) FROM outbox WHERE topic NOT IN ('ticket.changed', 'notice')",
        "supervision_orders": "SELECT count(*) FROM supervision_orders",
        "supervision_time_mismatch": "SELECT count(*) FROM tickets WHERE id % :k = 0 AND next_due_at <> :sup",
    }
    expect = {
        "due_tickets_at_step_2": n,
        "due_tickets_not_at_step_2": 0,
        "other_tickets_touched": 0,
        "assignments_touched": 0,
        "events": n,
        "urge_events_on_due_tickets": n,
        "tickets_with_events": n,
        "escalations": n,
        "urge_escalations_on_due_tickets": n,
        "tickets_with_escalations": n,
        "notices": n,
        "urge_notices_to_the_department": n,
        "outbox_changes": n,
        "outbox_notices": n,
        "outbox_other": 0,
        "supervision_orders": 0,
        "supervision_time_mismatch": 0,
        # `hotline audit verify`: every ticket's history chain recomputed.
        "history_rows_chained": n,
        "history_chain_breaks": 0,
    }
    got = {}
    with runtime.db.read_engine.connect() as conn:
        for name, sql in q.items():
            params = {"k": DUE_EVERY, "now": NOW, "sup": sup}
            stmt = text(sql).bindparams(*(bindparam(p, type_=UTCDateTime) for p in ("now", "sup") if f":{p}" in sql))
            got[name] = conn.execute(stmt, {k: v for k, v in params.items() if f":{k}" in sql}).scalar_one()
    with runtime.db.read_session() as s:
        chained, broken = audit.verify(s)
    got["history_rows_chained"] = chained
    got["history_chain_breaks"] = 0 if broken is None else 1
    got["report_urge"] = report.count("urge")
    got["report_other_steps"] = len(report.steps) - report.count("urge")
    got["report_skipped"] = len(report.skipped)
    got["report_deferred"] = report.deferred
    expect.update(report_urge=n, report_other_steps=0, report_skipped=0, report_deferred=0)
    failures = {k: {"got": got[k], "expected": v} for k, v in expect.items() if got[k] != v}
    return {"ok": not failures, "checks": got, "failures": failures}


def time_due(runtime: Runtime, rows: Rows, size: int, runs: int, quiet: Quiet) -> dict[str, Any]:
    out = []
    for _ in range(runs):
        n = make_due(runtime, rows, size)
        gc.collect()
        busy = quiet.wait("1% due")
        meter = CpuMeter(runtime)
        meter.start()
        t0 = time.perf_counter()
        # The scheduler's sweep job: the surge check is a job of its own (timed in "nothing due").
        report = sweep(runtime, now=NOW, with_surges=False)
        seconds = time.perf_counter() - t0
        own, server = meter.stop()
        check = verify(runtime, rows, size, report)
        out.append(
            {
                "seconds": round(seconds, 3),
                "tickets_per_s": round(n / seconds, 1),
                "cpu_s": {"sweep_process": round(own, 3), "database_server": round(server, 3)},
                "tickets_per_cpu_s": round(n / (own + server), 1),
                "others_cpu_cores": busy,
                "verified": check,
            }
        )
        status = "verified" if check["ok"] else f"FAILED {check['failures']}"
        print(
            f"    1% due: {n:,} urged in {seconds:.2f} s ({n / seconds:,.0f}/s); CPU {own:.2f} s here + "
            f"{server:.2f} s server ({n / (own + server):,.0f} per CPU-second), {status}",
            flush=True,
        )
    median = statistics.median(r["seconds"] for r in out)
    return {
        "due": len(due_ids(size)),
        "runs": out,
        "seconds": round(median, 3),
        "tickets_per_s": round(len(due_ids(size)) / median, 1),
        "tickets_per_cpu_s": statistics.median(r["tickets_per_cpu_s"] for r in out),
        "verified": all(r["verified"]["ok"] for r in out),
    }


# --------------------------------------------------------------------------- profile


def py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def _frame(frame: str) -> tuple[str, str]:
    """py-spy's 'Class.function (package/file.py:123)' -> ('Class.function', 'package/file.py')."""
    name, _, rest = frame.partition(" (")
    return name, rest.rsplit(":", 1)[0] if rest else ""


def summarise(raw: Path) -> dict[str, Any]:
    """Collapsed stacks -> inclusive time of hotline's functions and notable calls, and self time."""
    inclusive: Counter = Counter()
    self_time: Counter = Counter()
    libraries: Counter = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame(f) for f in stack.split(";")]
        seen = set()
        for name, path in frames:
            key = None
            if path.startswith("hotline/"):
                key = f"{path.removesuffix('.py').replace('/', '.')}:{name}"
            elif path.startswith(("sqlalchemy/", "transitions/", "sqlmodel/", "psycopg/", "sqlite3/")):
                top = path.split("/", 1)[0]
                key = f"{top}:{name}"
            if key and key not in seen:
                seen.add(key)
                inclusive[key] += count
        if frames:
            name, path = frames[-1]
            self_time[f"{path}:{name}"] += count
            libraries[path.split("/", 1)[0] if "/" in path else path] += count

    def pct(c: Counter, n: int) -> dict[str, float]:
        return {k: round(100 * v / total, 1) for k, v in c.most_common(n)}

    return {
        "samples": total,
        "inclusive_pct": pct(inclusive, 60),
        "self_pct": pct(self_time, 25),
        "self_by_library_pct": pct(libraries, 12),
    }


def profile_due(runtime: Runtime, rows: Rows, size: int, name: str, rate: int, quiet: Quiet) -> dict[str, Any] | None:
    exe = py_spy()
    if exe is None:
        print("    py-spy not found: no profile", file=sys.stderr)
        return None
    n = make_due(runtime, rows, size)
    quiet.wait("profiled 1% due")
    raw = RESULTS / f"sweep-profile-{name}.raw"
    argv = [exe, "record", "--pid", str(os.getpid()), "--format", "raw", "--output", str(raw), "--rate", str(rate)]
    statements: Counter = Counter()

    def count(_conn, _cursor, statement, _params, _context, _many) -> None:
        words = statement.split()
        head = words[0].upper()
        if head in ("INSERT", "DELETE") and len(words) > 2:
            head += " " + words[2]
        elif head == "UPDATE" and len(words) > 1:
            head += " " + words[1]
        elif head == "SELECT" and "FROM" in words:
            head += " " + words[words.index("FROM") + 1] + (" FOR UPDATE" if "FOR UPDATE" in statement else "")
        statements[head] += 1

    engines = {runtime.db.engine, runtime.db.read_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # let it attach
    t0 = time.perf_counter()
    report = sweep(runtime, now=NOW, with_surges=False)
    seconds = time.perf_counter() - t0
    for engine in engines:
        event.remove(engine, "before_cursor_execute", count)
    spy.send_signal(signal.SIGINT)
    _, err = spy.communicate(timeout=120)
    if not raw.exists():
        print(f"    py-spy wrote no profile: {err}", file=sys.stderr)
        return None
    ok = verify(runtime, rows, size, report)["ok"]
    summary = summarise(raw)
    summary.update(tickets=n, seconds=round(seconds, 3), tickets_per_s=round(n / seconds, 1), verified=ok)
    summary["statements_per_ticket"] = {k: round(v / n, 2) for k, v in statements.most_common()}
    summary["statements_per_ticket_total"] = round(sum(statements.values()) / n, 2)
    text_out = RESULTS / f"sweep-profile-{name}.txt"
    lines = [
        f"py-spy, {rate} Hz, 1%-due sweep on {name}, {size:,} open tickets: {n:,} urged in {seconds:.2f} s "
        f"under the profiler ({n / seconds:,.0f}/s); {summary['samples']} samples",
        "",
        "inclusive % (hotline's functions and library entry points):",
        *[f"  {v:5.1f}  {k}" for k, v in summary["inclusive_pct"].items()],
        "",
        "self % (leaf frames):",
        *[f"  {v:5.1f}  {k}" for k, v in summary["self_pct"].items()],
        "",
        "self % by top-level package:",
        *[f"  {v:5.1f}  {k}" for k, v in summary["self_by_library_pct"].items()],
        "",
        f"SQL statements per escalated ticket: {summary['statements_per_ticket_total']}",
        *[f"  {v:6.2f}  {k}" for k, v in summary["statements_per_ticket"].items()],
    ]
    text_out.write_text("\n".join(lines) + "\n")
    raw.unlink()
    print(f"    profile: {text_out.relative_to(ROOT)}", flush=True)
    return summary


# --------------------------------------------------------------------------- the run


def run_one(kind: str, size: int, args, tmp: Path, profile: bool, templates) -> dict[str, Any]:
    quiet = Quiet(args.quiet_cores, args.quiet_wait)
    print(f"{kind}, {size:,} open tickets:", flush=True)
    path = None
    if kind == "sqlite":
        path = tmp / f"sweep-{size}.db"
        url = f"sqlite:///{path}"
    else:
        url = _create_pg(args.pg_url, args.pg_db)
    runtime = _runtime(url)
    try:
        rows, build_s = build(runtime, size, args.batch, templates)
        entry: dict[str, Any] = {
            "db": kind,
            "size": size,
            "build_s": round(build_s, 1),
            "insert_rate_per_s": round(size / build_s),
            "db_bytes": db_bytes(runtime, path),
        }
        entry["nothing_due"] = time_nothing_due(runtime, args.runs, quiet)
        entry["nothing_due"]["plan"] = query_plan(runtime)
        phases = ", ".join(f"{k} {v}" for k, v in entry["nothing_due"]["phases_median_ms"].items())
        print(f"    nothing due: median {entry['nothing_due']['median_ms']} ms ({phases})", flush=True)
        naive_runs = args.naive_runs if size < 1_000_000 else min(args.naive_runs, 2)
        if naive_runs:
            entry["naive_orm"] = time_naive(runtime, naive_orm, naive_runs, size, quiet)
            print(f"    naive (ORM rows): median {entry['naive_orm']['median_ms']} ms", flush=True)
            entry["naive_columns"] = time_naive(runtime, naive_columns, naive_runs, size, quiet)
            print(f"    naive (4 columns): median {entry['naive_columns']['median_ms']} ms", flush=True)
        entry["one_pct_due"] = time_due(runtime, rows, size, args.due_runs, quiet)
        if profile:
            entry["profile"] = profile_due(runtime, rows, size, kind, args.profile_rate, quiet)
        return entry
    finally:
        runtime.db.dispose()
        if kind == "sqlite" and path is not None:
            for p in path.parent.glob(path.name + "*"):
                p.unlink()
        elif not args.keep:
            _drop_pg(args.pg_url, args.pg_db)


def busiest(r: dict[str, Any]) -> float:
    phases = [r["nothing_due"], r.get("naive_orm", {}), r.get("naive_columns", {}), *r["one_pct_due"]["runs"]]
    return max(p.get("others_cpu_cores", 0.0) for p in phases)


def table(results: list[dict[str, Any]]) -> str:
    head = (
        f"{'':<11}{'open':>10} | {'nothing due ms':>16} | {'1% due':>7}{'wall':>8}{'tickets/s':>11}{'per CPU-s':>11}"
        f" | {'naive ORM ms':>16} | {'naive cols ms':>15} | {'ok':>3}{'others':>8}"
    )
    unit = (
        f"{'db':<11}{'tickets':>10} | {'wall':>8}{'cpu':>8} | {'tickets':>7}{'s':>8}{'wall':>11}{'':>11}"
        f" | {'wall':>8}{'cpu':>8} | {'wall':>7}{'cpu':>8} | {'':>3}{'cores':>8}"
    )
    out = [head, unit, "-" * len(head)]
    for r in sorted(results, key=lambda r: (r["db"], r["size"])):
        d, nd = r["one_pct_due"], r["nothing_due"]
        not_run = {"median_ms": float("nan")}
        no, nc = r.get("naive_orm", not_run), r.get("naive_columns", not_run)
        out.append(
            f"{r['db']:<11}{r['size']:>10,} | {nd['median_ms']:>8.1f}{nd.get('cpu_median_ms', 0):>8.1f}"
            f" | {d['due']:>7,}{d['seconds']:>8.2f}{d['tickets_per_s']:>11,.0f}{d.get('tickets_per_cpu_s', 0):>11,.0f}"
            f" | {no['median_ms']:>8,.0f}{no.get('cpu_median_ms', 0):>8,.0f}"
            f" | {nc['median_ms']:>7,.0f}{nc.get('cpu_median_ms', 0):>8,.0f}"
            f" | {'yes' if d['verified'] else 'NO':>3}{busiest(r):>8.2f}"
        )
    out += [
        "cpu: CPU time of the sweep's process, plus (PostgreSQL) of the server backends serving it",
        "others: the most CPU (cores) other processes used just before a timed phase of that row",
    ]
    return "\n".join(out)


# --------------------------------------------------------------------------- demo databases


def _demo_now(runtime: Runtime) -> datetime:
    """Five minutes after the demo's last ticket: the sweep's clock on a demo database."""
    from sqlalchemy import func

    with runtime.db.read_session() as s:
        last = s.exec(select(func.max(Ticket.created_at))).one()
    return last + timedelta(minutes=5)


def _timed_ms(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(ms(time.perf_counter() - t0))
    return out


def measure_demo(url: str, runs: int, migrate: bool, quiet: Quiet) -> dict[str, Any]:
    """The sweep with nothing due, its calendar check, and the surge check, on a database made
    by `hotline demo-data --tickets N` (its tickets spread over half a year up to its load).

    `calendar, fresh process`: check_calendar in a runtime that has not looked yet (each
    worker's first sweeps, each restart); `surges, first`: the first surge check on the
    database (with this code: counting the baseline days after the bulk load)."""
    from sqlalchemy import func

    from hotline.scheduler import SweepReport, check_calendar, surges

    runtime = _runtime(url)
    if migrate:
        upgrade(runtime.db)
    with runtime.db.read_session() as s:
        size = s.exec(select(func.count()).select_from(Ticket)).one()
        notices_before = s.exec(select(func.count()).select_from(Notification)).one()
    now = _demo_now(runtime)
    print(f"  {runtime.db.dialect} {size:,} demo tickets, sweeping at {now.isoformat()}", flush=True)
    report = SweepReport(now=now)
    t0 = time.perf_counter()
    surges(runtime, now, report)
    first_surges = ms(time.perf_counter() - t0)
    settle_report = sweep(runtime, now=now)  # what is due at the demo's end: escalated or deferred
    quiet.wait("demo sweep")

    nothing = _timed_ms(lambda: sweep(runtime, now=now, with_surges=False), runs)
    fresh_calendar = []
    for _ in range(runs):  # a fresh runtime each time; its engine's connect is not timed
        fresh = _runtime(url)
        with fresh.db.read_session() as s:
            fresh.calendar(s)
        with fresh.db.session() as s:  # the write engine's first connection, not timed either
            s.execute(text("SELECT 1"))
        t0 = time.perf_counter()
        with fresh.db.session() as session:
            check_calendar(session, fresh, now, SweepReport(now=now))
        fresh_calendar.append(ms(time.perf_counter() - t0))
        fresh.db.dispose()
    warm_surges = _timed_ms(lambda: surges(runtime, now, SweepReport(now=now)), runs)
    with runtime.db.read_session() as s:
        notices = s.exec(select(func.count()).select_from(Notification)).one()
    runtime.db.dispose()
    return {
        "db": runtime.db.dialect,
        "url": make_url(url).render_as_string(hide_password=True),
        "tickets": size,
        "notices": [notices_before, notices],
        "now": now.isoformat(),
        "settling_sweep": settle_report.lines()[-1],
        "sweep_nothing_due_median_ms": statistics.median(nothing),
        "sweep_nothing_due_ms": nothing,
        "calendar_fresh_process_median_ms": statistics.median(fresh_calendar),
        "surges_first_ms": first_surges,
        "surges_median_ms": statistics.median(warm_surges),
        "surges_ms": warm_surges,
        "code": code_version(),
    }


def demo_main(args) -> None:
    RESULTS.mkdir(exist_ok=True)
    quiet = Quiet(args.quiet_cores, args.quiet_wait)
    results = [measure_demo(url, args.runs, args.migrate, quiet) for url in args.demo.split(",") if url]
    out = Path(args.out if args.out != str(RESULTS / "sweep.json") else RESULTS / "sweep-demo.json")
    previous = json.loads(out.read_text()).get("results", []) if args.merge and out.exists() else []
    print(
        "| db | tickets | code | sweep, nothing due (ms) | calendar, fresh process (ms) | surges: first / warm (ms) |"
    )
    for r in results:
        print(
            f"| {r['db']} | {r['tickets']:,} | {r['code']['commit'][:7]} | {r['sweep_nothing_due_median_ms']} | "
            f"{r['calendar_fresh_process_median_ms']} | {r['surges_first_ms']} / {r['surges_median_ms']} |"
        )
    doc = {"benchmark": "sweep-demo", "written_at": datetime.now(UTC).isoformat(timespec="seconds")}
    out.write_text(json.dumps({**doc, "results": previous + results}, ensure_ascii=False, indent=2) + "\n")
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="open tickets, comma-separated")
    parser.add_argument("--db", default="sqlite,postgresql", help="sqlite, postgresql or both")
    parser.add_argument("--runs", type=int, default=7, help="timed nothing-due sweeps (median)")
    parser.add_argument("--naive-runs", type=int, default=3, help="timed naive sweeps (at most 2 at 1M; 0: none)")
    parser.add_argument("--due-runs", type=int, default=1, help="1%%-due sweeps, the due rows reset between")
    parser.add_argument("--batch", type=int, default=20_000, help="rows per bulk insert")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="any database on the PostgreSQL server")
    parser.add_argument("--pg-db", default=PG_DB, help="the scratch database's name (made and dropped)")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database of the last size")
    parser.add_argument("--profile", action="store_true", help="py-spy a 1%%-due sweep at the largest size")
    parser.add_argument("--profile-rate", type=int, default=250)
    parser.add_argument(
        "--quiet-cores", type=float, default=0.3, help="wait before a timing until others use fewer cores"
    )
    parser.add_argument("--quiet-wait", type=float, default=120, help="longest wait for that, seconds")
    parser.add_argument("--merge", action="store_true", help="keep other entries of bench/results/sweep.json")
    parser.add_argument("--out", default=str(RESULTS / "sweep.json"))
    parser.add_argument(
        "--code", metavar="REV", help="measure this commit (git archive) instead of the work tree as it is"
    )
    parser.add_argument(
        "--demo",
        metavar="URL,...",
        help="measure databases made by `hotline demo-data` instead (bench/results/sweep-demo.json)",
    )
    parser.add_argument("--migrate", action="store_true", help="with --demo: upgrade the databases first")
    args = parser.parse_args()
    if args.code and not os.environ.get(SNAPSHOT_ENV):
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        sys.exit(run_snapshot(args.code))
    if args.demo:
        demo_main(args)
        return
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    for k in kinds:
        if k not in ("sqlite", "postgresql"):
            parser.error(f"unknown database {k!r}")
    RESULTS.mkdir(exist_ok=True)
    # A plain `kill` ends the run through the finally clauses (temporary files, the scratch database).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    code = code_version()
    tmp = Path(tempfile.mkdtemp(prefix="hotline-sweep-"))
    results = []
    try:
        templates, check = templates_and_check(tmp)
        differences = check["differences"] or "none"
        print(f"gateway check: {check['compared_columns']} columns compared, differences: {differences}")
        if check["differences"]:
            raise SystemExit("bench: generated rows differ from the gateway's; fix the generator first")
        for kind in kinds:
            for size in sizes:
                results.append(run_one(kind, size, args, tmp, args.profile and size == max(sizes), templates))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    out = Path(args.out)
    previous = []
    if args.merge and out.exists():
        keys = {(r["db"], r["size"]) for r in results}
        previous = [r for r in json.loads(out.read_text()).get("results", []) if (r["db"], r["size"]) not in keys]
    everything = previous + results
    print()
    print(f"sweep at {NOW.isoformat()} (batch {BATCH}); 1% due = every {DUE_EVERY}th ticket, next step `urge`")
    print(table(everything))
    doc = {
        "benchmark": "sweep",
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "code": code,
        "sweep_now": NOW.isoformat(),
        "due_every": DUE_EVERY,
        "gateway_check": check,
        "results": sorted(everything, key=lambda r: (r["db"], r["size"])),
    }
    out.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    failed = [f"{r['db']} {r['size']:,}" for r in results if not r["one_pct_due"]["verified"]]
    profiled = [r for r in results if r.get("profile")]
    failed += [f"{r['db']} {r['size']:,} (profiled)" for r in profiled if not r["profile"]["verified"]]
    if failed:
        raise SystemExit(f"bench: the rows after the 1% sweep failed their checks: {', '.join(failed)}")


if __name__ == "__main__":
    main()
