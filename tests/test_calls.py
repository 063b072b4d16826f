"""The caller on screen (来电弹屏): the telephone system posts a call, the agent's open
workbench shows the caller within a second, and the ticket logged keeps the call."""

import httpx
import pytest
from playwright.sync_api import expect
from sqlmodel import select

from hotline.models import Call, Ticket, TicketEvent
from tests.helpers import Api, add_accounts, sign_in
from tests.test_pages_agent import choose_place, pick_category, places  # noqa: F401  (a fixture)
from tests.test_pages_kb import PHONE_VIEWPORT
from tests.test_pages_smoke import SHOTS, login

PHONE = "13912345678"


@pytest.fixture
def telephony(runtime, district):
    """The telephone system's account, another platform's, and a second agent."""
    return add_accounts(
        runtime,
        district,
        (("pbx", "integration", "telephony"), ("city", "integration", "city12345"), ("agent2", "agent", None)),
    )


def call(**fields) -> dict:
    return {
        "call_id": "C-0001",
        "caller_phone": PHONE,
        "agent": "agent",
        "started_at": "2026-11-02T09:00:00+08:00",
        **fields,
    }


def test_a_call_is_recorded_once_for_its_agent(client, telephony):
    pbx = Api(client, telephony, "pbx")
    first = pbx.post("/calls", call(dialled="12315"), 201)
    assert first["caller_phone"] == PHONE and first["dialled"] == "12315" and first["ticket"] is None
    assert pbx.post("/calls", call(), 200)["id"] == first["id"]  # the same call id again


def test_the_callers_number_is_sealed_at_rest(client, telephony, runtime):
    Api(client, telephony, "pbx").post("/calls", call(), 201)
    with runtime.db.engine.connect() as conn:
        (stored,) = conn.exec_driver_sql("SELECT caller_phone FROM calls").scalars().all()
    assert stored.startswith("e1.") and PHONE not in stored


def test_only_the_telephone_systems_account_reports_calls(client, telephony):
    Api(client, telephony, "city").post("/calls", call(), 403)
    Api(client, telephony, "agent").post("/calls", call(), 403)
    assert client.post("/api/v1/calls", json=call()).status_code == 401


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"agent": "nobody"}, "agent"),
        ({"agent": "housing_h"}, "agent"),  # rings agents only
        ({"caller_phone": "abc"}, "caller_phone"),
        ({"started_at": "2026-11-02T09:00:00"}, "started_at"),  # no time zone
        ({"dialled": "12a"}, "dialled"),
        ({"extra": 1}, "extra"),
    ],
)
def test_a_bad_call_is_422_naming_the_field(client, telephony, fields, field):
    r = client.post("/api/v1/calls", json=call(**fields), headers=telephony.headers("pbx"))
    assert r.status_code == 422 and r.json()["field"] == field, r.text


def test_the_callers_history_shows_open_tickets_repeats_and_the_last_rating(client, telephony, clock):
    agent = Api(client, telephony, "agent")
    old = agent.create(caller_phone=PHONE, content="去年的诉求")["id"]
    clock.advance(days=40)
    recent = agent.create(caller_phone=PHONE, content="这个月又坏了")["id"]
    agent.fire(recent, "dispatch", department="housing")
    agent.create(caller_phone="13800000000", content="别人的诉求")
    found = agent.get(f"/callers/{PHONE}")
    assert [t["id"] for t in found["tickets"]] == [recent, old]  # newest first
    assert [t["repeat"] for t in found["tickets"]] == [True, False]
    assert found["open"] == 2 and found["repeats"] == 1 and found["last_rating"] is None
    Api(client, telephony, "housing_h").get(f"/callers/{PHONE}", 403)
    Api(client, telephony, "pbx").get(f"/callers/{PHONE}", 403)
    agent.get("/callers/not-a-phone", 422)


def test_an_agent_reads_only_the_cards_of_its_own_calls(client, telephony):
    cid = Api(client, telephony, "pbx").post("/calls", call(), 201)["id"]
    sign_in(client, "agent2")
    assert client.get(f"/agent/calls/{cid}", follow_redirects=False).status_code == 404
    client.cookies.clear()
    sign_in(client, "agent")
    card = client.get(f"/agent/calls/{cid}")
    assert card.status_code == 200 and PHONE in card.text


@pytest.mark.browser
@pytest.mark.usefixtures("places")
def test_the_workbench_shows_the_caller_within_a_second_and_the_ticket_keeps_the_call(
    browser, page, server, runtime, telephony
):
    login(page, server, "agent")
    page.goto(f"{server}/agent/intake")
    other = browser.new_context(locale="zh-CN").new_page()  # another agent's workbench
    login(other, server, "agent2")
    other.goto(f"{server}/agent/intake")
    page.wait_for_timeout(500)  # both streams open
    r = httpx.post(f"{server}/api/v1/calls", json=call(dialled="12345"), headers=telephony.headers("pbx"))
    assert r.status_code == 201
    # Shown within a second of the telephone system's post.
    expect(page.locator("#call-card")).to_contain_text(PHONE, timeout=1000)
    expect(page.locator("#caller_phone")).to_have_value(PHONE)
    assert page.locator("#call").input_value() == str(r.json()["id"])
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "workbench-call.png"), full_page=True)
    # On a phone-sized window the caller's card stays readable within the screen's width.
    page.set_viewport_size(PHONE_VIEWPORT)
    expect(page.locator("#call-card")).to_be_visible()
    page.screenshot(path=str(SHOTS / "workbench-call-phone.png"), full_page=True)
    assert page.locator("#call-card").evaluate("e => e.getBoundingClientRect().right") <= PHONE_VIEWPORT["width"]
    page.set_viewport_size({"width": 1280, "height": 900})
    other.wait_for_timeout(700)
    expect(other.locator("#call-card")).to_be_hidden()  # a call to one agent only
    other.context.close()

    page.check("#type-complaint")
    pick_category(page, "物业", "0101")
    choose_place(page, "西城街道", "光明社区", "光明路12号")
    page.fill("#content", "来电反映电梯故障")
    page.click("#go-dispatch")
    page.wait_for_url("**/agent/intake?done=dispatch*")
    with runtime.db.read_session() as s:
        ticket = s.exec(select(Ticket).where(Ticket.content == "来电反映电梯故障")).one()
        assert ticket.caller_phone == PHONE
        assert s.exec(select(Call)).one().ticket_id == ticket.id
        created = s.exec(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.event == "create")
        ).one()
        assert created.details["call_id"] == "C-0001"
