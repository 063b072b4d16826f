"""The knowledge base on the agent's pages: suggestions beside the intake form, direct answers
citing an article, similar open tickets to merge, knowledge gaps from agents, and 转为知识 on
the ticket page (SQLite and PostgreSQL; the agent's round trip in a real browser)."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from hotline.knowledge import articles
from hotline.models import Article, ArticleFlag, KnowledgeGap, Ticket
from hotline.tickets import create_ticket
from hotline.workflow.engine import Actor, fire
from tests.helpers import PASSWORD, Api
from tests.helpers import sign_in as client_sign_in
from tests.test_knowledge import GUIDES, article
from tests.test_pages_agent import shot, ticket_id_from_flash
from tests.test_pages_smoke import login

QUESTION = "公司不开了要关掉怎么办"


@pytest.fixture
def kb(client, district):
    """The published guides, a draft, and a published article whose title and body hold markup."""
    editor = Api(client, district, "editor")
    rows = [
        *GUIDES,
        article("d-1", "注销草稿", "尚未发布的注销口径", keywords="注销"),
        article(
            "x-1",
            "<b>注销</b>公告",
            "企业<script>alert(1)</script>注销后 [链接](javascript:alert(2)) 公告。",
            keywords="注销",
            status="published",
        ),
    ]
    answer = editor.post("/knowledge/import", {"articles": rows})
    assert answer["errors"] == []
    return editor


def sign_in(client, username: str) -> str:
    """Sign in on the pages; the session's CSRF token."""
    r = client_sign_in(client, username, PASSWORD)
    assert r.status_code == 303, r.text
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/notifications").text).group(1)


def article_id(runtime, external_id: str) -> int:
    with runtime.db.read_session() as s:
        return s.exec(select(Article.id).where(Article.external_id == external_id)).one()


def intake(client, token: str, expect_status: int = 303, **fields: str):
    form = {"csrf_token": token, "type": "consultation", "urgency": "normal", "reply_wanted": "on", **fields}
    r = client.post("/agent/intake", data=form, follow_redirects=False)
    assert r.status_code == expect_status, r.text
    return r


def ticket_by_content(runtime, content: str) -> Ticket | None:
    with runtime.db.read_session() as s:
        return s.exec(select(Ticket).where(Ticket.content == content)).first()


def gaps(runtime) -> dict[str, tuple[int, int]]:
    with runtime.db.read_session() as s:
        return {g.question: (g.asked, g.by_agents) for g in s.exec(select(KnowledgeGap))}


# --- suggestions beside the form --------------------------------------------------------


def test_suggestions_find_the_guide_from_plain_words_and_escape_all_but_the_marks(kb, client, runtime):
    sign_in(client, "agent")
    r = client.get("/agent/intake/knowledge", params={"title": "", "content": QUESTION})
    assert r.status_code == 200
    titles = re.findall(r'<span class="kb-title">([^<]*)</span>', r.text)
    assert titles[0] == "企业注销登记办事指南"
    assert "区市场监管局" in r.text  # the issuing department by its name, not its code
    assert "注销草稿" not in r.text  # drafts are not suggested
    assert len(re.findall(r'class="kb-item"', r.text)) <= 5
    # The snippet marks the matched words; everything the articles hold is escaped.
    assert "<mark>注销</mark>" in r.text
    assert "&lt;b&gt;注销&lt;/b&gt;公告" in r.text and "<b>注销</b>" not in r.text
    assert "<script>" not in r.text and "&lt;script&gt;" in r.text
    # 用此答复 carries the article and a plain extract of its body.
    guide = article_id(runtime, "m-1")
    use = re.search(rf'<button[^>]*class="[^"]*kb-use[^"]*" data-article="{guide}"[^>]*>', r.text).group(0)
    assert 'data-extract="企业决定解散的，应当在清算结束后申请注销登记，交回营业执照。"' in use
    # Nothing typed: a hint; nothing found: says so.
    assert "输入标题或诉求内容后" in client.get("/agent/intake/knowledge").text
    none = client.get("/agent/intake/knowledge", params={"content": "小区路灯不亮"}).text
    assert "知识库中没有与" in none and "kb-item" not in none


