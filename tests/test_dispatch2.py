"""Second-level dispatch to communities (二级派单) through the API, on SQLite and PostgreSQL:
the street office passes a ticket to one of its communities, the community signs and replies,
the street reviews the reply before replying to the centre; returns go back to the street."""

import pytest

from hotline.indicators import stats
from hotline.models import Assignment
from tests.communities import add_communities
from tests.helpers import Api, sign_in


@pytest.fixture
def as_(runtime, client, district):
    add_communities(runtime, district)
    return lambda username: Api(client, district, username)


def at_street(as_) -> int:
    """A ticket dispatched to 东城街道 and signed by it: in progress with the street."""
    tid = as_("agent").create(category="0102")["id"]
    as_("agent").fire(tid, "dispatch", department="street_a")
    assert as_("street_a_h").fire(tid, "sign")["state"] == "in_progress"
    return tid


def passed_down(as_, community: str = "east_1") -> int:
    tid = at_street(as_)
    t = as_("street_a_h").fire(tid, "sub_dispatch", community=community, message="请社区核实现场")
    assert (t["state"], t["community_department"]) == ("sub_dispatched", community)
    return tid


def community_part(t: dict) -> dict:
    return next(a for a in t["assignments"] if a["role"] == "sub" and a["status"] != "withdrawn")


def test_a_community_replies_the_street_reviews_then_replies_to_the_centre(as_, clock):
    street, east, sup = as_("street_a_h"), as_("east_1_h"), as_("supervisor")
    tid = passed_down(as_)
    t = east.get(f"/tickets/{tid}")
    part = community_part(t)
    assert part["department"] == "east_1" and part["status"] == "dispatched"
    # The community's clocks run inside the street's.
    assert part["sign_by"] <= part["handle_by"] <= t["deadlines"]["handle_by"]
    assert {e["name"] for e in east.get(f"/tickets/{tid}/transitions")["events"]} == {"sub_sign", "sub_return"}

    clock.advance(hours=1)
    assert east.fire(tid, "sub_sign")["state"] == "sub_in_progress"
    assert east.fire(tid, "sub_reply", result="已到现场核实，违建已拆除")["state"] == "sub_replied"
    # The street reviews: first it sends the reply back, then it accepts the second one.
    assert street.fire(tid, "reject_sub_reply", reason="请附拆除后照片说明")["state"] == "sub_in_progress"
    assert east.fire(tid, "sub_reply", result="违建已拆除，现场已恢复")["state"] == "sub_replied"
    assert street.fire(tid, "approve_sub_reply")["state"] == "in_progress"
    # Then the street replies to the centre, which reviews as always.
    assert street.fire(tid, "reply", result="经社区核实，违建已拆除")["state"] == "replied"
    t = sup.fire(tid, "approve_reply")
    assert t["state"] == "pending_callback" and t["result"] == "经社区核实，违建已拆除"
    history = [h["event"] for h in sup.get(f"/tickets/{tid}/history")]
    assert history[3:-1] == [
        "sub_dispatch",
        "sub_sign",
        "sub_reply",
        "reject_sub_reply",
        "sub_reply",
        "approve_sub_reply",
        "reply",
    ]
    # The community's part stays on the ticket, and it still sees the ticket.
    assert community_part(east.get(f"/tickets/{tid}"))["status"] == "replied"
    # Each step told the other side.
    titles = [n["title"] for n in street.get("/notifications")]
    assert any("社区回复" in x for x in titles)
    assert any("街道派单" in x for x in [n["title"] for n in east.get("/notifications")])


def test_the_communitys_clocks_never_end_after_the_streets(as_, clock):
    tid = at_street(as_)
    handle_by = as_("agent").get(f"/tickets/{tid}")["deadlines"]["handle_by"]
    # Six of the street's seven working days later, the community's five cannot fit.
    clock.advance(days=8)
    t = as_("street_a_h").fire(tid, "sub_dispatch", community="east_1")
    assert community_part(t)["handle_by"] == handle_by == t["deadlines"]["handle_by"]
    assert community_part(t)["sign_by"] <= handle_by


