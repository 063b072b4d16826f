"""The knowledge base's search: callers' plain words against the official guides, the second
ranking, answerable(), the index's counts in a large base, and the import that checks and
writes its rows together (SQLite and PostgreSQL)."""

import json
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select

from hotline.knowledge import articles, index
from hotline.knowledge import search as search_module
from hotline.knowledge.search import answerable, search
from hotline.knowledge.text import _tokenizer, query_concepts, words
from hotline.models import Article, ArticleVersion
from tests.helpers import Api

ROOT = Path(__file__).resolve().parent.parent


def guide(external_id: str, title: str, body: str, category: str, keywords: list[str], department: str, **fields):
    return {
        "external_id": external_id,
        "title": title,
        "body": body,
        "category": category,
        "keywords": keywords,
        "department": department,
        "kind": "办事指南",
        "status": "published",
        **fields,
    }


GUIDES = [
    guide(
        "s-1",
        "社会保障卡挂失",
        "社会保障卡遗失的，应当先办理挂失，防止被他人冒用。可拨打电话临时挂失。",
        "社会保障/社保卡",
        ["社保卡挂失", "临时挂失"],
        "区人社局",
    ),
    guide(
        "s-2",
        "社会保障卡补领",
        "社会保障卡遗失或损坏的，挂失后可申请补领新卡。**收费标准**：工本费20元。",
        "社会保障/社保卡",
        ["社保卡补办", "补卡"],
        "区人社局",
    ),
    guide(
        "m-1",
        "个体工商户注销登记",
        "个体工商户不再经营的，应当办理注销登记，交回营业执照正副本。",
        "市场主体/注销登记",
        ["个体户注销", "门店关闭"],
        "区市场监管局",
    ),
    guide(
        "m-2",
        "个体工商户设立登记",
        "开办个体工商户，应当办理设立登记，领取营业执照。",
        "市场主体/设立登记",
        ["个体户注册", "小店开业"],
        "区市场监管局",
    ),
    guide(
        "m-3",
        "营业执照遗失或损坏补领",
        "营业执照遗失的，应当在国家企业信用信息公示系统发布遗失声明后申请补领。",
        "市场主体/变更登记",
        ["营业执照丢失", "执照补办"],
        "区市场监管局",
    ),
    guide(
        "c-1",
        "最低生活保障申请",
        "家庭人均收入低于当地最低生活保障标准的，可以向户籍所在地街道申请低保。",
        "民政服务/社会救助",
        ["低保", "困难家庭补助"],
        "区民政局",
    ),
    guide(
        "c-2",
        "高龄津贴申领",
        "年满80周岁的老年人可申领高龄津贴，每月发放到本人社会保障卡。",
        "民政服务/养老服务",
        ["高龄补贴", "80岁老人补贴"],
        "区民政局",
    ),
]


@pytest.fixture
def kb(client, district):
    editor = Api(client, district, "editor")
    answer = editor.post("/knowledge/import", {"articles": GUIDES})
    assert (answer["created"], answer["errors"]) == (len(GUIDES), [])
    return editor


def first(runtime, question: str, **options) -> list[str]:
    with runtime.db.read_session() as s:
        return [h.external_id for h in search(s, question, **options)]


def test_callers_plain_words_find_the_official_guide(kb, runtime):
    assert first(runtime, "我那个小店不开了，执照怎么办")[0] == "m-1"  # 不开了: 注销
    assert first(runtime, "想开个小店要办什么")[0] == "m-2"
    assert first(runtime, "执照弄丢了咋整")[0] == "m-3"  # 弄丢: 遗失, 补领
    assert first(runtime, "家里困难能不能吃低保")[0] == "c-1"
    assert first(runtime, "社保卡补办要多少钱")[0] == "s-2"  # 多少钱: 收费标准
    # The near neighbour comes next, not an unrelated guide.
    assert first(runtime, "社保卡补办要多少钱")[1] == "s-1"


def test_a_callers_own_word_counts_more_than_a_synonym_brought_in_for_it():
    (concept,) = [c for c in query_concepts("小店不开了") if c.word == "小店"]
    assert concept.terms["小店"] == 1.0
    assert 0 < concept.terms["个体工商户"] < 1.0
    # Words that say nothing of the question are left out; function words count little.
    assert [c.word for c in query_concepts("我想问一下")] != []  # nothing else is left: kept
    assert "吗" not in [c.word for c in query_concepts("能补办社保卡吗")]


def test_answerable_trusts_a_clear_answer_and_hands_over_the_rest(kb, runtime):
    with runtime.db.read_session() as s:
        hits = search(s, "营业执照丢了怎么补办")
        assert hits[0].external_id == "m-3" and answerable(hits)
        assert hits[0].confidence >= search_module.ANSWER_CONFIDENCE
        assert 0 < hits[0].coverage <= 1 and hits[0].anchor > 0
        assert not answerable(search(s, "明天会不会下雨"))
        assert not answerable(search(s, "我的快递三天了还没到，快递公司不接电话"))
        assert not answerable([])


def test_a_large_base_does_not_look_for_its_common_words_alone(kb, runtime, monkeypatch):
    # A base counts as large from 5 articles on here: 办理 (in three of seven bodies) is
    # then too common to be looked for by itself, and the telling words are looked for first.
    monkeypatch.setattr(search_module, "LARGE_BASE", 5)
    monkeypatch.setattr(search_module, "COMMON_SHARE", 0.3)
    with runtime.db.session() as s:
        index.analyze(s)  # as the import command does: PostgreSQL's statistics are the counts
    with runtime.db.read_session() as s:
        size, share = index.shares(s, ["办理", "低保", "火星"], 0.3)
        assert size == len(GUIDES)
        assert share["火星"] < share["办理"] and share["低保"] <= 0.3 < share["办理"]
    assert first(runtime, "办理低保")[0] == "c-1"
    # A question of common words alone still finds what has them.
    assert first(runtime, "办理") != []
    index._stats.clear()


