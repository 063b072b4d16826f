"""The knowledge base: articles, their lifecycle and versions, import, search (SQLite and PostgreSQL)."""

import pytest
from sqlalchemy import text
from sqlmodel import select

from hotline.knowledge import articles
from hotline.knowledge.search import search
from hotline.models import Article
from tests.helpers import Api


def article(external_id: str, title: str, body: str, **fields):
    return {
        "external_id": external_id,
        "title": title,
        "body": body,
        "category": "市场监管/企业登记",
        "keywords": ["企业"],
        "department": "market",
        "kind": "办事指南",
        **fields,
    }


GUIDES = [
    article(
        "m-1",
        "企业注销登记办事指南",
        "企业决定解散的，应当在清算结束后申请**注销登记**，交回营业执照。",
        keywords="注销,营业执照",
        status="published",
    ),
    article(
        "m-2",
        "企业名称变更登记",
        "企业变更名称、住所、法定代表人的，应当申请变更登记。",
        keywords=["变更登记"],
        status="published",
    ),
    article(
        "m-3",
        "食品经营许可证办理",
        "从事食品销售和餐饮服务，应当依法取得食品经营许可证。收费标准：不收费。",
        category="市场监管/食品安全",
        keywords=["食品经营许可"],
        status="published",
    ),
    article(
        "h-1",
        "住房公积金提取指南",
        "购买自住住房的，可以申请提取住房公积金。",
        category="住房保障/公积金",
        department="housing",
        kind="常见问题",
        status="published",
    ),
]


@pytest.fixture
def kb(client, district):
    editor = Api(client, district, "editor")
    answer = editor.post("/knowledge/import", {"articles": GUIDES})
    assert (answer["created"], answer["updated"], answer["errors"]) == (len(GUIDES), 0, [])
    return editor


def ids(hits) -> list[str]:
    return [h["external_id"] for h in hits["results"]]


def test_import_upserts_by_external_id_and_lists_bad_rows(kb, runtime):
    rows = [
        article("m-1", "企业注销登记办事指南", "新的正文：简易注销。", keywords="注销"),  # changed
        {**GUIDES[1], "status": None},  # as it was
        article("x-1", "标题", "正文", kind="小道消息"),  # kind unknown
        article("x-2", "另一篇", "正文", valid_from="2026-12-01", valid_until="2026-01-01"),  # dates backwards
        article("x-3", "企业名称变更登记", "同一发文单位的同名文章"),  # title taken
        article("x-4", "有效的新文章", "正文", valid_until="2026-13-45"),  # no such date
        article("x-5", "新的一篇", "正文内容"),  # fine
        {"title": "没有外部编号", "body": "b", "category": "c", "department": "d", "kind": "办事指南"},
        article("h-1", "企业名称变更登记", "公积金换个标题，与 m-2 同名", department="market"),  # title taken
    ]
    answer = kb.post("/knowledge/import", {"articles": rows})
    assert (answer["created"], answer["updated"], answer["unchanged"]) == (1, 1, 1)
    errors = {e["index"]: e for e in answer["errors"]}
    assert sorted(errors) == [2, 3, 4, 5, 7, 8]
    assert errors[2]["field"] == "kind"
    assert "valid_until is before valid_from" in errors[3]["message"]
    assert errors[4]["field"] == "title" and "article 2" in errors[4]["message"]
    assert errors[5]["field"] == "valid_until"
    assert errors[7]["field"] == "external_id"
    assert errors[8]["field"] == "title" and "article 2" in errors[8]["message"]
    with runtime.db.read_session() as s:
        titles = {a.external_id: (a.title, a.status, a.version) for a in s.exec(select(Article))}
    # A row without a status keeps the article's; the edit made version 2.
    assert titles["m-1"] == ("企业注销登记办事指南", "published", 2)
    assert titles["x-5"] == ("新的一篇", "draft", 1)
    assert "x-3" not in titles and "x-1" not in titles
    # The refused update of h-1 left it whole.
    assert titles["h-1"] == ("住房公积金提取指南", "published", 1)
    assert ids(kb.get("/knowledge/search", q="公积金")) == ["h-1"]
    # Too many rows at once.
    kb.post("/knowledge/import", {"articles": [{}] * 1001}, expect=422)