def test_a_community_that_is_not_the_streets_is_refused_with_the_reason(as_):
    street = as_("street_a_h")
    tid = at_street(as_)
    r = street.fire(tid, "sub_dispatch", expect=409, community="west_1")
    assert "西苑社区居委会" in r["detail"] and "西城街道办事处" in r["detail"]
    r = street.fire(tid, "sub_dispatch", expect=409, community="housing")  # a bureau, no community
    assert "not a community" in r["detail"]
    r = street.fire(tid, "sub_dispatch", expect=422, community="nowhere")
    assert "community" in r["detail"] or r.get("field") == "community"
    r = street.fire(tid, "sub_dispatch", expect=422)
    assert "community" in r["detail"]
    street.fire(tid, "sub_dispatch", expect=422, community=12)
    assert as_("agent").get(f"/tickets/{tid}")["state"] == "in_progress"


def test_events_in_the_wrong_state_or_by_the_wrong_unit_are_refused(as_):
    street, east, sup = as_("street_a_h"), as_("east_1_h"), as_("supervisor")
    tid = as_("agent").create(category="0102")["id"]
    as_("agent").fire(tid, "dispatch", department="street_a")
    # Not before the street has signed.
    r = street.fire(tid, "sub_dispatch", expect=409, community="east_1")
    assert "dispatched" in r["detail"] and "allowed now" in r["detail"]
    street.fire(tid, "sign")
    street.fire(tid, "sub_dispatch", community="east_1")
    # The community acts only on its own part; the street never on the community's.
    assert "street office" in east.fire(tid, "reply", expect=403, result="x")["detail"]
    assert "only the community" in street.fire(tid, "sub_sign", expect=403)["detail"]
    assert "role" in sup.fire(tid, "sub_sign", expect=403)["detail"]
    # In the wrong state: 409 saying what the state allows.
    r = east.fire(tid, "sub_reply", expect=409, result="已处理")
    assert "sub_dispatched" in r["detail"] and "sub_sign" in r["detail"]
    r = street.fire(tid, "approve_sub_reply", expect=409)
    assert "待社区签收" in r["zh"] if "zh" in r else "sub_dispatched" in r["detail"]
    r = street.fire(tid, "reply", expect=409, result="已处理")
    assert "sub_dispatched" in r["detail"]
    east.fire(tid, "sub_sign")
    r = east.fire(tid, "sub_sign", expect=409)
    assert "sub_in_progress" in r["detail"]
    # The centre still urges and supervises a ticket passed down.
    sup.fire(tid, "urge", message="请加快办理")


def test_not_passed_down_while_the_centre_has_a_request_to_decide(as_):
    street, sup = as_("street_a_h"), as_("supervisor")
    tid = at_street(as_)
    street.fire(tid, "request_extension", days=2, reason="需社区入户核实")
    r = street.fire(tid, "sub_dispatch", expect=409, community="east_1")
    assert "extension" in r["detail"] and "waiting" in r["detail"]
    sup.fire(tid, "approve_extension")
    assert street.fire(tid, "sub_dispatch", community="east_1")["state"] == "sub_dispatched"


def test_a_community_sees_only_what_was_passed_to_it(as_):
    east, east2, west = as_("east_1_h"), as_("east_2_h"), as_("west_1_h")
    mine = passed_down(as_, "east_1")
    theirs = passed_down(as_, "east_2")
    streets_own = at_street(as_)
    for tid in (theirs, streets_own):
        east.get(f"/tickets/{tid}", expect=404)
        east.get(f"/tickets/{tid}/history", expect=404)
        east.fire(tid, "sub_sign", expect=404)
    west.get(f"/tickets/{mine}", expect=404)
    assert [t["id"] for t in east.get("/tickets")["items"]] == [mine]
    assert [t["id"] for t in east2.get("/tickets")["items"]] == [theirs]
    assert west.get("/tickets")["items"] == []
    # The street office sees its own tickets, those passed down included.
    assert {t["id"] for t in as_("street_a_h").get("/tickets")["items"]} == {mine, theirs, streets_own}


