"""The assistant (智能客服) through its public API, on SQLite and PostgreSQL: answers quoted from
published public articles with links, the hand-over when there is no answer it trusts
(a knowledge gap counted, a web ticket filed with the conversation), bad input, rate
limits, and the optional language model, served for real on loopback."""

import re
import time

import pytest
from sqlmodel import select

from hotline import filing
from hotline.directory import create_place
from hotline.knowledge import assistant
from hotline.models import Article, Message, Ticket, TicketEvent
from hotline.runtime import RateLimiter
from tests.helpers import Api
from tests.llm_server import FakeModel


def article(external_id: str, title: str, body: str, **fields):
    return {
        "external_id": external_id,
        "title": title,
        "body": body,
        "category": "社会保障/社保卡",
        "keywords": [],
        "department": "区人社局",
        "kind": "办事指南",
        "status": "published",
        **fields,
    }


SOCIAL_CARD = """社会保障卡（社保卡）丢失、损坏或信息有误的，可以申请补办。

## 所需材料

- 本人有效身份证件
- 近期一寸白底照片

## 办理地点

区政务服务中心一楼社保窗口，工作日上午9:00至下午5:00；也可以在“青山人社”公众号上申请补办，邮寄到家。

## 收费标准

补办社保卡不收取费用。"""

ARTICLES = [
    article("a-card", "社会保障卡补办", SOCIAL_CARD, keywords=["社保卡", "补办"]),
    article(
        "a-close",
        "企业注销登记办事指南",
        "企业决定解散的，应当在清算结束后申请**注销登记**，交回营业执照。简易注销公示期为20天。",
        category="市场监管/企业登记",
        keywords=["注销", "营业执照"],
        department="区市场监管局",
    ),
    article(
        "a-fund",
        "住房公积金提取指南",
        "购买自住住房的，可以申请提取住房公积金。提取须本人身份证和购房合同。",
        category="住房保障/公积金",
        kind="常见问题",
    ),
    # What the public side must never show: an internal article, a draft, an expired one.
    article(
        "x-internal",
        "养犬登记内部口径",
        "养犬登记：内部口径，先收费再登记，不对外公开。",
        category="城市管理/养犬",
        public=False,
    ),
    article(
        "x-draft",
        "养犬登记办事指南",
        "养犬登记需带犬只免疫证明，草稿尚未发布。",
        category="城市管理/养犬",
        status="draft",
    ),
    article(
        "x-expired",
        "老年人乘车卡办理",
        "年满65周岁的老年人可以申请办理老年人乘车卡。",
        category="交通出行/乘车",
        valid_until="2026-10-31",
    ),
]
HIDDEN = ("养犬登记内部口径", "养犬登记办事指南", "老年人乘车卡办理")


@pytest.fixture
def kb(client, district):
    editor = Api(client, district, "editor")
    answer = editor.post("/knowledge/import", {"articles": ARTICLES})
    assert (answer["created"], answer["errors"]) == (len(ARTICLES), [])
    return editor


def ask(client, question, expect=200):
    r = client.post("/public/v1/assistant", json={"question": question})
    assert r.status_code == expect, r.text
    return r.json()


def ids_by_title(runtime) -> dict[str, int]:
    with runtime.db.read_session() as s:
        return {a.title: a.id for a in s.exec(select(Article))}


# ------------------------------------------------------------------ answers


