"""The shared pages in a real browser: sign-in, a ticket page, the search."""

import re
from pathlib import Path

import pytest

from hotline.web.forms import safe_path
from tests.conftest import local
from tests.helpers import PASSWORD, make_dispatched, sign_in

SHOTS = Path(__file__).parent / "artifacts"


def login(page, server: str, username: str) -> None:
    page.goto(f"{server}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    # The form's answer is a navigation: waiting for it, not for the current page's load
    # state, keeps a loaded machine's next goto from racing the session cookie. The post's
    # own answer is checked, so a refused sign-in fails here, saying why, not on a later page.
    with (
        page.expect_navigation(),
        page.expect_response(lambda r: r.request.method == "POST" and r.url.split("?")[0].endswith("/login")) as answer,
    ):
        page.click("button[type=submit]")
    response = answer.value
    if response.status != 303:
        alert = page.locator("[role=alert]")
        said = alert.first.inner_text() if alert.count() else ""
        raise AssertionError(f"signing in as {username} was answered {response.status}: {said}")
    page.wait_for_load_state()


def fire_on_page(page, event: str, **fields: str) -> None:
    """Open the event's form on a ticket page, fill it in and submit it."""
    form = f"form[data-event='{event}']"
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


@pytest.mark.parametrize(
    "target",
    [
        "//evil.com",  # scheme-relative: another host
        "/\\evil.com",  # a browser reads the backslash as a slash: //evil.com
        "\\\\evil.com",
        "/\\/evil.com",
        "/tickets/1\\..\\..\\evil.com",  # any backslash at all
        "https://evil.com/",  # a scheme
        "javascript:alert(1)",
        "/\t/evil.com",  # a browser drops tabs and newlines: //evil.com
        "/\n/evil.com",
        "/\x00/evil.com",  # control characters
        "/\x7f",
        "/%5Cevil.com",  # percent-encoded backslash
        "/%5cevil.com",
        "/%2F/evil.com",  # percent-encoded slash: //evil.com once decoded
        "/%2f%2fevil.com",
        "/%255Cevil.com",  # encoded twice
        "/%09/evil.com",  # an encoded tab
        "/%0d%0aLocation:%20https://evil.com",  # an encoded line break (header splitting)
        "evil.com",  # not a path
        " /tickets",
        "",
        None,
    ],
)
def test_a_redirect_target_that_could_leave_the_site_is_refused(target):
    assert safe_path(target) is None


@pytest.mark.parametrize(
    "target", ["/", "/tickets/3?done=sign", "/supervisor/dashboard?page=2&level=red", "/tickets?q=%E6%BC%8F%E6%B0%B4"]
)
def test_a_path_of_this_site_is_a_redirect_target(target):
    assert safe_path(target) == target


def _sign_in(client, username: str, **extra: str):
    client.cookies.clear()
    return sign_in(client, username, PASSWORD, **extra)


def test_sign_in_and_a_ticket_form_never_send_the_browser_to_another_site(client, runtime, district):
    r = _sign_in(client, "housing_h", next="/\\evil.com")
    assert r.status_code == 303 and r.headers["location"] == "/department/inbox"
    r = client.get("/login", params={"next": "/%5Cevil.com"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert (
        _sign_in(client, "housing_h", next="/tickets?state=dispatched").headers["location"]
        == "/tickets?state=dispatched"
    )
    (tid,) = make_dispatched(runtime, 1, now=local(2026, 11, 2, 9, 0))
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get(f"/tickets/{tid}").text).group(1)
    r = client.post(
        f"/tickets/{tid}/events/sign", data={"csrf_token": csrf, "back": "/\\evil.com"}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == f"/tickets/{tid}?done=sign"
