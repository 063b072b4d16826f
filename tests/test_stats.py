"""Performance indicators on a hand-built set, against figures worked out by hand."""

import shutil

import pytest
from fastapi.testclient import TestClient

from hotline.config import ROOT, Settings
from hotline.indicators.metrics import RATES
from hotline.main import create_app
from hotline.runtime import Runtime
from tests.conftest import local
from tests.helpers import Api

NOV = {"from": "2026-11-01", "to": "2026-11-30"}


@pytest.fixture
def as_(client, district):
    return lambda username: Api(client, district, username)


def _ticket(as_, clock, when, **fields) -> int:
    clock.set(when)
    tid = as_("agent").create(**fields)["id"]
    as_("agent").fire(tid, "dispatch")  # category 0101 → housing
    return tid


def _close_loop(as_, clock, tid, *, signed, replied, rating, solved):
    clock.set(signed)
    as_("housing_h").fire(tid, "sign")
    clock.set(replied)
    as_("housing_h").fire(tid, "reply", result="已处理")
    as_("supervisor").fire(tid, "approve_reply")
    as_("agent").fire(tid, "callback", reached=True, solved=solved, rating=rating)


@pytest.fixture
def november(as_, clock):
    """Six tickets for housing and one redispatched to urban (see each line)."""
    mon = local(2026, 11, 2, 9, 0)  # sign by 11-03, handle by 11-11 (complaint)
    t1 = _ticket(as_, clock, mon)  # on time, solved, 非常满意
    _close_loop(as_, clock, t1, signed=local(2026, 11, 2, 10), replied=local(2026, 11, 4, 10), rating=5, solved=True)
    t2 = _ticket(as_, clock, mon)  # signed late, replied late, unsolved, 不满意
    _close_loop(as_, clock, t2, signed=local(2026, 11, 5, 10), replied=local(2026, 11, 13, 10), rating=2, solved=False)
    t3 = _ticket(as_, clock, mon)  # returned by housing, redispatched to urban, never replied
    as_("housing_h").fire(t3, "return", reason="属城管职责")
    clock.set(local(2026, 11, 2, 12))
    as_("supervisor").fire(t3, "redispatch", department="urban")
    as_("urban_h").fire(t3, "sign")
    t4 = _ticket(as_, clock, mon)  # on time, solved, 基本满意
    _close_loop(as_, clock, t4, signed=local(2026, 11, 3, 9), replied=local(2026, 11, 10, 9), rating=3, solved=True)
    t5 = _ticket(as_, clock, mon)  # marked unreasonable: leaves every figure
    appeal = as_("housing_h").post(f"/tickets/{t5}/appeals", {"kind": "unreasonable", "grounds": "无理要求"}, 201)
    as_("supervisor").post(f"/appeals/{appeal['id']}/decision", {"decision": "grant", "reason": "认定不合理诉求"})
    t6 = _ticket(as_, clock, mon)  # on time; its 非常不满意 is overturned on appeal
    _close_loop(as_, clock, t6, signed=local(2026, 11, 2, 11), replied=local(2026, 11, 6, 9), rating=1, solved=False)
    appeal = as_("housing_h").post(f"/tickets/{t6}/appeals", {"kind": "rating", "grounds": "恶意差评"}, 201)
    as_("supervisor").post(f"/appeals/{appeal['id']}/decision", {"decision": "grant", "reason": "录音证实"})
    clock.set(local(2026, 11, 20, 9))
    return {"t1": t1, "t2": t2, "t3": t3, "t4": t4, "t5": t5, "t6": t6}


def _row(result, code):
    return next(r for r in result["departments"] if r["department"] == code)


