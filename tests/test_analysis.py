"""Analysis: volumes and growth, hotspots, repeated requests, hot words, surge alerts."""

from datetime import timedelta

import pytest
from sqlmodel import select

from hotline.models import Notification, SurgeAlert
from hotline.scheduler import sweep
from tests.conftest import local
from tests.helpers import Api, make_dispatched


@pytest.fixture
def as_(client, district):
    return lambda username: Api(client, district, username)


def _at(runtime, when, n=1, **fields):
    return make_dispatched(runtime, n, now=when, **fields)


def test_a_surge_raises_one_alert(runtime, district, as_):
    start = local(2026, 11, 18, 8, 0)
    for i in range(6):  # six leaks in one community within three hours
        _at(runtime, start + timedelta(minutes=30 * i), street="东城街道", community="幸福社区")
    report = sweep(runtime, now=start + timedelta(hours=3))
    assert any(n.startswith("surge:") for n in report.notices)
    _at(runtime, start + timedelta(hours=3, minutes=10), street="东城街道", community="幸福社区")
    sweep(runtime, now=start + timedelta(hours=3, minutes=15))  # the same surge: updated, not raised again
    with runtime.db.read_session() as s:
        (alert,) = s.exec(select(SurgeAlert)).all()
        assert (alert.status, alert.count, alert.community) == ("open", 7, "幸福社区")
        assert len(s.exec(select(Notification).where(Notification.kind == "surge")).all()) == 1
    (listed,) = as_("supervisor").get("/analysis/surges")
    assert listed["category"] == "物业管理" and listed["count"] == 7
    sweep(runtime, now=start + timedelta(days=2))  # quiet again: the surge is over
    with runtime.db.read_session() as s:
        assert s.exec(select(SurgeAlert.status)).one() == "closed"


def test_a_steady_stream_of_the_same_size_raises_none(runtime, district):
    start = local(2026, 11, 11, 10, 0)
    for day in range(7):  # the same seven tickets, one a day
        _at(runtime, start + timedelta(days=day), street="东城街道", community="光明社区")
        sweep(runtime, now=start + timedelta(days=day, minutes=5))
    with runtime.db.read_session() as s:
        assert s.exec(select(SurgeAlert)).all() == []


def test_a_busy_community_is_measured_against_its_own_usual_count(runtime, district):
    # Five a day for four weeks and more in one community (its usual), and five on the last
    # day only in another: the same count within the window, a surge only where it is not the
    # usual one.
    start = local(2026, 10, 20, 9, 0)
    days = 29
    for day in range(days):
        _at(runtime, start + timedelta(days=day), n=5, street="东城街道", community="光明社区")
    _at(runtime, start + timedelta(days=days - 1), n=5, street="东城街道", community="幸福社区")
    report = sweep(runtime, now=start + timedelta(days=days - 1, hours=1))
    assert sum(n.startswith("surge:") for n in report.notices) == 1
    with runtime.db.read_session() as s:
        (alert,) = s.exec(select(SurgeAlert)).all()
    assert (alert.community, alert.count, alert.baseline) == ("幸福社区", 5, 0.0)


def test_a_community_without_a_street_has_one_usual_count_however_the_street_was_left_out(runtime, district):
    # Four weeks of one a day without a street, then five with none and five with an empty
    # one in the window: one usual count for both ways of leaving the street out, read once.
    start = local(2026, 10, 20, 9, 0)
    days = 29
    for day in range(days - 1):
        _at(runtime, start + timedelta(days=day), community="幸福社区")
    for street in (None, ""):
        _at(runtime, start + timedelta(days=days - 1), n=5, street=street, community="幸福社区")
    sweep(runtime, now=start + timedelta(days=days - 1, hours=1))
    with runtime.db.read_session() as s:
        alerts = s.exec(select(SurgeAlert.street, SurgeAlert.count, SurgeAlert.baseline)).all()
    usual = round(27 / 28, 3)  # the 27 whole days before the window, in windows of a day
    assert sorted(alerts, key=lambda a: a[0] is None) == [("", 5, usual), (None, 5, usual)]


