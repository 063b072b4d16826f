"""What every page shares, in a real browser: the site icon, the header's district name, the
citizen's rating page as it first shows, and tables that keep a date on one line."""

from pathlib import Path
from urllib.request import urlopen

import pytest

from tests.conftest import local
from tests.helpers import Api, make_dispatched
from tests.test_evaluation import as_, link_token, replied_and_approved  # noqa: F401
from tests.test_pages_smoke import login

SHOTS = Path(__file__).parent / "artifacts"
pytestmark = pytest.mark.browser


def _shoot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def test_the_site_icon_is_served_where_browsers_look_for_it(page, server, district):
    with urlopen(f"{server}/favicon.ico") as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("image/svg+xml")
        assert b"<svg" in r.read()
    login(page, server, "admin")
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(f"{server}{icon}").status == 200


def test_the_users_creation_date_stays_on_one_line(page, server, district):
    page.set_viewport_size({"width": 1100, "height": 800})
    login(page, server, "admin")
    page.goto(f"{server}/admin/users")
    lines = page.locator("#users tbody tr td.nowrap").evaluate_all(
        """cells => cells.map(td => {
            const r = document.createRange(); r.selectNodeContents(td);
            return new Set(Array.from(r.getClientRects()).map(x => Math.round(x.top))).size;
        })"""
    )
    assert lines and set(lines) == {1}
    _shoot(page, "admin-users.png")


def test_the_rating_page_opens_with_nothing_chosen_or_focused(page, server, runtime, as_):  # noqa: F811
    tid = replied_and_approved(runtime, as_)
    url = as_("agent").post(f"/tickets/{tid}/rating-invitations", {}, expect=201)["url"]
    page.goto(f"{server}/rate/{link_token(url)}")
    assert page.locator("input[name=rating]").count() == 5
    assert page.evaluate("document.activeElement === document.body")
    assert page.locator("input[name=rating]:checked").count() == 0
    assert page.locator("[autofocus]").count() == 0
    _shoot(page, "citizen-rate.png")


def test_a_reply_sent_back_reaches_the_departments_notices_with_the_ticket_to_act_on(
    page, server, runtime, district, client
):
    (tid,) = make_dispatched(runtime, 1, now=local(2026, 11, 2, 9, 0))
    handler = Api(client, district, "housing_h")
    handler.fire(tid, "sign")
    handler.fire(tid, "reply", result="已维修")
    Api(client, district, "supervisor").fire(tid, "reject_reply", reason="未写明维修时间")
    login(page, server, "housing_l")
    page.goto(f"{server}/notifications")
    row = page.locator("tbody tr", has_text="审核退回")
    assert "未写明维修时间" in row.inner_text()
    assert page.locator("tbody tr", has_text="转本单位办理").count() == 1  # the dispatch, too
    _shoot(page, "notices-decisions.png")
    row.locator(f"a[href='/tickets/{tid}']").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/tickets/{tid}")


def test_the_workflow_diagram_labels_are_legible_and_never_overlap(page, server, district):
    login(page, server, "admin")
    page.goto(f"{server}/admin/workflows")
    boxes = page.locator(".wf-diagram svg").first.evaluate(
        """svg => Array.from(svg.querySelectorAll('text')).map(t => {
            const b = t.getBBox();
            return {text: t.textContent, size: t.getBoundingClientRect().height,
                    x0: b.x, y0: b.y, x1: b.x + b.width, y1: b.y + b.height};
        })"""
    )
    assert len(boxes) > 20 and min(b["size"] for b in boxes) >= 12  # on screen, not only in the file
    clashes = [
        (a["text"], b["text"])
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if a["x0"] < b["x1"] - 1 and b["x0"] < a["x1"] - 1 and a["y0"] < b["y1"] - 1 and b["y0"] < a["y1"] - 1
    ]
    assert clashes == []
    page.locator(".wf-diagram").first.screenshot(path=str(SHOTS / "workflow-diagram.png"))
