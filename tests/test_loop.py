"""The whole default loop through the API, on SQLite and PostgreSQL."""

import pytest

from tests.helpers import Api, sign_in


@pytest.fixture
def as_(client, district):
    return lambda username: Api(client, district, username)


def events_of(api: Api, ticket_id: int) -> list[str]:
    return [e["name"] for e in api.get(f"/tickets/{ticket_id}/transitions")["events"]]


def reply_label(dept, tid: int) -> str:
    return next(e["label"] for e in dept.get(f"/tickets/{tid}/transitions")["events"] if e["name"] == "reply")


def test_full_loop_with_return_extension_cohandler_review_callback(as_, clock, client):
    agent, sup = as_("agent"), as_("supervisor")
    housing, urban, market = as_("housing_h"), as_("urban_h"), as_("market_h")

    t = agent.create()
    assert t["state"] == "registered" and len(t["number"]) == 14
    assert "deadlines" in t
    tid = t["id"]

    # Dispatch by routing: category 0101's default department is housing.
    t = agent.fire(tid, "dispatch")
    assert (t["state"], t["department"]) == ("dispatched", "housing")
    assert t["deadlines"]["sign_by"] and t["deadlines"]["handle_by"]

    # Housing signs, then returns it (territory); the centre redispatches to urban
    # with market as co-handler.
    clock.advance(hours=1)
    assert housing.fire(tid, "sign")["state"] == "in_progress"
    t = housing.fire(tid, "return", reason="不属于本单位职责", reason_code="ownership")
    assert t["state"] == "returned"
    t = sup.fire(tid, "redispatch", department="urban", co_departments=["market"])
    assert (t["state"], t["department"], t["co_departments"]) == ("dispatched", "urban", ["market"])
    housing.get(f"/tickets/{tid}", expect=404)  # no longer housing's

    # Co-handler signs first: the ticket stays dispatched.
    assert market.fire(tid, "sign")["state"] == "dispatched"
    assert urban.fire(tid, "sign")["state"] == "in_progress"

    # Extension asked and approved: handle-by moves.
    before = agent.get(f"/tickets/{tid}")["deadlines"]["handle_by"]
    urban.fire(tid, "request_extension", days=3, reason="需要协调多部门")
    t = sup.fire(tid, "approve_extension")
    assert t["deadlines"]["handle_by"] > before

    # The main department cannot reply before the co-handler.
    r = urban.fire(tid, "reply", expect=409, result="已处理")
    assert "co-handler" in r["detail"]
    # Each department reads the reply as its part is: the co-handler's is 协办答复.
    assert reply_label(market, tid) == "协办答复"
    assert market.fire(tid, "reply", result="协办意见：已检查")["state"] == "in_progress"
    assert reply_label(urban, tid) == "办结回复"
    # The ticket's page says it too, in the history and in the flash after the co-handler's reply.
    sign_in(client, "market_h")
    page = client.get(f"/tickets/{tid}", params={"done": "reply"}).text
    assert "已完成：协办答复" in page and "<strong>协办答复</strong>" in page
    assert "<strong>办结回复</strong>" not in page
    assert urban.fire(tid, "reply", result="已责令整改")["state"] == "replied"

    # The centre rejects the reply, then approves the second one.
    assert sup.fire(tid, "reject_reply", reason="答复不完整")["state"] == "in_progress"
    assert urban.fire(tid, "reply", result="已整改完毕并回复市民")["state"] == "replied"
    t = sup.fire(tid, "approve_reply")
    assert t["state"] == "pending_callback" and t["deadlines"]["callback_by"]

    # A satisfied callback, then close.
    agent.fire(tid, "callback", reached=True, solved=True, rating=5)
    t = agent.fire(tid, "close")
    assert (t["state"], t["close_reason"]) == ("archived", "satisfied")

    history = agent.get(f"/tickets/{tid}/history")
    assert [h["event"] for h in history] == [
        "create",
        "dispatch",
        "sign",
        "return",
        "redispatch",
        "sign",
        "sign",
        "request_extension",
        "approve_extension",
        "reply",
        "reply",
        "reject_reply",
        "reply",
        "approve_reply",
        "callback",
        "close",
    ]
    assert history[1]["details"]["routed_by"] == "category:0101"
    assert history[3]["from"] == "in_progress" and history[3]["to"] == "returned"
    assert all(h["actor"] and h["at"] for h in history)


def test_answer_directly(as_):
    agent = as_("agent")
    t = agent.create(type="consultation", category="09")
    t = agent.fire(t["id"], "answer", answer="办理居住证请携带身份证到派出所")
    assert t["state"] == "pending_callback" and t["answer"]
    agent.fire(t["id"], "callback", reached=True, solved=True, rating=4)
    assert agent.fire(t["id"], "close")["state"] == "archived"


def test_merge_into_master(as_):
    agent = as_("agent")
    master = agent.create()
    dup = agent.create()
    t = agent.fire(dup["id"], "merge", master=master["id"])
    assert (t["state"], t["master"]) == ("merged", master["id"])
    assert agent.get(f"/tickets/{master['id']}/history")[-1]["event"] == "merge_in"
    # A merged ticket is terminal.
    r = agent.fire(dup["id"], "dispatch", expect=409)
    assert "allowed now: none" in r["detail"]


