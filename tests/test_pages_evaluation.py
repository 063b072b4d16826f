"""The evaluation pages: a department reports its rectification, the centre decides;
an appeal filed from the ticket page and decided by a supervisor."""

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from hotline.models import Callback, Rectification
from tests.conftest import local
from tests.helpers import PASSWORD, Api, make_dispatched, sign_in


def signed_in(client: TestClient, username: str) -> str:
    client.cookies.clear()
    r = sign_in(client, username, PASSWORD)
    assert r.status_code == 303
    page = client.get("/notifications")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


@pytest.fixture
def badly_rated(runtime, client, district):
    (tid,) = make_dispatched(runtime, 1, now=local(2026, 11, 2, 9, 0))
    housing, sup, agent = (Api(client, district, u) for u in ("housing_h", "supervisor", "agent"))
    housing.fire(tid, "sign")
    housing.fire(tid, "reply", result="已处理")
    sup.fire(tid, "approve_reply")
    agent.fire(tid, "callback", reached=True, solved=False, rating=1, comment="没人来处理")
    return tid


def test_rectification_reported_then_accepted_through_the_pages(runtime, client, badly_rated):
    csrf = signed_in(client, "housing_h")
    page = client.get("/evaluation/rectifications")
    assert page.status_code == 200 and "非常不满意" in page.text and "没人来处理" in page.text
    with runtime.db.read_session() as s:
        rect_id = s.exec(select(Rectification.id)).one()
    r = client.post(
        f"/evaluation/rectifications/{rect_id}/report",
        data={"csrf_token": csrf, "verification": "属实", "measures": "已重新上门处理"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = client.post(f"/evaluation/rectifications/{rect_id}/decision", data={"csrf_token": csrf, "decision": "accept"})
    assert r.status_code == 403  # a handler does not decide
    csrf = signed_in(client, "supervisor")
    r = client.post(
        f"/evaluation/rectifications/{rect_id}/decision",
        data={"csrf_token": csrf, "decision": "accept"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with runtime.db.read_session() as s:
        assert s.get(Rectification, rect_id).status == "accepted"


def test_appeal_from_the_ticket_page_decided_by_the_centre(runtime, client, badly_rated):
    csrf = signed_in(client, "housing_h")
    r = client.post(
        f"/tickets/{badly_rated}/appeal",
        data={"csrf_token": csrf, "kind": "rating", "grounds": "恶意差评"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "恶意差评" in client.get("/evaluation/appeals").text
    r = client.post(f"/tickets/{badly_rated}/appeal", data={"kind": "rating", "grounds": "无令牌"})
    assert r.status_code == 403  # no CSRF token
    csrf = signed_in(client, "supervisor")
    page = client.get("/evaluation/appeals")
    appeal_id = re.search(r"/evaluation/appeals/(\d+)/decision", page.text).group(1)
    r = client.post(
        f"/evaluation/appeals/{appeal_id}/decision",
        data={"csrf_token": csrf, "decision": "grant", "reason": "录音证实"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with runtime.db.read_session() as s:
        assert s.exec(select(Callback.overturned)).one() is True


def test_the_rectifications_waiting_for_the_reader_come_first(runtime, client, district):
    """A department sees those it must report on first, the earliest due first; the centre
    those it must decide; the accepted ones last, the latest first (not by the status's
    English name, which put 已通过 at the top)."""
    from datetime import timedelta

    from hotline.models import Ticket

    housing, sup, agent = (Api(client, district, u) for u in ("housing_h", "supervisor", "agent"))
    ids = make_dispatched(runtime, 5, now=local(2026, 11, 2, 9, 0))
    for tid in ids:
        housing.fire(tid, "sign")
        housing.fire(tid, "reply", result="已处理")
        sup.fire(tid, "approve_reply")
        agent.fire(tid, "callback", reached=True, solved=False, rating=1)
    # Two accepted (due 1 and 2 days on), one reported (due 3 days on), two open (due 5 and 4).
    base = local(2026, 11, 20, 17, 0)
    plan = dict(zip(ids, [("accepted", 1), ("accepted", 2), ("reported", 3), ("open", 5), ("open", 4)], strict=True))
    with runtime.db.session() as s:
        for rect in s.exec(select(Rectification)).all():
            status, days = plan[rect.ticket_id]
            rect.status, rect.due_at = status, base + timedelta(days=days)
        numbers = {t.id: t.number for t in s.exec(select(Ticket)).all()}

    def order(username: str) -> list[int]:
        signed_in(client, username)
        text = client.get("/evaluation/rectifications").text
        found = sorted((text.index(numbers[tid]), tid) for tid in ids)
        return [plan[tid] for _, tid in found]

    assert order("housing_h") == [("open", 4), ("open", 5), ("reported", 3), ("accepted", 2), ("accepted", 1)]
    assert order("supervisor") == [("reported", 3), ("open", 4), ("open", 5), ("accepted", 2), ("accepted", 1)]
