"""Integration (互联互通): outside platforms' system accounts, their tickets, what they may
do to them, and ratings from the rating system (好差评)."""

import pytest
from sqlmodel import select

from hotline.db import utcnow
from hotline.directory import create_place, create_user, issue_token
from hotline.models import Callback, Rectification, Ticket
from hotline.workflow.engine import Actor, GuardFailed, fire
from tests.helpers import PASSWORD, Api, race, sign_in

CITY = "city"
RATER = "rater"
RATED_AT = "2026-11-02T08:30:00+08:00"


@pytest.fixture
def platforms(runtime, district):
    """The city's 12345 platform and the rating system, each with an integration account."""
    now = utcnow()
    with runtime.db.session() as s:
        for username, source in ((CITY, "city12345"), (RATER, "haochaping")):
            user = create_user(s, username=username, role="integration", password=PASSWORD, source=source, now=now)
            district.user_ids[username] = user.id
            district.tokens[username] = issue_token(s, username, now=now)
    return district


def city_ticket(api: Api, expect: int = 201, **fields) -> dict:
    body = {"type": "complaint", "channel": "city", "content": "占道经营，影响通行", "external_id": "SJ-001", **fields}
    return api.post("/tickets", body, expect)


def to_pending_callback(district, client, tid: int) -> None:
    agent, handler, supervisor = (Api(client, district, u) for u in ("agent", "housing_h", "supervisor"))
    agent.fire(tid, "dispatch", department="housing")
    handler.fire(tid, "sign")
    handler.fire(tid, "reply", result="已处理")
    supervisor.fire(tid, "approve_reply")


def rating(number: str, external_id: str = "HCP-1", **fields) -> dict:
    return {
        "ticket_number": number,
        "rating": 5,
        "channel": "pc",
        "rated_at": RATED_AT,
        "external_id": external_id,
        **fields,
    }


# ---------------------------------------------------------------- accounts


def test_an_integration_account_needs_a_source_and_no_other_role_has_one(client, district):
    admin = Api(client, district, "admin")
    body = {"username": "city", "role": "integration", "password": "long enough 1"}
    assert admin.post("/users", body, 422)["field"] == "source"
    assert admin.post("/users", {**body, "source": "City 12345"}, 422)["field"] == "source"
    assert admin.post("/users", {**body, "source": "hotline"}, 422)["field"] == "source"
    assert admin.post("/users", {**body, "role": "agent", "source": "city12345"}, 422)["field"] == "source"
    made = admin.post("/users", {**body, "source": "city12345"}, 201)
    assert (made["role"], made["source"]) == ("integration", "city12345")
    listed = {u["username"]: u for u in admin.get("/users")}
    assert listed["city"]["source"] == "city12345" and listed["agent"]["source"] is None


def test_an_integration_account_never_signs_in_to_the_pages(client, platforms):
    r = sign_in(client, CITY, PASSWORD)
    assert r.status_code == 401
    assert "hotline_session" not in r.cookies and "hotline_session" not in client.cookies


# ---------------------------------------------------------------- tickets from a source


def test_a_platforms_ticket_carries_its_source_and_its_pair_is_logged_once(client, platforms):
    city = Api(client, platforms, CITY)
    first = city_ticket(city)
    assert (first["source"], first["external_id"], first["state"]) == ("city12345", "SJ-001", "registered")
    again = city_ticket(city, 200, content="重复推送")
    assert again["id"] == first["id"] and again["content"] == "占道经营，影响通行"
    # The same number from the centre's own intake is another ticket: ids are unique per source.
    agent = Api(client, platforms, "agent")
    own = agent.create(external_id="SJ-001")
    assert own["id"] != first["id"] and own["source"] == "hotline"
    assert agent.create(200, external_id="SJ-001")["id"] == own["id"]


def test_an_unknown_category_or_place_from_a_platform_waits_for_dispatch_as_sent(client, runtime, platforms):
    with runtime.db.session() as s:
        create_place(s, street="东城街道", community="和平社区")
    city = Api(client, platforms, CITY)
    t = city_ticket(city, category="城市管理/占道经营", street="东城街道", community="幸福社区")
    assert t["state"] == "registered" and t["category"] is None
    assert (t["street"], t["community"]) == ("东城街道", None)
    assert t["source_details"] == {"category": "城市管理/占道经营", "community": "幸福社区"}
    t2 = city_ticket(city, external_id="SJ-002", category="0101", street="南城街道", community="和平社区")
    assert t2["category"] == "0101" and (t2["street"], t2["community"]) == (None, None)
    assert t2["source_details"] == {"street": "南城街道", "community": "和平社区"}
    known = city_ticket(city, external_id="SJ-003", category="0101", street="东城街道", community="和平社区")
    assert known["source_details"] is None and known["community"] == "和平社区"
    # The centre's own intake still refuses an unknown category.
    r = Api(client, platforms, "agent").create(422, category="城市管理/占道经营")
    assert r["field"] == "category"


