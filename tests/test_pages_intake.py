"""The intake form: category search by meaning, leaves first; the Enter path through the fields;
control characters in pasted text."""

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from hotline.directory import create_category, create_place
from hotline.models import Ticket, TicketEvent
from tests.test_pages_agent import PLACES, choose_place, shot, ticket_id_from_flash
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


@pytest.mark.browser
def test_a_slow_answer_overtaken_by_typing_leaves_no_errors_in_the_console(page, server, runtime, district, leaves):
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page, server, "agent")
    held = []  # the category suggestions' answers, held back as on a slow network
    page.route("**/agent/intake/categories*", lambda route: held.append(route))
    page.locator("#category_q").press_sequentially("物业", delay=20)
    page.wait_for_timeout(500)  # its request is under way, unanswered
    page.locator("#category_q").press_sequentially("服务", delay=20)
    page.wait_for_timeout(500)  # the next one waits its turn rather than aborting the first
    for _ in range(6):
        while held:
            held.pop(0).continue_()
        page.wait_for_timeout(250)
    expect(page.locator("#category-suggest .suggest-list")).to_have_attribute("data-q", "物业服务")
    assert errors == []


@pytest.mark.browser
def test_control_characters_pasted_into_a_field_are_dropped_with_a_note(page, server, runtime, district):
    """Text from a spreadsheet or a word processor can carry a vertical tab for a line break
    and other control characters, which the server refuses; the fields drop them as they
    arrive, so the form goes through and nothing typed is lost."""
    login(page, server, "agent")
    page.fill("#caller_phone", "13600004444")
    page.fill("#caller_name", "王\x0c女士")
    expect(page.locator("#caller_name")).to_have_value("王 女士")
    page.fill("#content", "楼道灯坏了\x0b已经一周\x07没人修")
    expect(page.locator("#content")).to_have_value("楼道灯坏了\n已经一周没人修")
    expect(page.locator("#content + .field-note")).to_have_text("已去掉粘贴内容中的不可见控制字符，请核对")
    # Pasted in the middle, the caret stays after what was pasted (setting the value would
    # send it to the end): typing on goes there.
    page.press("#content", "Control+Home")
    page.press("#content", "ArrowRight")
    page.keyboard.insert_text("\x0c")
    page.keyboard.type("道")
    expect(page.locator("#content")).to_have_value("楼\n道道灯坏了\n已经一周没人修")
    page.fill("#content", "楼道灯坏了\x0b已经一周\x07没人修。")
    # Text put in by a script, without an input event, is cleaned as the form is sent.
    page.keyboard.press("Alt+2")
    page.eval_on_selector("#answer", "el => { el.value = '已告知\\u000b报修电话' }")
    page.click("#go-answer")
    page.wait_for_url("**/agent/intake?done=answer*")
    tid = ticket_id_from_flash(page)
    with runtime.db.read_session() as s:
        ticket = s.get(Ticket, tid)
        # A text area sends its line breaks as CR LF.
        assert ticket.content == "楼道灯坏了\r\n已经一周没人修。"
        assert ticket.caller_name == "王 女士"
        answered = s.exec(select(TicketEvent).where(TicketEvent.ticket_id == tid, TicketEvent.event == "answer")).one()
        assert answered.details["answer"] == "已告知\r\n报修电话", answered.details
