"""The ticket page's action forms in a real browser: limits said before submitting, a refused
form shown again as typed at the ticket's own address, and a return's reason chosen, never
preselected."""

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from hotline.models import Approval
from tests.conftest import local
from tests.test_pages_department import act, ticket
from tests.test_pages_smoke import login

SHOTS = Path(__file__).parent / "artifacts"

pytestmark = pytest.mark.browser

MONDAY = local(2026, 11, 2, 9, 0)


def open_form(page, event: str):
    form = page.locator(f"form[data-event='{event}']")
    page.locator(f"details:has(form[data-event='{event}'])").evaluate("d => d.open = true")
    return form


def test_an_extension_form_says_its_cap_and_keeps_its_input_when_refused(page, server, runtime, district):
    tid = ticket(runtime, MONDAY)
    act(runtime, tid, "sign", "housing_h", MONDAY + timedelta(minutes=30))
    runtime.clock.set(MONDAY + timedelta(hours=2))
    cap = runtime.workflows.get("default").limits.extension_cap_working_days
    login(page, server, "housing_h")
    page.goto(f"{server}/tickets/{tid}")
    form = open_form(page, "request_extension")
    days = form.locator("[name=days]")
    # The limit is on the form before anything is sent, as the workflow sets it.
    assert days.get_attribute("max") == str(cap)
    assert f"累计不超过 {cap} 个工作日" in form.inner_text()
    days.fill(str(cap + 10))
    assert days.evaluate("e => e.validity.rangeOverflow")
    reason = "需协调供电部门停电后施工，预计需要较长时间"
    form.locator("[name=reason]").fill(reason)

    # A page from before the cap was shown (no max): the server refuses, the page stays the
    # ticket's, the form open and as typed.
    days.evaluate("e => e.removeAttribute('max')")
    form.locator("button[type=submit]").click()
    page.wait_for_selector(".flash-error")
    assert f"延期累计不得超过 {cap} 个工作日" in page.inner_text(".flash-error")
    assert page.url == f"{server}/tickets/{tid}"
    form = page.locator("form[data-event='request_extension']")
    assert form.locator("xpath=..").evaluate("d => d.open")
    assert form.locator("[name=days]").input_value() == str(cap + 10)
    assert form.locator("[name=reason]").input_value() == reason
    page.screenshot(path=str(SHOTS / "ticket-form-refused.png"), full_page=True)

    # Corrected, it goes through.
    form.locator("[name=days]").fill("5")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**done=request_extension*")
    with runtime.db.read_session() as s:
        approval = s.exec(select(Approval).where(Approval.ticket_id == tid)).one()
        assert (approval.kind, approval.days) == ("extension", 5)


def test_a_return_reason_starts_empty_and_must_be_chosen(page, server, runtime, district):
    tid = ticket(runtime, MONDAY)
    runtime.clock.set(MONDAY + timedelta(hours=1))
    login(page, server, "housing_h")
    page.goto(f"{server}/tickets/{tid}")
    form = open_form(page, "return")
    code = form.locator("[name=reason_code]")
    assert code.input_value() == "" and code.get_attribute("required") is not None
    form.locator("[name=reason]").fill("该地址属于邻区管辖")
    form.locator("button[type=submit]").click()
    assert code.evaluate("e => e.validity.valueMissing")
    assert page.url == f"{server}/tickets/{tid}"

    # Without the browser's check, the server refuses too, and nothing is recorded.
    code.evaluate("e => e.removeAttribute('required')")
    form.locator("button[type=submit]").click()
    page.wait_for_selector(".flash-error")
    assert "请选择退单原因" in page.inner_text(".flash-error")
    with runtime.db.read_session() as s:
        assert s.exec(select(Approval).where(Approval.ticket_id == tid)).first() is None

    form = page.locator("form[data-event='return']")
    assert form.locator("[name=reason]").input_value() == "该地址属于邻区管辖"
    form.locator("[name=reason_code]").select_option("ownership")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**done=return*")
    with runtime.db.read_session() as s:
        approval = s.exec(select(Approval).where(Approval.ticket_id == tid)).one()
        assert (approval.kind, approval.reason_code) == ("return", "ownership")


def test_a_co_handled_ticket_says_whom_its_reply_waits_for(page, server, runtime, district):
    tid = ticket(runtime, MONDAY, co=["urban"])
    act(runtime, tid, "sign", "housing_h", MONDAY + timedelta(minutes=30))
    runtime.clock.set(MONDAY + timedelta(hours=3))
    login(page, server, "housing_h")
    page.goto(f"{server}/tickets/{tid}")
    waiting = page.locator("#co-waiting")
    assert "区城管局" in waiting.inner_text() and "11-02 09:00 起协办" in waiting.inner_text()
    assert "尚未签收" in waiting.inner_text()
    assert page.locator("form[data-event='reply']").count() == 0
    page.screenshot(path=str(SHOTS / "ticket-co-waiting.png"), full_page=True)

    act(runtime, tid, "sign", "urban_h", MONDAY + timedelta(hours=1))
    page.reload()
    assert "已签收" in page.inner_text("#co-waiting")
    act(runtime, tid, "reply", "urban_h", MONDAY + timedelta(hours=2), result="已清理占道摊点。")
    page.reload()
    assert page.locator("#co-waiting").count() == 0
    assert page.locator("form[data-event='reply']").count() == 1
    # The co-handler's own page never shows the main department's wait.
    page.context.clear_cookies()
    login(page, server, "urban_h")
    page.goto(f"{server}/tickets/{tid}")
    assert page.locator("#co-waiting").count() == 0