def test_a_platform_sees_only_its_own_tickets(client, platforms):
    city, rater = Api(client, platforms, CITY), Api(client, platforms, RATER)
    mine = city_ticket(city)["id"]
    other = Api(client, platforms, "agent").create()["id"]
    assert [t["id"] for t in city.get("/tickets")["items"]] == [mine]
    assert city.get(f"/tickets/{mine}")["caller_phone"] is None
    assert "repeats" not in city.get(f"/tickets/{mine}")
    for path in (f"/tickets/{other}", f"/tickets/{other}/history", f"/tickets/{other}/transitions"):
        city.get(path, 404)
    rater.get(f"/tickets/{mine}", 404)
    assert rater.get("/tickets")["total"] == 0


# ---------------------------------------------------------------- urging and supervising


def test_the_city_urges_and_supervises_its_own_tickets_and_nothing_else(client, platforms):
    city = Api(client, platforms, CITY)
    tid = city_ticket(city)["id"]
    city.fire(tid, "dispatch", 403, department="housing")
    Api(client, platforms, "agent").fire(tid, "dispatch", department="housing")
    assert {e["name"] for e in city.get(f"/tickets/{tid}/transitions")["events"]} == {"urge", "supervise"}
    Api(client, platforms, "supervisor").fire(tid, "urge", message="区中心催办")
    # The city's own ladder is not held back by the centre's urge a moment ago (a person's
    # second urge would be, within urge_interval_minutes).
    city.fire(tid, "urge", message="市平台催办")
    city.fire(tid, "supervise", message="市平台督办")
    history = city.get(f"/tickets/{tid}/history")
    assert [(h["event"], h["actor"], h["actor_role"]) for h in history[-3:]] == [
        ("urge", "supervisor", "supervisor"),
        ("urge", CITY, "integration"),
        ("supervise", CITY, "integration"),
    ]
    Api(client, platforms, "supervisor").fire(tid, "urge", 409, message="再催")
    for event, payload in (("sign", {}), ("return", {"reason": "x"}), ("cancel", {"reason": "x"}), ("report", {})):
        city.fire(tid, event, 403, **payload)
    other = Api(client, platforms, "agent").create()["id"]
    Api(client, platforms, "agent").fire(other, "dispatch", department="housing")
    city.fire(other, "urge", 404)


def test_own_source_guard_refuses_a_platform_on_another_sources_ticket(runtime, client, platforms):
    """The workflow's own rule, beneath the API's visibility (which answers 404 first)."""
    other = Api(client, platforms, "agent").create()["id"]
    Api(client, platforms, "agent").fire(other, "dispatch", department="housing")
    city = Actor(platforms.user_ids[CITY], CITY, "integration", source="city12345")
    with runtime.db.session() as s, pytest.raises(GuardFailed, match="acts only on its own tickets"):
        fire(s, runtime, other, "urge", city, {}, now=runtime.now())


def test_a_platform_records_no_callback_through_the_transitions(client, platforms):
    city = Api(client, platforms, CITY)
    tid = city_ticket(city)["id"]
    to_pending_callback(platforms, client, tid)
    r = city.fire(tid, "callback", 409, reached=True, solved=True, rating=5)
    assert "ratings" in r["detail"]


# ---------------------------------------------------------------- ratings


def test_a_rating_from_the_rating_system_is_a_callback_recorded_once(client, runtime, platforms):
    agent, rater = Api(client, platforms, "agent"), Api(client, platforms, RATER)
    t = agent.create()
    to_pending_callback(platforms, client, t["id"])
    first = rater.post("/ratings", rating(t["number"], comment="办得好"), 201)
    assert (first["rating"], first["solved"], first["channel"], first["ticket_number"]) == (5, True, "pc", t["number"])
    again = rater.post("/ratings", rating(t["number"], rating=1), 200)
    assert again == first
    last = agent.get(f"/tickets/{t['id']}/history")[-1]
    assert (last["event"], last["actor"], last["actor_role"]) == ("callback", RATER, "integration")
    assert last["details"]["external_id"] == "HCP-1" and last["details"]["rated_at"] == RATED_AT
    with runtime.db.read_session() as s:
        (cb,) = s.exec(select(Callback).where(Callback.ticket_id == t["id"])).all()
    assert (cb.source, cb.channel, cb.external_id, cb.rating, cb.reached) == ("external", "pc", "HCP-1", 5, True)
    # Satisfied: the ticket may close.
    agent.fire(t["id"], "close")


