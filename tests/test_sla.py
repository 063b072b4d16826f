"""Clocks (时限) with fixed times: the clock is injected, never read inside the logic."""

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from hotline.models import Assignment, DailyTotal
from tests.conftest import local
from tests.helpers import Api


@pytest.fixture
def as_(client, district):
    return lambda username: Api(client, district, username)


def _dispatch(as_, **fields) -> dict:
    agent = as_("agent")
    t = agent.create(**fields)
    return agent.fire(t["id"], "dispatch")


def test_three_working_days_from_sep_30_is_the_make_up_saturday(as_, clock):
    clock.set(local(2026, 9, 30, 10, 0))
    t = _dispatch(as_, type="consultation")  # 3 working days to handle
    assert t["deadlines"]["handle_by"] == "2026-10-10T23:59:59+08:00"


def test_sign_by_from_friday_evening_is_the_next_working_day(as_, clock):
    clock.set(local(2026, 11, 27, 19, 0))
    t = _dispatch(as_)
    assert t["deadlines"]["sign_by"] == "2026-11-30T23:59:59+08:00"
    assert t["deadlines"]["running"] == "sign"


def test_urgent_tickets_run_in_natural_time(as_, clock):
    clock.set(local(2026, 10, 3, 22, 0))  # a holiday night
    t = _dispatch(as_, urgency="critical")
    assert t["deadlines"]["sign_by"] == "2026-10-03T22:15:00+08:00"
    assert t["deadlines"]["handle_by"] == "2026-10-04T22:00:00+08:00"


def test_handle_by_runs_from_dispatch_not_signing(as_, clock):
    t = _dispatch(as_)  # complaint: 7 working days, from Monday 2026-11-02
    clock.advance(days=1)
    t2 = as_("housing_h").fire(t["id"], "sign")
    assert t2["deadlines"]["handle_by"] == t["deadlines"]["handle_by"] == "2026-11-11T23:59:59+08:00"
    assert t2["deadlines"]["running"] == "handle"


def test_approved_extension_moves_handle_by(as_):
    t = _dispatch(as_)
    housing, sup = as_("housing_h"), as_("supervisor")
    housing.fire(t["id"], "sign")
    housing.fire(t["id"], "request_extension", days=3, reason="需要现场勘验")
    t = sup.fire(t["id"], "approve_extension")
    assert t["deadlines"]["handle_by"] == "2026-11-16T23:59:59+08:00"  # 11-11 + 3 working days
    assert t["extension_days"] == 3


def test_suspension_stops_the_clock_and_resume_keeps_the_time_left(as_, clock):
    t = _dispatch(as_)  # handle_by 2026-11-11 end of day
    housing, sup = as_("housing_h"), as_("supervisor")
    housing.fire(t["id"], "sign")
    housing.fire(t["id"], "request_suspension", reason="等待鉴定")
    clock.set(local(2026, 11, 4, 0, 0))  # suspended from Wednesday
    t = sup.fire(t["id"], "approve_suspension")
    assert t["level"] is None and t["deadlines"]["running"] is None
    clock.set(local(2026, 11, 9, 0, 0))  # resumed the next Monday: 3 working days stood still
    t = housing.fire(t["id"], "resume")
    assert t["deadlines"]["handle_by"] == "2026-11-16T23:59:59+08:00"


def test_reject_return_never_stops_the_clock(as_, clock):
    t = _dispatch(as_)
    before = t["deadlines"]["handle_by"]
    as_("housing_h").fire(t["id"], "return", reason="非本单位职责")
    clock.advance(hours=20)
    t = as_("supervisor").fire(t["id"], "reject_return", reason="属本单位职责")
    assert t["deadlines"]["handle_by"] == before


