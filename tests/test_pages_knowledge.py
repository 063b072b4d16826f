"""The knowledge base's pages (SQLite and PostgreSQL): the list and the search by role, an
article with its versions and flags, the forms, the spreadsheet import, the review queue,
the knowledge gaps and the flags; and the spreadsheet reader on its own."""

import re
from datetime import date, datetime
from io import BytesIO

import pytest
from openpyxl import Workbook, load_workbook
from sqlmodel import select

from hotline.knowledge import feedback, spreadsheet
from hotline.models import Article, ArticleFlag, Department, KnowledgeGap
from hotline.web.knowledge import workbench
from tests.helpers import Api
from tests.test_knowledge import GUIDES, article
from tests.test_pages_admin import _client_login, _csrf_token
from tests.test_pages_smoke import SHOTS, login

HEADER = ["类目", "标题", "内容", "发文单位", "材料性质", "关键字"]


@pytest.fixture
def kb(client, district):
    """The published guides, a draft of the housing bureau's and one of the market bureau's."""
    editor = Api(client, district, "editor")
    rows = [
        *GUIDES,
        article(
            "h-draft", "公租房申请草稿", "申请公租房须提交收入证明。", department="区住建局", category="住房保障/公租房"
        ),
        article("m-draft", "个体户注销草稿", "个体工商户注销须交回执照。"),
    ]
    answer = editor.post("/knowledge/import", {"articles": rows})
    assert answer["created"] == len(rows), answer
    return editor


def article_id(runtime, external_id: str) -> int:
    with runtime.db.read_session() as s:
        return s.exec(select(Article.id).where(Article.external_id == external_id)).one()


def stored(runtime, article_id: int) -> Article:
    with runtime.db.read_session() as s:
        return s.get(Article, article_id)


def as_user(client, username: str) -> str:
    """Sign the test client in as the user; its CSRF token."""
    client.cookies.clear()
    _client_login(client, username)
    return _csrf_token(client)


def post(client, path: str, token: str, **data):
    return client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


def form_of(a: Article | None = None, **fields) -> dict:
    """A complete article form, as the page posts it."""
    base = {
        "category": "社会保障/养老保险",
        "title": "退休手续办理",
        "body": "到区人社局窗口办理。",
        "department": "区住建局",
        "kind": "办事指南",
        "keywords": "退休，养老",
        "region": "",
        "valid_from": "",
        "valid_until": "",
        "public": "1",
    }
    if a is not None:
        base |= {
            "category": a.category,
            "title": a.title,
            "body": a.body,
            "department": a.department,
            "kind": a.kind,
            "keywords": ",".join(a.keywords),
            "version": str(a.version),
        }
    return base | fields


