"""The running totals behind the indicators agree with the plain GROUP BY over the facts,
whatever happens to the tickets, for any period, and a rebuild gives the same rows."""

import os
import random
import subprocess
import sys
import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update

from hotline.indicators import metrics, totals
from hotline.indicators.periods import bounds
from hotline.indicators.stats import Counts, department_counts, live_department_counts, performance_config
from hotline.migrate import upgrade
from hotline.models import Appeal, Assignment, DailyTotal
from hotline.scheduler import sweep
from tests.conftest import local
from tests.helpers import Api, make_dispatched


def _rows(runtime) -> dict:
    with runtime.db.read_session() as s:
        return {(r.day, r.department_id, r.metric): r.n for r in s.execute(select(DailyTotal)).scalars() if r.n}


def _periods() -> list[tuple[date, date]]:
    first = date(2026, 10, 26)
    days = [(first + timedelta(d), first + timedelta(d)) for d in range(50)]
    weeks = [(first + timedelta(7 * w), first + timedelta(7 * w + 6)) for w in range(7)]
    return [*days, *weeks, (date(2026, 11, 1), date(2026, 11, 30)), (date(2026, 10, 1), date(2026, 12, 31))]


def _assert_totals_match(runtime) -> int:
    """Every period's counts from the totals equal the GROUP BY's; returns the figures compared."""
    config = performance_config(str(runtime.settings.workflows_dir))
    now = runtime.now()
    compared = 0
    with runtime.db.read_session() as s:
        for start, end in _periods():
            lo, hi = bounds(start, end)
            live = {d: c.__dict__ for d, c in live_department_counts(s, lo, hi, now, config).items()}
            kept = {d: c.__dict__ for d, c in department_counts(s, start, end, now, config).items()}
            empty = Counts().__dict__
            for dept in live.keys() | kept.keys():
                assert kept.get(dept, empty) == live.get(dept, empty), (start, end, dept)
                compared += sum(live.get(dept, {}).values())
    return compared


def _walk(client, district, clock, rng: random.Random, n: int) -> None:
    """N tickets, each through a random path of the workflow: returns, redispatches,
    extensions, suspensions, late and early signs and replies, callbacks of every kind,
    rehandlings, appeals granted and refused. Refusals (409) are part of the walk."""
    as_ = {u: Api(client, district, u) for u in district.tokens}

    def post(user, path, body):
        r = client.post(f"/api/v1{path}", headers=district.headers(user), json=body)
        assert r.status_code in (200, 201, 409), r.text
        return r

    def fire(user, tid, event, **payload):
        return post(user, f"/tickets/{tid}/transitions", {"event": event, **payload}).status_code == 200

    def later(hours_lo, hours_hi):
        clock.advance(hours=rng.uniform(hours_lo, hours_hi))

    for _ in range(n):
        clock.set(local(2026, 11, 2, 9) + timedelta(hours=rng.uniform(0, 24 * 20)))
        category = rng.choice(["0101", "0101", "0102", "03"])
        tid = as_["agent"].create(category=category, type=rng.choice(["complaint", "help", "consultation"]))["id"]
        fire("agent", tid, "dispatch")
        for _round in range(3):
            code = as_["supervisor"].get(f"/tickets/{tid}")["department"]
            handler = {"housing": "housing_h", "urban": "urban_h", "water": "water_h", "street_a": "street_a_h"}.get(
                code, "housing_h"
            )
            later(0.2, 40)
            if rng.random() < 0.15 and fire(handler, tid, "return", reason="不属本单位职责"):
                later(0.5, 20)
                if rng.random() < 0.3:
                    fire("supervisor", tid, "reject_return", reason="属本单位职责")
                else:
                    fire("supervisor", tid, "redispatch", department=rng.choice(["urban", "water", "housing"]))
                continue
            fire(handler, tid, "sign")
            if rng.random() < 0.2:
                later(1, 30)
                if fire(handler, tid, "request_extension", days=rng.randint(1, 5), reason="需现场勘查"):
                    fire("supervisor", tid, rng.choice(["approve_extension", "reject_extension"]), reason="审核")
            if rng.random() < 0.15:
                later(1, 20)
                if fire(handler, tid, "request_suspension", reason="等待司法结论") and fire(
                    "supervisor", tid, "approve_suspension", reason="同意"
                ):
                    later(10, 100)
                    fire(handler, tid, "resume", reason="恢复办理")
            if rng.random() < 0.1:
                break  # left in handling: due, perhaps overdue, never replied
            later(2, 24 * 12)
            fire(handler, tid, "reply", result="已处理")
            later(0.5, 30)
            if rng.random() < 0.15:
                fire("supervisor", tid, "reject_reply", reason="答复不完整")
                later(1, 30)
                fire(handler, tid, "reply", result="已补充处理")
            fire("supervisor", tid, "approve_reply")
            for _attempt in range(rng.randint(1, 3)):
                later(1, 30)
                reached = rng.random() < 0.8
                payload = {"reached": reached}
                if reached:
                    payload.update(solved=rng.random() < 0.6, rating=rng.randint(1, 5))
                if fire("agent", tid, "callback", **payload) and reached:
                    break
            if rng.random() < 0.15:
                kind = rng.choice(["rating", "unreasonable"])
                r = post(handler, f"/tickets/{tid}/appeals", {"kind": kind, "grounds": "申诉理由"})
                if r.status_code == 201:
                    decision = rng.choice(["grant", "grant", "refuse"])
                    post("supervisor", f"/appeals/{r.json()['id']}/decision", {"decision": decision, "reason": "复核"})
            later(0.5, 10)
            if not fire("agent", tid, "rehandle", reason="群众不满意"):
                break


