"""The citizens' pages, /kb and /assistant, on SQLite and PostgreSQL: only published public
articles valid today, the embedded layout, the flag form, the assistant without JavaScript
(the answer, the hand-over form, the ticket's number), the large-text mode; and a citizen
using the assistant on a phone in Chromium."""

import html
import os
import re
from pathlib import Path

import pytest
from sqlmodel import select

from hotline.models import Article, ArticleFlag, Message, Ticket
from tests.helpers import Api
from tests.test_assistant import ARTICLES, HIDDEN, article

NONCE = re.compile(r'name="nonce" value="([^"]+)"')
PHONE_VIEWPORT = {"width": 390, "height": 844}
# Where the browser test leaves its screenshots (HOTLINE_SCREENSHOTS to keep them elsewhere).
SHOTS = Path(os.environ.get("HOTLINE_SCREENSHOTS", "/tmp/hotline-screenshots"))


@pytest.fixture
def kb(client, district):
    editor = Api(client, district, "editor")
    rows = [
        *ARTICLES,
        article(
            "a-xss",
            "脚本测试页",
            '<script>alert("x")</script> [点我](javascript:alert(1)) 测试正文',
            category="其他/测试",
        ),
    ]
    assert editor.post("/knowledge/import", {"articles": rows})["errors"] == []
    return editor


def ids(runtime) -> dict[str, int]:
    with runtime.db.read_session() as s:
        return {a.title: a.id for a in s.exec(select(Article))}


def nonce_of(page: str) -> str:
    return html.unescape(NONCE.search(page).group(1))


def test_the_pages_show_only_published_public_articles_valid_today(kb, client, runtime):
    titles = ids(runtime)
    for path in ("/kb", "/kb?q=养犬登记", "/kb?q=老年人乘车卡", "/kb?category=城市管理", "/kb?category=交通出行"):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=300", path
        assert not any(title in r.text for title in HIDDEN), path
        assert "城市管理 <span" not in r.text and "交通出行 <span" not in r.text  # no category of hidden ones
    for title in HIDDEN:
        r = client.get(f"/kb/{titles[title]}")
        assert r.status_code == 404 and "该内容不存在或已下线" in r.text and title not in r.text
        assert r.headers["cache-control"] == "no-store"
    assert client.get("/kb/999999").status_code == 404
    for category in ("城市管理", "交通出行"):
        assert "（共 0 条）" in client.get("/kb", params={"category": category}).text
    home = client.get("/kb").text
    assert "城市管理" not in home and "交通出行" not in home
    assert '<html lang="zh-CN"' in home and "社会保障" in home and "社会保障卡补办" in home
    found = client.get("/kb", params={"q": "社保卡丢了"}).text
    assert f'href="/kb/{titles["社会保障卡补办"]}"' in found and "<mark>" in found


def test_browsing_by_category_and_pages(kb, client, runtime):
    page = client.get("/kb", params={"category": "社会保障"}).text
    assert "社保卡" in page and "社会保障卡补办" in page and "企业注销登记办事指南" not in page
    assert 'aria-current="page">社会保障<' in page
    rows = [
        article(f"p-{i}", f"社保常见问题{i:02d}", "社保卡的常见问题。", category="社会保障/常见") for i in range(12)
    ]
    kb.post("/knowledge/import", {"articles": rows})
    first = client.get("/kb", params={"category": "社会保障/常见"}).text
    assert "第 1 / 2 页" in first and "下一页" in first and first.count('class="card result"') == 10
    second = client.get("/kb", params={"category": "社会保障/常见", "page": 2}).text
    assert second.count('class="card result"') == 2 and "上一页" in second
    # The pages of a kind keep the kind.
    kinded = client.get("/kb", params={"category": "社会保障/常见", "kind": "办事指南"}).text
    following = html.unescape(re.search(r'href="(/kb\?[^"]*)">下一页', kinded).group(1))
    assert "kind=%E5%8A%9E%E4%BA%8B%E6%8C%87%E5%8D%97" in following and "page=2" in following
    # A page past the last is the last, as on the staff's pages (not an empty list under a count).
    past = client.get("/kb", params={"category": "社会保障/常见", "page": 999}).text
    assert "第 2 / 2 页" in past and past.count('class="card result"') == 2 and "这里还没有内容" not in past
    everything = client.get("/kb", params={"page": 999}).text
    assert 'class="card result"' in everything and "这里还没有内容" not in everything


def test_a_malformed_address_names_its_part_in_chinese(kb, client):
    r = client.get("/kb/abc")
    assert r.status_code == 422 and "输入有误：条目号（应为整数）" in r.text and "article_id" not in r.text


