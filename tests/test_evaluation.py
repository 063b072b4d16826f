"""Evaluation (评价反馈, 好差评): callbacks, rating links, rehandling, rectification, appeals."""

import re

import pytest
from sqlmodel import func, select

from hotline.models import Callback, Message, OutboxMessage, Rectification, Ticket
from hotline.scheduler import sweep
from tests.conftest import local
from tests.helpers import Api, make_dispatched


@pytest.fixture
def as_(client, district):
    return lambda username: Api(client, district, username)


def replied_and_approved(runtime, as_, **fields) -> int:
    """A ticket through dispatch, sign, reply and the centre's approval (Monday 2026-11-02)."""
    (tid,) = make_dispatched(runtime, 1, now=local(2026, 11, 2, 9, 0), caller_phone="13800001111", **fields)
    as_("housing_h").fire(tid, "sign")
    as_("housing_h").fire(tid, "reply", result="已协调物业维修电梯")
    as_("supervisor").fire(tid, "approve_reply")
    return tid


def link_token(url: str) -> str:
    return re.search(r"/rate/([^/\s]+)$", url).group(1)


def test_scheduler_sends_the_rating_link_after_approval_in_office_hours(runtime, as_, client):
    tid = replied_and_approved(runtime, as_)
    report = sweep(runtime, now=local(2026, 11, 2, 20, 0))  # evening: waits for the morning
    assert report.steps == [] and report.deferred == 1
    report = sweep(runtime, now=local(2026, 11, 3, 9, 0))
    assert [(s, k) for _, s, k in report.steps] == [("invite", "callback")]
    with runtime.db.read_session() as s:
        (message,) = s.exec(select(Message).where(Message.ticket_id == tid)).all()
    assert message.to == "13800001111" and "/rate/" in message.body and message.status == "stored"
    assert sweep(runtime, now=local(2026, 11, 3, 10, 0)).steps == []  # once
    assert as_("admin").get("/messages")[0]["id"] == message.id


def test_rating_link_used_once_then_refused(runtime, as_, client):
    tid = replied_and_approved(runtime, as_)
    sent = as_("agent").post(f"/tickets/{tid}/rating-invitations", {}, expect=201)
    token = link_token(sent["url"])
    page = client.get(f"/rate/{token}")
    assert page.status_code == 200 and "提交评价" in page.text
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
    r = client.post(f"/rate/{token}", data={"nonce": nonce, "rating": "5", "solved": "yes", "comment": "很及时"})
    assert r.status_code == 200 and "感谢您的评价" in r.text
    again = client.post(f"/rate/{token}", data={"nonce": nonce, "rating": "1", "solved": "no"})
    assert again.status_code == 410 and "已使用" in again.text
    assert client.get(f"/rate/{token}").status_code == 410
    with runtime.db.read_session() as s:
        callbacks = s.exec(select(Callback).where(Callback.ticket_id == tid)).all()
        assert [(c.source, c.rating, c.solved) for c in callbacks] == [("link", 5, True)]
    # A rating through the link counts like a callback: the ticket can close as satisfied.
    t = as_("agent").fire(tid, "close")
    assert (t["state"], t["close_reason"]) == ("archived", "satisfied")


def test_rating_link_refused_when_expired_forged_or_replaced(runtime, as_, client, clock):
    tid = replied_and_approved(runtime, as_)
    first = link_token(as_("agent").post(f"/tickets/{tid}/rating-invitations", {}, expect=201)["url"])
    second = link_token(as_("agent").post(f"/tickets/{tid}/rating-invitations", {}, expect=201)["url"])
    assert "已失效" in client.get(f"/rate/{first}").text  # replaced by the resend
    assert client.get(f"/rate/{second[:-2]}xx").status_code == 410  # forged signature
    clock.set(local(2026, 11, 30, 9, 0))  # past the link's three working days
    r = client.get(f"/rate/{second}")
    assert r.status_code == 410 and "已过期" in r.text
    with runtime.db.read_session() as s:
        assert s.exec(select(func.count()).select_from(Callback)).one() == 0


def test_no_rating_in_the_window_closes_as_not_called_back(runtime, as_):
    tid = replied_and_approved(runtime, as_)
    sweep(runtime, now=local(2026, 11, 3, 9, 0))  # the link goes out
    report = sweep(runtime, now=local(2026, 11, 5, 9, 0))  # callback-by (11-04) has passed
    assert ("close", "callback") in [(s, k) for _, s, k in report.steps]
    with runtime.db.read_session() as s:
        t = s.get(Ticket, tid)
        assert (t.state, t.close_reason) == ("archived", "not_called_back")


def test_three_unreachable_attempts_close_by_themselves(runtime, as_):
    tid = replied_and_approved(runtime, as_, reply_wanted=False)
    for _ in range(3):
        as_("agent").fire(tid, "callback", reached=False)
    sweep(runtime, now=local(2026, 11, 2, 10, 0))
    with runtime.db.read_session() as s:
        t = s.get(Ticket, tid)
        assert (t.state, t.close_reason) == ("archived", "not_called_back")


