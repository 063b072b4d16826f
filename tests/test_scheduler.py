"""The scheduler: the escalation ladder, each step once, in office hours, by itself."""

import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import func
from sqlmodel import select

from hotline.models import Escalation, Notification, OutboxMessage, SupervisionOrder, Ticket, TicketEvent
from hotline.scheduler import sweep
from tests.conftest import local
from tests.helpers import Api, make_dispatched, sqlite_plan


def _history(runtime, ticket_id: int) -> list[TicketEvent]:
    with runtime.db.read_session() as s:
        return list(s.exec(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)))


def _steps(runtime, ticket_id: int) -> list[str]:
    """The steps the scheduler took (the ones it passed over are recorded apart)."""
    rows = _history(runtime, ticket_id)
    return [e.event for e in rows if e.actor_role == "system" and e.event != "escalation_skipped"]


def _passed_over(runtime, ticket_id: int) -> list[tuple[str, str]]:
    rows = _history(runtime, ticket_id)
    return [(e.details["step"], e.details["deadline"]) for e in rows if e.event == "escalation_skipped"]


def test_ticket_left_alone_climbs_the_ladder_each_step_once(runtime, district, client):
    # Dispatched Monday 2026-11-02 09:00; signed at once; complaint: handle by 11-11 (Wed).
    (tid,) = make_dispatched(runtime, 1, now=local(2026, 11, 2, 9, 0))
    Api(client, district, "housing_h").fire(tid, "sign")
    agent = Api(client, district, "agent")

    def at(*when):
        report = sweep(runtime, now=local(*when))
        runtime.clock.set(local(*when))
        return report, agent.get(f"/tickets/{tid}")["level"]

    report, colour = at(2026, 11, 5, 10, 0)
    assert (report.steps, colour, _steps(runtime, tid)) == ([], "green", [])
    report, colour = at(2026, 11, 11, 9, 0)  # the last working day: yellow
    assert colour == "yellow" and _steps(runtime, tid) == ["warn"]
    report, colour = at(2026, 11, 12, 9, 0)  # the day after the deadline: red, urged
    assert colour == "red" and _steps(runtime, tid) == ["warn", "urge"]
    report, _ = at(2026, 11, 12, 15, 0)  # the same day again: nothing new
    assert report.steps == [] and _steps(runtime, tid) == ["warn", "urge"]
    at(2026, 11, 13, 9, 0)  # one working day later, still overdue: supervision order
    assert _steps(runtime, tid) == ["warn", "urge", "supervise"]
    at(2026, 11, 18, 9, 0)  # four working days: nothing new yet
    assert _steps(runtime, tid) == ["warn", "urge", "supervise"]
    at(2026, 11, 19, 9, 0)  # five working days: reported to district leadership
    assert _steps(runtime, tid) == ["warn", "urge", "supervise", "report"]
    at(2026, 12, 30, 9, 0)
    assert _steps(runtime, tid) == ["warn", "urge", "supervise", "report"]

    history = _history(runtime, tid)
    assert all(
        e.actor_name == "scheduler" and e.from_state == e.to_state == "in_progress"
        for e in history
        if e.actor_role == "system"
    )
    with runtime.db.read_session() as s:
        kinds = sorted(n.kind for n in s.exec(select(Notification).where(Notification.ticket_id == tid)))
        assert kinds == ["dispatch", "report", "report", "supervise", "urge", "warn"]
        # Events' payloads are sealed at rest: read, then looked into.
        notices = s.exec(select(OutboxMessage).where(OutboxMessage.ticket_id == tid, OutboxMessage.topic == "notice"))
        assert sum(1 for m in notices if m.payload["kind"] != "dispatch") == 5
        assert s.exec(select(func.count()).select_from(Escalation).where(Escalation.ticket_id == tid)).one() == 4
        order = s.exec(select(SupervisionOrder).where(SupervisionOrder.ticket_id == tid)).one()
        assert order.status == "open" and order.issued_by_id is None

    # The handler sees the urge; the leader sees and answers the supervision order.
    handler_notes = Api(client, district, "housing_h").get("/notifications")
    assert {n["kind"] for n in handler_notes} == {"dispatch", "warn", "urge"}  # the dispatch to the whole department
    leader = Api(client, district, "housing_l")
    assert {n["kind"] for n in leader.get("/notifications")} == {"dispatch", "supervise", "report"}
    (open_order,) = leader.get("/supervision-orders", status="open")
    answered = leader.post(f"/supervision-orders/{open_order['id']}/answer", {"answer": "已责成专人本周内办结"})
    assert answered["status"] == "answered"
    leader.post(f"/supervision-orders/{open_order['id']}/answer", {"answer": "again"}, expect=409)
    assert [e["event"] for e in agent.get(f"/tickets/{tid}/history")][-1] == "answer_supervision"
    reported = Api(client, district, "supervisor").get("/escalations", step="report")
    assert [r["ticket"] for r in reported] == [tid]