def test_rehandle_gives_a_new_handle_by(as_, clock):
    t = _dispatch(as_)
    tid = t["id"]
    housing, sup, agent = as_("housing_h"), as_("supervisor"), as_("agent")
    housing.fire(tid, "sign")
    housing.fire(tid, "reply", result="已处理")
    t = sup.fire(tid, "approve_reply")
    assert t["deadlines"]["callback_by"] == "2026-11-04T23:59:59+08:00"
    assert t["deadlines"]["running"] == "callback"
    agent.fire(tid, "callback", reached=True, solved=False, rating=1)
    clock.set(local(2026, 11, 20, 10, 0))  # a Friday
    t = agent.fire(tid, "rehandle", reason="部门未解决")
    assert t["deadlines"]["handle_by"] == "2026-12-01T23:59:59+08:00"  # 7 working days from 11-20
    assert t["deadlines"]["callback_by"] is None


def test_levels_green_yellow_red(as_, clock):
    t = _dispatch(as_)  # complaint, handle_by 11-11; yellow one working day before
    tid = t["id"]
    as_("housing_h").fire(tid, "sign")
    assert as_("agent").get(f"/tickets/{tid}")["level"] == "green"
    assert as_("agent").get(f"/tickets/{tid}")["deadlines"]["warn_at"] == "2026-11-10T23:59:59+08:00"
    clock.set(local(2026, 11, 11, 9, 0))
    assert as_("agent").get(f"/tickets/{tid}")["level"] == "yellow"
    assert [x["id"] for x in as_("agent").get("/tickets", level="yellow")["items"]] == [tid]
    clock.set(local(2026, 11, 12, 0, 0))
    t = as_("agent").get(f"/tickets/{tid}")
    assert (t["level"], t["level_label"]) == ("red", "超期")
    assert [x["id"] for x in as_("agent").get("/tickets", overdue=True)["items"]] == [tid]
    assert as_("agent").get("/tickets", overdue=False)["total"] == 0


def test_short_limit_warns_at_a_quarter(as_, clock):
    clock.set(local(2026, 11, 2, 9, 0))
    t = _dispatch(as_, urgency="critical")  # sign within 15 minutes
    assert t["deadlines"]["warn_at"] == (local(2026, 11, 2, 9, 15) - timedelta(minutes=3.75)).isoformat()


def test_deadline_into_a_year_without_data_is_provisional_and_recomputed(as_, clock, client, district, runtime):
    clock.set(local(2026, 12, 28, 10, 0))  # Monday; 7 working days run into 2027
    t = _dispatch(as_)
    assert t["deadlines"]["provisional"] is True
    assert t["deadlines"]["handle_by"] == "2027-01-06T23:59:59+08:00"  # Mon-Fri counting
    version = t["version"]
    admin = Api(client, district, "admin")
    r = client.put(
        "/api/v1/calendar/2027",
        headers=district.headers("admin"),
        json={
            "days": [
                {"date": "2027-01-01", "kind": "holiday", "name": "元旦"},
                {"date": "2027-01-04", "kind": "holiday", "name": "元旦"},
            ]
        },
    )
    assert r.status_code == 200 and r.json()["recomputed"] == 1
    t = as_("agent").get(f"/tickets/{t['id']}")
    assert t["deadlines"]["provisional"] is False
    assert t["deadlines"]["handle_by"] == "2027-01-08T23:59:59+08:00"
    # A change of the ticket like any other: a new version, and a history row saying who and why.
    assert t["version"] == version + 1
    last = as_("agent").get(f"/tickets/{t['id']}/history")[-1]
    assert (last["event"], last["actor"], last["from"], last["to"]) == (
        "deadlines_recomputed",
        "admin",
        "dispatched",
        "dispatched",
    )
    # On-time completion is judged by the new deadline, and the running totals follow it.
    with runtime.db.read_session() as s:
        main = s.execute(select(Assignment).where(Assignment.ticket_id == t["id"])).scalar_one()
        assert main.handle_by == local(2027, 1, 8, 23, 59, 59)
        due = s.execute(select(DailyTotal.day, DailyTotal.n).where(DailyTotal.metric == "due")).all()
        assert [(d, n) for d, n in due if n] == [(date(2027, 1, 8), 1)]
    assert admin.get("/calendar/2027")["covered"] is True
    r = client.put("/api/v1/calendar/2027", headers=district.headers("agent"), json={"days": []})
    assert r.status_code == 403