def test_dissatisfied_then_rehandle_then_satisfied_counts_one_rehandling(runtime, as_):
    tid = replied_and_approved(runtime, as_)
    agent, housing, sup = as_("agent"), as_("housing_h"), as_("supervisor")
    agent.fire(tid, "callback", reached=True, solved=False, rating=3)
    agent.fire(tid, "rehandle", reason="电梯仍未修好")
    housing.fire(tid, "reply", result="已更换主板")
    sup.fire(tid, "approve_reply")
    agent.fire(tid, "callback", reached=True, solved=True, rating=5)
    t = agent.fire(tid, "close")
    assert (t["state"], t["rehandle_count"]) == ("archived", 1)


def test_after_two_rehandlings_a_supervisor_decides(runtime, as_):
    tid = replied_and_approved(runtime, as_)
    agent, housing, sup = as_("agent"), as_("housing_h"), as_("supervisor")
    for _ in range(2):
        agent.fire(tid, "callback", reached=True, solved=False, rating=3)
        agent.fire(tid, "rehandle", reason="未解决")
        housing.fire(tid, "reply", result="再次处理")
        sup.fire(tid, "approve_reply")
    agent.fire(tid, "callback", reached=True, solved=False, rating=3)
    r = agent.fire(tid, "rehandle", expect=409, reason="未解决")
    assert "supervisor decides" in r["detail"]
    assert sup.fire(tid, "rehandle", reason="督办员决定第三次重办")["rehandle_count"] == 3


def test_citizens_dissatisfied_rating_goes_to_a_supervisor_first(runtime, as_, client):
    tid = replied_and_approved(runtime, as_)
    token = link_token(as_("agent").post(f"/tickets/{tid}/rating-invitations", {}, expect=201)["url"])
    page = client.get(f"/rate/{token}")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
    client.post(f"/rate/{token}", data={"nonce": nonce, "rating": "3", "solved": "no"})
    notes = as_("supervisor").get("/notifications")
    assert notes[0]["kind"] == "rating_review"
    as_("agent").fire(tid, "rehandle", expect=409, reason="x")
    as_("supervisor").fire(tid, "rehandle", reason="部门责任，重办")


def test_bad_rating_opens_a_rectification_reported_and_accepted(runtime, as_):
    tid = replied_and_approved(runtime, as_)
    as_("agent").fire(tid, "callback", reached=True, solved=False, rating=1, comment="态度差")
    (rect,) = as_("housing_h").get("/rectifications", status="open")
    assert rect["ticket"] == tid and rect["due_at"].startswith("2026-11-23")  # 15 working days
    assert as_("urban_h").get("/rectifications") == []
    as_("supervisor").post(f"/rectifications/{rect['id']}/decision", {"decision": "accept"}, expect=409)
    as_("housing_h").post(
        f"/rectifications/{rect['id']}/report",
        {"verification": "经核实，工作人员答复不耐心", "measures": "已批评教育并重新上门"},
    )
    back = as_("supervisor").post(f"/rectifications/{rect['id']}/decision", {"decision": "return", "reason": "不具体"})
    assert back["status"] == "open"
    as_("housing_h").post(
        f"/rectifications/{rect['id']}/report", {"verification": "已核实", "measures": "已整改，建立回访制度"}
    )
    done = as_("supervisor").post(f"/rectifications/{rect['id']}/decision", {"decision": "accept"})
    assert done["status"] == "accepted"
    events = [h["event"] for h in as_("agent").get(f"/tickets/{tid}/history")]
    assert events[-4:] == [
        "rectification_report",
        "rectification_return",
        "rectification_report",
        "rectification_accept",
    ]


def test_overdue_rectification_is_urged_then_supervised(runtime, as_):
    tid = replied_and_approved(runtime, as_)
    as_("agent").fire(tid, "callback", reached=True, solved=False, rating=2)
    sweep(runtime, now=local(2026, 11, 24, 9, 0))
    sweep(runtime, now=local(2026, 11, 25, 9, 0))
    sweep(runtime, now=local(2026, 11, 26, 9, 0))
    events = [h["event"] for h in as_("agent").get(f"/tickets/{tid}/history")]
    assert events.count("rectification_urge") == 1 and events.count("rectification_supervise") == 1
    kinds = [n["kind"] for n in as_("housing_l").get("/notifications")]
    assert "supervise" in kinds


