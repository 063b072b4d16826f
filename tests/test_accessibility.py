"""The citizens' pages for everyone (适老化、无障碍): the knowledge base, the assistant, online
filing and its progress and the rating page, in the normal and the large-text high-contrast
mode, on a phone, checked by axe-core (vendored from npm: tests/vendor/axe-core) in Chromium
with no serious or critical violation; and the rating page used with the keyboard alone."""

from pathlib import Path

import pytest
from sqlmodel import select

from hotline.models import Callback
from tests.helpers import Api
from tests.test_evaluation import link_token, replied_and_approved
from tests.test_pages_kb import PHONE_VIEWPORT, SHOTS, ids, kb  # noqa: F401 (a fixture)

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
# The standards axe checks: WCAG 2.1 A and AA, the level GB/T 37668 follows.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture
def phone(browser):
    # axe is injected as a script of the test's own: the pages' policy would refuse it.
    context = browser.new_context(viewport=PHONE_VIEWPORT, locale="zh-CN", is_mobile=True, bypass_csp=True)
    pg = context.new_page()
    pg.set_default_timeout(10000)
    yield pg
    context.close()


def violations(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        "async tags => (await axe.run(document, {runOnly: {type: 'tag', values: tags}})).violations",
        TAGS,
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


@pytest.fixture
def rating_link(runtime, client, district):
    tid = replied_and_approved(runtime, lambda name: Api(client, district, name))
    sent = Api(client, district, "agent").post(f"/tickets/{tid}/rating-invitations", {}, expect=201)
    return f"/rate/{link_token(sent['url'])}"


def test_the_citizens_pages_have_no_serious_violation(kb, server, phone, runtime, rating_link):  # noqa: F811
    card = ids(runtime)["社会保障卡补办"]
    pages = ["/kb", "/kb?q=社保卡丢了", f"/kb/{card}", "/kb/999999", "/assistant", "/file", "/progress", rating_link]
    found = {}
    for mode in ("", "elder"):
        for path in pages:
            address = f"{server}{path}{'&' if '?' in path else '?'}mode={mode}" if mode else f"{server}{path}"
            phone.goto(address)
            if bad := violations(phone):
                found[address] = bad
    assert not found, found


def test_axe_finds_what_it_should(phone, server):
    """The check itself can fail: a field without a label and grey-on-white text are found."""
    phone.goto(f"{server}/kb")
    phone.set_content(
        '<html lang="zh-CN"><title>t</title><main><input type="text">'
        '<p style="color:#ddd;background:#fff">看不清的字</p></main></html>'
    )
    found = " ".join(violations(phone))
    assert "label" in found and "color-contrast" in found, found


def test_a_citizen_rates_with_the_keyboard_alone_in_the_large_text_mode(server, phone, rating_link, runtime):
    SHOTS.mkdir(parents=True, exist_ok=True)
    phone.goto(f"{server}{rating_link}")
    phone.screenshot(path=str(SHOTS / "rate.png"), full_page=True)
    # The switch is reached by the keyboard and pressed with Enter: the page comes back large.
    for _ in range(12):
        phone.keyboard.press("Tab")
        if phone.evaluate("document.activeElement.classList.contains('mode-toggle')"):
            break
    else:
        pytest.fail("the large-text switch is not reachable by Tab")
    phone.keyboard.press("Enter")
    phone.wait_for_function("() => document.documentElement.classList.contains('elder')")
    assert phone.evaluate("getComputedStyle(document.documentElement).fontSize") == "22px"
    assert phone.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(0, 0, 0)"
    assert not violations(phone)
    phone.screenshot(path=str(SHOTS / "rate-elder.png"), full_page=True)

    # Tab to the first choice of each group, arrows to move within it, Tab on, Enter to send.
    phone.get_by_role("radio", name="满意", exact=True).focus()
    phone.keyboard.press("ArrowDown")  # 基本满意
    phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.value") == "yes"
    phone.keyboard.press("Space")
    phone.keyboard.press("Tab")
    phone.keyboard.type("谢谢")
    phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.textContent") == "提交评价"
    phone.keyboard.press("Enter")
    phone.get_by_role("status").get_by_text("感谢您的评价").wait_for()
    phone.screenshot(path=str(SHOTS / "rate-thanks-elder.png"), full_page=True)
    assert phone.evaluate("document.documentElement.classList.contains('elder')")
    assert not violations(phone)
    with runtime.db.read_session() as s:
        (callback,) = s.exec(select(Callback)).all()
    assert (callback.rating, callback.solved, callback.comment) == (3, True, "谢谢")
