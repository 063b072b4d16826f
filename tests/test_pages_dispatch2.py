"""Second-level dispatch (二级派单) in a real browser: the street office passes a ticket to one
of its communities, the community signs from its inbox and replies, the street reviews the
reply (sends it back once, then accepts it) and replies to the centre."""

from pathlib import Path

import pytest

from tests.communities import add_communities
from tests.conftest import local
from tests.helpers import make_dispatched
from tests.test_pages_kb import PHONE_VIEWPORT
from tests.test_pages_smoke import fire_on_page, login

SHOTS = Path(__file__).parent / "artifacts"

pytestmark = pytest.mark.browser


def as_user(page, server: str, username: str) -> None:
    """Sign in afresh as another user."""
    page.context.clear_cookies()
    login(page, server, username)


@pytest.fixture
def passed(runtime, district):
    add_communities(runtime, district)
    (tid,) = make_dispatched(
        runtime,
        1,
        now=local(2026, 11, 2, 9, 0),
        department="street_a",
        title="东湖小区楼道堆放杂物堵塞消防通道",
        street="东城街道",
    )
    return tid


def test_a_community_replies_and_the_street_reviews(page, server, passed, clock):
    tid = passed
    clock.set(local(2026, 11, 2, 10, 0))
    # The street office signs and passes the ticket to one of its own communities.
    as_user(page, server, "street_a_h")
    page.goto(f"{server}/tickets/{tid}")
    fire_on_page(page, "sign")
    options = page.locator("form[data-event='sub_dispatch'] select[name=community] option").all_text_contents()
    assert options[1:] == ["东湖社区居委会", "东岸社区居委会"]  # not another street's 西苑社区
    fire_on_page(page, "sub_dispatch", community="east_1", message="请网格员上门核实")
    page.wait_for_url(f"**/tickets/{tid}?done=sub_dispatch")
    assert "待社区签收" in page.inner_text("main")
    assert "东湖社区居委会" in page.inner_text("#community-part")
    page.goto(f"{server}/department/inbox?tab=community")
    assert page.locator(f"#inbox-table tr[data-ticket='{tid}']").count() == 1

    # The community sees it in its inbox, signs from the list and replies on the ticket page.
    as_user(page, server, "east_1_h")
    assert page.url.endswith("/department/inbox")
    assert "街道派至本社区的工单" in page.inner_text(".page-head")
    row = page.locator(f"#inbox-table tr[data-ticket='{tid}']")
    assert "签收" in row.inner_text()
    # A community worker on a phone: the inbox keeps to the screen, its sign button within reach.
    page.set_viewport_size(PHONE_VIEWPORT)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "dispatch2-community-inbox-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_VIEWPORT["width"]
    row.locator("button[type=submit]").scroll_into_view_if_needed()
    assert row.locator("button[type=submit]").is_visible()
    row.locator("button[type=submit]").click()
    page.wait_for_url("**signed=*")
    page.goto(f"{server}/tickets/{tid}")
    assert "社区办理中" in page.inner_text("main")
    assert [f.get_attribute("data-event") for f in page.locator("form[data-event]").all()] == [
        "sub_return",
        "sub_reply",
    ]
    page.screenshot(path=str(SHOTS / "dispatch2-community-ticket-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_VIEWPORT["width"]
    fire_on_page(page, "sub_reply", result="网格员已上门，杂物已清理")
    page.wait_for_url(f"**/tickets/{tid}?done=sub_reply")
    assert "社区已回复" in page.inner_text("main")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Another community of the same street does not see it.
    as_user(page, server, "east_2_h")
    response = page.goto(f"{server}/tickets/{tid}")
    assert response.status == 404

    # The street reviews: the reply is sent back once, then accepted; then it replies to the centre.
    as_user(page, server, "street_a_h")
    page.goto(f"{server}/tickets/{tid}")
    assert "网格员已上门，杂物已清理" in page.inner_text("#community-reply")
    fire_on_page(page, "reject_sub_reply", reason="请说明消防通道是否已畅通")
    page.wait_for_url(f"**/tickets/{tid}?done=reject_sub_reply")
    as_user(page, server, "east_1_h")
    page.goto(f"{server}/tickets/{tid}")
    fire_on_page(page, "sub_reply", result="杂物已清理，消防通道已畅通，已张贴告示")
    page.wait_for_url(f"**/tickets/{tid}?done=sub_reply")
    as_user(page, server, "street_a_h")
    page.goto(f"{server}/tickets/{tid}")
    assert "消防通道已畅通" in page.inner_text("#community-reply")
    page.set_viewport_size({"width": 1280, "height": 900})
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "dispatch2-street-review.png"), full_page=True)
    fire_on_page(page, "approve_sub_reply")
    page.wait_for_url(f"**/tickets/{tid}?done=approve_sub_reply")
    assert "办理中" in page.inner_text("main")
    fire_on_page(page, "reply", result="经东湖社区核实，杂物已清理，消防通道已畅通")
    page.wait_for_url(f"**/tickets/{tid}?done=reply")
    assert "待审核" in page.inner_text("main")

    # The history tells the whole second level.
    history = page.inner_text("main")
    for label in ("派至社区", "社区签收", "社区回复", "街道审核退回", "街道审核通过", "办结回复"):
        assert label in history


def test_the_street_recalls_the_ticket_from_its_community(page, server, passed, clock):
    tid = passed
    clock.set(local(2026, 11, 2, 10, 0))
    as_user(page, server, "street_a_h")
    page.goto(f"{server}/tickets/{tid}")
    fire_on_page(page, "sign")
    fire_on_page(page, "sub_dispatch", community="east_1")
    page.wait_for_url(f"**/tickets/{tid}?done=sub_dispatch")
    # The street takes it back before the community replies, saying why.
    assert (
        page.locator(
            "form[data-event='sub_recall'] textarea[name=reason], form[data-event='sub_recall'] input[name=reason]"
        ).count()
        == 1
    )
    fire_on_page(page, "sub_recall", reason="情况紧急，街道直接派员处理")
    page.wait_for_url(f"**/tickets/{tid}?done=sub_recall")
    assert "办理中" in page.inner_text("main") and "街道收回" in page.inner_text("main")
    assert page.locator("form[data-event='sub_dispatch']").count() == 1  # it may pass it down again
    # The community no longer has it.
    as_user(page, server, "east_1_h")
    assert page.locator(f"#inbox-table tr[data-ticket='{tid}']").count() == 0
    assert page.goto(f"{server}/tickets/{tid}").status == 404