def test_appeal_overturned_leaves_the_rating_out(runtime, as_):
    tid = replied_and_approved(runtime, as_)
    as_("agent").fire(tid, "callback", reached=True, solved=False, rating=1)
    appeal = as_("housing_h").post(
        f"/tickets/{tid}/appeals", {"kind": "rating", "grounds": "来电人恶意差评，有录音为证"}, expect=201
    )
    as_("housing_h").post(f"/tickets/{tid}/appeals", {"kind": "rating", "grounds": "again"}, expect=409)
    as_("housing_h").post(f"/appeals/{appeal['id']}/decision", {"decision": "grant", "reason": "x"}, expect=403)
    decided = as_("supervisor").post(
        f"/appeals/{appeal['id']}/decision", {"decision": "grant", "reason": "录音证实为恶意评价"}
    )
    assert decided["status"] == "granted"
    version = as_("agent").get(f"/tickets/{tid}")["version"]
    with runtime.db.read_session() as s:
        assert s.exec(select(Callback.overturned).where(Callback.ticket_id == tid)).one() is True
        assert s.exec(select(Rectification.status).where(Rectification.ticket_id == tid)).one() == "withdrawn"
        topics = s.exec(select(OutboxMessage.topic).where(OutboxMessage.ticket_id == tid)).all()
        assert "rating.overturned" in topics
    history = as_("agent").get(f"/tickets/{tid}/history")
    assert history[-1]["event"] == "appeal_rating_granted" and history[-1]["actor"] == "supervisor"
    assert history[-1]["details"]["reason"] == "录音证实为恶意评价"
    # The appeal and its decision each changed the ticket like an event: a version each.
    assert [h["event"] for h in history[-3:]] == ["callback", "appeal_rating", "appeal_rating_granted"]
    assert version == 1 + len([h for h in history if h["event"] != "create"])


def test_unreasonable_request_marked_on_appeal(runtime, as_):
    (tid,) = make_dispatched(runtime, 1, now=local(2026, 11, 2, 9, 0))
    appeal = as_("housing_h").post(
        f"/tickets/{tid}/appeals", {"kind": "unreasonable", "grounds": "要求违反法律规定"}, expect=201
    )
    as_("supervisor").post(f"/appeals/{appeal['id']}/decision", {"decision": "grant", "reason": "属不合理诉求"})
    with runtime.db.read_session() as s:
        assert s.get(Ticket, tid).unreasonable is True


def test_every_rating_goes_to_the_outbox_keyed_by_case_number(runtime, as_):
    from hotline import directory
    from hotline.models import Department

    with runtime.db.session() as s:
        directory.set_district(s, name="青山区", region_code="439901000000", now=runtime.now())
        housing = s.exec(select(Department).where(Department.code == "housing")).one()
        first17 = "11439901MB1234567"
        directory.set_department_org_code(
            s, department_id=housing.id, org_code=first17 + directory.org_code_check(first17)
        )
        org_code = s.get(Department, housing.id).org_code
    runtime.invalidate_district()
    tid = replied_and_approved(runtime, as_)
    as_("agent").fire(tid, "callback", reached=True, solved=True, rating=4, comment="满意")
    with runtime.db.read_session() as s:
        (msg,) = s.exec(select(OutboxMessage).where(OutboxMessage.topic == "ticket.rated")).all()
        number = s.get(Ticket, tid).number
    assert msg.ticket_number == number
    assert msg.payload["case_number"] == number and msg.payload["level"] == 4
    assert msg.payload["level_label"] == "满意" and msg.payload["department_code"] == "housing"
    assert msg.payload["solved"] is True and msg.payload["channel"] == "phone_callback"
    # The national 好差评 fields: the department's organisation code, the district's region code.
    assert msg.payload["department_org_code"] == org_code and msg.payload["region_code"] == "439901000000"
    assert msg.payload["rated_at"].endswith("+08:00") and msg.payload["origin"] == "agent"


def test_a_rehandled_ticket_starts_a_new_callback_round(runtime, as_, clock):
    tid = replied_and_approved(runtime, as_)
    agent, housing, sup = as_("agent"), as_("housing_h"), as_("supervisor")
    for _ in range(2):
        clock.advance(minutes=20)
        agent.fire(tid, "callback", reached=False)
    clock.advance(minutes=20)
    agent.fire(tid, "callback", reached=True, solved=False, rating=2)
    agent.fire(tid, "rehandle", reason="未解决")
    clock.advance(hours=3)
    housing.fire(tid, "reply", result="再次处理完毕")
    sup.fire(tid, "approve_reply")
    # The new round: a fresh rating link, and the earlier unreached attempts do not count.
    report = sweep(runtime, now=local(2026, 11, 3, 9, 0))
    assert ("invite", "callback") in [(s, k) for _, s, k in report.steps]
    agent.fire(tid, "callback", reached=False)
    agent.fire(tid, "close", expect=409)
    agent.fire(tid, "callback", reached=True, solved=True, rating=5)
    assert agent.fire(tid, "close")["close_reason"] == "satisfied"


def test_a_rectification_report_and_decision_change_the_ticket_like_events(runtime, as_):
    tid = replied_and_approved(runtime, as_)
    as_("agent").fire(tid, "callback", reached=True, solved=False, rating=2)
    before = as_("agent").get(f"/tickets/{tid}")["version"]
    (rect,) = as_("housing_h").get("/rectifications")
    as_("housing_h").post(f"/rectifications/{rect['id']}/report", {"verification": "已核实", "measures": "已整改到位"})
    as_("supervisor").post(f"/rectifications/{rect['id']}/decision", {"decision": "return", "reason": "整改不到位"})
    assert as_("agent").get(f"/tickets/{tid}")["version"] == before + 2
    history = as_("agent").get(f"/tickets/{tid}/history")
    assert [h["event"] for h in history[-2:]] == ["rectification_report", "rectification_return"]
    assert history[-1]["details"]["reason"] == "整改不到位"