def test_callers_words_find_the_official_guide(kb):
    assert ids(kb.get("/knowledge/search", q="公司不开了要关掉咋办"))[0] == "m-1"
    assert ids(kb.get("/knowledge/search", q="公司名字想改一下"))[0] == "m-2"
    assert ids(kb.get("/knowledge/search", q="开饭店要办什么证"))[0] == "m-3"
    assert ids(kb.get("/knowledge/search", q="卖吃的多少钱"))[0] == "m-3"
    # The title weighs most: 注销 in m-1's title.
    hit = kb.get("/knowledge/search", q="注销")["results"][0]
    assert hit["external_id"] == "m-1" and hit["score"] > 0
    assert "<mark>注销</mark>" in hit["snippet"] and "**" not in hit["snippet"]
    assert kb.get("/knowledge/search", q="火星移民签证")["results"] == []


def test_filters(kb):
    assert ids(kb.get("/knowledge/search", q="企业 公积金 食品", category="市场监管")) != []
    assert set(ids(kb.get("/knowledge/search", q="企业 公积金 食品", category="市场监管"))) <= {"m-1", "m-2", "m-3"}
    assert ids(kb.get("/knowledge/search", q="企业 公积金 食品", category="市场监管/食品安全")) == ["m-3"]
    # A prefix is a whole name: 市场 is no category of these.
    assert ids(kb.get("/knowledge/search", q="企业 公积金 食品", category="市场")) == []
    assert ids(kb.get("/knowledge/search", q="企业 公积金 食品", kind="常见问题")) == ["h-1"]
    assert ids(kb.get("/knowledge/search", q="企业 公积金 食品", department="housing")) == ["h-1"]
    assert len(ids(kb.get("/knowledge/search", q="企业 公积金 食品", limit=2))) == 2


def test_bad_questions_are_refused_saying_why(kb, client):
    for q, why in (("", "empty"), ("   ", "empty"), ("问" * 2000, "longer than 200")):
        r = client.get("/public/v1/knowledge/search", params={"q": q})
        assert r.status_code == 422 and why in r.json()["detail"] and r.json()["field"] == "q"
        kb.get("/knowledge/search", expect=422, q=q)


def test_index_follows_each_change_in_the_same_transaction(kb, runtime, district, database):
    from hotline.workflow.engine import Actor

    editor = Actor(district.user_ids["editor"], "editor", "editor")
    # An edit that fails (its transaction rolls back) leaves the index as it was.
    with pytest.raises(RuntimeError), runtime.db.session() as s:
        articles.update(s, 4, articles.ArticlePatch(title="住房公积金贷款办理"), editor, runtime.now())
        assert [h.external_id for h in search(s, "贷款", all_statuses=True)] == ["h-1"]
        raise RuntimeError("rolled back")
    assert ids(kb.get("/knowledge/search", q="贷款")) == []
    kb.post("/knowledge/articles/4/transitions", {"action": "retire"}, expect=200)
    assert ids(kb.get("/knowledge/search", q="公积金")) == []
    assert ids(kb.get("/knowledge/search", q="公积金", all="true")) == ["h-1"]
    kb.client.patch("/api/v1/knowledge/articles/4", headers=kb.headers, json={"title": "住房公积金贷款办理"})
    assert ids(kb.get("/knowledge/search", q="贷款", all="true")) == ["h-1"]
    assert ids(kb.get("/knowledge/search", q="提取", all="true")) == ["h-1"]  # the body still says 提取
    # The old title's words left the index: 指南 is now only in m-1's title.
    assert ids(kb.get("/knowledge/search", q="指南", all="true")) == ["m-1"]
    with runtime.db.read_session() as s:
        (count,) = s.execute(text("select count(*) from knowledge_index")).one()
    assert count == len(GUIDES)
    versions = kb.get("/knowledge/articles/4/versions")
    assert [(v["version"], v["action"], v["by"]) for v in versions] == [
        (1, "import", "editor"),
        (2, "retire", "editor"),
        (3, "edit", "editor"),
    ]
    assert versions[-1]["fields"]["title"] == "住房公积金贷款办理"


