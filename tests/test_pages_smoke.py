"""The shared pages in a real browser: sign-in, a ticket page, the search."""

from pathlib import Path

import pytest

from tests.conftest import local
from tests.helpers import PASSWORD, make_dispatched

SHOTS = Path(__file__).parent / "artifacts"


def login(page, server: str, username: str) -> None:
    page.goto(f"{server}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def fire_on_page(page, event: str, **fields: str) -> None:
    """Open the event's form on a ticket page, fill it in and submit it."""
    form = f"form[action$='/events/{event}']"
    page.locator(f"details:has({form})").evaluate("d => d.open = true")
    for name, value in fields.items():
        field = page.locator(f"{form} [name={name}]")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.click(f"{form} button[type=submit]")
    page.wait_for_load_state()


@pytest.mark.browser
def test_handler_signs_on_the_ticket_page(page, server, runtime, district):
    (tid,) = make_dispatched(runtime, 1, now=local(2026, 11, 2, 9, 0))
    login(page, server, "housing_h")
    page.goto(f"{server}/tickets/{tid}")
    assert "待签收" in page.inner_text("main")
    fire_on_page(page, "sign")
    page.wait_for_url(f"**/tickets/{tid}?done=sign")
    assert "已完成：签收" in page.inner_text(".flash-ok")
    assert "办理中" in page.inner_text("main")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "ticket-page.png"), full_page=True)
