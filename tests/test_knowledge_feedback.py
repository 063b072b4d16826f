"""Knowledge flowing back: direct answers citing an article, drafts from answered tickets,
flags, knowledge gaps, the owners' expiry warning and the article list (SQLite and PostgreSQL)."""

from datetime import timedelta

import pytest
from sqlmodel import select

from hotline.knowledge import feedback
from hotline.models import Article, KnowledgeGap, Notification
from hotline.scheduler import run_knowledge_expiry
from tests.helpers import Api
from tests.test_knowledge import GUIDES, article


@pytest.fixture
def kb(client, district):
    editor = Api(client, district, "editor")
    rows = [*GUIDES, article("m-9", "内部口径：注销争议", "仅供坐席参考。", status="published", public=False)]
    editor.post("/knowledge/import", {"articles": rows})
    return editor


def article_id(runtime, external_id: str) -> int:
    with runtime.db.read_session() as s:
        return s.exec(select(Article.id).where(Article.external_id == external_id)).one()


def test_a_direct_answer_records_the_article_it_came_from(kb, client, district, runtime):
    agent = Api(client, district, "agent")
    guide = article_id(runtime, "m-1")
    t = agent.create(type="consultation", category="02", content="公司不开了要关掉怎么办")
    answered = agent.fire(t["id"], "answer", answer="请按注销登记指南办理", article=guide)
    assert answered["article_id"] == guide and answered["state"] == "pending_callback"

    # A draft, or an article that does not exist, cannot be cited; nothing changes.
    kb.post("/knowledge/articles", {**article("d-1", "草稿", "未发布"), "external_id": None}, expect=201)
    with runtime.db.read_session() as s:
        draft = s.exec(select(Article.id).where(Article.title == "草稿")).one()
    for bad in (draft, 999_999):
        t2 = agent.create(type="consultation", category="02", content="问个事")
        error = agent.fire(t2["id"], "answer", expect=422, answer="……", article=bad)
        assert error["field"] == "article"
        assert agent.get(f"/tickets/{t2['id']}")["state"] == "registered"
    assert agent.fire(t2["id"], "answer", expect=422, answer="……", article="not a number")["field"] == "article"


def _replied_consultation(client, district, runtime) -> int:
    agent, handler = Api(client, district, "agent"), Api(client, district, "housing_h")
    t = agent.create(type="consultation", category="0101", content="物业费多久可以调一次价？")
    agent.fire(t["id"], "dispatch", department="housing")
    handler.fire(t["id"], "sign")
    handler.fire(t["id"], "reply", result="物业服务收费调整须经业主大会表决，并提前公示。")
    return t["id"]


def test_a_departments_answer_becomes_a_draft_in_one_click(kb, client, district, runtime):
    ticket = _replied_consultation(client, district, runtime)
    leader = Api(client, district, "housing_l")
    draft = leader.post("/knowledge/articles/from-ticket", {"ticket_id": ticket}, expect=201)
    assert draft["status"] == "draft" and draft["public"] is False and draft["kind"] == "常见问题"
    assert draft["department"] == "区住建局" and draft["category"] == "城乡建设/物业管理"
    assert "物业费多久可以调一次价" in draft["body"] and "业主大会表决" in draft["body"]
    # Once per ticket, naming the draft.
    again = kb.post("/knowledge/articles/from-ticket", {"ticket_id": ticket}, expect=409)
    assert str(draft["id"]) in again["detail"]
    # Another department's leader does not see the ticket; an agent may not draft.
    other = Api(client, district, "agent")
    other.post("/knowledge/articles/from-ticket", {"ticket_id": ticket}, expect=403)
    # A complaint's handling is no article; an unknown ticket is 404.
    complaint = Api(client, district, "agent").create()
    kb.post("/knowledge/articles/from-ticket", {"ticket_id": complaint["id"]}, expect=409)
    kb.post("/knowledge/articles/from-ticket", {"ticket_id": 2**31 - 1}, expect=404)
    kb.post("/knowledge/articles/from-ticket", {"ticket_id": 2**31}, expect=422)


def test_staff_and_citizens_flag_articles_for_the_editors(kb, client, district, runtime):
    agent = Api(client, district, "agent")
    guide, internal = article_id(runtime, "m-1"), article_id(runtime, "m-9")
    agent.post(f"/knowledge/articles/{guide}/flags", {"reason": "outdated", "comment": "简易注销已改"}, expect=201)
    agent.post(f"/knowledge/articles/{internal}/flags", {"reason": "unhelpful"}, expect=201)
    assert agent.post(f"/knowledge/articles/{guide}/flags", {"reason": "boring"}, expect=422)["field"] == "reason"
    # Citizens flag public articles only, without a token.
    r = client.post(f"/public/v1/knowledge/{guide}/flags", json={"reason": "wrong"})
    assert r.status_code == 201, r.text
    assert client.post(f"/public/v1/knowledge/{internal}/flags", json={"reason": "wrong"}).status_code == 404
    # Only editors read the list; most flagged first.
    agent.get("/knowledge/flags", expect=403)
    listed = kb.get("/knowledge/flags")["articles"]
    assert [(a["id"], a["count"]) for a in listed] == [(guide, 2), (internal, 1)]
    assert {f["source"] for f in listed[0]["flags"]} == {"agent", "citizen"}
    assert kb.post(f"/knowledge/articles/{guide}/flags/resolve", {})["resolved"] == 2
    assert [a["id"] for a in kb.get("/knowledge/flags")["articles"]] == [internal]