def test_an_article_page(kb, client, runtime):
    card = ids(runtime)["社会保障卡补办"]
    page = client.get(f"/kb/{card}").text
    assert '<h1 id="article-title">社会保障卡补办</h1>' in page
    assert "区人社局" in page and "办事指南" in page and "长期有效" in page
    assert "<h2>所需材料</h2>" in page and "这条回答有帮助吗？" in page
    xss = client.get(f"/kb/{ids(runtime)['脚本测试页']}").text
    assert "<script>alert" not in xss and "&lt;script&gt;" in xss and 'href="javascript:' not in xss


def test_a_question_too_long_or_empty_on_the_search_page(kb, client):
    r = client.get("/kb", params={"q": "问" * 201})
    assert r.status_code == 422 and "不要超过200个字" in r.text
    assert client.get("/kb", params={"q": "  "}).status_code == 200  # nothing asked: the categories


def test_the_embedded_layout_has_no_header_and_keeps_itself(kb, client, runtime):
    card = ids(runtime)["社会保障卡补办"]
    page = client.get("/kb", params={"embed": "1"}).text
    assert 'class="site"' not in page and "site-footer" not in page and 'class=" embed"' in page
    assert f'href="/kb/{card}?embed=1"' in page
    full = client.get("/kb").text
    assert 'class="site"' in full and "site-footer" in full


def test_a_citizen_flags_an_article(kb, client, runtime, district):
    card = ids(runtime)["社会保障卡补办"]
    nonce = nonce_of(client.get(f"/kb/{card}").text)
    r = client.post(f"/kb/{card}/flags", data={"nonce": nonce, "reason": "outdated", "comment": "地址变了"})
    assert r.status_code == 200 and "感谢您的反馈" in r.text and r.headers["cache-control"] == "no-store"
    flagged = Api(client, district, "editor").get("/knowledge/flags")["articles"]
    assert flagged[0]["id"] == card and flagged[0]["flags"][0]["source"] == "citizen"
    assert flagged[0]["flags"][0]["comment"] == "地址变了"
    # A form from elsewhere (no nonce, or another article's) is refused; so is an unknown reason.
    other = ids(runtime)["企业注销登记办事指南"]
    for data, status in (
        ({"reason": "wrong"}, 403),
        ({"nonce": nonce_of(client.get(f"/kb/{other}").text), "reason": "wrong"}, 403),
        ({"nonce": nonce, "reason": "boring"}, 422),
        ({"nonce": nonce, "reason": "wrong", "comment": "长" * 501}, 422),
    ):
        assert client.post(f"/kb/{card}/flags", data=data).status_code == status, data
    hidden = ids(runtime)["养犬登记内部口径"]
    assert client.post(f"/kb/{hidden}/flags", data={"nonce": nonce, "reason": "wrong"}).status_code in (403, 404)
    with runtime.db.read_session() as s:
        assert len(s.exec(select(ArticleFlag)).all()) == 1


def sent_code(runtime, phone: str = "13800001111") -> str:
    """The code in the newest text message to the phone."""
    with runtime.db.read_session() as s:  # `to` is sealed: compared once opened
        message = next(m for m in s.exec(select(Message).order_by(Message.id.desc())) if m.to == phone)
    return re.search(r"验证码是(\d{6})", message.body).group(1)