def test_words_are_cut_block_by_block_as_jieba_cuts_a_whole_text():
    text_ = "**办理条件**：个体工商户不再经营的，应当办理注销登记。咨询电话 8812 3301，或拨打12345！"
    whole = [t.strip() for t in _tokenizer().cut_for_search(text_.lower(), HMM=False)]
    assert words(text_) == [t for t in whole if t and any(c.isalnum() for c in t)]
    assert words(text_) == words(text_)  # again, from what was kept


def test_an_import_checks_its_rows_together_as_one_by_one(kb, runtime):
    rows = [
        guide("n-1", "残疾人证申领", "首次申领残疾人证。", "残疾人服务/残疾人证", ["残疾证"], "区残联"),
        guide("n-2", "残疾人证申领", "同一发文单位同名。", "残疾人服务/残疾人证", ["办残疾证"], "区残联"),
        # s-1 gives up its title, and a later row takes it: in order, both are fine.
        {**GUIDES[0], "title": "社会保障卡临时挂失"},
        guide("n-3", "社会保障卡挂失", "正式挂失。", "社会保障/社保卡", ["正式挂失"], "区人社局"),
        # s-2 takes the title m-1 holds, but in another body: fine; c-2 takes c-1's: refused.
        {**GUIDES[1], "title": "个体工商户注销登记"},
        {**GUIDES[6], "title": "最低生活保障申请"},
        GUIDES[5],  # as it was
    ]
    answer = kb.post("/knowledge/import", {"articles": rows})
    assert (answer["created"], answer["updated"], answer["unchanged"]) == (2, 2, 1)
    errors = {e["index"]: e for e in answer["errors"]}
    assert sorted(errors) == [1, 5]
    assert errors[1]["field"] == "title" and "row 0 of this import" in errors[1]["message"]
    assert errors[5]["field"] == "title" and "external_id c-1" in errors[5]["message"]
    with runtime.db.read_session() as s:
        by_id = {a.external_id: a for a in s.exec(select(Article))}
        assert (by_id["s-1"].title, by_id["s-1"].version) == ("社会保障卡临时挂失", 2)
        assert by_id["n-3"].title == "社会保障卡挂失" and by_id["n-3"].status == "published"
        assert (by_id["c-2"].title, by_id["c-2"].version) == ("高龄津贴申领", 1)
        assert "n-2" not in by_id
        versions = s.exec(select(ArticleVersion).where(ArticleVersion.article_id == by_id["s-1"].id)).all()
        assert [(v.version, v.action, v.fields["title"]) for v in versions] == [
            (1, "import", "社会保障卡挂失"),
            (2, "import", "社会保障卡临时挂失"),
        ]
        (count,) = s.execute(text("select count(*) from knowledge_index")).one()
        assert count == len(by_id)
    # The index follows: the new title is found, the row refused is not.
    assert first(runtime, "临时挂失")[0] == "s-1"
    assert "n-2" not in first(runtime, "残疾人证")


def test_a_refused_batch_is_written_again_row_by_row(kb, runtime, monkeypatch):
    # A title taken meanwhile by another writer (here: a row the database holds whose body
    # the checks did not see, as another transaction's would be) makes the batch's insert
    # fail; the rows are then written one by one and only the refused one is lost.
    with runtime.db.session() as s:
        taken = guide("z-1", "公共租赁住房申请", "公租房。", "住房保障/公租房", ["公租房"], "区住建局")
        articles.create(s, articles.ImportRow.model_validate(taken), None, runtime.now(), status="published")
    rows = [
        guide("z-2", "公共租赁住房申请", "公租房申请。", "住房保障/公租房", ["申请公租房"], "区住建局"),
        guide("z-3", "住房公积金提取", "提取。", "住房保障/公积金", ["公积金"], "区住建局"),
    ]
    with runtime.db.session() as s:
        # The checks ask the database for the titles of the bodies in the batch; hide z-1
        # from them as a concurrent writer's uncommitted row would be.
        original = articles._chunked

        def without_z1(session, stmt, column, values, size=500):
            return [a for a in original(session, stmt, column, values, size) if a.external_id != "z-1"]

        monkeypatch.setattr(articles, "_chunked", without_z1)
        answer = articles.import_rows(s, rows, None, runtime.now())
    assert (answer["created"], [e["index"] for e in answer["errors"]]) == (1, [0])
    assert answer["errors"][0]["field"] == "title"
    assert first(runtime, "公积金提取")[0] == "z-3"


def test_the_corpus_generator_is_deterministic_and_importable():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import knowledge_corpus
    finally:
        sys.path.remove(str(ROOT / "bench"))
    made = list(knowledge_corpus.articles(3000))
    assert made == list(knowledge_corpus.articles(3000))
    assert len({(a["department"], a["title"]) for a in made}) == len(made) == 3000
    assert len({a["external_id"] for a in made}) == 3000
    for a in made[::97]:
        articles.ImportRow.model_validate(json.loads(json.dumps(a, ensure_ascii=False)))
    assert len(knowledge_corpus.queries(50)) == 50
