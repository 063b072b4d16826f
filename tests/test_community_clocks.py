"""A community's own clocks (二级派单) watched by the scheduler, and the street's recall (收回),
on SQLite and PostgreSQL: the community and its street are warned as the community's sign or
handle time nears, the street is told first once it has passed (it is the community's
supervisor), each step once; a recall stops the community's clocks."""

import os
import re
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import select

from hotline.db import utcnow
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.directory import department_by_code
from hotline.models import Assignment, Escalation, TicketEvent
from hotline.scheduler import sweep
from tests.communities import add_communities
from tests.helpers import Api, add_user, sign_in, sqlite_plan


@pytest.fixture
def as_(runtime, client, district):
    add_communities(runtime, district)
    return lambda username: Api(client, district, username)


def passed_down(as_, community: str = "east_1") -> int:
    """A ticket the street office 东城街道 signed and passed to one of its communities."""
    tid = as_("agent").create(category="0102")["id"]
    as_("agent").fire(tid, "dispatch", department="street_a")
    as_("street_a_h").fire(tid, "sign")
    assert as_("street_a_h").fire(tid, "sub_dispatch", community=community)["state"] == "sub_dispatched"
    return tid


def the_part(runtime, tid: int) -> Assignment:
    with runtime.db.read_session() as s:
        return s.exec(select(Assignment).where(Assignment.ticket_id == tid, Assignment.role == "sub")).one()


def community_steps(runtime, tid: int) -> list[tuple[str, str, str]]:
    """The community ladder's escalation record: (department, clock, step)."""
    with runtime.db.read_session() as s:
        rows = s.exec(
            text(
                "SELECT d.code, e.deadline_kind, e.step FROM escalations e JOIN departments d "
                "ON d.id = e.department_id WHERE e.ticket_id = :t AND e.deadline_kind LIKE 'sub_%' ORDER BY e.id"
            ).bindparams(t=tid)
        ).all()
    return [tuple(r) for r in rows]


def notices_of(runtime, code: str, role: str) -> list[str]:
    with runtime.db.read_session() as s:
        rows = s.exec(
            text(
                "SELECT n.title FROM notifications n JOIN departments d ON d.id = n.department_id "
                "WHERE d.code = :c AND n.role = :r ORDER BY n.id"
            ).bindparams(c=code, r=role)
        ).all()
    return [r[0] for r in rows]


def next_morning(deadline):
    """9:00 the day after a deadline (deadlines fall at the end of a day)."""
    return (deadline + timedelta(days=1)).astimezone(LOCAL_TZ).replace(hour=9, minute=0, second=0, microsecond=0)


def at(runtime, when):
    runtime.clock.set(when)
    return sweep(runtime, now=when)


def test_a_communitys_clocks_warn_it_and_its_street_then_the_street_is_told_first_each_step_once(
    as_, runtime, district
):
    tid = passed_down(as_)
    part = the_part(runtime, tid)
    sign_by, handle_by = part.sign_by, part.handle_by
    assert part.next_due_at is not None and part.next_due_at < sign_by
    assert at(runtime, runtime.clock()).steps == []

    # Its sign-by nears (a quarter of the limit left, in office hours): warned, community and street.
    warn_at = part.next_due_at
    assert at(runtime, warn_at - timedelta(minutes=1)).steps == []
    report = at(runtime, warn_at)
    assert [(s, k) for _, s, k in report.steps] == [("warn", "sub_sign")]
    assert community_steps(runtime, tid) == [("east_1", "sub_sign", "warn")]
    assert any("社区签收即将超期" in x for x in notices_of(runtime, "east_1", "handler"))
    assert any("社区签收即将超期" in x for x in notices_of(runtime, "street_a", "handler"))
    # A second sweep at the same time does nothing more.
    assert at(runtime, warn_at + timedelta(minutes=5)).steps == []

    # Past it (the next morning): the street office is told first, its leader too; the community as well.
    morning = next_morning(sign_by)
    report = at(runtime, morning)
    assert [(s, k) for _, s, k in report.steps] == [("urge", "sub_sign")]
    assert any("社区超期" in x for x in notices_of(runtime, "street_a", "leader"))
    assert any("社区超期" in x for x in notices_of(runtime, "east_1", "handler"))
    assert at(runtime, morning + timedelta(hours=2)).steps == []
    # Not the centre's own ladder: the street's clock still runs green, nobody else was told.
    assert as_("supervisor").get(f"/tickets/{tid}")["level"] == "green"
    with runtime.db.read_session() as s:
        assert s.exec(select(Escalation).where(Escalation.deadline_kind.in_(("sign", "handle")))).all() == []
        history = s.exec(select(TicketEvent.event).where(TicketEvent.ticket_id == tid)).all()
    assert history.count("community_warn") == 1 and history.count("community_urge") == 1
    # The escalation record: the street office's leader reads its community's rows, as the
    # community's leader does; another street's leader does not.
    expected = [("urge", "sub_sign"), ("warn", "sub_sign")]
    for leader in ("street_a_l", "east_1_l"):
        rows = as_(leader).get("/escalations")
        assert [(r["step"], r["deadline"]) for r in rows if r["ticket"] == tid] == expected, leader
    with runtime.db.session() as s:
        add_user(s, district, "street_b_l", "leader", department_by_code(s, "street_b").id, utcnow())
    assert as_("street_b_l").get("/escalations") == []

    # The community signs late: its handling clock starts its own ladder.
    as_("east_1_h").fire(tid, "sub_sign")
    part = the_part(runtime, tid)
    assert (part.escalation_step, part.signed_on_time) == (0, False)
    assert sign_by < part.next_due_at < handle_by
    # Long past its handle-by: the warning would be noise, the street is told at once.
    report = at(runtime, next_morning(handle_by))
    assert [(s, k) for _, s, k in report.steps if k.startswith("sub_")] == [("urge", "sub_handle")]
    assert community_steps(runtime, tid)[-1] == ("east_1", "sub_handle", "urge")
    assert the_part(runtime, tid).next_due_at is None
    # Counted as the community's overdue in its indicators.
    runtime.clock.set(handle_by + timedelta(days=1))
    day = runtime.clock().astimezone(LOCAL_TZ).date()
    period = {"from": (day - timedelta(days=30)).isoformat(), "to": day.isoformat()}
    row = next(
        r for r in as_("supervisor").get("/stats/departments", **period)["communities"] if r["department"] == "east_1"
    )
    assert (row["dispatched"], row["signed_on_time"], row["due"], row["overdue"]) == (1, 0, 1, 1)


