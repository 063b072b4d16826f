"""Notices are read by each person: a department's notice stays unread for the colleague
who has not read it; "mark all as read" moves one person's watermark."""

import re

from fastapi.testclient import TestClient
from sqlmodel import select

from hotline.db import utcnow
from hotline.directory import create_user, issue_token
from hotline.main import create_app
from hotline.models import Department, Notification, User
from hotline.notices import UNREAD_CAP
from tests.conftest import local
from tests.helpers import PASSWORD, Api, make_dispatched, sign_in


def _second_handler(runtime, district, now) -> None:
    with runtime.db.session() as s:
        create_user(s, username="housing_h2", role="handler", department="housing", password=PASSWORD, now=now)
        district.tokens["housing_h2"] = issue_token(s, "housing_h2", now=utcnow())


def _notices(runtime, n: int, *, at, department_id=None, role="handler", user_id=None) -> None:
    with runtime.db.session() as s:
        s.add_all(
            Notification(
                department_id=department_id, role=role, user_id=user_id, kind="warn", title=f"通知{i}", created_at=at
            )
            for i in range(n)
        )


def test_each_handler_reads_a_department_notice_for_themselves(runtime, district, client, clock):
    _second_handler(runtime, district, local(2026, 11, 1, 9))
    (tid,) = make_dispatched(runtime, 1, now=local(2026, 11, 2, 9, 0))
    Api(client, district, "supervisor").fire(tid, "urge", message="请今天内签收")
    first, second = Api(client, district, "housing_h"), Api(client, district, "housing_h2")

    def urged(api):  # the dispatch has told the department too
        return [n for n in api.get("/notifications", unread="true") if n["kind"] == "urge"]

    (note,) = urged(first)
    assert note["read_at"] is None and note["body"] == "请今天内签收"
    clock.advance(minutes=5)
    done = first.post(f"/notifications/{note['id']}/read", {})
    assert done["read_at"] == "2026-11-02T09:05:00+08:00"
    clock.advance(minutes=5)
    assert first.post(f"/notifications/{note['id']}/read", {})["read_at"] == done["read_at"]  # the first read stays

    assert urged(first) == []
    assert first.get("/notifications")[0]["read_at"] == done["read_at"]
    assert [n["id"] for n in urged(second)] == [note["id"]]  # still unread for them
    Api(client, district, "urban_h").post(f"/notifications/{note['id']}/read", {}, expect=404)  # not theirs


def test_mark_all_read_moves_the_watermark_and_later_notices_are_unread(runtime, district, client, clock):
    housing_id = _department_id(runtime, "housing")
    _notices(runtime, 3, at=local(2026, 11, 1, 10), department_id=housing_id)
    handler = Api(client, district, "housing_h")
    assert len(handler.get("/notifications", unread="true")) == 3
    assert handler.post("/notifications/read", {})["read_before"] == "2026-11-02T09:00:00+08:00"
    assert handler.get("/notifications", unread="true") == []
    assert {n["read_at"] for n in handler.get("/notifications")} == {"2026-11-02T09:00:00+08:00"}
    _notices(runtime, 1, at=local(2026, 11, 2, 10), department_id=housing_id)
    assert [n["title"] for n in handler.get("/notifications", unread="true")] == ["通知0"]
    assert len(Api(client, district, "housing_l").get("/notifications", unread="true")) == 0  # handlers' notices


def test_a_new_colleague_does_not_inherit_the_departments_old_notices_as_unread(runtime, district, client):
    _notices(runtime, 5, at=local(2026, 11, 1, 10), department_id=_department_id(runtime, "housing"))
    _second_handler(runtime, district, local(2026, 11, 2, 8))
    newcomer = Api(client, district, "housing_h2")
    assert len(newcomer.get("/notifications")) == 5
    assert newcomer.get("/notifications", unread="true") == []


