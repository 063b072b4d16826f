"""工单查询: finding a ticket by its caller, place or words, and by department, category, state and dates."""

import pytest
from playwright.sync_api import expect

from hotline.models import Ticket
from tests.conftest import local
from tests.helpers import Api, make_dispatched
from tests.test_pages_agent import shot
from tests.test_pages_smoke import login


def _tickets(runtime) -> dict[str, int]:
    """Five tickets whose callers, places, categories, departments and days differ."""
    ids = {}
    ids["zhou"] = make_dispatched(
        runtime,
        1,
        now=local(2026, 10, 12, 9, 0),
        caller_name="周先生",
        caller_phone="13312345678",
        address="幸福里2栋",
        street="西城街道",
    )[0]
    ids["wu"] = make_dispatched(
        runtime,
        1,
        now=local(2026, 10, 20, 9, 0),
        caller_name="吴女士",
        caller_phone="13955550001",
        category="0102",
        department="urban",
    )[0]
    ids["secret"] = make_dispatched(
        runtime,
        1,
        now=local(2026, 10, 21, 9, 0),
        caller_name="郑先生",
        caller_phone="13700005678",
        confidential=True,
    )[0]
    ids["food"] = make_dispatched(
        runtime,
        1,
        now=local(2026, 10, 22, 9, 0),
        caller_name="王五",
        caller_phone="13600001111",
        category="0201",
        department="market",
    )[0]
    ids["other"] = make_dispatched(runtime, 1, now=local(2026, 10, 23, 9, 0), caller_phone="13600002222")[0]
    return ids


def _numbers(page) -> list[str]:
    return page.locator("table tbody td:first-child a").all_inner_texts()


@pytest.mark.browser
def test_tickets_are_found_by_caller_place_and_filters(page, server, runtime, district):
    ids = _tickets(runtime)
    with runtime.db.read_session() as s:
        number = {k: s.get(Ticket, v).number for k, v in ids.items()}
    login(page, server, "agent")
    page.goto(f"{server}/tickets")

    def find(q: str = "", **selects: str) -> list[str]:
        page.fill("#q", q)
        for field, value in selects.items():
            if field.startswith("created"):
                page.fill(f"#{field}", value)
            else:
                page.select_option(f"#{field}", value)
        page.click("#ticket-search button[type=submit]")
        page.wait_for_load_state()
        return _numbers(page)

    assert find("5678") == [number["secret"], number["zhou"]]  # the phone's last digits
    shot(page, "tickets-search")
    assert find("133-1234-5678") == [number["zhou"]]  # the whole number, as it was said
    assert find("吴女士") == [number["wu"]]
    assert find("幸福里") == [number["zhou"]]
    expect(page.locator("tbody")).to_contain_text("13312345678")
    # A category takes its subtree: 城乡建设 holds 物业管理 and 违章搭建.
    assert find("", category="01") == [number["other"], number["secret"], number["wu"], number["zhou"]]
    assert find("", category="02") == [number["food"]]
    assert find("", category="", department="urban") == [number["wu"]]
    assert find("", department="", created_from="2026-10-20", created_to="2026-10-21") == [
        number["secret"],
        number["wu"],
    ]
    assert find("", created_from="", created_to="", state="archived") == []
    assert page.goto(f"{server}/tickets?created_from=2026-02-30").status == 422

    # A department searches its own tickets, and never finds a confidential one by its caller.
    page.context.clear_cookies()
    login(page, server, "housing_h")
    page.goto(f"{server}/tickets?q=5678")
    assert _numbers(page) == [number["zhou"]]
    page.goto(f"{server}/tickets?q=13955550001")
    assert _numbers(page) == []
    expect(page.locator("#department")).to_have_count(0)


def test_the_api_searches_by_caller_for_the_roles_that_see_callers(client, runtime, district):
    ids = _tickets(runtime)
    agent, housing, admin = (Api(client, district, u) for u in ("agent", "housing_h", "admin"))

    def found(api: Api, **params: str) -> list[int]:
        return [t["id"] for t in api.get("/tickets", **params)["items"]]

    assert found(agent, q="5678") == [ids["secret"], ids["zhou"]]
    assert found(agent, q="13955550001") == [ids["wu"]]
    assert found(agent, q="王五", category="02") == [ids["food"]]
    assert found(agent, created_from="2026-10-22", created_to="2026-10-22") == [ids["food"]]
    assert found(housing, q="5678") == [ids["zhou"]]
    assert found(housing, q="郑先生") == []
    assert found(housing, category="01") == [ids["other"], ids["secret"], ids["zhou"]]
    # An administrator reads tickets, not callers.
    assert found(admin, q="吴女士") == []
    assert found(admin, q="幸福里") == [ids["zhou"]]
    agent.get("/tickets", expect=422, category="nope")