def test_a_return_goes_back_to_the_street_first(as_, runtime):
    street, east = as_("street_a_h"), as_("east_1_h")
    tid = passed_down(as_)
    east.fire(tid, "sub_return", expect=422)  # a reason is needed
    t = east.fire(tid, "sub_return", reason="该地址不在本社区辖区")
    assert (t["state"], t["department"], t["community_department"]) == ("in_progress", "street_a", None)
    east.get(f"/tickets/{tid}", expect=404)  # no longer the community's
    assert any("社区退回" in n["title"] for n in street.get("/notifications"))
    # The street passes it on to its other community.
    t = street.fire(tid, "sub_dispatch", community="east_2")
    assert t["community_department"] == "east_2"
    with runtime.db.read_session() as s:
        parts = s.exec(Assignment.__table__.select().where(Assignment.ticket_id == tid, Assignment.role == "sub")).all()
    assert sorted((p.status, p.returned) for p in parts) == [("dispatched", False), ("withdrawn", True)]


def test_the_indicators_count_per_community_and_the_totals_hold(as_, runtime, clock):
    street, east, leader = as_("street_a_h"), as_("east_1_h"), as_("street_a_l")
    first = clock().date()
    done = passed_down(as_, "east_1")
    clock.advance(hours=1)
    east.fire(done, "sub_sign")
    east.fire(done, "sub_reply", result="已处理")
    street.fire(done, "approve_sub_reply")
    back = passed_down(as_, "east_1")
    east.fire(back, "sub_return", reason="不属本社区")
    passed_down(as_, "east_2")
    # Past every deadline: the due counts are in.
    clock.advance(days=30)
    period = {"from": first.isoformat(), "to": clock().date().isoformat()}
    result = as_("supervisor").get("/stats/departments", **period)
    rows = {r["department"]: r for r in result["communities"]}
    assert set(rows) == {"east_1", "east_2", "west_1"}
    e1 = rows["east_1"]
    assert e1["parent"] == "street_a"
    assert (e1["dispatched"], e1["signed_on_time"], e1["returned"]) == (2, 1, 1)
    assert (e1["due"], e1["completed_on_time"], e1["overdue"]) == (1, 1, 0)
    assert (rows["east_2"]["dispatched"], rows["east_2"]["due"], rows["east_2"]["overdue"]) == (1, 1, 1)
    assert e1["return_rate"] == 0.5
    # Communities are no units of the district's ranking.
    assert not {r["department"] for r in result["departments"]} & set(rows)
    # A street office's leader sees its own communities only.
    mine = leader.get("/stats/departments", **period)
    assert {r["department"] for r in mine["communities"]} == {"east_1", "east_2"}
    # The tickets behind a community's figure.
    behind = leader.get("/stats/departments/east_1/tickets", metric="returned", **period)
    assert [t["id"] for t in behind["tickets"]] == [back]
    as_("east_1_l").get("/stats/departments/east_2/tickets", metric="returned", expect=404)
    assert {r["department"] for r in as_("east_1_l").get("/stats/departments", **period)["communities"]} == {"east_1"}
    with runtime.db.read_session() as s:
        assert stats.check_totals(s, runtime, first, clock().date()) == []


def test_the_performance_page_breaks_the_street_down_by_community(as_, client, clock):
    first = clock().date()
    done = passed_down(as_, "east_1")
    as_("east_1_h").fire(done, "sub_sign")
    passed_down(as_, "east_2")
    period = f"from={first.isoformat()}&to={clock().date().isoformat()}"
    sign_in(client, "supervisor")
    page = client.get(f"/performance?{period}").text
    table = page[page.index('id="community-table"') :]
    assert "东湖社区居委会" in table and "东岸社区居委会" in table and "东城街道办事处" in table
    assert "/performance/tickets?department=east_1&amp;metric=dispatched" in table
    # Not in the ranking.
    ranking = page[page.index('id="board-table"') : page.index('id="community-table"')]
    assert "东湖社区居委会" not in ranking
    # A street office's leader sees its communities and the tickets behind their figures.
    client.cookies.clear()
    sign_in(client, "street_a_l")
    assert "东岸社区居委会" in client.get(f"/performance?{period}").text
    assert client.get(f"/performance/tickets?department=east_2&metric=dispatched&{period}").status_code == 200
    # A community's leader only its own.
    client.cookies.clear()
    sign_in(client, "east_1_l")
    page = client.get(f"/performance?{period}").text
    assert "东湖社区居委会" in page and "东岸社区居委会" not in page
    assert client.get(f"/performance/tickets?department=east_2&metric=dispatched&{period}").status_code == 403