def test_the_assistant_without_javascript(kb, client, runtime):
    first = client.get("/assistant")
    assert first.status_code == 200 and first.headers["cache-control"] == "public, max-age=300"
    assert 'role="log" aria-live="polite"' in first.text and '<label for="question">' in first.text
    nonce = nonce_of(first.text)
    r = client.post("/assistant", data={"nonce": nonce, "question": "社保卡丢了怎么补办"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    card = ids(runtime)["社会保障卡补办"]
    assert "根据《社会保障卡补办》" in r.text and f'href="/kb/{card}"' in r.text and "答案出处" in r.text
    assert '<details id="handoff-box" class="card handoff-box">' in r.text  # closed: it answered
    # The conversation so far travels in the form; the next question gets the hand-over.
    data = {
        "nonce": nonce_of(r.text),
        "question": "我家楼下的狗太吵了怎么办",
        "role": ["citizen", "assistant"],
        "text": ["社保卡丢了怎么补办", "根据《社会保障卡补办》：……"],
    }
    r = client.post("/assistant", data=data)
    assert r.status_code == 200 and "没有能确切回答" in r.text and 'href="tel:12345"' in r.text
    assert '<details id="handoff-box" class="card handoff-box" open>' in r.text
    assert r.text.count('name="role" value="citizen"') == 4  # two turns of the citizen, in both forms
    handoff = {
        "nonce": nonce_of(r.text),
        "content": "楼下的狗每天夜里叫",
        "caller_phone": "13800001111",
        "role": ["citizen", "assistant", "citizen", "assistant"],
        "text": ["社保卡丢了怎么补办", "根据……", "我家楼下的狗太吵了怎么办", "抱歉……"],
    }
    bad = client.post("/assistant/handoff", data={**handoff, "caller_phone": "110", "action": "code"})
    assert bad.status_code == 422 and "请填写正确的11位手机号码" in bad.text and 'aria-invalid="true"' in bad.text
    # The code to the mobile number first, the form kept as typed; then the matter filed with it.
    sent = client.post("/assistant/handoff", data={**handoff, "action": "code"})
    assert sent.status_code == 200 and "验证码已发送至 138****1111，10分钟内有效" in sent.text
    assert "楼下的狗每天夜里叫</textarea>" in sent.text and 'value="13800001111"' in sent.text
    without = client.post("/assistant/handoff", data={**handoff, "action": "file"})
    assert without.status_code == 422 and "请填写短信验证码" in without.text
    with runtime.db.read_session() as s:
        assert s.exec(select(Ticket)).first() is None
    done = client.post("/assistant/handoff", data={**handoff, "action": "file", "code": sent_code(runtime)})
    assert done.status_code == 200 and "提交成功" in done.text
    with runtime.db.read_session() as s:
        ticket = s.exec(select(Ticket)).one()
    assert ticket.channel == "web" and ticket.state == "registered"
    # The number said once, on its own line.
    assert done.text.count(ticket.number) == 1
    assert f'<p class="ticket-number">工单编号：<strong>{ticket.number}</strong></p>' in done.text
    assert "市民：我家楼下的狗太吵了怎么办" in ticket.content
    assert len(ticket.source_details["assistant"]["conversation"]) == 4


def test_the_assistant_page_refuses_bad_questions_and_stale_forms(kb, client):
    nonce = nonce_of(client.get("/assistant").text)
    empty = client.post("/assistant", data={"nonce": nonce, "question": " "})
    assert empty.status_code == 422 and "请填写问题" in empty.text
    long = client.post("/assistant", data={"nonce": nonce, "question": "问" * 2000})
    assert long.status_code == 422 and "问题请不要超过200个字" in long.text
    stale = client.post("/assistant", data={"nonce": "forged", "question": "社保卡补办"})
    assert stale.status_code == 403 and "页面已过期" in stale.text
    forged = client.post("/assistant/handoff", data={"nonce": "x", "content": "a", "caller_phone": "13800001111"})
    assert forged.status_code == 403


def test_a_form_nonce_lasts_the_hour_and_the_next(kb, client, clock):
    nonce = nonce_of(client.get("/assistant").text)
    clock.advance(minutes=70)
    assert client.post("/assistant", data={"nonce": nonce, "question": "社保卡补办"}).status_code == 200
    clock.advance(hours=2)
    assert client.post("/assistant", data={"nonce": nonce, "question": "社保卡补办"}).status_code == 403


def test_the_large_text_mode_without_javascript(kb, client):
    normal = client.get("/assistant").text
    assert '<html lang="zh-CN" class="">' in normal and 'aria-pressed="false"' in normal
    assert re.search(r'aria-pressed="false"[^>]*>大字模式</button>', normal)
    elder = client.get("/assistant", params={"mode": "elder"}).text
    assert '<html lang="zh-CN" class="elder">' in elder and 'aria-pressed="true"' in elder
    # On, the switch says how to leave the mode.
    assert re.search(r'aria-pressed="true"[^>]*>退出大字模式</button>', elder)
    # The switch is a GET form to the same page that keeps the rest of the address.
    search = client.get("/kb", params={"q": "社保卡", "mode": "elder"}).text
    assert '<input type="hidden" name="q" value="社保卡">' in search
    assert 'href="/kb/' in search and "mode=elder" in search


# ------------------------------------------------------------------ in a browser


def nav_lines(page) -> dict[str, int]:
    """The lines each tab's name takes (a name broken inside takes two)."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.site-nav a')].map(a => {
            const range = document.createRange();
            range.selectNodeContents(a);
            const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
            return [a.textContent.trim(), tops.size];
        }))"""
    )


@pytest.fixture
def phone_page(browser):
    context = browser.new_context(viewport=PHONE_VIEWPORT, locale="zh-CN", device_scale_factor=2, is_mobile=True)
    pg = context.new_page()
    pg.set_default_timeout(10000)
    yield pg
    context.close()


def test_a_citizen_asks_the_assistant_and_files_the_matter(kb, server, phone_page, runtime):
    page = phone_page
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{server}/assistant")
    page.screenshot(path=str(SHOTS / "assistant.png"), full_page=True)

    # A question the base answers: the passage, and the article linked.
    page.get_by_label("您的问题").fill("社保卡丢了怎么补办")
    page.get_by_role("button", name="发送").click()
    log = page.get_by_role("log")
    log.get_by_text("根据《社会保障卡补办》").wait_for()
    link = log.get_by_role("link", name="社会保障卡补办")
    assert link.get_attribute("href") == f"/kb/{ids(runtime)['社会保障卡补办']}"
    assert page.evaluate("document.activeElement.id") == "question"  # ready for the next question

    # One it cannot answer: said so, and the hand-over offered.
    page.get_by_label("您的问题").fill("我家楼下的狗太吵了怎么办")
    page.get_by_role("button", name="发送").click()
    log.get_by_text("没有能确切回答").wait_for()
    assert page.locator("#handoff-box").evaluate("box => box.open")
    assert page.get_by_label("您要反映的事情").input_value() == "我家楼下的狗太吵了怎么办"
    page.screenshot(path=str(SHOTS / "assistant-handoff.png"), full_page=True)

    # A wrong phone number is named; then the matter is filed and its number shown.
    phone_field = page.get_by_label("手机号码（必填，用于接收验证码）")
    phone_field.fill("123")
    page.get_by_role("button", name="获取验证码").click()
    page.get_by_text("请填写正确的11位手机号码").wait_for()
    assert phone_field.get_attribute("aria-invalid") == "true"
    phone_field.fill("13800001111")
    page.get_by_role("button", name="获取验证码").click()
    page.get_by_text("验证码已发送至 138****1111").wait_for()
    assert page.evaluate("document.activeElement.id") == "code"
    page.get_by_label("您的称呼（选填）").fill("李阿姨")
    page.get_by_label("短信验证码（必填）").fill(sent_code(runtime))
    page.get_by_role("button", name="提交诉求").click()
    page.get_by_text("提交成功").wait_for()
    with runtime.db.read_session() as s:
        ticket = s.exec(select(Ticket)).one()
    assert page.locator("#filed .ticket-number strong").inner_text() == ticket.number
    assert page.locator("#filed").inner_text().count(ticket.number) == 1
    assert page.evaluate("document.activeElement.id") == "filed"
    assert (ticket.channel, ticket.state, ticket.type) == ("web", "registered", "consultation")
    turns = ticket.source_details["assistant"]["conversation"]
    assert [t["role"] for t in turns] == ["citizen", "assistant", "citizen", "assistant"]
    assert turns[0]["text"] == "社保卡丢了怎么补办" and "没有能确切回答" in turns[3]["text"]
    page.screenshot(path=str(SHOTS / "assistant-filed.png"), full_page=True)

    # The large-text mode: a pressed button that says how to leave it, remembered on the next page.
    toggle = page.locator(".mode-toggle")
    assert toggle.get_attribute("aria-pressed") == "false" and toggle.inner_text() == "大字模式"
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true" and toggle.inner_text() == "退出大字模式"
    assert page.evaluate("getComputedStyle(document.documentElement).fontSize") == "22px"
    page.goto(f"{server}/assistant")
    assert page.evaluate("document.documentElement.classList.contains('elder')")
    toggle = page.get_by_role("button", name="退出大字模式", exact=True)
    assert toggle.get_attribute("aria-pressed") == "true"
    # The tabs, in large text on a phone: each name on one line, the tabs wrapping between them.
    assert nav_lines(page) == {"政策问答": 1, "智能客服": 1, "网上诉求": 1, "进度查询": 1}
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_VIEWPORT["width"]
    page.screenshot(path=str(SHOTS / "assistant-elder.png"), full_page=True)
    toggle.click()
    assert page.locator(".mode-toggle").inner_text() == "大字模式"

    card = ids(runtime)["社会保障卡补办"]
    page.goto(f"{server}/kb")
    page.screenshot(path=str(SHOTS / "kb.png"), full_page=True)
    page.goto(f"{server}/kb?q=社保卡丢了")
    page.screenshot(path=str(SHOTS / "kb-search.png"), full_page=True)
    page.goto(f"{server}/kb/{card}")
    page.screenshot(path=str(SHOTS / "kb-article.png"), full_page=True)
    # No page is wider than the phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_VIEWPORT["width"]
    page.goto(f"{server}/kb/{card}?mode=elder")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(0, 0, 0)"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_VIEWPORT["width"]
    page.screenshot(path=str(SHOTS / "kb-article-elder.png"), full_page=True)
    page.goto(f"{server}/kb?embed=1")
    assert page.locator("header.site").count() == 0
    page.screenshot(path=str(SHOTS / "kb-embed.png"), full_page=True)