def test_indicators_match_the_figures_worked_out_by_hand(as_, november):
    result = as_("supervisor").get("/stats/departments", **NOV)
    h = _row(result, "housing")
    # dispatched: t1 t2 t3 t4 t6 (t5 unreasonable); signed on time: t1 t4 t6
    assert (h["dispatched"], h["signed_on_time"], h["returned"]) == (5, 3, 1)
    # due: t1 t2 t4 t6 (t3 left housing); on time t1 t4 t6; overdue t2
    assert (h["due"], h["completed_on_time"], h["overdue"]) == (4, 3, 1)
    # replied t1 t2 t4 t6; called back t1 t2 t4 (t6's rating overturned); solved t1 t4; satisfied t1 t4
    assert (h["replied"], h["called_back"], h["solved"], h["rated"], h["satisfied"]) == (4, 3, 2, 3, 2)
    assert h["signed_on_time_rate"] == 0.6
    assert h["completed_on_time_rate"] == 0.75
    assert h["return_rate"] == 0.2
    assert h["callback_rate"] == 0.75
    assert h["resolution_rate"] == 0.6667
    assert h["satisfaction_rate"] == 0.6667
    assert h["rehandle_rate"] == 0.0
    assert h["overdue_rate"] == 0.25
    # score: 30 × (0.6 + 0.75) / 2 + 35 × 0.6667 + 35 × 0.6667 = 66.919
    assert h["score"] == 66.92
    u = _row(result, "urban")
    assert (u["dispatched"], u["signed_on_time"], u["due"], u["overdue"]) == (1, 1, 1, 1)
    assert u["signed_on_time_rate"] == 1.0 and u["completed_on_time_rate"] == 0.0 and u["overdue_rate"] == 1.0
    assert _row(result, "water")["score"] is None


def test_every_figure_links_to_its_tickets(as_, november):
    sup = as_("supervisor")
    overdue = sup.get("/stats/departments/housing/tickets", metric="overdue", **NOV)
    assert [t["id"] for t in overdue["tickets"]] == [november["t2"]]
    returned = sup.get("/stats/departments/housing/tickets", metric="returned", **NOV)
    assert [t["id"] for t in returned["tickets"]] == [november["t3"]]
    satisfied = sup.get("/stats/departments/housing/tickets", metric="satisfied", **NOV)
    assert {t["id"] for t in satisfied["tickets"]} == {november["t1"], november["t4"]}


def test_basic_satisfied_switch(as_, november, database, tmp_path, clock, district):
    wdir = tmp_path / "workflows"
    shutil.copytree(ROOT / "workflows", wdir)
    (wdir / "performance.yaml").write_text("basic_satisfied_counts: false\n")
    settings = Settings(database_url=database.url, workflows_dir=wdir, embedded_scheduler=False)
    rt = Runtime(database, settings)
    rt.clock = clock
    with TestClient(create_app(settings, runtime=rt)) as c:
        h = _row(Api(c, district, "supervisor").get("/stats/departments", **NOV), "housing")
    assert (h["rated"], h["satisfied"], h["satisfaction_rate"]) == (3, 1, 0.3333)


def test_roles_and_leaders_view(as_, november):
    as_("agent").get("/stats/departments", expect=403, **NOV)
    as_("housing_h").get("/stats/departments", expect=403, **NOV)
    led = as_("housing_l").get("/stats/departments", **NOV)
    assert _row(led, "housing")["dispatched"] == 5
    assert "dispatched" not in _row(led, "urban") and "score" in _row(led, "urban")
    as_("housing_l").get("/stats/departments/urban/tickets", expect=404, metric="overdue", **NOV)
    as_("supervisor").get("/stats/departments", expect=422, **{"from": "2026-11-30", "to": "2026-11-01"})


def test_ranking_and_red_black_list(as_, november):
    result = as_("supervisor").get("/stats/departments", **NOV)
    assert _row(result, "housing")["rank"] == 1  # urban has too few tickets to rank
    assert result["red_list"] == ["housing"] and result["black_list"] == []