def test_the_centre_never_gives_a_community_work_directly(as_, client):
    """A community gets its tickets from its street office: no dispatch, co-handling, routing
    rule or category default names it (422, naming the street to choose), and the admin pages
    do not offer it there."""
    admin, agent = as_("admin"), as_("agent")
    tid = agent.create(category="0102")["id"]
    r = agent.fire(tid, "dispatch", 422, department="east_1")
    assert r["field"] == "department"
    assert r["zh"] == "“东湖社区居委会”是社区，由所属街道转派（二级派单），中心不能直接派给它，请选择“东城街道办事处”"
    r = agent.fire(tid, "dispatch", 422, department="housing", co_departments=["east_1"])
    assert r["field"] == "co_departments"
    r = admin.post("/routing-rules", {"department": "east_1", "category": "0102"}, 422)
    assert "是社区" in r["zh"]
    rule = admin.post("/routing-rules", {"department": "street_a", "category": "0102"}, 201)
    r = client.patch(f"/api/v1/routing-rules/{rule['id']}", headers=admin.headers, json={"department": "east_2"})
    assert r.status_code == 422
    assert admin.get("/routing-rules")[-1]["department"] == "street_a"
    r = admin.post("/categories", {"code": "0199", "name": "社区事务", "department": "west_1"}, 422)
    assert "是社区" in r["zh"]
    sign_in(client, "admin")
    for page in ("/admin/rules", "/admin/categories"):
        assert 'value="east_1"' not in client.get(page).text and 'value="street_a"' in client.get(page).text, page
    # The street is still the centre's to dispatch to.
    assert agent.fire(tid, "dispatch", department="street_a")["state"] == "dispatched"


def test_a_rule_or_default_made_before_naming_a_community_is_passed_over_and_shown(as_, client, runtime):
    """Data from before communities were refused: routing passes such a rule or default over
    (as a deactivated unit's), says so, and the edit forms show it, to be changed; a unit that
    rules or defaults name cannot be made a community."""
    from sqlmodel import select

    from hotline.models import Category, Department, RoutingRule

    with runtime.db.session() as s:
        east_1 = s.exec(select(Department).where(Department.code == "east_1")).one()
        category = s.exec(select(Category).where(Category.code == "0102")).one()
        s.add(RoutingRule(category_id=category.id, street="东城街道", department_id=east_1.id, priority=9))
        category.department_id = east_1.id
        s.add(category)
    agent = as_("agent")
    tid = agent.create(category="0102", street="东城街道", community="朝阳社区")["id"]
    # The community's rule is passed over: the street's own rule for 0102 decides.
    assert agent.fire(tid, "dispatch")["department"] == "street_a"
    sign_in(client, "admin")
    page = client.get("/admin/rules", params={"edit": 2}).text
    assert "东湖社区居委会（社区，请改选街道）" in page
    page = client.get("/admin/categories", params={"edit": "0102"}).text
    assert "东湖社区居委会（社区，请改选街道）" in page
    r = client.patch("/api/v1/departments/urban", headers=as_("admin").headers, json={"parent": "street_a"})
    assert r.status_code == 200  # named by no rule or default: may become a community
    r = client.patch("/api/v1/departments/housing", headers=as_("admin").headers, json={"parent": "street_a"})
    assert r.status_code == 409 and "默认承办单位" in r.json()["zh"]