def test_volume_by_type_and_growth(runtime, district, as_, clock):
    _at(runtime, local(2026, 10, 10, 10), n=2)
    _at(runtime, local(2026, 11, 10, 10), n=3)
    _at(runtime, local(2026, 11, 12, 10), n=1, type="help")
    clock.set(local(2026, 11, 28, 10))
    r = as_("supervisor").get("/analysis/volume", by="type", **{"from": "2026-11-01", "to": "2026-11-30"})
    rows = {row["key"]: row for row in r["rows"]}
    assert (r["total"], r["previous_total"]) == (4, 2)
    assert rows["complaint"]["count"] == 3 and rows["complaint"]["previous"] == 2
    assert rows["complaint"]["growth"] == 0.5 and rows["complaint"]["label"] == "投诉"
    days = as_("supervisor").get("/analysis/volume", by="day", **{"from": "2026-11-01", "to": "2026-11-30"})
    # Every day of the period and every hour of the day, with 0 where nothing came in (a
    # chart's axis without the quiet days would join the days around them).
    counted = [(d["key"], d["count"]) for d in days["rows"]]
    assert [key for key, _ in counted] == [f"2026-11-{d:02d}" for d in range(1, 29)]  # to today, the 28th
    assert [row for row in counted if row[1]] == [("2026-11-10", 3), ("2026-11-12", 1)]
    hours = as_("supervisor").get("/analysis/volume", by="hour", **{"from": "2026-11-01", "to": "2026-11-30"})
    assert [h["key"] for h in hours["rows"]] == [f"{h:02d}" for h in range(24)]
    assert [(h["key"], h["count"]) for h in hours["rows"] if h["count"]] == [("10", 4)]
    led = as_("housing_l").get("/analysis/volume", by="department", **{"from": "2026-11-01", "to": "2026-11-30"})
    assert led["total"] == 4  # all were housing's
    as_("housing_h").get("/analysis/volume", by="type", expect=403)


def test_hotspot_against_its_own_baseline(runtime, district, as_, clock):
    for week in range(1, 5):  # a baseline of two a week
        _at(runtime, local(2026, 11, 16, 10) - timedelta(weeks=week), n=2)
    _at(runtime, local(2026, 11, 17, 10), n=10)  # then ten in one week
    _at(runtime, local(2026, 11, 17, 10), n=10, category="03")  # steady water category: ten every week
    for week in range(1, 5):
        _at(runtime, local(2026, 11, 16, 10) - timedelta(weeks=week), n=10, category="03")
    clock.set(local(2026, 11, 23, 10))
    r = as_("supervisor").get("/analysis/hotspots", by="category", **{"from": "2026-11-16", "to": "2026-11-22"})
    assert [(h["label"], h["count"], h["baseline"]) for h in r["rows"]] == [("物业管理", 10, 2.0)]


def test_repeated_requests_by_phone_and_on_the_ticket(runtime, district, as_, clock):
    ids = []
    for day in (1, 8, 15):
        ids += _at(runtime, local(2026, 11, day, 10), caller_phone="13900001234")
    clock.set(local(2026, 11, 20, 10))
    rows = as_("supervisor").get("/analysis/repeats")
    assert [(r["kind"], r["count"], r["category"]) for r in rows] == [("phone", 3, "物业管理")]
    t = as_("agent").get(f"/tickets/{ids[-1]}")
    assert {r["id"] for r in t["repeats"]} == set(ids[:-1])
    assert "repeats" not in as_("housing_h").get(f"/tickets/{ids[-1]}")


def test_hot_words_leave_out_the_records_filler_and_keep_the_districts_places_whole(runtime, district, as_, clock):
    from hotline.directory import create_place

    with runtime.db.session() as s:
        create_place(s, street="滨江街道", community="江畔社区")
    said = "来电人居住在滨江街道江畔社区，反映小区电梯故障。诉求：请相关部门尽快核实处理，今年已多次反映。"
    _at(runtime, local(2026, 11, 10, 10), n=3, content=said)
    clock.set(local(2026, 11, 20, 10))
    words = as_("supervisor").get("/analysis/hot-words", **{"from": "2026-11-01", "to": "2026-11-30"})["words"]
    top = {w["word"]: w["count"] for w in words}
    assert top.get("电梯") == 3 and top.get("滨江街道") == 3 and top.get("江畔社区") == 3
    assert not {"居住", "尽快", "诉求", "核实", "今年", "滨江街", "江畔"} & set(top)


def test_hot_words_leave_out_the_formulas_of_requests_and_replies(runtime, district, as_, clock):
    said = "幸福路一带夜间施工噪声时有发生，希望帮忙处理，请加强日常巡查监管，建立长效管理机制，依法查处。"
    _at(runtime, local(2026, 11, 10, 10), n=3, content=said)
    clock.set(local(2026, 11, 20, 10))
    words = as_("supervisor").get("/analysis/hot-words", **{"from": "2026-11-01", "to": "2026-11-30"})["words"]
    top = {w["word"]: w["count"] for w in words}
    assert top.get("施工") == 3 and top.get("噪声") == 3
    formulas = {"一带", "时有发生", "帮忙", "加强", "日常", "巡查", "监管", "建立", "长效", "管理机制", "依法查处"}
    assert not formulas & set(top), formulas & set(top)


def test_hot_words(runtime, district, as_, clock):
    for _ in range(3):
        _at(runtime, local(2026, 11, 10, 10), content="小区电梯故障停运，老人上下楼困难")
    _at(runtime, local(2026, 11, 10, 10), content="楼下餐馆油烟扰民")
    clock.set(local(2026, 11, 20, 10))
    words = as_("supervisor").get("/analysis/hot-words", **{"from": "2026-11-01", "to": "2026-11-30"})["words"]
    top = {w["word"]: w["count"] for w in words}
    assert top.get("电梯") == 3 and "的" not in top and "小区" not in top