def workbook(*rows, header=HEADER, before: int = 0) -> bytes:
    book = Workbook()
    sheet = book.active
    for _ in range(before):
        sheet.append(["某某单位知识清单"])
    sheet.append(header)
    for row in rows:
        sheet.append(list(row))
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def upload(client, token: str, data: bytes, name: str = "清单.xlsx"):
    return client.post(
        "/knowledge/import",
        data={"csrf_token": token},
        files={"file": (name, data, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")},
    )


def counts(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-count="(\w+)">(\d+)<', html)}


def row_errors(html: str) -> list[tuple[int, str, str]]:
    table = html.split('id="row-errors"')[1].split("</table>")[0]
    cells = re.findall(r'<tr><td class="num">(\d+)</td><td>(.*?)</td><td>(.*?)</td></tr>', table)
    return [(int(r), c, m) for r, c, m in cells]


# ------------------------------------------------------------------ who sees what


def test_agents_read_only_published_articles(client, district, runtime, kb):
    as_user(client, "agent")
    page = client.get("/knowledge").text
    assert "企业注销登记办事指南" in page and "公租房申请草稿" not in page and "个体户注销草稿" not in page
    assert "新建知识" not in page
    assert client.get(f"/knowledge/{article_id(runtime, 'm-1')}").status_code == 200
    draft = client.get(f"/knowledge/{article_id(runtime, 'h-draft')}")
    assert draft.status_code == 404 and "公租房" not in draft.text and "知识条目不存在，或您无权查看" in draft.text
    refused = client.get("/knowledge?status=draft")
    assert refused.status_code == 403 and "只有知识库管理员和单位负责人可以查看未发布的知识" in refused.text
    # The search finds the published guide, never the draft with the same words.
    found = client.get("/knowledge", params={"q": "注销"}).text
    assert "企业注销登记办事指南" in found and "个体户注销草稿" not in found
    for path in (
        "/knowledge/new",
        "/knowledge/import",
        "/knowledge/gaps",
        "/knowledge/flags",
        f"/knowledge/{article_id(runtime, 'm-1')}/edit",
    ):
        assert client.get(path).status_code == 403, path
    # The agent's navigation leads to the knowledge base.
    assert 'href="/knowledge"' in client.get("/agent/intake").text


def test_the_editor_sees_every_status_and_the_workbench(client, district, runtime, kb):
    as_user(client, "editor")
    assert client.get("/", follow_redirects=False).headers["location"] == "/knowledge"
    page = client.get("/knowledge").text
    for title in ("企业注销登记办事指南", "公租房申请草稿", "个体户注销草稿"):
        assert title in page
    nav = page.split('class="sidebar"')[1].split("</nav>")[0]
    for label in ("知识库", "待审核", "知识缺口", "反馈", "导入"):
        assert label in nav
    drafts = client.get("/knowledge?status=draft").text
    assert "公租房申请草稿" in drafts and "企业注销登记办事指南" not in drafts
    found = client.get("/knowledge", params={"q": "注销"}).text
    assert "个体户注销草稿" in found  # editors search every status
    for path in ("/knowledge/new", "/knowledge/import", "/knowledge/gaps", "/knowledge/flags"):
        assert client.get(path).status_code == 200, path
    assert '<a href="/knowledge/gaps" class="active">知识缺口</a>' in client.get("/knowledge/gaps").text
    assert (
        '<a href="/knowledge?status=under_review" class="active">待审核</a>'
        in client.get("/knowledge?status=under_review").text
    )


def test_the_list_filters_and_pages(client, district, runtime, kb):
    as_user(client, "editor")
    food = client.get("/knowledge", params={"category": "市场监管/食品安全"}).text
    assert "食品经营许可证办理" in food and "企业注销登记办事指南" not in food
    faq = client.get("/knowledge", params={"kind": "常见问题"}).text
    assert "住房公积金提取指南" in faq and "食品经营许可证办理" not in faq
    with runtime.db.read_session() as s:
        housing = s.exec(select(Department.id).where(Department.code == "housing")).one()
    own = client.get("/knowledge", params={"department": housing}).text
    assert "公租房申请草稿" in own and "食品经营许可证办理" not in own
    many = [article(f"p-{i}", f"批量条目{i:02d}", "内容", status="published") for i in range(25)]
    kb.post("/knowledge/import", {"articles": many})
    first = client.get("/knowledge", params={"q": "", "kind": "办事指南"}).text
    assert "第 1 / 2 页" in first and "page=2" in first
    second = client.get("/knowledge", params={"kind": "办事指南", "page": 2}).text
    assert "第 2 / 2 页" in second
    assert client.get("/knowledge", params={"q": "问" * 201}).status_code == 422


def test_a_leader_writes_its_own_departments_drafts_only(client, district, runtime, kb):
    token = as_user(client, "housing_l")
    own_draft, other_draft = article_id(runtime, "h-draft"), article_id(runtime, "m-draft")
    published_other = article_id(runtime, "m-1")
    assert "公租房申请草稿" in client.get(f"/knowledge?department={stored(runtime, own_draft).department_id}").text
    assert client.get(f"/knowledge/{own_draft}").status_code == 200
    assert client.get(f"/knowledge/{other_draft}").status_code == 404
    # The search: its own department's draft, another's never.
    assert "公租房申请草稿" in client.get("/knowledge", params={"q": "公租房"}).text
    found = client.get("/knowledge", params={"q": "注销"}).text
    assert "企业注销登记办事指南" in found and "个体户注销草稿" not in found
    assert client.get(f"/knowledge/{own_draft}/edit").status_code == 200
    # Another department's article: read, never written.
    assert client.get(f"/knowledge/{published_other}/edit").status_code == 403
    before = stored(runtime, published_other)
    r = post(client, f"/knowledge/{published_other}/edit", token, **form_of(before, title="改了别人的"))
    assert r.status_code == 403
    assert stored(runtime, published_other).title == before.title
    # A new article for another department is refused by its field, as typed.
    r = post(client, "/knowledge/new", token, **form_of(department="区市场监管局", title="越权条目"))
    assert r.status_code == 403 and "单位负责人只能编写本单位发文的知识" in r.text and 'value="越权条目"' in r.text
    # The leader submits, the editors publish: no publish button, and the post is refused.
    page = client.get(f"/knowledge/{own_draft}").text
    assert 'data-action="submit"' in page and 'data-action="publish"' not in page
    assert post(client, f"/knowledge/{own_draft}/publish", token).status_code == 403
    assert (
        post(client, f"/knowledge/{own_draft}/submit", token).headers["location"]
        == f"/knowledge/{own_draft}?done=submit"
    )
    assert stored(runtime, own_draft).status == "under_review"
    # Under review, it is the editors' now.
    assert client.get(f"/knowledge/{own_draft}/edit").status_code == 403
    assert "本单位待审核" in client.get("/knowledge?status=under_review").text


# ------------------------------------------------------------------ forms and CSRF


def test_a_post_without_the_csrf_token_is_refused(client, district, runtime, kb):
    as_user(client, "editor")
    guide = article_id(runtime, "m-1")
    posts = {
        "/knowledge/new": form_of(title="伪造"),
        f"/knowledge/{guide}/edit": form_of(stored(runtime, guide), title="伪造"),
        f"/knowledge/{guide}/retire": {},
        f"/knowledge/{guide}/flags": {"reason": "wrong"},
        f"/knowledge/{guide}/flags/resolve": {},
        "/knowledge/gaps/1/close": {},
    }
    for path, data in posts.items():
        for token in (None, "wrong"):
            sent = data | ({"csrf_token": token} if token else {})
            r = client.post(path, data=sent, follow_redirects=False)
            assert r.status_code == 403 and "CSRF" in r.text, path
    r = client.post("/knowledge/import", files={"file": ("a.xlsx", workbook(), "application/octet-stream")})
    assert r.status_code == 403 and "CSRF" in r.text
    assert stored(runtime, guide).status == "published" and stored(runtime, guide).title != "伪造"
    with runtime.db.read_session() as s:
        assert s.exec(select(ArticleFlag)).first() is None


def test_html_in_a_body_is_shown_as_text(client, district, runtime, kb):
    token = as_user(client, "editor")
    body = '# 标题\n\n<script>alert("x")</script> <img src=x onerror="alert(1)"> [点我](javascript:alert(2)) **粗体**'
    r = post(client, "/knowledge/new", token, **form_of(title="<b>标题</b>", body=body))
    assert r.status_code == 303, r.text
    page = client.get(r.headers["location"]).text
    assert "<script>alert" not in page and "<img src=x" not in page and 'href="javascript:' not in page
    assert "&lt;script&gt;" in page and "<strong>粗体</strong>" in page and "<h1>标题</h1>" in page
    assert "&lt;b&gt;标题&lt;/b&gt;" in page and "<b>标题</b>" not in page
    assert "已新建知识条目" in page


def test_a_refused_form_shows_what_was_typed_and_why(client, district, runtime, kb):
    token = as_user(client, "editor")
    taken = stored(runtime, article_id(runtime, "m-1"))
    # 409: the issuing body has the title already; the form names and links the other article.
    r = post(client, "/knowledge/new", token, **form_of(title=taken.title, department="market", body="我的正文"))
    assert r.status_code == 409
    assert "该发文单位已有同名的知识条目" in r.text and f'href="/knowledge/{taken.id}"' in r.text
    assert "我的正文" in r.text and f'value="{taken.title}"' in r.text
    # 422: each field's reason beside it.
    r = post(
        client,
        "/knowledge/new",
        token,
        **form_of(title="", category="社会保障//养老", valid_from="2026-12-01", valid_until="2026-11-01"),
    )
    assert r.status_code == 422
    errors = dict(re.findall(r'data-error="(\w+)">([^<]+)<', r.text))
    assert errors["title"] == "必填" and "类目" in errors["category"]
    r = post(client, "/knowledge/new", token, **form_of(valid_from="2026-12-01", valid_until="2026-11-01"))
    assert r.status_code == 422
    assert dict(re.findall(r'data-error="(\w+)">([^<]+)<', r.text))["valid_until"] == "失效日期早于生效日期"
    r = post(client, "/knowledge/new", token, **form_of(keywords="一个特别特别特别特别特别特别长的关键字啊啊"))
    assert r.status_code == 422 and "每个关键字不超过 20 个字" in r.text
    r = post(client, "/knowledge/new", token, **form_of(title="标" * 129))
    assert r.status_code == 422 and "不能超过 128 个字" in r.text
    with runtime.db.read_session() as s:
        assert s.exec(select(Article).where(Article.title == "退休手续办理")).first() is None


def test_an_edit_from_a_stale_form_is_refused(client, district, runtime, kb):
    token = as_user(client, "editor")
    guide = stored(runtime, article_id(runtime, "m-2"))
    r = post(client, f"/knowledge/{guide.id}/edit", token, **form_of(guide, body="第一次修改"))
    assert r.headers["location"] == f"/knowledge/{guide.id}?done=saved"
    r = post(client, f"/knowledge/{guide.id}/edit", token, **form_of(guide, body="从旧页面提交"))
    assert r.status_code == 409 and "已被他人修改" in r.text and "从旧页面提交" in r.text
    assert stored(runtime, guide.id).body == "第一次修改"
    fresh = stored(runtime, guide.id)
    r = post(client, f"/knowledge/{guide.id}/edit", token, **form_of(fresh))
    assert r.headers["location"] == f"/knowledge/{guide.id}?done=unchanged"


# ------------------------------------------------------------------ the lifecycle


def test_an_article_goes_through_its_life_on_the_pages(client, district, runtime, kb, clock):
    token = as_user(client, "housing_l")
    r = post(client, "/knowledge/new", token, **form_of(title="公租房资格复核", keywords="公租房"))
    assert r.status_code == 303
    new_id = int(re.search(r"/knowledge/(\d+)", r.headers["location"]).group(1))
    assert stored(runtime, new_id).status == "draft" and stored(runtime, new_id).department_id is not None
    assert post(client, f"/knowledge/{new_id}/submit", token).status_code == 303

    token = as_user(client, "editor")
    queue = client.get("/knowledge?status=under_review").text
    assert "<h1>待审核</h1>" in queue and "公租房资格复核" in queue and 'data-action="publish"' in queue
    clock.advance(minutes=20)  # within the idle time-out of the signed-in pages
    r = post(client, f"/knowledge/{new_id}/return", token, back="/knowledge?status=under_review")
    assert r.headers["location"] == "/knowledge?status=under_review&done=return"
    assert "已退回修改" in client.get(r.headers["location"]).text
    post(
        client, f"/knowledge/{new_id}/edit", token, **form_of(stored(runtime, new_id), body="复核须提交最新收入证明。")
    )
    assert (
        post(client, f"/knowledge/{new_id}/publish", token).headers["location"] == f"/knowledge/{new_id}?done=publish"
    )
    # A redirect elsewhere than the knowledge pages is not followed.
    r = post(client, f"/knowledge/{new_id}/retire", token, back="//evil.example/")
    assert r.headers["location"] == f"/knowledge/{new_id}?done=retire"
    # 409 in Chinese on the article's page: it is retired already.
    r = post(client, f"/knowledge/{new_id}/retire", token)
    assert r.status_code == 409 and "条目当前为“已下线”，不能下线" in r.text

    page = client.get(f"/knowledge/{new_id}").text
    versions = page.split('id="versions"')[1].split("</section>")[0]
    actions = re.findall(r'<tr data-version="(\d+)">\s*<td class="num">\d+</td>\s*<td>([^<]+)</td>', versions)
    assert actions == [("6", "下线"), ("5", "发布"), ("4", "修改"), ("3", "退回修改"), ("2", "提交审核"), ("1", "新建")]
    edit_row = versions.split('data-version="4"')[1].split("</tr>")[0]
    assert "<b>内容</b>" in edit_row and "housing_l" not in edit_row
    assert "housing_l" in versions and "editor" in versions
    assert '待审核</span> → <span class="kb-after">草稿' in versions.split('data-version="3"')[1].split("</tr>")[0]


def test_an_expired_article_cannot_be_published_from_its_page(client, district, runtime, kb):
    token = as_user(client, "editor")
    r = post(client, "/knowledge/new", token, **form_of(valid_until="2026-10-31"))
    new_id = int(re.search(r"/knowledge/(\d+)", r.headers["location"]).group(1))
    r = post(client, f"/knowledge/{new_id}/publish", token)
    assert r.status_code == 409 and "该条目已于 2026-10-31 失效：请先修改失效日期" in r.text
    assert stored(runtime, new_id).status == "draft"


def test_the_ticket_an_article_was_drafted_from_is_linked(client, district, runtime, kb):
    agent = Api(client, district, "agent")
    t = agent.create(type="consultation", category="02", content="个体户怎么注销")
    agent.fire(t["id"], "answer", answer="带上营业执照到市场监管局窗口办理。")
    token = as_user(client, "agent")
    assert post(client, f"/tickets/{t['id']}/knowledge-draft", token).status_code == 403
    token = as_user(client, "editor")
    r = post(client, f"/tickets/{t['id']}/knowledge-draft", token)
    draft = int(re.search(r"/knowledge/(\d+)\?done=drafted", r.headers["location"]).group(1))
    page = client.get(r.headers["location"]).text
    assert f'<a href="/tickets/{t["id"]}" id="source-ticket">{t["number"]}</a>' in page
    assert "已将工单的答复转为知识草稿" in page and "带上营业执照到市场监管局窗口办理" in page
    # Once per ticket: the second time names the draft.
    again = post(client, f"/tickets/{t['id']}/knowledge-draft", token)
    assert again.status_code == 409 and f"该工单已转为知识条目（条目号 {draft}）" in again.text


# ------------------------------------------------------------------ flags and gaps


def test_staff_flag_an_article_and_the_editor_resolves_it(client, district, runtime, kb):
    guide = article_id(runtime, "m-1")
    token = as_user(client, "housing_h")
    assert post(client, f"/knowledge/{guide}/flags", token, reason="bogus").status_code == 422
    r = post(client, f"/knowledge/{guide}/flags", token, reason="outdated", comment="<i>简易注销</i>已改")
    assert r.headers["location"] == f"/knowledge/{guide}?done=flagged"
    assert "反馈已提交" in client.get(r.headers["location"]).text
    # A draft the handler cannot read cannot be flagged either.
    assert post(client, f"/knowledge/{article_id(runtime, 'm-draft')}/flags", token, reason="wrong").status_code == 404

    token = as_user(client, "editor")
    flags = client.get("/knowledge/flags").text
    assert "企业注销登记办事指南" in flags and "内容过时" in flags and "&lt;i&gt;简易注销&lt;/i&gt;已改" in flags
    assert "1 条反馈" in flags
    assert "内容过时" in client.get(f"/knowledge/{guide}").text.split('id="flags"')[1]
    r = post(client, f"/knowledge/{guide}/flags/resolve", token, back="/knowledge/flags")
    assert r.headers["location"] == "/knowledge/flags?done=resolved"
    assert "暂无待处理的反馈" in client.get(r.headers["location"]).text


def test_the_editor_closes_gaps_with_an_article_or_a_new_one(client, district, runtime, kb, clock):
    with runtime.db.session() as s:
        for question in ("社保卡怎么补办", "请问补办社保卡怎么办", "养犬登记在哪里办"):
            feedback.record_gap(s, question, source="agent", at=clock())
    token = as_user(client, "editor")
    page = client.get("/knowledge/gaps").text
    assert "补办社保卡" in page and "养犬登记在哪里办" in page
    with runtime.db.read_session() as s:
        card = s.exec(select(KnowledgeGap).where(KnowledgeGap.asked == 2)).one()
        dog = s.exec(select(KnowledgeGap).where(KnowledgeGap.asked == 1)).one()
    assert page.index(f'data-gap="{card.id}"') < page.index(f'data-gap="{dog.id}"')  # most asked first

    # Closed with an article named by a part of its title.
    r = post(client, f"/knowledge/gaps/{card.id}/close", token, article="注销")
    assert r.status_code == 422 and "请填写条目号" in r.text  # two titles have 注销
    r = post(client, f"/knowledge/gaps/{card.id}/close", token, article="没有这种标题")
    assert r.status_code == 422 and "没有标题包含“没有这种标题”的知识条目" in r.text
    guide = article_id(runtime, "h-1")
    r = post(client, f"/knowledge/gaps/{card.id}/close", token, article="住房公积金提取")
    assert r.headers["location"] == "/knowledge/gaps?done=closed"
    closed = client.get("/knowledge/gaps?closed=true").text
    assert "补办社保卡" in closed and f'href="/knowledge/{guide}"' in closed
    assert post(client, f"/knowledge/gaps/{card.id}/close", token).status_code == 409
    missing = post(client, "/knowledge/gaps/999999/close", token)
    assert missing.status_code == 404 and "该知识缺口不存在" in missing.text

    # 新建知识 from a gap: the question as the title; saved, the gap is closed with it.
    new = client.get(f"/knowledge/new?title=养犬登记在哪里办&gap={dog.id}").text
    assert 'value="养犬登记在哪里办"' in new and f'name="gap" value="{dog.id}"' in new
    r = post(
        client, "/knowledge/new", token, **form_of(title="养犬登记在哪里办", department="区城管局"), gap=str(dog.id)
    )
    new_id = int(re.search(r"/knowledge/(\d+)", r.headers["location"]).group(1))
    with runtime.db.read_session() as s:
        gap = s.get(KnowledgeGap, dog.id)
        assert gap.closed_at is not None and gap.article_id == new_id
    assert "暂无知识缺口" in client.get("/knowledge/gaps").text


# ------------------------------------------------------------------ the spreadsheet import


def test_a_spreadsheet_imports_its_good_rows_and_lists_the_bad_ones(client, district, runtime, kb):
    token = as_user(client, "editor")
    data = workbook(
        [
            "社会保障/养老保险",
            "退休手续办理",
            "到窗口办理。",
            "区住建局",
            "办事指南",
            "退休,养老",
            "rs-1",
            "全区",
            date(2026, 1, 1),
            "2027/12/31",
            "否",
        ],
        ["社会保障/医疗保险", "医保报销", "凭发票报销。", "区住建局", "常见问题", "", None, None, None, None, None],
        ["社会保障", "", "没有标题", "区住建局", "办事指南", "", None, None, None, None, None],
        ["社会保障", "有误的种类", "内容", "区住建局", "通知", "", None, None, None, None, None],
        ["社会保障", "日期不存在", "内容", "区住建局", "办事指南", "", None, None, "2026-02-30", None, None],
        ["社会保障", "企业注销登记办事指南", "同名", "market", "办事指南", "", None, None, None, None, None],
        [None] * 11,
        ["社会保障", "医保报销", "重复的行", "区住建局", "常见问题", "", None, None, None, None, None],
        header=[
            " 类 目 ",
            "标题",
            "内容",
            "发文单位",
            "材料性质",
            "关键字",
            "编号",
            "适用范围",
            "生效日期",
            "失效日期",
            "是否公开",
        ],
        before=1,
    )
    r = upload(client, token, data)
    assert r.status_code == 200, r.text
    assert counts(r.text) == {"created": 2, "updated": 0, "unchanged": 0, "errors": 5}
    assert row_errors(r.text) == [
        (5, "标题", "必填"),
        (6, "材料性质", "应为 办事指南、政策法规、热点问答、常见问题、通知公告 之一"),
        (7, "生效日期", "“2026-02-30”这一天不存在"),
        (8, "标题", f"该发文单位已有同名的知识条目（条目号 {article_id(runtime, 'm-1')}）"),
        (10, "标题", "与第 4 行重复（同一编号，或同一发文单位的同名标题）"),
    ]
    retire = stored(runtime, article_id(runtime, "rs-1"))
    assert (retire.status, retire.public, retire.region) == ("draft", False, "全区")
    assert (retire.valid_from, retire.valid_until, retire.keywords) == (
        date(2026, 1, 1),
        date(2027, 12, 31),
        ["退休", "养老"],
    )
    with runtime.db.read_session() as s:
        claims = s.exec(select(Article).where(Article.title == "医保报销")).one()
    assert claims.external_id == spreadsheet.derived_external_id("区住建局", "医保报销")

    # The same sheet again, one row changed: updated, not duplicated.
    again = workbook(
        ["社会保障/养老保险", "退休手续办理", "到窗口或网上办理。", "区住建局", "办事指南", "退休,养老", "rs-1"],
        ["社会保障/医疗保险", "医保报销", "凭发票报销。", "区住建局", "常见问题", ""],
        header=[*HEADER, "编号"],
    )
    r = upload(client, token, again)
    assert counts(r.text) == {"created": 0, "updated": 1, "unchanged": 1, "errors": 0}
    assert 'id="row-errors"' not in r.text
    assert stored(runtime, retire.id).body == "到窗口或网上办理。"
    with runtime.db.read_session() as s:
        assert len(s.exec(select(Article).where(Article.title == "医保报销")).all()) == 1


def test_an_upload_that_is_no_spreadsheet_is_refused_clearly(client, district, runtime, kb):
    token = as_user(client, "editor")
    r = upload(client, token, "类目,标题\n社会保障,退休\n".encode(), name="清单.csv")
    assert r.status_code == 415 and "文件不是 Excel 工作簿（.xlsx）" in r.text
    r = upload(client, token, b"PK\x03\x04 broken zip")
    assert r.status_code == 415 and "无法读取该工作簿" in r.text
    r = upload(client, token, workbook(["社会保障", "退休"], header=["类目", "标题"]))
    assert r.status_code == 422 and "缺少必需的列：内容、发文单位、材料性质、关键字" in r.text
    r = upload(client, token, workbook(header=["甲", "乙"]))
    assert r.status_code == 422 and "没有找到表头" in r.text
    r = upload(client, token, b"")
    assert r.status_code == 422 and "请选择要上传的 .xlsx 文件" in r.text
    # The agents may not import at all.
    token = as_user(client, "agent")
    assert upload(client, token, workbook()).status_code == 403


def test_an_upload_over_the_limits_is_refused_with_413(client, district, runtime, kb):
    token = as_user(client, "editor")
    rows = [["社会保障", f"条目{i}", "内容", "区住建局", "办事指南", ""] for i in range(spreadsheet.MAX_ROWS + 1)]
    r = upload(client, token, workbook(*rows))
    assert r.status_code == 413 and f"一次最多导入 {spreadsheet.MAX_ROWS} 行" in r.text
    with runtime.db.read_session() as s:
        assert s.exec(select(Article).where(Article.title == "条目0")).first() is None  # nothing of it
    # A file over 16 MiB: the page says so (the body-size limit lets the form through).
    r = upload(client, token, b"PK\x03\x04" + bytes(workbench.MAX_UPLOAD_BYTES))
    assert r.status_code == 413 and "文件超过 16 MB" in r.text


def test_the_template_is_a_workbook_the_import_reads(client, district, runtime, kb):
    token = as_user(client, "editor")
    r = client.get("/knowledge/import/template.xlsx")
    assert r.status_code == 200 and "spreadsheetml" in r.headers["content-type"]
    assert "attachment" in r.headers["content-disposition"]
    sheet = load_workbook(BytesIO(r.content)).worksheets[0]
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    assert header[:6] == HEADER and set(header) == set(spreadsheet.COLUMNS.values())
    book = load_workbook(BytesIO(r.content))
    book.worksheets[0].append(
        ["社会保障", "模板条目", "内容", "区住建局", "办事指南", "", None, None, None, None, "是"]
    )
    buffer = BytesIO()
    book.save(buffer)
    assert counts(upload(client, token, buffer.getvalue()).text)["created"] == 1


# ------------------------------------------------------------------ the spreadsheet reader


def test_the_header_is_found_by_name_in_any_order():
    data = workbook(
        ["办事指南", "标题甲", "  内容甲  ", "区住建局", "住房/租赁", "租房，备案", 1001],
        header=["材料性质", "标 题", "内容", "发文单位", "类目", "关键词", "编号"],
        before=3,
    )
    sheet = spreadsheet.read_sheet(data)
    assert sheet.header_row == 4 and sheet.lines == [5] and not sheet.errors
    assert sheet.rows == [
        {
            "kind": "办事指南",
            "title": "标题甲",
            "body": "内容甲",
            "department": "区住建局",
            "category": "住房/租赁",
            "keywords": "租房，备案",
            "external_id": "1001",
        }
    ]


@pytest.mark.parametrize(
    ("cell", "day"),
    [
        (datetime(2026, 11, 1, 0, 0), date(2026, 11, 1)),
        (date(2026, 11, 1), date(2026, 11, 1)),
        ("2026-11-01", date(2026, 11, 1)),
        ("2026/11/1", date(2026, 11, 1)),
        ("2026.11.1", date(2026, 11, 1)),
        ("2026年11月1日", date(2026, 11, 1)),
        (46327, date(2026, 11, 1)),  # an Excel day number in a cell without a date format
    ],
)
def test_dates_are_read_from_excel_dates_and_text(cell, day):
    assert spreadsheet.parse_day(cell) == day


@pytest.mark.parametrize("cell", ["下个月", "2026-13-01", "2026-02-29", 10**9, "11/1/2026"])
def test_a_cell_that_is_no_date_is_refused(cell):
    with pytest.raises(ValueError):
        spreadsheet.parse_day(cell)


def test_a_row_without_a_number_keeps_the_same_number_on_every_upload():
    a = spreadsheet.derived_external_id("区住建局", "医保报销")
    assert a == spreadsheet.derived_external_id(" 区住建局 ", "医保报销 ")
    assert a != spreadsheet.derived_external_id("区城管局", "医保报销")
    assert len(a) <= 64


def test_yes_and_no_are_read_and_anything_else_is_an_error():
    rows = [
        ["类", "甲", "内容", "单位", "办事指南", "", "是"],
        ["类", "乙", "内容", "单位", "办事指南", "", "否"],
        ["类", "丙", "内容", "单位", "办事指南", "", "也许"],
    ]
    sheet = spreadsheet.read_sheet(workbook(*rows, header=[*HEADER, "是否公开"]))
    assert [r["public"] for r in sheet.rows] == [True, False]
    (error,) = sheet.errors
    assert (error.row, error.column, error.message) == (4, "是否公开", "“也许”应为 是 或 否")


# ------------------------------------------------------------------ in a browser


@pytest.mark.browser
def test_the_editor_imports_a_sheet_and_publishes_in_a_browser(page, server, runtime, district, tmp_path):
    login(page, server, "editor")
    assert page.url.endswith("/knowledge")
    sheet = tmp_path / "清单.xlsx"
    sheet.write_bytes(
        workbook(
            [
                "社会保障/社保卡",
                "社保卡补办",
                "携带身份证到服务网点办理。<script>window.hacked = 1</script>",
                "区住建局",
                "常见问题",
                "社保卡,补办",
            ],
            ["社会保障/社保卡", "", "没有标题", "区住建局", "常见问题", ""],
        )
    )
    page.click("nav a:has-text('导入')")
    page.set_input_files("#file", str(sheet))
    page.click("#import-form button[type=submit]")
    page.wait_for_load_state()
    assert page.inner_text("[data-count=created]") == "1"
    assert page.inner_text("#row-errors tbody").split() == ["3", "标题", "必填"]

    page.goto(f"{server}/knowledge?status=draft")
    page.click("text=社保卡补办")
    page.wait_for_load_state()
    assert "<script>" in page.inner_text("#body") and page.evaluate("window.hacked") is None
    page.click("button[data-action=publish]")
    page.wait_for_load_state()
    assert "已发布" in page.inner_text(".flash-ok")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button[data-action=retire]")
    page.wait_for_load_state()
    assert "已下线" in page.inner_text(".flash-ok")
    versions = page.inner_text("#versions")
    assert "下线" in versions and "发布" in versions and "导入" in versions
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "knowledge-article.png"), full_page=True)


def test_a_workbook_that_unpacks_too_large_is_refused(monkeypatch):
    data = workbook(["类", "甲", "内容", "单位", "办事指南", ""])
    assert spreadsheet.read_sheet(data).rows
    monkeypatch.setattr(spreadsheet, "MAX_UNPACKED_BYTES", len(data))  # its parts unpack to more than the file
    with pytest.raises(spreadsheet.SheetTooLarge, match="解压后超过"):
        spreadsheet.read_sheet(data)


def test_more_rows_than_allowed_are_refused_whole():
    rows = [["类", f"条目{i}", "内容", "单位", "办事指南", ""] for i in range(4)]
    assert len(spreadsheet.read_sheet(workbook(*rows), max_rows=4).rows) == 4
    with pytest.raises(spreadsheet.SheetTooLarge, match="一次最多导入 3 行"):
        spreadsheet.read_sheet(workbook(*rows), max_rows=3)