@pytest.mark.parametrize("seed", [7, 2026])
def test_totals_agree_with_the_facts_after_random_histories(runtime, client, district, clock, seed):
    _walk(client, district, clock, random.Random(seed), 36)
    # The scheduler's events (warnings, urging, supervision, rating links, closing) skip the
    # totals' bookkeeping: they must leave the facts alone.
    for at in (local(2026, 11, 16, 10), local(2026, 11, 23, 10), local(2026, 12, 9, 10)):
        clock.set(at)
        assert sweep(runtime, now=at).lines()
    for now in (local(2026, 11, 13, 15, 30), local(2026, 11, 27, 23, 59), local(2026, 12, 20, 10)):
        clock.set(now)
        assert _assert_totals_match(runtime) > 100
    incremental = _rows(runtime)
    # The walk went everywhere that matters: every metric counted, appeals of both kinds granted.
    assert {m for (_day, _dept, m) in incremental} == {m.name for m in metrics.KEPT}
    with runtime.db.read_session() as s:
        granted = set(s.execute(select(Appeal.kind).where(Appeal.status == "granted")).scalars())
        assert granted == {"rating", "unreasonable"}
        assert s.execute(select(func.count()).where(Assignment.status == "withdrawn")).scalar_one() > 0
    with runtime.db.session() as s:
        written = totals.rebuild(s)
    assert _rows(runtime) == incremental and written >= len(incremental)


def test_a_deadline_today_counts_once_it_has_passed(runtime, client, district, clock):
    """Deadlines of the current day come from the facts, up to the current minute."""
    clock.set(local(2026, 11, 2, 9))
    make_dispatched(runtime, 1, now=clock(), urgency="urgent")  # handle within 24 hours
    config = performance_config(str(runtime.settings.workflows_dir))
    day = date(2026, 11, 3)
    with runtime.db.read_session() as s:
        assert s.execute(select(DailyTotal.day).where(DailyTotal.metric == "due")).scalar_one() == day
        figures = [
            department_counts(s, day, day, at, config)
            for at in (local(2026, 11, 3, 8, 59), local(2026, 11, 3, 9, 1), local(2026, 11, 4, 9))
        ]
    assert [sum(c.due for c in f.values()) for f in figures] == [0, 1, 1]
    assert [sum(c.overdue for c in f.values()) for f in figures] == [0, 1, 1]
    for at in (local(2026, 11, 3, 8, 59), local(2026, 11, 3, 9, 1)):
        clock.set(at)
        _assert_totals_match(runtime)