def test_a_trusted_answer_quotes_the_best_article_and_links_it(kb, client, runtime):
    r = client.post("/public/v1/assistant", json={"question": "社保卡丢了怎么补办"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    reply = r.json()
    card = ids_by_title(runtime)["社会保障卡补办"]
    assert reply["handoff"] is False and reply["source"] == "passage" and reply["next_steps"] == []
    assert reply["articles"][0] == {"id": card, "title": "社会保障卡补办", "url": f"/kb/{card}"}
    assert len(reply["articles"]) <= assistant.MAX_ARTICLES
    # The answer names its article and quotes its body: nothing else.
    assert reply["answer"].startswith("根据《社会保障卡补办》：\n")
    quoted = reply["answer"].split("\n", 1)[1]
    assert "丢失、损坏或信息有误的，可以申请补办" in quoted
    assert len(quoted) <= assistant.MAX_PASSAGE_CHARS
    for line in quoted.splitlines():
        assert line.rstrip("：") in SOCIAL_CARD.replace("- ", "").replace("## ", "")


def test_the_passage_is_the_part_that_answers_the_question(kb, client):
    materials = ask(client, "补办社保卡要带什么材料")["answer"]
    assert "所需材料：" in materials and "本人有效身份证件" in materials and "一寸白底照片" in materials
    assert "不收取费用" not in materials  # the section after the next heading is left out
    place = ask(client, "社保卡在哪里补办")["answer"]
    assert "办理地点：\n区政务服务中心一楼社保窗口" in place and "身份证件" not in place
    # An opening too short to answer goes on into the next section.
    lost = ask(client, "社保卡丢了怎么补办")["answer"]
    assert "可以申请补办。\n所需材料：\n本人有效身份证件" in lost and "不收取费用" not in lost
    fee = ask(client, "补办社保卡要多少钱")["answer"]
    assert "补办社保卡不收取费用" in fee and "身份证件" not in fee


def test_plain_words_find_the_official_guide(kb, client):
    reply = ask(client, "公司不开了要关掉")
    assert reply["handoff"] is False and reply["articles"][0]["title"] == "企业注销登记办事指南"
    assert "注销登记" in reply["answer"] and "**" not in reply["answer"]
    # The words of asking (能不能) are no words of the matter, nor the words inside them (不能).
    fund = ask(client, "买房能不能取公积金")
    assert fund["handoff"] is False and fund["articles"][0]["title"] == "住房公积金提取指南"


def test_no_trusted_answer_hands_over_and_counts_a_gap(kb, client, district):
    r = client.post("/public/v1/assistant", json={"question": "我家楼下的狗太吵了怎么办"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    reply = r.json()
    assert reply["handoff"] is True and reply["articles"] == [] and reply["source"] is None
    assert "没有" in reply["answer"] and "12345" in reply["answer"]
    assert [s["action"] for s in reply["next_steps"]] == ["call", "file"]
    assert reply["next_steps"][0]["phone"] == "12345"
    assert reply["next_steps"][1]["url"] == "/public/v1/assistant/handoff"
    # A word of the question the base has (住房) is not enough: most of them must be covered.
    partly = ask(client, "住房漏水楼上不管怎么办")
    assert partly["handoff"] is True
    ask(client, "请问我家楼下的狗太吵了怎么办？")  # the same gap in other words
    gaps = Api(client, district, "editor").get("/knowledge/gaps")["gaps"]
    noise = [g for g in gaps if "狗" in g["question"]]
    assert len(noise) == 1 and noise[0]["by_assistant"] == 2 and noise[0]["by_agents"] == 0


def test_drafts_internal_and_expired_articles_never_answer(kb, client, district):
    for question in ("养犬登记要带什么", "养犬登记内部口径", "老年人乘车卡怎么办理"):
        reply = ask(client, question)
        assert reply["handoff"] is True, question
        text = str(reply)
        assert not any(title in text for title in HIDDEN) and "内部口径，先收费" not in text
    # Staff still find the internal article: the public side is what leaves it out.
    staff = Api(client, district, "agent").get("/knowledge/search", q="养犬登记")["results"]
    assert staff[0]["title"] == "养犬登记内部口径"


def test_the_hotline_number_is_a_setting(kb, client, runtime):
    runtime.settings = runtime.settings.model_copy(update={"phone": "0571-12345"})
    reply = ask(client, "我家楼下的狗太吵了怎么办")
    assert "0571-12345" in reply["answer"] and reply["next_steps"][0]["phone"] == "0571-12345"


@pytest.mark.parametrize(
    ("question", "says"),
    [
        ("", "question: empty"),
        ("   \n ", "question: empty"),
        ("问" * 201, "question: longer than 200 characters"),
        ("问" * 2000, "question: longer than 200 characters"),
        ("社保卡\x00补办", "question: control character U+0000 is not allowed"),
        ("社保卡\x1b[31m补办", "question: control character U+001B is not allowed"),
    ],
)
def test_bad_questions_are_refused_saying_why(kb, client, question, says):
    body = ask(client, question, expect=422)
    assert body["field"] == "question" and body["detail"].startswith(says) and body["zh"]


def test_malformed_question_bodies_are_422_naming_the_field(client):
    for body, field in (({}, "question"), ({"question": 5}, "question"), ({"question": "a", "x": 1}, "x")):
        r = client.post("/public/v1/assistant", json=body)
        assert r.status_code == 422 and r.json()["field"] == field, r.text
    r = client.post("/public/v1/assistant", json={"question": "问" * 2001})
    assert r.status_code == 422 and r.json()["field"] == "question"


# ------------------------------------------------------------------ the hand-over

CONVERSATION = [
    {"role": "citizen", "text": "我家楼下的狗太吵了怎么办"},
    {"role": "assistant", "text": "抱歉，知识库里没有能确切回答这个问题的内容。"},
]


CODE = re.compile(r"验证码是(\d{6})")


def code_for(client, phone: str) -> str:
    """A code asked for the phone, as the citizen reads it in the text message."""
    r = client.post("/public/v1/assistant/handoff/code", json={"caller_phone": phone})
    assert r.status_code == 202, r.text
    digits = re.sub(r"\D", "", phone)
    with client.app.state.runtime.db.read_session() as s:  # `to` is sealed: compared once opened
        message = next(m for m in s.exec(select(Message).order_by(Message.id.desc())) if m.to == digits)
    return CODE.search(message.body).group(1)


def hand_over(client, expect=201, code=None, **fields):
    """The hand-over through the API, with a code asked for the phone first when it is to
    succeed (a refusal that comes before the code is checked needs none)."""
    body = {
        "content": "楼下邻居养的狗每天夜里叫，影响休息",
        "conversation": CONVERSATION,
        "caller_phone": "138 1234 5678",
        "caller_name": "李阿姨",
        **fields,
    }
    if code is None:
        code = code_for(client, body["caller_phone"]) if expect == 201 else "000000"
    r = client.post("/public/v1/assistant/handoff", json={**body, "code": code})
    assert r.status_code == expect, r.text
    return r


def test_the_hand_over_files_a_web_ticket_waiting_for_dispatch(kb, client, district, runtime):
    r = hand_over(client)
    assert r.headers["cache-control"] == "no-store"
    filed = r.json()
    assert filed["state"] == "registered"
    # The number is its own field, said once by whoever shows it: not again in the message.
    assert filed["message"] == assistant.FILED_MESSAGE and filed["number"] not in filed["message"]
    agent = Api(client, district, "agent")
    waiting = agent.get("/tickets", state="registered")
    found = [t for t in waiting["items"] if t["number"] == filed["number"]]
    assert len(found) == 1
    with runtime.db.read_session() as s:
        ticket = s.exec(select(Ticket).where(Ticket.number == filed["number"])).one()
        created = s.exec(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)).one()
    assert (ticket.channel, ticket.type, ticket.state, ticket.category_id) == (
        "web",
        "consultation",
        "registered",
        None,
    )
    assert ticket.caller_phone == "13812345678" and ticket.caller_name == "李阿姨" and not ticket.anonymous
    assert ticket.title == "楼下邻居养的狗每天夜里叫，影响休息"
    assert ticket.content == (
        "楼下邻居养的狗每天夜里叫，影响休息\n\n【智能客服对话记录】\n"
        "市民：我家楼下的狗太吵了怎么办\n智能客服：抱歉，知识库里没有能确切回答这个问题的内容。"
    )
    assert ticket.source_details == {
        "assistant": {"question": "楼下邻居养的狗每天夜里叫，影响休息", "conversation": CONVERSATION}
    }
    assert created.event == "create" and created.actor_role == "citizen" and created.details["via"] == "assistant"
    assert created.details["channel"] == "web"
    # The agent dispatches it as any other.
    agent.fire(ticket.id, "dispatch", department="urban")


def test_the_hand_over_takes_a_mobile_and_the_districts_places(kb, client, runtime):
    with runtime.db.session() as s:
        create_place(s, street="东城街道", community="和平社区")
        create_place(s, street="西城街道")
    # A code goes to a mobile phone only: a landline cannot be proved.
    body = hand_over(client, expect=422, caller_phone="0571-8765 4321").json()
    assert body["field"] == "caller_phone" and body["zh"] == "验证码只能发送到手机，请填写11位手机号码"
    refused = client.post("/public/v1/assistant/handoff/code", json={"caller_phone": "0571-8765 4321"})
    assert refused.status_code == 422 and refused.json()["field"] == "caller_phone"
    number = hand_over(client, caller_phone="139 1234 5678", street="东城街道", community="和平社区").json()["number"]
    with runtime.db.read_session() as s:
        ticket = s.exec(select(Ticket).where(Ticket.number == number)).one()
    assert (ticket.caller_phone, ticket.street, ticket.community) == ("13912345678", "东城街道", "和平社区")
    body = hand_over(client, expect=422, street="南城街道").json()
    assert body["field"] == "street" and "南城街道" in body["detail"]
    body = hand_over(client, expect=422, street="西城街道", community="和平社区").json()
    assert body["field"] == "community"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"caller_phone": ""}, "caller_phone"),
        ({"caller_phone": "12345"}, "caller_phone"),
        ({"caller_phone": "2381234567"}, "caller_phone"),
        ({"caller_phone": "1381234567a"}, "caller_phone"),
        ({"content": "  "}, "content"),
        ({"content": "问" * 2001}, "content"),
        ({"content": "狗叫\x07"}, "content"),
        ({"conversation": CONVERSATION * 10 + CONVERSATION[:1]}, "conversation"),
        ({"conversation": [{"role": "citizen", "text": "问" * 2001}]}, "conversation.0.text"),
        ({"conversation": [{"role": "agent", "text": "你好"}]}, "conversation.0.role"),
        ({"conversation": [{"role": "citizen", "text": ""}]}, "conversation.0.text"),
        ({"caller_name": "名" * 51}, "caller_name"),
    ],
)
def test_hand_over_bad_input_is_422_naming_the_field(kb, client, runtime, fields, field):
    body = hand_over(client, expect=422, **fields).json()
    assert body["field"] == field, body
    with runtime.db.read_session() as s:
        assert s.exec(select(Ticket)).first() is None