def test_sign_deadline_climbs_its_own_ladder_then_the_handle_deadline_starts_afresh(runtime, district, client):
    (tid,) = make_dispatched(runtime, 1, now=local(2026, 11, 2, 9, 0))  # sign by 11-03
    sweep(runtime, now=local(2026, 11, 4, 9, 0))
    assert _steps(runtime, tid) == ["urge"]  # already red: no warning, straight to urging
    assert _passed_over(runtime, tid) == [("warn", "sign")]  # and the history says so
    with runtime.db.read_session() as s:
        assert s.get(Ticket, tid).due_kind == "sign"
    runtime.clock.set(local(2026, 11, 4, 10, 0))
    Api(client, district, "housing_h").fire(tid, "sign")
    with runtime.db.read_session() as s:
        t = s.get(Ticket, tid)
        assert (t.due_kind, t.escalation_step) == ("handle", 0)


def test_notices_wait_for_office_hours(runtime, district):
    (tid,) = make_dispatched(runtime, 1, now=local(2026, 11, 2, 9, 0), urgency="critical")  # sign in 15 min
    report = sweep(runtime, now=local(2026, 11, 2, 20, 0))  # evening: overdue, but the office is closed
    assert report.steps == [] and report.deferred == 1
    assert sweep(runtime, now=local(2026, 11, 3, 7, 0)).steps == []
    report = sweep(runtime, now=local(2026, 11, 3, 8, 31))
    assert [s for _, s, _ in report.steps] == ["urge"]  # urged first thing in the morning
    report = sweep(runtime, now=local(2026, 11, 3, 9, 20))  # one working day after the 09:15 breach
    assert [s for _, s, _ in report.steps] == ["supervise"]
    assert _steps(runtime, tid) == ["urge", "supervise"]


def test_sweep_reads_only_what_is_due(sqlite_template):
    plan = sqlite_plan(
        sqlite_template, "SELECT id FROM tickets WHERE next_due_at <= '2026-11-02' ORDER BY next_due_at LIMIT 200"
    )
    assert "ix_tickets_next_due_at" in plan


def test_supervisor_urges_and_supervises_by_hand(runtime, district, client):
    (tid,) = make_dispatched(runtime, 1, now=local(2026, 11, 2, 9, 0))
    sup = Api(client, district, "supervisor")
    sup.fire(tid, "urge", message="请今天内签收")
    sup.fire(tid, "supervise")
    Api(client, district, "agent").fire(tid, "urge", expect=403)
    notes = Api(client, district, "housing_h").get("/notifications")
    assert notes[0]["kind"] == "urge" and notes[0]["body"] == "请今天内签收"
    assert len(Api(client, district, "housing_l").get("/supervision-orders")) == 1


def test_a_crash_half_way_leaves_nothing_half_done(runtime, district, monkeypatch):
    ids = make_dispatched(runtime, 30, now=local(2026, 11, 2, 9, 0))
    from hotline.workflow import registry, rules

    calls = {"n": 0}
    real = rules.urge

    def failing_urge(ctx, arg=None):
        calls["n"] += 1
        if calls["n"] == 20:
            raise RuntimeError("power cut")
        return real(ctx, arg)

    monkeypatch.setitem(registry.EFFECTS, "urge", failing_urge)
    from hotline.workflow import engine

    engine._machines.cache = {}
    with pytest.raises(RuntimeError):
        sweep(runtime, now=local(2026, 11, 4, 9, 0))
    with runtime.db.read_session() as s:
        assert s.exec(select(func.count()).select_from(Escalation)).one() == 0
    monkeypatch.setitem(registry.EFFECTS, "urge", real)
    engine._machines.cache = {}
    report = sweep(runtime, now=local(2026, 11, 4, 9, 0))
    assert report.count("urge") == 30
    assert all(_steps(runtime, i) == ["urge"] for i in ids)