def test_merge_needs_an_open_master(as_):
    agent = as_("agent")
    closed = agent.create()
    agent.fire(closed["id"], "cancel", reason="重复来电")
    dup = agent.create()
    agent.fire(dup["id"], "merge", master=closed["id"], expect=409)
    r = agent.fire(dup["id"], "merge", master=dup["id"], expect=422)
    assert r["field"] == "master"


def test_cancel(as_):
    agent = as_("agent")
    t = agent.create()
    t = agent.fire(t["id"], "cancel", reason="市民撤回诉求")
    assert (t["state"], t["close_reason"]) == ("cancelled", "cancelled")


def test_rehandle_after_dissatisfied_callback(as_):
    agent, sup, housing = as_("agent"), as_("supervisor"), as_("housing_h")
    tid = agent.create()["id"]
    agent.fire(tid, "dispatch")
    housing.fire(tid, "sign")
    housing.fire(tid, "reply", result="已联系物业")
    sup.fire(tid, "approve_reply")
    agent.fire(tid, "callback", reached=True, solved=False, rating=2)
    # A dissatisfied callback does not close without a reason.
    agent.fire(tid, "close", expect=409)
    t = agent.fire(tid, "rehandle", reason="问题未解决，部门责任")
    assert (t["state"], t["rehandle_count"]) == ("in_progress", 1)
    housing.fire(tid, "reply", result="已更换电梯部件")
    sup.fire(tid, "approve_reply")
    agent.fire(tid, "callback", reached=True, solved=True, rating=5)
    assert agent.fire(tid, "close")["state"] == "archived"


def test_rehandle_needs_a_dissatisfied_callback(as_):
    agent, sup, housing = as_("agent"), as_("supervisor"), as_("housing_h")
    tid = agent.create()["id"]
    agent.fire(tid, "dispatch")
    housing.fire(tid, "sign")
    housing.fire(tid, "reply", result="已处理")
    sup.fire(tid, "approve_reply")
    agent.fire(tid, "callback", reached=True, solved=True, rating=5)
    r = agent.fire(tid, "rehandle", expect=409, reason="x")
    assert "dissatisfied" in r["detail"]


def test_three_unreached_callbacks_close_as_not_called_back(as_):
    agent, sup, housing = as_("agent"), as_("supervisor"), as_("housing_h")
    tid = agent.create()["id"]
    agent.fire(tid, "dispatch")
    housing.fire(tid, "sign")
    housing.fire(tid, "reply", result="已处理")
    sup.fire(tid, "approve_reply")
    for _ in range(2):
        agent.fire(tid, "callback", reached=False)
    agent.fire(tid, "close", expect=409)
    agent.fire(tid, "callback", reached=False)
    t = agent.fire(tid, "close")
    assert (t["state"], t["close_reason"]) == ("archived", "not_called_back")


def test_event_not_allowed_is_409_naming_the_allowed_events(as_):
    agent = as_("agent")
    tid = agent.create()["id"]
    r = agent.fire(tid, "approve_reply", expect=403)  # the agent may not review replies
    r = agent.fire(tid, "close", expect=409)
    assert "registered" in r["detail"] and "allowed now:" in r["detail"]
    assert set(r["allowed"]) == {"answer", "dispatch", "merge", "cancel"}
    r = agent.fire(tid, "no_such_event", expect=409)
    assert "not an event" in r["detail"]


def test_transitions_lists_what_the_caller_may_fire(as_):
    agent, housing, sup = as_("agent"), as_("housing_h"), as_("supervisor")
    tid = agent.create()["id"]
    assert set(events_of(agent, tid)) == {"answer", "dispatch", "merge", "cancel"}
    agent.fire(tid, "dispatch")
    assert set(events_of(housing, tid)) == {"sign", "return"}
    assert set(events_of(sup, tid)) == {"merge", "urge", "supervise", "report"}


def test_suspension_and_resume(as_):
    agent, sup, housing = as_("agent"), as_("supervisor"), as_("housing_h")
    tid = agent.create()["id"]
    agent.fire(tid, "dispatch")
    housing.fire(tid, "sign")
    housing.fire(tid, "request_suspension", reason="等待司法鉴定结果")
    housing.fire(tid, "request_suspension", reason="again", expect=409)
    assert sup.fire(tid, "approve_suspension")["state"] == "suspended"
    assert housing.fire(tid, "resume")["state"] == "in_progress"


def test_rejected_requests_leave_the_ticket_where_it_was(as_):
    agent, sup, housing = as_("agent"), as_("supervisor"), as_("housing_h")
    tid = agent.create()["id"]
    agent.fire(tid, "dispatch")
    housing.fire(tid, "sign")
    housing.fire(tid, "request_extension", days=2, reason="材料待补")
    assert sup.fire(tid, "reject_extension", reason="时限内可办结")["state"] == "in_progress"
    sup.fire(tid, "approve_extension", expect=409)  # nothing pending any more
    housing.fire(tid, "return", reason="不属于我单位", reason_code="territory")
    t = sup.fire(tid, "reject_return", reason="属于物业监管职责")
    assert t["state"] == "in_progress"  # back where the return came from
