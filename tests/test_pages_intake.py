"""The intake form: category search by meaning, leaves first; the Enter path through the fields."""

import pytest
from playwright.sync_api import expect

from hotline.directory import create_category, create_place
from tests.test_pages_agent import PLACES, choose_place, shot
from tests.test_pages_smoke import login


@pytest.fixture
def streets(runtime, district):
    with runtime.db.session() as s:
        for street, communities in PLACES.items():
            for community in communities:
                create_place(s, street=street, community=community)


@pytest.fixture
def leaves(runtime, district):
    """物业管理 with two leaves under it, and 噪声 categories under 环境保护."""
    with runtime.db.session() as s:
        create_category(s, runtime, code="010101", name="物业服务", parent="0101")
        create_category(s, runtime, code="010102", name="物业收费", parent="0101")
        create_category(s, runtime, code="04", name="环境保护")
        create_category(s, runtime, code="0401", name="噪声污染", parent="04")
        create_category(s, runtime, code="040101", name="施工噪声", parent="0401")


def suggestions(page, text: str) -> list[str]:
    page.fill("#category_q", text)
    items = page.locator("#category-suggest .suggest-item")
    expect(items.first).to_be_visible()
    expect(page.locator("#category-suggest .suggest-list")).to_have_attribute("data-q", text)
    return [item.get_attribute("data-code") for item in items.all()]


@pytest.mark.browser
def test_category_search_knows_synonyms_and_puts_leaves_first(page, server, runtime, district, leaves):
    login(page, server, "agent")
    # 噪音 is what callers say; the category says 噪声.
    assert suggestions(page, "噪音")[0] == "040101"
    # 物业: the leaves before their parent, and Enter takes a leaf, never the parent.
    codes = suggestions(page, "物业")
    assert codes[:2] == ["010101", "010102"] and codes.index("0101") > 1
    expect(page.locator("#category-suggest .suggest-item.active")).to_have_attribute("data-code", "010101")
    expect(page.locator("#category-suggest .suggest-item[data-code='0101'] .si-tag")).to_have_text("大类")
    shot(page, "intake-category-leaves")
    page.press("#category_q", "Enter")
    expect(page.locator("#category")).to_have_value("010101")
    # A parent is still taken where its code is typed.
    suggestions(page, "0101")
    page.press("#category_q", "Enter")
    expect(page.locator("#category")).to_have_value("0101")


@pytest.mark.browser
def test_enter_walks_the_fields_and_skips_the_switches(page, server, runtime, district, streets):
    login(page, server, "agent")
    page.fill("#caller_name", "李女士")
    page.press("#caller_name", "Enter")
    expect(page.locator("input[name=type]:checked")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("input[name=urgency]:checked")).to_be_focused()
    page.keyboard.press("Enter")
    # From 来电人 to 问题分类: one Enter for each of the two fields between them, and one to arrive.
    expect(page.locator("#category_q")).to_be_focused()
    choose_place(page, "西城街道", "和平社区", "和平小区3栋")
    page.press("#address", "Enter")
    expect(page.locator("#content")).to_be_focused()  # not the 需要答复 switch
    page.keyboard.type(" 电梯停运")
    expect(page.locator("input[name=reply_wanted]")).to_be_checked()
    expect(page.locator("#content")).to_have_value(" 电梯停运")
    # A switch reached by Tab hands Enter on to the next field.
    page.focus("input[name=anonymous]")
    page.keyboard.press("Enter")
    expect(page.locator("input[name=type]:checked")).to_be_focused()