def test_a_step_refused_half_way_through_a_batch_skips_that_ticket_alone(runtime, district, monkeypatch):
    """The batch runs at speed without savepoints; a refusal sends it round again, carefully."""
    ids = make_dispatched(runtime, 30, now=local(2026, 11, 2, 9, 0))
    refused = ids[17]
    from hotline.errors import Conflict
    from hotline.workflow import engine, registry, rules

    real = rules.urge

    def urge_but_one(ctx, arg=None):
        real(ctx, arg)  # its escalation row is written, then the step is refused
        if ctx.ticket.id == refused:
            raise Conflict("the department is being merged")

    monkeypatch.setitem(registry.EFFECTS, "urge", urge_but_one)
    engine._machines.cache = {}
    report = sweep(runtime, now=local(2026, 11, 4, 9, 0))
    engine._machines.cache = {}
    assert report.count("urge") == 29
    assert report.skipped == [(_number(runtime, refused), "urge", "the department is being merged")]
    assert all(_steps(runtime, i) == ["urge"] for i in ids if i != refused)
    assert _steps(runtime, refused) == []
    with runtime.db.read_session() as s:
        assert s.exec(select(func.count()).select_from(Escalation)).one() == 29
        notices = s.exec(select(OutboxMessage).where(OutboxMessage.topic == "notice"))  # payloads sealed
        assert sum(1 for m in notices if m.payload["kind"] == "urge") == 29
        # warn passed over (already red), urge refused: neither is tried again
        assert s.get(Ticket, refused).escalation_step == 2
    assert sweep(runtime, now=local(2026, 11, 4, 9, 30)).steps == []


def _number(runtime, ticket_id: int) -> str:
    with runtime.db.read_session() as s:
        return s.get(Ticket, ticket_id).number


def test_two_scheduler_processes_never_escalate_twice(runtime, district, database):
    ids = make_dispatched(runtime, 120, now=local(2026, 11, 2, 9, 0))
    env = {**os.environ, "HOTLINE_DATABASE_URL": database.url}
    cmd = [sys.executable, "-m", "hotline", "sweep", "--now", "2026-11-20T10:00"]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    with runtime.db.read_session() as s:
        rows = s.exec(
            select(TicketEvent.ticket_id, TicketEvent.event, func.count())
            .where(TicketEvent.actor_role == "system")
            .group_by(TicketEvent.ticket_id, TicketEvent.event)
        ).all()
    assert {count for _, _, count in rows} == {1}
    assert {tid for tid, _, _ in rows} == set(ids)
    # urge, supervise, report: each once per ticket; the warning passed over (already red), once
    assert len(rows) == 120 * 4
    assert {event for _, event, _ in rows} == {"escalation_skipped", "urge", "supervise", "report"}
    printed = "".join(o[0] for o in outs)
    assert printed.count(" urge (") == 120


def test_calendar_missing_warns_administrators_once(runtime, district, client):
    sweep(runtime, now=local(2026, 11, 20, 10, 0))
    sweep(runtime, now=local(2026, 11, 21, 10, 0))
    notes = Api(client, district, "admin").get("/notifications")
    assert [n["title"] for n in notes] == ["缺少 2027 年节假日数据"]
    # From then on a sweep does not look for the notice again (every minute until imported).
    from sqlalchemy import event

    looked: list[str] = []

    def watch(_conn, _cursor, statement, *_args) -> None:
        if "notifications.title" in statement:
            looked.append(statement)

    event.listen(runtime.db.engine, "before_cursor_execute", watch)
    try:
        sweep(runtime, now=local(2026, 12, 20, 10, 0))
    finally:
        event.remove(runtime.db.engine, "before_cursor_execute", watch)
    assert looked == []


def test_embedded_scheduler_escalates_without_anyone_pressing_a_button(database, runtime, district, clock):
    from fastapi.testclient import TestClient

    from hotline.config import Settings
    from hotline.main import create_app

    (tid,) = make_dispatched(runtime, 1, now=local(2026, 11, 2, 9, 0))
    clock.set(local(2026, 11, 4, 10, 0))
    settings = Settings(database_url=database.url, embedded_scheduler=True, sweep_interval_seconds=0.2)
    with TestClient(create_app(settings, runtime=runtime)):
        deadline = time.monotonic() + 10
        while _steps(runtime, tid) != ["urge"]:
            assert time.monotonic() < deadline, "the embedded scheduler did not sweep"
            time.sleep(0.1)


def test_one_open_supervision_order_at_a_time_the_ladder_passes_over_its_own(runtime, district, client):
    (tid,) = make_dispatched(runtime, 1, now=local(2026, 11, 2, 9, 0))
    Api(client, district, "housing_h").fire(tid, "sign")
    supervisor = Api(client, district, "supervisor")
    supervisor.fire(tid, "supervise", message="请加快办理")
    refused = supervisor.fire(tid, "supervise", expect=409)
    assert "awaits the department leader's answer" in refused["detail"] and "尚待单位负责人答复" in refused["zh"]
    # Overdue (handle by 11-11) and one working day later: the scheduler's own order would be
    # a second one, so it passes over it, says why, and reports on time as usual.
    sweep(runtime, now=local(2026, 11, 13, 9, 0))
    assert _steps(runtime, tid) == ["urge"]  # the warning too late to be of use, passed over too
    assert _passed_over(runtime, tid) == [("warn", "handle"), ("supervise", "handle")]
    sweep(runtime, now=local(2026, 11, 19, 9, 0))
    assert _steps(runtime, tid) == ["urge", "report"]
    with runtime.db.read_session() as s:
        assert s.exec(select(func.count()).select_from(SupervisionOrder)).one() == 1


