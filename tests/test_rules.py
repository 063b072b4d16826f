"""The rules the gateway enforces (docs/workflow.md, docs/api.md), each in a test named after it."""

import pytest

from tests.conftest import local
from tests.helpers import Api, sign_in


@pytest.fixture
def as_(client, district):
    return lambda username: Api(client, district, username)


def dispatched(as_, **fields) -> int:
    tid = as_("agent").create(**fields)["id"]
    as_("agent").fire(tid, "dispatch")
    return tid


def test_a_return_must_come_within_one_working_day_of_dispatch(as_, clock):
    clock.set(local(2026, 11, 6, 10, 0))  # a Friday
    tid = dispatched(as_)
    clock.set(local(2026, 11, 9, 23, 0))  # Monday night: still within the window
    as_("housing_h").fire(tid, "return", reason="非本单位职责")
    as_("supervisor").fire(tid, "reject_return", reason="属本单位职责")
    tid2 = dispatched(as_)
    clock.set(local(2026, 11, 11, 0, 30))  # two working days after: too late
    r = as_("housing_h").fire(tid2, "return", expect=409, reason="非本单位职责")
    assert "return window" in r["detail"]


def test_the_ticket_page_says_why_a_button_is_missing(as_, client, clock):
    """A department past the return window finds no 退单 button, and the page says why."""
    clock.set(local(2026, 11, 6, 10, 0))  # a Friday
    tid = dispatched(as_)
    sign_in(client, "housing_h")
    within = client.get(f"/tickets/{tid}").text
    # Nothing said of what has nothing to act on here (no community to pass to, no request to review).
    assert 'id="refused-events"' not in within
    as_("housing_h").fire(tid, "sign")
    sign_in(client, "supervisor")
    assert 'id="refused-events"' not in client.get(f"/tickets/{tid}").text
    clock.set(local(2026, 11, 11, 0, 30))  # two working days after: too late
    sign_in(client, "housing_h")  # the session before has lapsed meanwhile
    page = client.get(f"/tickets/{tid}").text
    refused = page[page.index('id="refused-events"') :]
    refused = refused[: refused.index("</div>")]
    why = "已超过退单时限（2026-11-09 23:59），请承办单位办理"
    assert f'<li data-event="return"><strong>退单</strong>：{why}</li>' in refused


def test_no_return_after_the_third_dispatch(as_):
    sup = as_("supervisor")
    tid = dispatched(as_)
    as_("housing_h").fire(tid, "return", reason="不属于本单位")
    sup.fire(tid, "redispatch", department="urban")
    as_("urban_h").fire(tid, "return", reason="不属于本单位")
    t = sup.fire(tid, "redispatch", department="market")
    assert t["dispatch_count"] == 3 and t["designated"]
    r = as_("market_h").fire(tid, "return", expect=409, reason="不属于本单位")
    assert "designated" in r["detail"]
    assert "return" not in [e["name"] for e in as_("market_h").get(f"/tickets/{tid}/transitions")["events"]]


def test_reply_only_when_every_cohandler_has_replied(as_):
    agent = as_("agent")
    tid = agent.create()["id"]
    agent.fire(tid, "dispatch", department="housing", co_departments=["urban", "market"])
    for h in ("housing_h", "urban_h", "market_h"):
        as_(h).fire(tid, "sign")
    as_("urban_h").fire(tid, "reply", result="城管已巡查")
    r = as_("housing_h").fire(tid, "reply", expect=409, result="已处理")
    assert "区市场监管局" in r["detail"]
    as_("market_h").fire(tid, "reply", result="市场监管已检查")
    assert as_("housing_h").fire(tid, "reply", result="已处理")["state"] == "replied"


def test_cohandler_signs_and_replies_on_its_own_assignment(as_):
    agent = as_("agent")
    tid = agent.create()["id"]
    agent.fire(tid, "dispatch", department="housing", co_departments=["urban"])
    urban = as_("urban_h")
    urban.fire(tid, "reply", expect=409, result="x")  # must sign first
    t = urban.fire(tid, "sign")
    assert t["state"] == "dispatched"
    assert {a["department"]: a["status"] for a in t["assignments"]} == {"housing": "dispatched", "urban": "signed"}
    urban.fire(tid, "sign", expect=409)  # once
    urban.fire(tid, "return", expect=403, reason="x")  # only the main department returns
    urban.fire(tid, "reply", result="协办完成")
    history = agent.get(f"/tickets/{tid}/history")
    assert history[-1]["details"]["as_co_handler"] is True