def test_an_article_reads_beside_the_form_safely(kb, client, runtime):
    sign_in(client, "agent")
    r = client.get(f"/agent/intake/knowledge/{article_id(runtime, 'x-1')}")
    assert r.status_code == 200
    assert "<script>" not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    assert 'href="javascript:' not in r.text
    assert "<strong>注销登记</strong>" in client.get(f"/agent/intake/knowledge/{article_id(runtime, 'm-1')}").text
    # A draft, an unknown article, an id out of range: not found or refused, never a 500.
    assert client.get(f"/agent/intake/knowledge/{article_id(runtime, 'd-1')}").status_code == 404
    assert client.get("/agent/intake/knowledge/999999").status_code == 404
    assert client.get(f"/agent/intake/knowledge/{2**31}").status_code == 422


def test_suggestions_are_the_agents_and_supervisors_only(kb, client, runtime):
    r = client.get("/agent/intake/knowledge", params={"content": QUESTION}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    sign_in(client, "housing_h")
    assert client.get("/agent/intake/knowledge", params={"content": QUESTION}).status_code == 403
    client.cookies.clear()
    sign_in(client, "supervisor")
    assert client.get("/agent/intake/knowledge", params={"content": QUESTION}).status_code == 200


def test_not_helpful_flags_the_article_with_the_csrf_token(kb, client, runtime):
    token = sign_in(client, "agent")
    guide = article_id(runtime, "m-1")
    assert client.post(f"/agent/intake/knowledge/{guide}/flag").status_code == 403
    assert client.post(f"/agent/intake/knowledge/{guide}/flag", headers={"X-CSRF-Token": "wrong"}).status_code == 403
    r = client.post(f"/agent/intake/knowledge/{guide}/flag", headers={"X-CSRF-Token": token})
    assert r.status_code == 200 and "已反馈" in r.text
    draft = article_id(runtime, "d-1")
    assert client.post(f"/agent/intake/knowledge/{draft}/flag", headers={"X-CSRF-Token": token}).status_code == 404
    with runtime.db.read_session() as s:
        flags = s.exec(select(ArticleFlag)).all()
        assert [(f.article_id, f.reason, f.source) for f in flags] == [(guide, "unhelpful", "agent")]


# --- 直接办结 citing an article ------------------------------------------------------------


def test_a_direct_answer_from_the_intake_form_records_its_article(kb, client, runtime, district):
    token = sign_in(client, "agent")
    guide = article_id(runtime, "m-1")
    intake(client, token, content=QUESTION, action="answer", answer="清算结束后申请注销登记", article=str(guide))
    ticket = ticket_by_content(runtime, QUESTION)
    assert (ticket.state, ticket.article_id) == ("pending_callback", guide)
    page = client.get(f"/tickets/{ticket.id}").text
    assert f'<a href="/knowledge/{guide}">《企业注销登记办事指南》</a>' in page and "区市场监管局" in page
    # A draft, or something not an id: refused naming 引用知识, nothing logged.
    for bad in (str(article_id(runtime, "d-1")), "abc", str(2**40)):
        r = intake(client, token, 422, content=f"问注销 {bad}", action="answer", answer="……", article=bad)
        assert 'id="err-article"' in r.text and "所引用的知识条目已失效或不存在" in r.text
        assert ticket_by_content(runtime, f"问注销 {bad}") is None
    # Refused for another reason, the form comes back still citing the article.
    r = intake(client, token, 422, content="问注销 未答复", action="answer", answer="", article=str(guide))
    assert f'name="article" value="{guide}"' in r.text and ">企业注销登记办事指南</a>" in r.text
    # Dispatched, the article field plays no part.
    intake(client, token, content="问注销 派单", action="dispatch", department="market", article="abc")
    assert ticket_by_content(runtime, "问注销 派单").article_id is None


# --- knowledge gaps from agents ---------------------------------------------------------


def test_a_consultation_that_found_nothing_is_a_gap_once(kb, client, runtime):
    token = sign_in(client, "agent")
    intake(client, token, content="小区路灯不亮找谁修", action="dispatch", department="urban")
    assert gaps(runtime) == {"小区路灯不亮找谁修": (1, 1)}
    # Refused, it was not logged: not counted.
    intake(client, token, 422, content="小区路灯不亮找谁修", action="answer", answer="")
    assert gaps(runtime) == {"小区路灯不亮找谁修": (1, 1)}
    # Asked again in other words: the same gap, counted again.
    intake(client, token, content="请问小区路灯不亮找谁修", action="dispatch", department="urban")
    assert list(gaps(runtime).values()) == [(2, 2)]
    # Found something, cited an article, or no consultation: no gap.
    intake(client, token, content=QUESTION, action="dispatch", department="market")
    guide = str(article_id(runtime, "m-1"))
    intake(client, token, content="路灯坏了多久修好", action="answer", answer="按指南答复", article=guide)
    intake(client, token, type="complaint", content="投诉路灯长期不亮", action="dispatch", department="urban")
    assert list(gaps(runtime).values()) == [(2, 2)]


# --- similar open tickets for 并单 --------------------------------------------------------


def logged(runtime, district, *, at, content, merged_into: int | None = None, **fields) -> int:
    """A complaint logged at `at` and dispatched to 区住建局 (or merged, and so closed)."""
    agent = Actor(district.user_ids["agent"], "agent", "agent")
    with runtime.db.session() as s:
        data = {"type": "complaint", "category": "0101", "content": content, **fields}
        ticket, _ = create_ticket(s, runtime, agent, data, now=at)
        if merged_into:
            fire(s, runtime, ticket.id, "merge", agent, {"master": merged_into}, now=at)
        else:
            fire(s, runtime, ticket.id, "dispatch", agent, {"department": "housing"}, now=at)
        return ticket.id


def test_similar_open_tickets_are_offered_for_merging(client, runtime, district):
    now = runtime.now()
    place = {"street": "西城街道", "community": "和平社区"}
    same = logged(runtime, district, at=now - timedelta(days=3), content="和平小区3栋电梯停运三天无人维修", **place)
    elsewhere = logged(runtime, district, at=now - timedelta(days=5), content="东城小区电梯停运无人维修")
    old = logged(runtime, district, at=now - timedelta(days=40), content="和平小区3栋电梯停运无人维修", **place)
    closed = logged(runtime, district, at=now - timedelta(days=1), content="电梯停运无人维修", merged_into=old)
    other = logged(runtime, district, at=now - timedelta(days=1), content="小区垃圾清运不及时", **place)
    token = sign_in(client, "agent")
    r = client.get(
        "/agent/intake/recent",
        params={"content": "3栋电梯又停运了，物业无人维修", "category": "0101", **place},
    )
    assert r.status_code == 200
    similar = r.text.split("相似的在办工单", 1)[1]
    offered = [int(i) for i in re.findall(r'name="merge_into" value="(\d+)"', similar)]
    # The same place and category first; not a closed one, one older than 30 days, or another matter.
    assert offered == [same, elsewhere]
    assert old not in offered and closed not in offered and other not in offered
    assert "同地点" in similar and "电梯" in similar
    # Nothing typed: a hint, no query.
    assert "输入诉求内容后" in client.get("/agent/intake/recent").text
    # 并单 into the one offered.
    intake(client, token, type="complaint", content="3栋电梯又停运了，物业无人维修", merge_into=str(same), **place)
    repeat = ticket_by_content(runtime, "3栋电梯又停运了，物业无人维修")
    assert (repeat.state, repeat.master_id) == ("merged", same)


# --- 转为知识 on the ticket page ----------------------------------------------------------


def test_an_answered_consultation_becomes_a_draft_from_its_page(kb, client, runtime, district):
    agent, handler = Api(client, district, "agent"), Api(client, district, "housing_h")
    t = agent.create(type="consultation", category="0101", content="物业费多久可以调一次价？")
    agent.fire(t["id"], "dispatch", department="housing")
    handler.fire(t["id"], "sign")
    page = f"/tickets/{t['id']}"
    token = sign_in(client, "editor")
    assert "转为知识" not in client.get(page).text  # no answer yet
    handler.fire(t["id"], "reply", result="物业服务收费调整须经业主大会表决。")
    complaint = agent.create()
    for username, shown in (("agent", False), ("housing_h", False), ("supervisor", False), ("housing_l", True)):
        client.cookies.clear()
        sign_in(client, username)
        assert ("转为知识</button>" in client.get(page).text) is shown, username
    client.cookies.clear()
    sign_in(client, "urban_h")
    assert client.get(page).status_code == 404  # another department does not see the ticket
    client.cookies.clear()
    token = sign_in(client, "editor")
    assert "转为知识</button>" in client.get(page).text
    assert "转为知识</button>" not in client.get(f"/tickets/{complaint['id']}").text
    # Without the token: refused. An agent posting anyway: refused, nothing drafted.
    assert client.post(f"{page}/knowledge-draft", data={}).status_code == 403
    client.cookies.clear()
    agent_token = sign_in(client, "agent")
    assert client.post(f"{page}/knowledge-draft", data={"csrf_token": agent_token}).status_code == 403
    client.cookies.clear()
    token = sign_in(client, "housing_l")
    r = client.post(f"{page}/knowledge-draft", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    draft = int(r.headers["location"].rsplit("/", 1)[1].removesuffix("?done=drafted"))
    assert r.headers["location"] == f"/knowledge/{draft}?done=drafted"
    with runtime.db.read_session() as s:
        a = s.get(Article, draft)
        assert (a.status, a.source_ticket_id, a.department) == ("draft", t["id"], "区住建局")
    # Drafted: the page links to the draft; drafted again, the message and the link.
    assert f'<a href="/knowledge/{draft}">' in client.get(page).text
    client.cookies.clear()
    token = sign_in(client, "editor")
    r = client.post(f"{page}/knowledge-draft", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 409
    assert f"该工单已转为知识条目（条目号 {draft}）" in r.text and f'<a href="/knowledge/{draft}">' in r.text
    assert client.post("/tickets/999999/knowledge-draft", data={"csrf_token": token}).status_code == 404
    assert client.post(f"/tickets/{2**31}/knowledge-draft", data={"csrf_token": token}).status_code == 422


# --- in a real browser --------------------------------------------------------------------


@pytest.mark.browser
def test_the_agent_sees_suggestions_while_typing_and_answers_with_one(page, server, runtime, district):
    with runtime.db.session() as s:
        articles.import_rows(s, GUIDES, Actor(district.user_ids["editor"], "editor", "editor"), runtime.now())
    guide = article_id(runtime, "m-1")
    login(page, server, "agent")
    page.click("label[for=type-consultation]")
    page.locator("#content").press_sequentially(QUESTION, delay=30)
    # The suggestions for the whole question: those for what was typed before it may still
    # be replaced by them.
    expect(page.locator("#kb-suggest .kb-list")).to_have_attribute("data-q", QUESTION)
    first = page.locator("#kb-suggest .kb-item").first
    expect(first.locator(".kb-title")).to_have_text("企业注销登记办事指南")
    expect(first.locator(".kb-snip mark").first).to_be_visible()
    # Alt+K reaches the suggestions, ↓ and ↑ move between them, Enter opens one in place.
    page.keyboard.press("Alt+k")
    expect(first.locator(".kb-sum")).to_be_focused()
    if page.locator("#kb-suggest .kb-item").count() > 1:
        page.keyboard.press("ArrowDown")
        expect(page.locator("#kb-suggest .kb-item").nth(1).locator(".kb-sum")).to_be_focused()
        page.keyboard.press("ArrowUp")
        expect(first.locator(".kb-sum")).to_be_focused()
    page.keyboard.press("Enter")
    expect(first.locator(".kb-body strong")).to_have_text("注销登记")
    # The agent types on while reading: the newer suggestions keep the one open.
    more = QUESTION + "，营业执照"
    page.locator("#content").press_sequentially("，营业执照", delay=30)
    expect(page.locator("#kb-suggest .kb-list")).to_have_attribute("data-q", more)
    opened = page.locator(f'#kb-suggest .kb-item[data-article="{guide}"] .kb-det')
    expect(opened).to_have_attribute("open", "")
    expect(opened.locator(".kb-body strong")).to_have_text("注销登记")
    first = page.locator(f'#kb-suggest .kb-item[data-article="{guide}"]')
    first.locator(".kb-sum").focus()
    shot(page, "intake-knowledge-suggestions")
    # Tab to 用此答复: the answer takes the extract, the article is cited, 直接办结 is chosen.
    page.keyboard.press("Tab")
    expect(first.locator(".kb-use")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#answer")).to_be_focused()
    expect(page.locator("#answer")).to_have_value(re.compile("清算结束后申请注销登记"))
    expect(page.locator("#article")).to_have_value(str(guide))
    expect(page.locator("#kb-cited-link")).to_have_text("企业注销登记办事指南")
    page.keyboard.type("请携带营业执照到政务服务中心办理。")
    shot(page, "intake-knowledge-cited")
    page.keyboard.press("Control+Enter")
    page.wait_for_url("**/agent/intake?done=answer*")
    ticket_id = ticket_id_from_flash(page)
    with runtime.db.read_session() as s:
        ticket = s.get(Ticket, ticket_id)
        assert (ticket.type, ticket.state, ticket.article_id) == ("consultation", "pending_callback", guide)
        assert ticket.answer.endswith("请携带营业执照到政务服务中心办理。")
    page.goto(f"{server}/tickets/{ticket_id}")
    expect(page.locator("#cited-article a")).to_have_attribute("href", f"/knowledge/{guide}")
    expect(page.locator("#to-knowledge")).to_have_count(0)  # not the agent's to draft
    # An editor turns the answer into a draft in one click, and lands on it.
    page.context.clear_cookies()
    login(page, server, "editor")
    page.goto(f"{server}/tickets/{ticket_id}")
    shot(page, "ticket-cited-article")
    page.locator("#to-knowledge button", has_text="转为知识").click()
    page.wait_for_url(re.compile(r"/knowledge/\d+\?done=drafted$"))
    with runtime.db.read_session() as s:
        draft = s.exec(select(Article).where(Article.source_ticket_id == ticket_id)).one()
    assert page.url.endswith(f"/knowledge/{draft.id}?done=drafted") and draft.status == "draft"


@pytest.mark.browser
def test_similar_tickets_appear_while_typing(page, server, runtime, district):
    now = runtime.now()
    same = logged(runtime, district, at=now - timedelta(days=2), content="和平小区3栋电梯停运三天无人维修")
    with runtime.db.read_session() as s:
        number = s.get(Ticket, same).number
    login(page, server, "agent")
    page.locator("#content").press_sequentially("电梯停运了，一直无人维修", delay=20)
    similar = page.locator("#recent .recent-similar")
    expect(similar.locator(".ri-no")).to_have_text(number)
    shot(page, "intake-similar-tickets")
    similar.locator("button", has_text="并入此单").click()
    page.wait_for_url("**/agent/intake?done=merge*")
    with runtime.db.read_session() as s:
        repeat = s.exec(select(Ticket).where(Ticket.content == "电梯停运了，一直无人维修")).one()
        assert repeat.master_id == same


@pytest.mark.browser
def test_slow_suggestions_never_hold_up_typing_and_the_last_question_wins(page, server, runtime, district):
    with runtime.db.session() as s:
        articles.import_rows(s, GUIDES, Actor(district.user_ids["editor"], "editor", "editor"), runtime.now())
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page, server, "agent")
    held = []  # the suggestions' answers, held back as on a slow network
    page.route("**/agent/intake/knowledge?*", lambda route: held.append(route))
    content = page.locator("#content")
    content.press_sequentially("公积金", delay=20)
    page.wait_for_timeout(500)  # its request is under way, unanswered
    content.press_sequentially("怎么提取", delay=20)
    # Typing went on while the answer was held.
    expect(content).to_have_value("公积金怎么提取")
    page.wait_for_timeout(500)
    for _ in range(6):
        while held:
            held.pop(0).continue_()
        page.wait_for_timeout(250)
    expect(page.locator("#kb-suggest .kb-list")).to_have_attribute("data-q", "公积金怎么提取")
    expect(page.locator("#kb-suggest .kb-title").first).to_have_text("住房公积金提取指南")
    assert errors == []