def test_no_clock_runs_after_the_community_replies(as_, runtime):
    tid = passed_down(as_)
    as_("east_1_h").fire(tid, "sub_sign")
    as_("east_1_h").fire(tid, "sub_reply", result="已到现场处理")
    part = the_part(runtime, tid)
    assert part.next_due_at is None
    at(runtime, next_morning(part.handle_by))
    assert community_steps(runtime, tid) == []
    # The street sends the reply back: the community's handling clock runs again.
    as_("street_a_h").fire(tid, "reject_sub_reply", reason="请补充照片")
    assert the_part(runtime, tid).next_due_at is not None


def test_out_of_office_hours_the_steps_wait_for_the_office(as_, runtime):
    tid = passed_down(as_)
    sign_by = the_part(runtime, tid).sign_by
    evening = (sign_by + timedelta(days=1)).astimezone(LOCAL_TZ).replace(hour=21, minute=0)
    report = at(runtime, evening)
    assert report.steps == [] and report.deferred >= 1
    assert community_steps(runtime, tid) == []
    morning = (evening + timedelta(days=1)).replace(hour=9, minute=0)
    assert [s for _, s, k in at(runtime, morning).steps if k == "sub_sign"] == ["urge"]


def test_the_community_sweep_reads_only_what_is_due(sqlite_template):
    plan = sqlite_plan(
        sqlite_template,
        "SELECT id, ticket_id FROM assignments WHERE next_due_at <= '2026-11-02' ORDER BY next_due_at LIMIT 200",
    )
    assert "ix_assignments_next_due_at" in plan


# --- the street recalls the ticket (收回) ------------------------------------------------


def test_the_street_recalls_the_ticket_with_a_reason_and_the_communitys_clocks_stop(as_, runtime):
    street, east = as_("street_a_h"), as_("east_1_h")
    tid = passed_down(as_)
    assert "sub_recall" in {e["name"] for e in street.get(f"/tickets/{tid}/transitions")["events"]}
    street.fire(tid, "sub_recall", expect=422)  # a reason is needed
    east.fire(tid, "sub_sign")
    t = street.fire(tid, "sub_recall", reason="情况紧急，街道直接处理")
    assert (t["state"], t["department"], t["community_department"]) == ("in_progress", "street_a", None)
    part = the_part(runtime, tid)
    assert (part.status, part.next_due_at, part.returned) == ("withdrawn", None, False)
    # The community no longer has it: not in its list, not visible, told why.
    east.get(f"/tickets/{tid}", expect=404)
    assert east.get("/tickets")["items"] == []
    assert any("街道收回" in n["title"] and "情况紧急" in n["body"] for n in east.get("/notifications"))
    history = as_("supervisor").get(f"/tickets/{tid}/history")
    assert history[-1]["event"] == "sub_recall" and history[-1]["details"]["reason"] == "情况紧急，街道直接处理"
    # Its clocks stopped: nothing to escalate past them.
    at(runtime, next_morning(part.handle_by))
    assert community_steps(runtime, tid) == []
    # The street may pass it down again.
    assert street.fire(tid, "sub_dispatch", community="east_2")["community_department"] == "east_2"


