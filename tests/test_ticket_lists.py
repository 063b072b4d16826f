"""A ticket list counts its matches up to a limit: the page and the API say "more than" beyond it."""

import hotline.tickets
from tests.conftest import local
from tests.helpers import Api, make_dispatched, sign_in


def test_a_list_counts_up_to_the_limit_and_says_when_there_are_more(client, runtime, district, monkeypatch):
    make_dispatched(runtime, 5, now=local(2026, 11, 18, 10))
    monkeypatch.setattr(hotline.tickets, "COUNT_LIMIT", 3)
    supervisor = Api(client, district, "supervisor")
    listed = supervisor.get("/tickets", page_size=2)
    assert (listed["total"], listed["total_exact"]) == (3, False)
    assert len(listed["items"]) == 2
    assert len(supervisor.get("/tickets", page=3, page_size=2)["items"]) == 1  # the pages go on
    narrowed = supervisor.get("/tickets", state="dispatched", page_size=2, department="housing")
    assert narrowed["total_exact"] is False
    monkeypatch.setattr(hotline.tickets, "COUNT_LIMIT", 5)
    exact = supervisor.get("/tickets", page_size=2)
    assert (exact["total"], exact["total_exact"]) == (5, True)


def test_the_search_page_says_more_than_the_limit(client, runtime, district, monkeypatch):
    make_dispatched(runtime, 4, now=local(2026, 11, 18, 10))
    sign_in(client, "supervisor")
    monkeypatch.setattr(hotline.tickets, "COUNT_LIMIT", 3)
    page = client.get("/tickets")
    assert page.status_code == 200
    assert "超过 3 件" in page.text
    monkeypatch.setattr(hotline.tickets, "COUNT_LIMIT", 10)
    assert "共 4 件" in client.get("/tickets").text


def test_the_search_hint_says_whose_tickets_are_searched(client, district):
    """A department's search finds only its own tickets, and the hint says so."""
    sign_in(client, "housing_h")
    assert "在本单位的全部工单中查找" in client.get("/tickets", params={"q": "13800000000"}).text
    sign_in(client, "supervisor")
    text = client.get("/tickets", params={"q": "13800000000"}).text
    assert "在全部工单中查找" in text and "本单位" not in text