def test_extension_is_asked_before_the_deadline(as_, clock):
    tid = dispatched(as_)
    as_("housing_h").fire(tid, "sign")
    clock.advance(days=30)
    r = as_("housing_h").fire(tid, "request_extension", expect=409, days=2, reason="需要更多时间")
    assert "before the handling deadline" in r["detail"]


def test_extensions_are_capped_at_twenty_working_days(as_):
    tid = dispatched(as_)
    housing, sup = as_("housing_h"), as_("supervisor")
    housing.fire(tid, "sign")
    housing.fire(tid, "request_extension", days=15, reason="需协调")
    sup.fire(tid, "approve_extension")
    r = housing.fire(tid, "request_extension", expect=409, days=6, reason="仍需协调")
    assert "capped at 20" in r["detail"]
    housing.fire(tid, "request_extension", days=5, reason="仍需协调")
    sup.fire(tid, "approve_extension")


def test_supervisor_may_approve_fewer_days_than_asked(as_):
    tid = dispatched(as_)
    housing, sup = as_("housing_h"), as_("supervisor")
    housing.fire(tid, "sign")
    housing.fire(tid, "request_extension", days=5, reason="需协调")
    sup.fire(tid, "approve_extension", expect=422, days=6)
    sup.fire(tid, "approve_extension", days=2)
    history = sup.get(f"/tickets/{tid}/history")
    assert history[-1]["details"]["days"] == 2


def test_required_fields_are_422_naming_the_field(as_):
    tid = dispatched(as_)
    housing = as_("housing_h")
    r = housing.fire(tid, "return", expect=422)
    assert r["field"] == "reason"
    r = housing.fire(tid, "return", expect=422, reason="x", reason_code="bogus")
    assert r["field"] == "reason_code"
    r = housing.fire(tid, "sign", expect=422, colour="red")
    assert r["field"] == "colour"
    housing.fire(tid, "sign")
    r = housing.fire(tid, "request_extension", expect=422, days="three", reason="x")
    assert r["field"] == "days"


def test_callback_that_reached_the_citizen_needs_a_rating(as_):
    agent, sup, housing = as_("agent"), as_("supervisor"), as_("housing_h")
    tid = dispatched(as_)
    housing.fire(tid, "sign")
    housing.fire(tid, "reply", result="已处理")
    sup.fire(tid, "approve_reply")
    r = agent.fire(tid, "callback", expect=422, reached=True, solved=True)
    assert r["field"] == "rating"
    agent.fire(tid, "callback", expect=422, reached=True, solved=True, rating=6)


def test_version_mismatch_is_409(as_):
    agent = as_("agent")
    t = agent.create()
    r = agent.fire(t["id"], "dispatch", expect=409, version=t["version"] + 1)
    assert "changed since version" in r["detail"]
    assert agent.fire(t["id"], "dispatch", version=t["version"])["version"] == t["version"] + 1


def test_handler_cannot_act_on_another_departments_ticket(as_):
    tid = dispatched(as_)  # to housing
    as_("urban_h").fire(tid, "sign", expect=404)
    as_("urban_h").get(f"/tickets/{tid}", expect=404)
    as_("urban_h").get(f"/tickets/{tid}/history", expect=404)
    as_("urban_h").get(f"/tickets/{tid}/transitions", expect=404)


def test_department_list_shows_only_its_own_tickets(as_):
    a = dispatched(as_)
    b = as_("agent").create(category="03")["id"]
    as_("agent").fire(b, "dispatch")
    as_("agent").create()  # registered, nobody's yet
    housing = as_("housing_h").get("/tickets")
    assert [t["id"] for t in housing["items"]] == [a] and housing["total"] == 1
    assert {t["id"] for t in as_("supervisor").get("/tickets")["items"]} >= {a, b}
    assert [t["id"] for t in as_("agent").get("/tickets", department="water")["items"]] == [b]
    assert as_("agent").get("/tickets", state="registered")["total"] == 1
    as_("agent").get("/tickets", state="nonsense", expect=422)