def test_a_recall_is_refused_in_the_wrong_state_or_by_the_wrong_unit(as_):
    street, east, west, sup = as_("street_a_h"), as_("east_1_h"), as_("west_1_h"), as_("supervisor")
    tid = passed_down(as_)
    # The community itself may not recall; another street's units do not see the ticket.
    r = east.fire(tid, "sub_recall", expect=403, reason="x")
    assert "street office" in r["detail"]
    west.fire(tid, "sub_recall", expect=404, reason="x")
    assert "role" in sup.fire(tid, "sub_recall", expect=403, reason="x")["detail"]
    # Once the community has replied, the street reviews the reply instead: 409 with why.
    east.fire(tid, "sub_sign")
    east.fire(tid, "sub_reply", result="已处理")
    r = street.fire(tid, "sub_recall", expect=409, reason="改由街道处理")
    assert "sub_replied" in r["detail"] and "approve_sub_reply" in r["detail"]
    street.fire(tid, "approve_sub_reply")
    r = street.fire(tid, "sub_recall", expect=409, reason="x")
    assert "in_progress" in r["detail"]
    assert as_("agent").get(f"/tickets/{tid}")["state"] == "in_progress"


def test_the_recall_on_the_streets_ticket_page(as_, client):
    tid = passed_down(as_)
    sign_in(client, "street_a_h")
    page = client.get(f"/tickets/{tid}").text
    form = page[page.index('data-event="sub_recall"') :]
    form = form[: form.index("</form>")]
    assert "街道收回" in form and 'name="reason"' in form
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    version = re.search(r'name="version" value="(\d+)"', form).group(1)
    fields = {"event": "sub_recall", "version": version, "reason": "街道直接处理"}
    # Without the form's token: refused, nothing changed.
    assert client.post(f"/tickets/{tid}", data=fields, follow_redirects=False).status_code == 403
    assert as_("agent").get(f"/tickets/{tid}")["state"] == "sub_dispatched"
    # Without a reason: the form again, saying what is missing.
    r = client.post(f"/tickets/{tid}", data={**fields, "reason": "", "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 422 and "理由" in r.text
    r = client.post(f"/tickets/{tid}", data={**fields, "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("done=sub_recall")
    assert as_("agent").get(f"/tickets/{tid}")["state"] == "in_progress"
    # The community's page offers no recall; the community cannot open the ticket any more.
    sign_in(client, "east_1_h")
    assert client.get(f"/tickets/{tid}").status_code == 404


def test_two_scheduler_processes_never_take_a_communitys_step_twice(as_, runtime, database):
    ids = [passed_down(as_, community) for community in ("east_1", "east_2") * 10]
    env = {**os.environ, "HOTLINE_DATABASE_URL": database.url}
    cmd = [sys.executable, "-m", "hotline", "sweep", "--now", "2026-11-20T10:00"]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    with runtime.db.read_session() as s:
        rows = s.exec(
            select(TicketEvent.ticket_id, TicketEvent.event)
            .where(TicketEvent.event.in_(("community_warn", "community_urge")))
            .order_by(TicketEvent.ticket_id)
        ).all()
    # Long past the communities' sign-by: each told to its street once, the warning passed over.
    assert rows == [(tid, "community_urge") for tid in ids]
    assert "".join(o[0] for o in outs).count("urge (催办, sub_sign)") == 20
    assert all(the_part(runtime, tid).escalation_step == 2 for tid in ids)


def test_a_part_passed_down_before_the_upgrade_is_watched_from_the_first_sweep(as_, runtime):
    """Down to 0017 (no watch columns), then up again: a community's running part is due at
    once, and the first sweep works out its next step."""
    from alembic import command

    from hotline.migrate import alembic_config, upgrade

    running, replied = passed_down(as_), passed_down(as_, "east_2")
    as_("east_2_h").fire(replied, "sub_sign")
    as_("east_2_h").fire(replied, "sub_reply", result="已处理")
    cfg = alembic_config(runtime.db.url)
    with runtime.db.engine.connect() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0017")
        connection.commit()
    upgrade(runtime.db)
    part = the_part(runtime, running)
    assert (part.next_due_at, part.escalation_step) == (part.dispatched_at, 0)
    assert the_part(runtime, replied).next_due_at is None
    assert at(runtime, runtime.clock()).steps == []
    assert the_part(runtime, running).next_due_at > runtime.clock()
