"""What the pages say when a service refuses a form: the service's Chinese words (`zh`),
never its English message in brackets behind a generic phrase."""

import re

from sqlmodel import select

from tests.helpers import Api, app_routes, sign_in
from tests.test_pages_words import ENGLISH

# forms.page_message's fallback when an error has no Chinese words: "<generic>（<English>）".
FALLBACK = re.compile(r"（[^）]*[A-Za-z]{4,}[^）]*）")


def as_user(client, username: str) -> str:
    """Sign the test client in as the user; its CSRF token."""
    client.cookies.clear()
    assert sign_in(client, username).status_code == 303
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/notifications").text).group(1)


def post(client, path: str, token: str, **data):
    return client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


def flash_error(html: str) -> str:
    """The text of a page's refusal (the layout's error flash)."""
    found = re.search(r'<div class="flash flash-error" role="alert">(.*?)</div>', html, re.S)
    assert found, html
    return found.group(1).strip()


def error_page(html: str) -> str:
    """The text of an error page's message."""
    found = re.search(r'<div class="card error-card">\s*<h1>.*?</h1>\s*<p>(.*?)</p>', html, re.S)
    assert found, html
    return found.group(1).strip()


def assert_chinese(said: str, words: str) -> None:
    assert said == words
    assert not ENGLISH.search(said) and not FALLBACK.search(said), said


# ---------------------------------------------------------------- the administrator's directory


def test_a_community_under_an_unknown_street_office_is_refused_in_chinese(client, district):
    token = as_user(client, "admin")
    r = post(client, "/admin/departments", token, code="new_c", name="新社区", parent="zz9")
    assert r.status_code == 422
    assert_chinese(flash_error(r.text), "没有编码为“zz9”的单位")
    assert "no department with the code" not in r.text


def test_a_category_under_an_unknown_parent_is_refused_in_chinese(client, district):
    token = as_user(client, "admin")
    r = post(client, "/admin/categories", token, code="0999", name="新分类", parent="99")
    assert r.status_code == 422
    assert_chinese(flash_error(r.text), "没有编码为“99”的分类")
    assert "no category with the code" not in r.text
    # The category's own code taken: the page's words, as before.
    r = post(client, "/admin/categories", token, code="0101", name="物业管理")
    assert r.status_code == 409
    assert_chinese(flash_error(r.text), "分类编码“0101”已被使用")


def test_a_routing_rule_for_an_unknown_department_is_refused_in_chinese(client, district):
    token = as_user(client, "admin")
    r = post(client, "/admin/rules", token, category="0101", place="", department="xx", priority="0")
    assert r.status_code == 422
    assert_chinese(flash_error(r.text), "没有编码为“xx”的单位")
    assert "no department with the code" not in r.text


# ---------------------------------------------------------------- integration


def test_a_subscription_with_a_malformed_source_is_refused_in_chinese(client, district):
    token = as_user(client, "admin")
    r = post(
        client,
        "/admin/integration",
        token,
        name="市平台",
        url="https://city.example/hook",
        topics=["ticket.created"],
        scope="source",
        source="City 12345",
    )
    assert r.status_code == 422
    assert_chinese(flash_error(r.text), "来源标识须为 1–32 位小写字母、数字、- 或 _")
    assert "lower-case letters" not in r.text


# ---------------------------------------------------------------- knowledge


def test_an_agent_cannot_turn_a_ticket_into_an_article_and_is_told_in_chinese(client, district, runtime):
    agent = Api(client, district, "agent")
    t = agent.create(type="consultation", category="02", content="个体户怎么注销")
    agent.fire(t["id"], "answer", answer="带上营业执照到市场监管局窗口办理。")
    token = as_user(client, "agent")
    r = post(client, f"/tickets/{t['id']}/knowledge-draft", token)
    assert r.status_code == 403
    assert_chinese(flash_error(r.text), "只有知识库管理员或承办单位的负责人可以把工单转为知识")
    assert "only editors" not in r.text


def test_a_leader_cannot_publish_an_article_and_is_told_what_only_editors_do(client, district, runtime):
    from hotline.models import Article

    token = as_user(client, "housing_l")
    form = {
        "category": "住房保障/公租房",
        "title": "公租房资格复核",
        "body": "复核须提交最新收入证明。",
        "department": "区住建局",
        "kind": "办事指南",
        "keywords": "公租房",
        "region": "",
        "valid_from": "",
        "valid_until": "",
        "public": "1",
    }
    assert post(client, "/knowledge/new", token, **form).status_code == 303
    with runtime.db.read_session() as s:
        article_id = s.exec(select(Article.id).where(Article.title == "公租房资格复核")).one()
    r = post(client, f"/knowledge/{article_id}/publish", token)
    assert r.status_code == 403
    assert_chinese(flash_error(r.text), "只有知识库管理员可以发布知识条目")
    # Its dates the wrong way round: the form says so by the field, in Chinese.
    dates = {"valid_from": "2026-12-01", "valid_until": "2026-11-01"}
    r = post(client, f"/knowledge/{article_id}/edit", token, **(form | dates), version="1")
    assert r.status_code == 422 and "失效日期早于生效日期" in r.text and "before valid_from" not in r.text


# ---------------------------------------------------------------- a query the page refuses


def test_an_unknown_hotline_number_is_refused_in_chinese(client, district):
    as_user(client, "supervisor")
    r = client.get("/analysis", params={"line": "99999"})
    assert r.status_code == 422
    assert_chinese(error_page(r.text), "没有号码为 99999 的热线")
    assert "no hotline" not in r.text


# ---------------------------------------------------------------- a page's address or form refused


def test_every_part_of_a_pages_address_is_named_in_chinese(settings):
    """What a page says of a value its address or form got wrong ("输入有误：条目号（应为整数）")
    names the part in Chinese: every path and query parameter of every page, and every field
    of the citizens' forms, has its words (hotline.main._FIELDS_ZH)."""
    from hotline.main import _FIELDS_ZH, create_app

    def params(dependant, public: bool):
        yield from dependant.path_params
        yield from dependant.query_params
        if public:
            yield from dependant.body_params
        for sub in dependant.dependencies:
            yield from params(sub, public)

    unnamed, pages = set(), 0
    for route in app_routes(create_app(settings).routes):
        if route.path.startswith(("/api/", "/public/", "/open311/")) or route.include_in_schema:
            continue
        pages += 1
        public = route.path.startswith(("/kb", "/assistant", "/file", "/progress", "/rate/"))
        unnamed |= {f"{route.path} {p.name}" for p in params(route.dependant, public) if p.name not in _FIELDS_ZH}
    assert pages > 50
    assert not unnamed, sorted(unnamed)


def test_a_page_address_with_a_malformed_id_names_it_in_chinese(client, district):
    token = as_user(client, "supervisor")
    assert token
    r = client.get("/tickets/abc")
    assert r.status_code == 422 and error_page(r.text) == "输入有误：工单（应为整数）"
    r = client.get("/kb/abc")
    assert r.status_code == 422 and error_page(r.text) == "输入有误：条目号（应为整数）"


def test_the_sms_code_of_a_citizens_form_is_named_as_such(client, district):
    """`code` is a category's or a department's 编码 on the staff pages; on the citizens' forms
    that send a text message it is the 短信验证码."""
    for path, most in (("/file", 60), ("/assistant/handoff", 20)):
        r = client.post(path, data={"nonce": "x", "code": "1" * 61})
        assert r.status_code == 422 and error_page(r.text) == f"输入有误：短信验证码（不能超过 {most} 个字符）", path