def test_a_missing_phone_is_422(client):
    r = client.post("/public/v1/assistant/handoff", json={"content": "狗叫"})
    assert r.status_code == 422 and r.json()["field"] == "caller_phone"


def test_the_hand_over_files_only_with_the_code_sent_to_the_phone(kb, client, runtime, clock):
    """The matter is filed under a mobile number proved by the code sent to it, as the online
    filing's form is: without it, with a wrong one, or with another phone's, nothing is filed
    (a wrong try is counted); a code serves once."""
    for code, words in (("", "请填写短信验证码"), ("000000", "验证码已失效，请重新获取")):
        body = hand_over(client, expect=422, code=code).json()
        assert (body["field"], body["zh"]) == ("code", words)
    other = code_for(client, "13912345678")  # another phone's code
    assert hand_over(client, expect=422, code=other).json()["field"] == "code"
    right = code_for(client, "13812345678")
    wrong = "000000" if right != "000000" else "111111"
    assert hand_over(client, expect=422, code=wrong).json()["zh"] == "验证码不正确，还可以再试4次"
    assert hand_over(client, expect=422, code=wrong).json()["zh"] == "验证码不正确，还可以再试3次"  # counted
    with runtime.db.read_session() as s:
        assert s.exec(select(Ticket)).first() is None
    hand_over(client, code=right)
    assert hand_over(client, expect=422, code=right).json()["zh"] == "验证码已失效，请重新获取"
    # Codes: one a minute a phone.
    clock.advance(seconds=30)
    again = client.post("/public/v1/assistant/handoff/code", json={"caller_phone": "13812345678"})
    assert again.status_code == 429 and int(again.headers["Retry-After"]) > 0