def test_phone_masked_for_roles_that_do_not_need_it(as_):
    tid = dispatched(as_)
    assert as_("agent").get(f"/tickets/{tid}")["caller_phone"] == "13812345678"
    assert as_("housing_h").get(f"/tickets/{tid}")["caller_phone"] == "13812345678"
    assert as_("housing_l").get(f"/tickets/{tid}")["caller_phone"] == "138****5678"
    assert as_("admin").get(f"/tickets/{tid}")["caller_phone"] == "138****5678"


def test_confidential_ticket_hides_the_caller_from_departments(as_):
    tid = dispatched(as_, confidential=True)
    t = as_("housing_h").get(f"/tickets/{tid}")
    assert t["caller_name"] is None and t["caller_phone"] is None and t["caller_hidden"]
    listed = as_("housing_h").get("/tickets")["items"][0]
    assert listed["caller_phone"] is None
    assert as_("agent").get(f"/tickets/{tid}")["caller_name"] == "张三"


def test_roles_are_checked_on_every_route(as_):
    as_("agent").post("/departments", {"code": "x", "name": "x"}, expect=403)
    as_("housing_h").create(expect=403)
    as_("admin").post("/departments", {"code": "tax", "name": "区税务局"}, expect=201)
    as_("admin").post("/departments", {"code": "tax", "name": "again"}, expect=409)