def test_a_bad_rating_from_the_rating_system_opens_a_rectification(client, runtime, platforms):
    agent, rater = Api(client, platforms, "agent"), Api(client, platforms, RATER)
    t = agent.create()
    to_pending_callback(platforms, client, t["id"])
    out = rater.post("/ratings", rating(t["number"], rating=2, comment="没解决"), 201)
    assert out["solved"] is False
    with runtime.db.read_session() as s:
        (rect,) = s.exec(select(Rectification).where(Rectification.ticket_id == t["id"])).all()
    assert rect.status == "open"
    # The citizen's own dissatisfied rating goes to a supervisor first, as through the link.
    r = agent.fire(t["id"], "rehandle", 409, reason="重办")
    assert "supervisor" in r["detail"]
    Api(client, platforms, "supervisor").fire(t["id"], "rehandle", reason="重办")


def test_a_rating_refused_says_why(client, platforms):
    agent, rater = Api(client, platforms, "agent"), Api(client, platforms, RATER)
    t = agent.create()
    assert rater.post("/ratings", rating("20990101000001"), 404)["field"] == "ticket_number"
    rater.post("/ratings", rating(t["number"]), 409)  # not waiting for a callback
    for bad, field in (
        ({"rating": 6}, "rating"),
        ({"rating": 0}, "rating"),
        ({"rated_at": "2026-11-02T08:30:00"}, "rated_at"),
        ({"rated_at": "2027-01-01T00:00:00+08:00"}, "rated_at"),
        ({"channel": ""}, "channel"),
        ({"external_id": ""}, "external_id"),
        ({"stars": 5}, "stars"),
    ):
        assert rater.post("/ratings", rating(t["number"], **bad), 422)["field"] == field, bad
    Api(client, platforms, "agent").post("/ratings", rating(t["number"]), 403)


def test_the_rating_system_rates_any_ticket_of_the_district(client, platforms):
    city, rater = Api(client, platforms, CITY), Api(client, platforms, RATER)
    t = city_ticket(city)
    to_pending_callback(platforms, client, t["id"])
    assert rater.post("/ratings", rating(t["number"]), 201)["ticket_number"] == t["number"]
    # An id another platform used is not this one's rating.
    r = city.post("/ratings", rating(t["number"]), 409)
    assert r["field"] == "external_id"


# ---------------------------------------------------------------- at once, over real HTTP


def test_one_pair_sent_at_once_makes_one_ticket(server, client, runtime, platforms):
    bodies = [{"type": "help", "content": f"第{i}次推送", "external_id": f"SJ-{i % 4}"} for i in range(16)]
    codes = race(server, platforms.headers(CITY), "/api/v1/tickets", bodies)
    assert codes.count(201) == 4 and codes.count(200) == 12
    with runtime.db.read_session() as s:
        rows = s.exec(select(Ticket.source, Ticket.external_id)).all()
    assert sorted(rows) == [("city12345", f"SJ-{i}") for i in range(4)]


def test_one_rating_sent_at_once_is_recorded_once(server, client, runtime, platforms):
    t = Api(client, platforms, "agent").create()
    to_pending_callback(platforms, client, t["id"])
    codes = race(server, platforms.headers(RATER), "/api/v1/ratings", [rating(t["number"])] * 8)
    assert sorted(codes) == [200] * 7 + [201]
    with runtime.db.read_session() as s:
        assert len(s.exec(select(Callback).where(Callback.ticket_id == t["id"])).all()) == 1


@pytest.mark.browser
def test_the_ticket_page_shows_the_source_and_what_the_district_did_not_know(page, server, client, runtime, platforms):
    from tests.test_pages_smoke import login

    with runtime.db.session() as s:
        create_place(s, street="东城街道", community="和平社区")
    city = Api(client, platforms, CITY)
    t = city_ticket(city, category="城市管理/占道经营", street="不存在街道")
    login(page, server, "agent")
    page.goto(f"{server}/tickets/{t['id']}")
    assert page.locator("[data-source]").inner_text() == "对接平台 city12345"
    assert page.locator("[data-external-id]").inner_text() == "SJ-001"
    note = page.locator("#source-details").inner_text()
    assert "城市管理/占道经营" in note and "不存在街道" in note
    own = Api(client, platforms, "agent").create(street="东城街道", community="和平社区")
    page.goto(f"{server}/tickets/{own['id']}")
    assert page.locator("[data-source]").inner_text() == "本中心受理"
    assert page.locator("#source-details").count() == 0