def test_a_backlog_of_many_batches_is_urged_once_each_in_the_order_it_fell_due(runtime, district):
    """Small batches, so the sweep reads several windows and (PostgreSQL) runs its lanes."""
    ids = make_dispatched(runtime, 45, now=local(2026, 11, 2, 9, 0))
    report = sweep(runtime, now=local(2026, 11, 4, 9, 0), batch=4)
    with runtime.db.read_session() as s:
        numbers = dict(s.exec(select(Ticket.id, Ticket.number)).all())
        urged = s.exec(select(TicketEvent.ticket_id).where(TicketEvent.event == "urge")).all()
        escalations = s.exec(select(func.count()).select_from(Escalation)).one()
    assert sorted(urged) == ids and escalations == 45  # each once
    # The report lists them batch by batch, as they fell due (here, the order they were logged).
    assert [n for n, step, _ in report.steps] == [numbers[i] for i in ids]
    assert {step for _, step, _ in report.steps} == {"urge"} and _passed_over(runtime, ids[-1]) == [("warn", "sign")]
    assert sweep(runtime, now=local(2026, 11, 4, 9, 0), batch=4).steps == []


def test_two_sweeps_at_once_urge_each_ticket_once(runtime, district):
    import threading

    ids = make_dispatched(runtime, 30, now=local(2026, 11, 2, 9, 0))
    reports, errors = [], []

    def run() -> None:
        try:
            reports.append(sweep(runtime, now=local(2026, 11, 4, 9, 0), batch=5))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # What one sweep skipped (held by the other) the other took, or the next sweep takes.
    reports.append(sweep(runtime, now=local(2026, 11, 4, 9, 0), batch=5))
    with runtime.db.read_session() as s:
        urged = s.exec(select(TicketEvent.ticket_id).where(TicketEvent.event == "urge")).all()
    assert sorted(urged) == ids
    assert sum(r.count("urge") for r in reports) == 30


def test_a_supervise_step_passed_over_for_an_open_order_is_recorded_in_the_words_the_demo_writes(
    runtime, district, client
):
    """The scheduler passes the ladder's supervise step over while a supervisor's order waits
    for its answer; the history records why in the refusal's Chinese words, the very text
    hotline.demo.life writes for the same case (rules.order_awaits_answer_zh)."""
    from hotline.workflow.rules import order_awaits_answer_zh

    (tid,) = make_dispatched(runtime, 1, now=local(2026, 11, 2, 9, 0))
    runtime.clock.set(local(2026, 11, 12, 10, 0))
    Api(client, district, "supervisor").fire(tid, "supervise", message="请加快办理")
    sweep(runtime, now=local(2026, 11, 13, 9, 0))  # overdue a working day: the supervise step is due
    with runtime.db.read_session() as s:
        order = s.exec(select(SupervisionOrder).where(SupervisionOrder.ticket_id == tid)).one()
    skipped = [e.details for e in _history(runtime, tid) if e.event == "escalation_skipped"]
    assert [d["step"] for d in skipped] == ["warn", "supervise"]
    assert skipped[1]["reason"] == order_awaits_answer_zh(order.issued_at)
    assert skipped[1]["reason"].startswith("该工单已有督办单（11-12 10:00 下发）")


def test_the_missing_year_notice_is_withdrawn_once_the_year_is_imported(runtime, district, client):
    from datetime import date

    from hotline.deadlines.holidays import import_holidays
    from hotline.workflow.engine import SCHEDULER

    sweep(runtime, now=local(2026, 11, 20, 10, 0))
    admin = Api(client, district, "admin")
    (note,) = admin.get("/notifications")
    admin.post(f"/notifications/{note['id']}/read", {}, 200)  # one administrator has read it, not every one
    import_holidays(runtime, {date(2027, 1, 1): False}, source="test", actor=SCHEDULER, years=[2027])
    assert admin.get("/notifications") == []
    sweep(runtime, now=local(2026, 11, 21, 10, 0))  # and it does not come back
    assert admin.get("/notifications") == []