def test_one_phone_files_at_most_five_matters_an_hour(kb, client, clock):
    for _ in range(filing.FILINGS_PER_PHONE_HOUR):
        hand_over(client)
        clock.advance(seconds=61)  # a code a minute
    r = hand_over(client, expect=429)
    assert r.json()["field"] == "caller_phone" and int(r.headers["Retry-After"]) > 0
    hand_over(client, caller_phone="13912345678")  # another phone has its own share
    clock.advance(minutes=61)
    hand_over(client)


def test_the_public_side_is_rate_limited_per_address(kb, client, runtime):
    runtime._limiter = RateLimiter(6)  # one in ten seconds, bursts of 20: none comes back during the test
    codes = [client.post("/public/v1/assistant", json={"question": "社保卡补办"}).status_code for _ in range(22)]
    assert codes[:20] == [200] * 20 and codes[-1] == 429
    # One share for the whole public side: the hand-over, the pages and the search too.
    assert hand_over(client, expect=429).headers["Retry-After"]
    page = client.get("/kb")
    assert page.status_code == 429 and "访问太频繁" in page.text and page.headers["Retry-After"]
    assert client.get("/public/v1/knowledge/search", params={"q": "社保卡"}).status_code == 429


# ------------------------------------------------------------------ the language model


@pytest.fixture
def model():
    fake = FakeModel().start()
    yield fake
    fake.stop()