@pytest.fixture
def replied_in_october(as_, clock, november):
    """One more housing ticket: replied in October, its citizen reached in November. It is a
    callback of November (解决率, 满意率) but not a reply of November (回访率)."""
    tid = _ticket(as_, clock, local(2026, 10, 26, 9))
    as_("housing_h").fire(tid, "sign")
    clock.set(local(2026, 10, 28, 10))
    as_("housing_h").fire(tid, "reply", result="已处理")
    as_("supervisor").fire(tid, "approve_reply")
    clock.set(local(2026, 11, 2, 10))
    as_("agent").fire(tid, "callback", reached=True, solved=True, rating=4)
    clock.set(local(2026, 11, 20, 9))
    return tid


def test_the_callback_rate_counts_the_replies_of_the_period_reached(as_, november, replied_in_october):
    h = _row(as_("supervisor").get("/stats/departments", **NOV), "housing")
    # replied in November: t1 t2 t4 t6; reached since: t1 t2 t4 (t6's callback overturned)
    assert (h["replied"], h["replied_called_back"], h["called_back"]) == (4, 3, 4)
    assert h["callback_rate"] == 0.75 and h["resolution_rate"] == 0.75  # solved t1 t4 and October's
    behind = as_("supervisor").get("/stats/departments/housing/tickets", metric="replied_called_back", **NOV)
    assert {t["id"] for t in behind["tickets"]} == {november[t] for t in ("t1", "t2", "t4")}


def test_every_rate_is_the_numerator_over_the_denominator_it_names(as_, november, replied_in_october):
    """For every department and rate, the API gives the rate and the two figures it names
    under `rates`, and the tickets behind each figure are as many as the figure."""
    sup = as_("supervisor")
    result = sup.get("/stats/departments", **NOV)
    assert set(result["rates"]) == {r.name for r in RATES}
    assert result["rates"]["callback_rate"] == ["replied_called_back", "replied"]
    checked = 0
    for row in result["departments"]:
        for rate, (numerator, denominator) in result["rates"].items():
            n, d = row[numerator], row[denominator]
            assert row[rate] == (round(n / d, 4) if d else None), (row["department"], rate)
            for figure, value in ((numerator, n), (denominator, d)):
                behind = sup.get(f"/stats/departments/{row['department']}/tickets", metric=figure, **NOV)
                assert len(behind["tickets"]) == value, (row["department"], figure)
            checked += d > 0
    assert checked >= 10


def test_periods_in_the_api(as_, november, clock):
    sup = as_("supervisor")
    month = sup.get("/stats/departments", month="2026-11")
    assert (month["from"], month["to"]) == ("2026-11-01", "2026-11-20")  # the month to date
    assert _row(month, "housing") == _row(sup.get("/stats/departments", **NOV), "housing")
    week = sup.get("/stats/departments", week="2026-W45")
    assert (week["from"], week["to"]) == ("2026-11-02", "2026-11-08")
    assert _row(week, "housing")["dispatched"] == 5
    default = sup.get("/stats/departments")
    assert (default["from"], default["to"]) == ("2026-11-01", "2026-11-20")
    for params, field in (
        ({"month": "2026-13"}, "month"),
        ({"month": "11/2026"}, "month"),
        ({"week": "2026-W53"}, "week"),
        ({"from": "2026-11-31"}, "from"),
        ({"to": "20261130"}, "to"),
        ({"from": "2026-11-30", "to": "2026-11-01"}, "to"),
        ({"from": "2020-01-01", "to": "2026-11-01"}, "from"),
        ({"from": "2026-11-21"}, "from"),
        ({"month": "2026-12"}, "month"),
    ):
        body = sup.get("/stats/departments", expect=422, **params)
        assert body["field"] == field, params
    behind = sup.get("/stats/departments/housing/tickets", metric="overdue", week="2026-W46")
    assert (behind["from"], behind["to"]) == ("2026-11-09", "2026-11-15")
    assert [t["id"] for t in behind["tickets"]] == [november["t2"]]  # due 11-11, replied 11-13
    volume = sup.get("/analysis/volume", by="type", month="2026-11")
    assert (volume["from"], volume["total"]) == ("2026-11-01", 6)
    assert sup.get("/analysis/hot-words", expect=422, week="W45")["field"] == "week"