def test_no_or_bad_token_is_401(client):
    assert client.get("/api/v1/tickets").status_code == 401
    r = client.get("/api/v1/tickets", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["detail"]


def test_content_over_4000_characters_is_422(as_):
    r = as_("agent").create(expect=422, content="长" * 4001)
    assert r["field"] == "content"
    as_("agent").create(content="长" * 4000)


def test_body_over_64_kib_is_413(client, district):
    body = '{"type": "complaint", "content": "' + "x" * (70 * 1024) + '"}'
    r = client.post(
        "/api/v1/tickets", content=body, headers={**district.headers("agent"), "Content-Type": "application/json"}
    )
    assert r.status_code == 413 and "larger than" in r.json()["detail"]


def test_malformed_payload_is_422_naming_the_field(as_, client, district):
    r = as_("agent").create(expect=422, type="rant")
    assert r["field"] == "type"
    r = as_("agent").create(expect=422, category="nope")
    assert r["field"] == "category"
    r = client.post(
        "/api/v1/tickets",
        content="{not json",
        headers={**district.headers("agent"), "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["field"] == "body"


def test_external_id_makes_creation_idempotent(as_):
    agent = as_("agent")
    first = agent.create(external_id="city-42")
    again = agent.create(expect=200, external_id="city-42", content="另一段内容")
    assert again["id"] == first["id"]
    assert agent.get("/tickets")["total"] == 1


def test_ticket_numbers_are_unique_and_readable(as_, clock):
    agent = as_("agent")
    numbers = [agent.create()["number"] for _ in range(3)]
    assert numbers == ["20261102000001", "20261102000002", "20261102000003"]
    clock.advance(days=1)
    assert agent.create()["number"] == "20261103000001"


def test_too_many_requests_is_429_with_retry_after(runtime, client, district):
    from hotline.runtime import RateLimiter

    runtime._limiter = RateLimiter(60)  # one a second, bursts of 20
    codes = [client.get("/api/v1/tickets", headers=district.headers("agent")).status_code for _ in range(25)]
    assert codes[:20] == [200] * 20 and 429 in codes[20:]
    r = client.get("/api/v1/tickets", headers=district.headers("agent"))
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and "too many" in r.json()["detail"]
    # Another token has its own share.
    assert client.get("/api/v1/tickets", headers=district.headers("supervisor")).status_code == 200


def test_an_unanswered_supervision_order_lapses_when_its_ticket_is_finished(as_):
    sup, leader = as_("supervisor"), as_("housing_l")
    closed, merged, master = dispatched(as_), dispatched(as_), dispatched(as_)
    for tid in (closed, merged, master):
        sup.fire(tid, "supervise", message="请加快办理")
    (answered,) = [o for o in leader.get("/supervision-orders", status="open") if o["ticket"] == master]
    leader.post(f"/supervision-orders/{answered['id']}/answer", {"answer": "已督促承办人办理"})
    housing = as_("housing_h")
    housing.fire(closed, "sign")
    housing.fire(closed, "reply", result="已处理")
    sup.fire(closed, "approve_reply")
    as_("agent").fire(closed, "callback", reached=True, solved=True, rating=5)
    t = as_("agent").fire(closed, "close")
    assert t["state"] == "archived"
    sup.fire(merged, "merge", master=master)
    lapsed = leader.get("/supervision-orders", status="lapsed")
    assert sorted(o["ticket"] for o in lapsed) == sorted([closed, merged])
    assert [o["ticket"] for o in leader.get("/supervision-orders", status="open")] == []
    assert [o["ticket"] for o in leader.get("/supervision-orders", status="answered")] == [master]
    last = as_("agent").get(f"/tickets/{closed}/history")[-1]
    assert last["event"] == "close" and last["details"]["lapsed_orders"] == [
        o["id"] for o in lapsed if o["ticket"] == closed
    ]
    # The merge is in the master's history too, as a change of the master (a new version).
    master_history = as_("agent").get(f"/tickets/{master}/history")
    assert master_history[-1]["event"] == "merge_in"
    assert as_("agent").get(f"/tickets/{master}")["version"] == 1 + len(master_history) - 1


def test_a_ticket_is_not_urged_twice_within_the_interval(as_, client, clock, runtime):
    """One press too many (two supervisors, or a tab left open) sends no second notice: a
    person's urge within `urge_interval_minutes` of the last is refused, saying when and by
    whom; the scheduler's ladder is not held back; after the interval a person may urge again."""
    from hotline.models import Notification
    from hotline.workflow.engine import SCHEDULER, fire

    clock.set(local(2026, 11, 2, 9, 0))
    tid = dispatched(as_)
    sup = as_("supervisor")
    sup.fire(tid, "urge", message="请尽快签收")
    clock.set(local(2026, 11, 2, 9, 29))
    r = sup.fire(tid, "urge", expect=409, message="再催一次")
    assert "urged at" in r["detail"]
    assert r["zh"].startswith("该工单已于 11-02 09:00 由") and "30 分钟内不重复催办（09:30 后可再催办）" in r["zh"]
    # The ticket page says so beside the actions.
    sign_in(client, "supervisor")
    page = client.get(f"/tickets/{tid}").text
    assert '<li data-event="urge"><strong>催办</strong>：该工单已于 11-02 09:00' in page
    # The scheduler's own step goes through.
    with runtime.db.session() as s:
        fire(s, runtime, tid, "urge", SCHEDULER, {"message": "超期催办"}, now=runtime.now())
    clock.set(local(2026, 11, 2, 9, 58))  # 29 minutes after the scheduler's: held by it
    assert sup.fire(tid, "urge", expect=409)["zh"].startswith("该工单已于 11-02 09:29 由系统催办")
    clock.set(local(2026, 11, 2, 9, 59))
    sup.fire(tid, "urge", message="再催一次")
    with runtime.db.read_session() as s:
        from sqlmodel import select

        bodies = s.exec(select(Notification.body).where(Notification.kind == "urge")).all()
    assert sum("再催一次" in b for b in bodies) == 1 and sum("请尽快签收" in b for b in bodies) == 1


def test_the_review_queues_open_on_the_first_with_something_waiting(as_, client):
    """Opened from the menu (no tab asked for), the reviews page shows the first queue that
    has something waiting, not an empty one."""
    sign_in(client, "supervisor")
    assert 'id="tab-return" class="active"' in client.get("/supervisor/reviews").text  # nothing waits: the first
    tid = dispatched(as_)
    as_("housing_h").fire(tid, "sign")
    as_("housing_h").fire(tid, "reply", result="已维修")
    sign_in(client, "supervisor")
    page = client.get("/supervisor/reviews").text
    assert 'id="tab-reply" class="active"' in page and f'id="review-{tid}"' in page
    assert 'id="tab-return" class="active"' in client.get("/supervisor/reviews?tab=return").text