def use_model(runtime, model, **settings):
    runtime.settings = runtime.settings.model_copy(
        update={"llm_url": model.url, "llm_model": "qwen-test", "llm_timeout_seconds": 2.0, **settings}
    )


def test_without_the_setting_nothing_is_sent(kb, client, model):
    model.reply = "社保卡可以补办[1]。"
    assert ask(client, "社保卡丢了怎么补办")["source"] == "passage"
    assert model.requests() == []


def test_the_model_answers_from_the_passages_with_citations(kb, client, runtime, model):
    use_model(runtime, model, llm_api_key="sk-test")
    model.reply = "社保卡丢失的，可以申请补办，带上本人有效身份证件[1]。"
    reply = ask(client, "社保卡丢了怎么补办")
    assert reply == {
        "answer": "社保卡丢失的，可以申请补办，带上本人有效身份证件[1]。",
        "articles": reply["articles"],
        "handoff": False,
        "source": "model",
        "next_steps": [],
    }
    assert reply["articles"][0]["title"] == "社会保障卡补办"
    (request,) = model.requests()
    assert request["model"] == "qwen-test" and request["temperature"] == 0
    system, user = request["messages"]
    assert system["role"] == "system" and "只能根据" in system["content"] and "[1]" in system["content"]
    # The numbered passages of the articles listed, and the question: nothing else.
    assert user["content"].startswith("资料：\n[1]《社会保障卡补办》\n")
    assert "丢失、损坏或信息有误的，可以申请补办" in user["content"]
    assert user["content"].endswith("市民的问题：社保卡丢了怎么补办")
    assert user["content"].count("《") == len(reply["articles"])
    assert not any(title in user["content"] for title in HIDDEN)
    assert model.headers[0]["authorization"] == "Bearer sk-test"


@pytest.mark.parametrize(
    "bad_reply",
    [
        "社保卡可以补办，带身份证就行。",  # no citation
        "社保卡可以补办[3]。",  # cites a passage it was not given
        "   ",  # empty
        "资料中没有答案。",
    ],
)
def test_a_reply_without_a_given_citation_is_not_used(kb, client, runtime, model, bad_reply):
    use_model(runtime, model)
    model.reply = bad_reply
    reply = ask(client, "社保卡丢了怎么补办")
    assert reply["source"] == "passage" and reply["answer"].startswith("根据《社会保障卡补办》")
    assert len(model.requests()) == 1


def test_a_slow_or_failing_model_falls_back_to_the_passage(kb, client, runtime, model):
    use_model(runtime, model, llm_timeout_seconds=0.5)
    model.reply, model.delay = "社保卡可以补办[1]。", 6.0
    started = time.monotonic()
    reply = ask(client, "社保卡丢了怎么补办")
    assert reply["source"] == "passage" and time.monotonic() - started < 5.0  # not the 6 s the model takes
    model.delay, model.status = 0.0, 500
    assert ask(client, "社保卡丢了怎么补办")["source"] == "passage"
    runtime.settings = runtime.settings.model_copy(update={"llm_url": model.url.replace("/v1/", "/v9/")})
    model.status = 200
    assert ask(client, "社保卡丢了怎么补办")["source"] == "passage"  # a 404 from the server
    for url in ("http://[::1", "ftp://127.0.0.1/v1/chat/completions", "http://127.0.0.1:1/v1/chat/completions"):
        runtime.settings = runtime.settings.model_copy(update={"llm_url": url})  # misconfigured, or nobody there
        assert ask(client, "社保卡丢了怎么补办")["source"] == "passage"


def test_the_model_is_never_asked_without_a_trusted_passage(kb, client, runtime, model):
    use_model(runtime, model)
    model.reply = "养犬登记需要先交钱[1]。"
    reply = ask(client, "我家楼下的狗太吵了怎么办")
    assert reply["handoff"] is True and reply["source"] is None and model.requests() == []