def test_the_top_bar_counts_unread_notices_and_the_page_marks_them_read(runtime, district, settings):
    housing_id = _department_id(runtime, "housing")
    _notices(runtime, 4, at=local(2026, 9, 1, 8), department_id=housing_id)  # older than the badge's 30 days
    _notices(runtime, 2, at=local(2026, 11, 2, 8), department_id=housing_id)
    with TestClient(create_app(settings, runtime=runtime)) as client:
        r = sign_in(client, "housing_h", PASSWORD)
        assert r.status_code == 303
        page = client.get("/notifications").text
        assert 'hx-get="/notifications/badge"' in page and "6 条未读" in page
        assert client.get("/notifications/badge").text == '<span class="count-badge" title="未读通知">2</span>'
        first = re.search(r'action="/notifications/(\d+)/read"', page).group(1)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = client.post(f"/notifications/{first}/read", data={"csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303
        assert client.get("/notifications/badge").text.endswith(">1</span>")
        assert client.post("/notifications/read", data={}, follow_redirects=False).status_code == 403  # no CSRF
        page = client.get("/notifications").text
        form = dict(re.findall(r'name="(shown|oldest|oldest_id)" value="([^"]*)"', page))
        assert len(form["shown"].split(",")) == 5 and form["oldest"] == "2026-09-01T08:00:00+08:00"
        # A notice that comes in after the page was drawn is not marked read by it.
        _notices(runtime, 1, at=local(2026, 11, 2, 8, 30), department_id=housing_id)
        r = client.post("/notifications/read", data={"csrf_token": token, **form}, follow_redirects=False)
        assert r.status_code == 303
        assert client.get("/notifications/badge").text.endswith(">1</span>")
        page = client.get("/notifications").text
        assert "1 条未读" in page and page.count("已读</span>") == 6


def test_the_count_stops_at_99_plus(runtime, district, settings, clock):
    _notices(runtime, UNREAD_CAP + 30, at=local(2026, 11, 2, 8), user_id=district.user_ids["supervisor"])
    _notices(runtime, 10, at=local(2026, 11, 2, 8), role="supervisor")
    with TestClient(create_app(settings, runtime=runtime)) as client:
        sign_in(client, "supervisor", PASSWORD)
        assert ">99+</span>" in client.get("/notifications/badge").text
        clock.advance(days=31)
        assert "hidden" in client.get("/notifications/badge").text
        clock.advance(days=-31)
        unread = Api(client, district, "supervisor").get("/notifications", unread="true", limit=200)
    assert len(unread) == UNREAD_CAP + 40


def _department_id(runtime, code: str) -> int:
    with runtime.db.read_session() as s:
        return s.exec(select(Department.id).where(Department.code == code)).one()


def test_notices_older_than_a_watermark_read_as_read_at_the_watermark(runtime, district, client):
    _notices(runtime, 1, at=local(2026, 10, 1, 8), user_id=district.user_ids["agent"])
    with runtime.db.session() as s:
        s.get(User, district.user_ids["agent"]).notices_read_before = local(2026, 10, 2, 8)
    (note,) = Api(client, district, "agent").get("/notifications")
    assert note["read_at"] == "2026-10-02T08:00:00+08:00"


def test_mark_all_read_reaches_past_the_page_when_a_sweep_stamped_many_at_once(runtime, district, settings):
    housing_id = _department_id(runtime, "housing")
    _notices(runtime, 105, at=local(2026, 11, 2, 8), department_id=housing_id)  # one sweep, one instant
    with TestClient(create_app(settings, runtime=runtime)) as client:
        sign_in(client, "housing_h", PASSWORD)
        page = client.get("/notifications").text
        assert "100 条未读" in page
        form = dict(re.findall(r'name="(csrf_token|shown|oldest|oldest_id)" value="([^"]*)"', page))
        assert client.post("/notifications/read", data=form, follow_redirects=False).status_code == 303
        assert "hidden" in client.get("/notifications/badge").text
        assert Api(client, district, "housing_h").get("/notifications", unread="true", limit=200) == []


def test_a_notice_to_a_person_and_to_their_role_counts_once(runtime, district, settings):
    housing_id = _department_id(runtime, "housing")
    user_id = district.user_ids["housing_h"]
    _notices(runtime, 3, at=local(2026, 11, 2, 8), department_id=housing_id, user_id=user_id)
    with TestClient(create_app(settings, runtime=runtime)) as client:
        sign_in(client, "housing_h", PASSWORD)
        assert client.get("/notifications/badge").text.endswith(">3</span>")
        assert len(Api(client, district, "housing_h").get("/notifications", unread="true")) == 3


def _told(api: Api, tid: int, kind: str) -> list[dict]:
    return [n for n in api.get("/notifications") if n["ticket"] == tid and n["kind"] == kind]


def test_the_centres_decisions_reach_the_department_they_concern(runtime, district, client):
    """Dispatch (main and co-handling), refused and approved extensions and suspensions,
    refused and approved returns, and a reply sent back: each tells the department's
    handlers and leader, on the ticket it concerns."""
    from hotline.tickets import create_ticket
    from hotline.workflow.engine import Actor, fire

    at = local(2026, 11, 2, 9, 0)
    with runtime.db.session() as s:
        ticket, _ = create_ticket(
            s,
            runtime,
            Actor(None, "agent", "agent"),
            {"type": "complaint", "category": "0101", "content": "电梯停运"},
            now=at,
        )
        fire(
            s,
            runtime,
            ticket.id,
            "dispatch",
            Actor(None, "agent", "agent"),
            {"department": "housing", "co_departments": ["urban"]},
            now=at,
        )
        tid = ticket.id
    handler, leader, urban = (Api(client, district, u) for u in ("housing_h", "housing_l", "urban_h"))
    supervisor = Api(client, district, "supervisor")
    (main,) = _told(handler, tid, "dispatch")
    assert "转本单位办理" in main["title"] and "电梯停运" in main["body"] and "前签收" in main["body"]
    assert _told(leader, tid, "dispatch") == [main]
    (co,) = _told(urban, tid, "dispatch")
    assert "协办" in co["title"] and "区住建局" in co["body"]

    handler.fire(tid, "sign")
    handler.fire(tid, "request_extension", days=3, reason="需协调产权单位")
    supervisor.fire(tid, "reject_extension", reason="理由不充分")
    handler.fire(tid, "request_extension", days=3, reason="产权单位已约定下周到场")
    supervisor.fire(tid, "approve_extension")
    refused, approved = sorted(_told(leader, tid, "extension"), key=lambda n: n["id"])
    assert "未批准" in refused["title"] and "理由不充分" in refused["body"]
    assert "已批准" in approved["title"] and "3 个工作日" in approved["body"]
    handler.fire(tid, "request_suspension", reason="等待司法鉴定")
    supervisor.fire(tid, "approve_suspension")
    (suspended,) = _told(handler, tid, "suspension")
    assert "挂起申请已批准" in suspended["title"] and suspended["title"].endswith(ticket.number)
    assert _told(urban, tid, "extension") == [] and _told(urban, tid, "suspension") == []

    (other,) = make_dispatched(runtime, 1, now=at)
    handler.fire(other, "return", reason="不属于本单位职责")
    supervisor.fire(other, "reject_return", reason="属本单位职责，请继续办理")
    handler.fire(other, "return", reason="产权属城管局")
    supervisor.fire(other, "redispatch", department="urban")
    refused, approved = sorted(_told(leader, other, "return"), key=lambda n: n["id"])
    assert "未同意" in refused["title"] and "请继续办理" in refused["body"]
    assert "已同意" in approved["title"] and "不再承办" in approved["body"]
    (moved,) = _told(urban, other, "dispatch")
    assert moved["title"].startswith("改派")

    (third,) = make_dispatched(runtime, 1, now=at)
    handler.fire(third, "sign")
    handler.fire(third, "reply", result="已维修")
    supervisor.fire(third, "reject_reply", reason="未写明维修时间")
    (sent_back,) = _told(handler, third, "reply_rejected")
    assert "审核退回" in sent_back["title"] and "未写明维修时间" in sent_back["body"]
    assert _told(leader, third, "reply_rejected") == [sent_back]


def test_the_ladders_notices_go_to_a_role_the_way_the_department_page_asks_for_them():
    """The department page reads the ladder's notices only as addressed to a role
    (`notices.role_ways`); a ladder notice to a whole department would be missed there."""
    from types import SimpleNamespace

    from hotline.web.department import NOTICE_KINDS
    from hotline.workflow import texts

    ticket = SimpleNamespace(number="N1", main_department_id=3, due_kind="handle", due_at=local(2026, 11, 9, 17, 0))
    for step in NOTICE_KINDS:
        for role, _department, _title, _body in texts.ladder_notices(step, ticket):
            assert role is not None, step


def test_the_department_page_lists_the_ladders_notices_of_its_role_only(runtime, district, client):
    (tid,) = make_dispatched(runtime, 1, now=local(2026, 11, 2, 9, 0))
    with runtime.db.read_session() as s:
        housing = s.exec(select(Department.id).where(Department.code == "housing")).one()
    now = runtime.now()
    _notices(runtime, 1, at=now, department_id=housing, role="handler")  # 通知0, to the handlers
    with runtime.db.session() as s:  # the same kind to the leader, and to the whole department
        s.add(Notification(department_id=housing, role="leader", kind="warn", title="给负责人", created_at=now))
        s.add(Notification(department_id=housing, role=None, kind="dispatch", title="新派单", created_at=now))
    sign_in(client, "housing_h")
    page = client.get("/department/inbox").text
    assert "通知0" in page and "给负责人" not in page