def test_check_and_rebuild_commands(runtime, client, district, clock, database):
    _walk(client, district, clock, random.Random(3), 8)
    # The key the test process seals with (conftest), which PostgreSQL needs.
    env = {"HOTLINE_DATABASE_URL": database.url, "PATH": "", "HOTLINE_SECRET_KEY": os.environ["HOTLINE_SECRET_KEY"]}
    cmd = [sys.executable, "-m", "hotline.cli", "stats"]
    ok = subprocess.run([*cmd, "check", "--from", "2026-11-01", "--to", "2026-11-30"], env=env, capture_output=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert b"agree" in ok.stdout
    with runtime.db.session() as s:  # damage one total, as a bulk import past the gateway would
        s.execute(update(DailyTotal).where(DailyTotal.metric == "dispatched").values(n=DailyTotal.n + 5))
    bad = subprocess.run([*cmd, "check", "--from", "2026-11-01", "--to", "2026-11-30"], env=env, capture_output=True)
    assert bad.returncode == 1
    assert b"dispatched" in bad.stdout
    fixed = subprocess.run([*cmd, "rebuild"], env=env, capture_output=True)
    assert fixed.returncode == 0, fixed.stderr
    _assert_totals_match(runtime)


def test_upgrade_builds_missing_totals(runtime, client, district, clock):
    """A database that predates the totals gets them on `hotline db upgrade`."""
    _walk(client, district, clock, random.Random(5), 6)
    kept = _rows(runtime)
    assert kept
    with runtime.db.session() as s:
        s.execute(DailyTotal.__table__.delete())
    upgrade(runtime.db)
    assert _rows(runtime) == kept


def test_concurrent_changes_to_one_department_keep_the_totals(runtime, server, district, clock, database):
    """Many transactions adding to the same rows at once (one department, one day)."""
    import httpx

    clock.set(local(2026, 11, 2, 9))
    ids = make_dispatched(runtime, 24, now=clock())
    clock.set(local(2026, 11, 2, 10))
    errors: list[str] = []

    def sign(chunk):
        with httpx.Client(base_url=server, headers=district.headers("housing_h"), timeout=30) as c:
            for tid in chunk:
                r = c.post(f"/api/v1/tickets/{tid}/transitions", json={"event": "sign"})
                if r.status_code != 200:
                    errors.append(r.text)
                r = c.post(f"/api/v1/tickets/{tid}/transitions", json={"event": "reply", "result": "已处理"})
                if r.status_code != 200:
                    errors.append(r.text)

    threads = [threading.Thread(target=sign, args=(ids[i::6],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    rows = _rows(runtime)
    assert sum(n for (_day, _dept, m), n in rows.items() if m == "signed_on_time") == 24
    assert sum(n for (_day, _dept, m), n in rows.items() if m == "replied") == 24
    _assert_totals_match(runtime)


def test_sqlite_statistics_lead_the_planner_to_the_ticket_index(runtime, district, clock):
    """With statistics, a ticket's assignments are read by their ticket, not by their role."""
    make_dispatched(runtime, 40, now=local(2026, 11, 2, 9))
    if not runtime.db.refresh_statistics():
        assert runtime.db.dialect == "postgresql"  # autovacuum keeps PostgreSQL's statistics
        return
    with runtime.db.read_session() as s:
        plan = s.connection().exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT * FROM assignments WHERE ticket_id = 7 AND role = 'main'"
        )
        assert "ix_assignments_ticket_id" in " ".join(str(row) for row in plan)
        assert s.connection().exec_driver_sql("SELECT count(*) FROM sqlite_stat1").scalar_one() > 0