def test_gaps_count_the_same_question_in_other_words_as_one(kb, runtime):
    with runtime.db.session() as s:
        first = feedback.record_gap(s, "社保卡怎么补办？", source="agent", at=runtime.now())
        feedback.record_gap(s, "怎么 补办 社保卡", source="assistant", at=runtime.now())
        feedback.record_gap(s, "社保卡怎么补办", source="assistant", at=runtime.now() + timedelta(minutes=1))
        other = feedback.record_gap(s, "养犬登记在哪里办", source="agent", at=runtime.now())
        assert feedback.record_gap(s, "？？ 。。", source="agent", at=runtime.now()) is None
    assert first != other
    listed = kb.get("/knowledge/gaps")
    assert listed["total"] == 2
    top = listed["gaps"][0]
    assert (top["id"], top["asked"], top["by_agents"], top["by_assistant"]) == (first, 3, 1, 2)
    guide = article_id(runtime, "m-1")
    closed = kb.post(f"/knowledge/gaps/{first}/close", {"article_id": guide})
    assert closed["closed_at"] and closed["article_id"] == guide
    kb.post(f"/knowledge/gaps/{first}/close", {}, expect=409)
    assert [g["id"] for g in kb.get("/knowledge/gaps")["gaps"]] == [other]
    assert [g["id"] for g in kb.get("/knowledge/gaps", closed=True)["gaps"]] == [first]
    # Asked again: open again.
    with runtime.db.session() as s:
        feedback.record_gap(s, "补办社保卡怎么办", source="agent", at=runtime.now())
    assert first in [g["id"] for g in kb.get("/knowledge/gaps")["gaps"]]


def test_gaps_asked_at_once_are_all_counted(kb, runtime):
    from concurrent.futures import ThreadPoolExecutor

    def ask(_):
        with runtime.db.session() as s:
            feedback.record_gap(s, "电动车上牌去哪里", source="assistant", at=runtime.now())

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(ask, range(16)))
    with runtime.db.read_session() as s:
        gap = s.exec(select(KnowledgeGap)).one()
    assert (gap.asked, gap.by_assistant) == (16, 16)


def test_owners_are_warned_once_fifteen_days_before_expiry(kb, runtime):
    today = runtime.now().astimezone(feedback.articles.LOCAL_TZ).date()
    soon, later = today + timedelta(days=15), today + timedelta(days=16)
    with runtime.db.session() as s:
        for external_id, until in (("m-1", soon), ("m-2", later), ("h-1", soon)):
            a = s.exec(select(Article).where(Article.external_id == external_id)).one()
            a.valid_until = until
            s.add(a)
    run_knowledge_expiry(runtime)
    run_knowledge_expiry(runtime)  # once only
    with runtime.db.read_session() as s:
        notes = s.exec(select(Notification).where(Notification.kind == "knowledge_expiry")).all()
    assert sorted(n.title for n in notes) == [
        "知识条目《企业注销登记办事指南》将于15天后失效",
        "知识条目《住房公积金提取指南》将于15天后失效",
    ]
    assert all(n.role == "leader" and n.department_id for n in notes)
    # The day moves: warned again for the new day.
    with runtime.db.session() as s:
        a = s.exec(select(Article).where(Article.external_id == "m-1")).one()
        a.valid_until = today + timedelta(days=3)
        s.add(a)
    run_knowledge_expiry(runtime)
    with runtime.db.read_session() as s:
        titles = s.exec(select(Notification.title).where(Notification.kind == "knowledge_expiry")).all()
    assert "知识条目《企业注销登记办事指南》将于3天后失效" in titles and len(titles) == 3


def test_the_article_list_by_role(kb, client, district, runtime):
    kb.post("/knowledge/articles", article("d-2", "住建草稿", "未发布", department="housing"), expect=201)
    everything = kb.get("/knowledge/articles", per_page=100)
    assert everything["total"] == len(GUIDES) + 2 and "body" not in everything["articles"][0]
    assert kb.get("/knowledge/articles", status="draft")["total"] == 1
    assert kb.get("/knowledge/articles", category="市场监管")["total"] == 5
    assert kb.get("/knowledge/articles", category="市场监")["total"] == 0  # whole names only
    agent = Api(client, district, "agent")
    assert agent.get("/knowledge/articles")["total"] == len(GUIDES) + 1  # published only
    agent.get("/knowledge/articles", status="draft", expect=403)
    leader = Api(client, district, "housing_l")
    drafts = leader.get("/knowledge/articles", status="draft")["articles"]
    assert [a["title"] for a in drafts] == ["住建草稿"]
    kb.get("/knowledge/articles", page=10**6, expect=422)