def test_public_side_shows_only_published_public_valid_articles(kb, client, runtime):
    rows = [
        article("p-draft", "注销草稿", "注销", status="draft"),
        article("p-review", "注销审核中", "注销", status="under_review"),
        article("p-internal", "注销内部口径", "注销", status="published", public=False),
        article("p-retired", "注销已废止", "注销", status="retired"),
        article("p-expired", "注销已过期", "注销", status="published", valid_until="2026-10-31"),
        article("p-future", "注销未生效", "注销", status="published", valid_from="2026-12-01"),
    ]
    assert kb.post("/knowledge/import", {"articles": rows})["errors"] == []
    r = client.get("/public/v1/knowledge/search", params={"q": "注销", "limit": 50})
    assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=300"
    assert [h["title"] for h in r.json()["results"]] == ["企业注销登记办事指南"]
    assert "external_id" not in r.json()["results"][0]
    staff = {h["title"] for h in kb.get("/knowledge/search", q="注销", limit=50)["results"]}
    assert {"注销内部口径", "注销已过期", "企业注销登记办事指南"} <= staff and "注销草稿" not in staff
    with runtime.db.read_session() as s:
        hidden = {a.id for a in s.exec(select(Article)) if a.external_id.startswith("p-")}
    for article_id in hidden:
        assert client.get(f"/public/v1/knowledge/{article_id}").status_code == 404
    assert client.get("/public/v1/knowledge/999").status_code == 404
    r = client.get("/public/v1/knowledge/1")
    assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=300"
    assert "<strong>注销登记</strong>" in r.json()["body_html"] and "status" not in r.json()


def test_html_in_a_body_is_shown_as_text(kb, client):
    body = '<script>alert("x")</script><img src=x onerror=alert(1)> [点我](javascript:alert(1)) 注销'
    kb.post("/knowledge/import", {"articles": [article("s-1", "脚本测试", body, status="published")]})
    hit = [h for h in kb.get("/knowledge/search", q="脚本测试")["results"] if h["external_id"] == "s-1"][0]
    assert "<script" not in hit["snippet"] and "&lt;script&gt;" in hit["snippet"]
    page = client.get("/public/v1/knowledge/5").json()["body_html"]
    assert "<script" not in page and "<img" not in page and "&lt;script&gt;" in page
    assert 'href="javascript' not in page


def test_title_conflict_names_the_other_article(kb):
    other = kb.post("/knowledge/articles", article(None, "企业注销登记办事指南", "别的正文"), expect=409)
    assert other["field"] == "title" and other["article_id"] == 1 and "article 1 (external_id m-1)" in other["detail"]
    # The department's name is the same issuing body as its code.
    kb.post("/knowledge/articles", article(None, "企业注销登记办事指南", "x", department="区市场监管局"), expect=409)
    # Another issuing body may use the title.
    kb.post("/knowledge/articles", article(None, "企业注销登记办事指南", "x", department="区税务局"), expect=201)
    kb.post("/knowledge/articles", article(None, "日期", "x", valid_until="2026-02-30"), expect=422)
    r = kb.client.patch("/api/v1/knowledge/articles/2", headers=kb.headers, json={"title": "企业注销登记办事指南"})
    assert r.status_code == 409 and r.json()["article_id"] == 1


def test_roles(kb, client, district):
    agent, leader, handler = (Api(client, district, u) for u in ("agent", "housing_l", "housing_h"))
    # Agents read; only editors and administrators import.
    assert ids(agent.get("/knowledge/search", q="公积金")) == ["h-1"]
    agent.get("/knowledge/search", expect=403, q="公积金", all="true")
    for caller in (agent, leader, handler):
        caller.post("/knowledge/import", {"articles": []}, expect=403)
    Api(client, district, "admin").post("/knowledge/import", {"articles": []})
    assert client.get("/api/v1/knowledge/search", params={"q": "公积金"}).status_code == 401
    # A leader writes drafts of its own department and submits them; the editor publishes.
    draft = leader.post("/knowledge/articles", article(None, "公积金贷款", "贷款", department="housing"), expect=201)
    assert draft["status"] == "draft"
    leader.post("/knowledge/articles", article(None, "别家的", "x", department="market"), expect=403)
    handler.post("/knowledge/articles", article(None, "承办人", "x", department="housing"), expect=403)
    leader.post("/knowledge/articles/1/transitions", {"action": "submit"}, expect=403)  # market's article
    agent.get(f"/knowledge/articles/{draft['id']}", expect=404)
    assert leader.get(f"/knowledge/articles/{draft['id']}")["title"] == "公积金贷款"
    assert leader.post(f"/knowledge/articles/{draft['id']}/transitions", {"action": "submit"})["status"] == (
        "under_review"
    )
    leader.post(f"/knowledge/articles/{draft['id']}/transitions", {"action": "publish"}, expect=403)
    r = client.patch(f"/api/v1/knowledge/articles/{draft['id']}", headers=leader.headers, json={"body": "改"})
    assert r.status_code == 409  # under review: the editors' now
    kb.post(f"/knowledge/articles/{draft['id']}/transitions", {"action": "return"})
    kb.post(f"/knowledge/articles/{draft['id']}/transitions", {"action": "retire"}, expect=409)
    assert kb.post(f"/knowledge/articles/{draft['id']}/transitions", {"action": "publish"})["status"] == "published"
    assert ids(agent.get("/knowledge/search", q="贷款")) == [None]


def test_expired_articles_retire(kb, runtime):
    from tests.conftest import local

    row = article("e-1", "限时政策", "补贴", status="published", valid_until="2026-11-30")
    kb.post("/knowledge/import", {"articles": [row]})
    with runtime.db.session() as s:
        assert articles.retire_expired(s, local(2026, 11, 30, 23, 0)) == 0
        assert articles.retire_expired(s, local(2026, 12, 1, 0, 5)) == 1
    assert ids(kb.get("/knowledge/search", q="补贴")) == []
    assert kb.get("/knowledge/articles/5/versions")[-1]["action"] == "expire"


def test_the_scheduler_retires_expired_articles_by_itself(kb, runtime, clock):
    from hotline.scheduler import build_scheduler, run_knowledge_expiry
    from tests.conftest import local

    assert build_scheduler(runtime).get_job("knowledge_expiry") is not None
    row = article("e-2", "限时补贴", "补贴", status="published", valid_until="2026-11-30")
    kb.post("/knowledge/import", {"articles": [row]})
    assert ids(kb.get("/knowledge/search", q="补贴")) == ["e-2"]
    clock.set(local(2026, 12, 1, 0, 5))
    run_knowledge_expiry(runtime)
    assert ids(kb.get("/knowledge/search", q="补贴")) == []


def test_the_command_imports_a_json_lines_file_in_batches(database, tmp_path, monkeypatch, capsys):
    import json

    from hotline.cli import main
    from hotline.config import get_settings

    monkeypatch.setenv("HOTLINE_DATABASE_URL", database.url)
    monkeypatch.setattr(articles, "MAX_IMPORT", 2)  # batches of two
    rows = [json.dumps(article(f"f-{i}", f"第{i}篇", "注销正文", status="published")) for i in range(5)]
    rows[3] = json.dumps(article("f-3", "", "x"))
    path = tmp_path / "articles.jsonl"
    path.write_text("\n".join([*rows[:2], "", "{not json", *rows[2:]]) + "\n", encoding="utf-8")
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit):
            main(["knowledge", "import", str(path)])
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr()
    assert out.out.strip() == "created 4, updated 0, unchanged 0, errors 2"
    assert "line 4: line: not JSON" in out.err and "line 6: title:" in out.err
    with database.read_session() as s:
        assert len(search(s, "注销", limit=10)) == 4


def test_an_import_may_be_larger_than_other_bodies(kb, client):
    rows = [article(f"big-{i}", f"大文件第{i}篇", "养老保险" * 200) for i in range(100)]
    answer = kb.post("/knowledge/import", {"articles": rows})
    assert (answer["created"], answer["errors"]) == (100, [])
    # Elsewhere the usual limit holds.
    r = client.post("/api/v1/knowledge/articles", headers=kb.headers, json=rows[0] | {"body": "长" * 70000})
    assert r.status_code == 413


def test_reindex_writes_every_articles_words_again(kb, runtime):
    from hotline.knowledge.index import rebuild

    with runtime.db.read_session() as s:
        guide = s.exec(select(Article).where(Article.external_id == "m-1")).one()
    column = "rowid" if runtime.db.is_sqlite else "article_id"
    with runtime.db.session() as s:  # an index left behind (words cut another way, or lost)
        s.execute(text(f"DELETE FROM knowledge_index WHERE {column} = :id"), {"id": guide.id})
    with runtime.db.read_session() as s:
        assert "m-1" not in [h.external_id for h in search(s, "注销登记")]
    assert rebuild(runtime.db, batch=2) == len(GUIDES)
    with runtime.db.read_session() as s:
        assert search(s, "注销登记")[0].external_id == "m-1"
