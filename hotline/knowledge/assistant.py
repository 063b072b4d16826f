"""The assistant (智能客服): a citizen's question answered from the published public articles,
and the hand-over to the hotline when the knowledge base has no answer it trusts.

The answer is extractive: the passage of the best article that covers the question's words
best, with the article named and linked. It never invents: when the best article does not
cover the question (`trusted`), the citizen is told so and offered the hotline's number or
filing the matter online (`hand_over`, a web ticket waiting for dispatch with the
conversation attached), and the question is counted as a knowledge gap. With
HOTLINE_LLM_URL set, a language model may phrase the answer from the retrieved passages
only (hotline.knowledge.llm); a reply that cites none of them is not used.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from hotline import filing
from hotline.directory import places
from hotline.errors import Invalid
from hotline.evaluation.ratings import CITIZEN
from hotline.filing import check_filing_rate, clean_text
from hotline.knowledge import articles, feedback, llm, search
from hotline.knowledge.text import plain, query_terms, words
from hotline.models import Article, Ticket
from hotline.tickets import check_place, create_ticket
from hotline.words import stop_words, synonym_groups

MAX_QUESTION_CHARS = search.MAX_QUERY_CHARS  # 200
MAX_ARTICLES = 3
# The passage: about this long, never longer than the second number.
PASSAGE_CHARS, MAX_PASSAGE_CHARS = 300, 420
# How much more a word for what the question asks for (地点 for 在哪里) counts in a passage.
ASKED_FOR = 3
# Ways of asking for a place, a fee or a time that are no stop words.
_ASKING_FORMS = frozenset({"在哪", "在哪里", "去哪", "哪里", "多少钱", "要钱", "多久", "几天", "多长时间"})
# A passage that is not a section of its own goes on past a heading while shorter than this.
MIN_PASSAGE_CHARS = 80
# The share of the question's words the best article must cover to be trusted.
MIN_COVERAGE = 0.6
# The hand-over: a conversation of at most this many turns of at most this many characters.
MAX_TURNS, MAX_TURN_CHARS = 20, 2000
MAX_CONTENT_CHARS = 2000
TURN_LABELS = {"citizen": "市民", "assistant": "智能客服"}
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])")
# Spaces beside Chinese characters and punctuation (left where Markdown marks were): dropped.
_WIDE = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef"
_SPACE_BY_WIDE = re.compile(rf"\s+(?=[{_WIDE}])|(?<=[{_WIDE}])\s+")


@dataclass
class Reply:
    """What the assistant says to one question."""

    answer: str
    articles: list[dict[str, Any]]  # {id, title, url}, the best first
    handoff: bool
    source: str | None = None  # "passage" | "model"; None on a hand-over
    next_steps: list[dict[str, str]] = field(default_factory=list)

    def out(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "articles": self.articles,
            "handoff": self.handoff,
            "source": self.source,
            "next_steps": self.next_steps,
        }


# ------------------------------------------------------------------ input


def clean_question(question: str) -> str:
    """The question on one line: 1 to 200 characters, no control characters."""
    return " ".join(clean_text(question, "question", MAX_QUESTION_CHARS, label="问题").split())


# ------------------------------------------------------------------ trust


def content_words(question: str) -> list[str]:
    """The words that say what the question asks about: stop words and the words of asking
    (怎么办, 请问…) left out, with the words inside them (不能 of 能不能), and a word inside a
    longer one of the question (社保 in 社保卡)."""
    skip = stop_words() | feedback.QUESTION_WORDS
    asking = [w for w in feedback.QUESTION_WORDS if len(w) > 1 and w in question]
    kept = [w for w in dict.fromkeys(words(question)) if w not in skip and not any(w in a for a in asking)]
    return [w for w in kept if not any(w != other and w in other for other in kept)]


def _alternatives(word: str) -> set[str]:
    """The word and the words taken for it (hotline/data/knowledge_synonyms.txt)."""
    out = {word}
    for group in synonym_groups("knowledge_synonyms.txt"):
        if word in group:
            out.update(group)
    return out


def coverage(question: str, article: Article) -> float:
    """The share of the question's words that the article (title, keywords, body) has,
    itself or in words taken for it; a long word counts when the words of two characters or
    more inside it do (社保卡 where the article says 社保)."""
    wanted = content_words(question)
    if not wanted:
        return 0.0
    text = " ".join([article.title, " ".join(article.keywords), article.body]).lower()
    parts = [w for w in dict.fromkeys(words(question)) if len(w) > 1]

    def has(word: str) -> bool:
        if any(alt in text for alt in _alternatives(word)):
            return True
        inside = [p for p in parts if p != word and p in word]
        return bool(inside) and all(any(alt in text for alt in _alternatives(p)) for p in inside)

    return sum(has(w) for w in wanted) / len(wanted)


def trusted(session: Session, question: str, hits: list[search.Hit]) -> bool:
    """Whether the best hit answers the question: it scored, and it covers most of the
    question's words. (The one place the assistant decides; search.answerable may take over.)"""
    if not hits or hits[0].score <= 0:
        return False
    best = session.get(Article, hits[0].id)
    return best is not None and coverage(question, best) >= MIN_COVERAGE


# ------------------------------------------------------------------ the passage


@dataclass
class _Unit:
    text: str
    line: int
    heading: bool


def _units(body: str) -> list[_Unit]:
    """The body's sentences in order, each with its line and whether it is a heading."""
    out = []
    for number, raw in enumerate(body.splitlines()):
        heading = raw.lstrip().startswith("#")
        line = _SPACE_BY_WIDE.sub("", plain(raw))
        for sentence in _SENTENCE_END.split(line):
            if sentence.strip():
                out.append(_Unit(sentence.strip(), number, heading))
    return out


def passage(body: str, question: str, topic: str = "") -> str:
    """The part of an article's body that answers the question best, as plain text: the
    sentence with most of the question's terms, and what follows it up to a few hundred
    characters or the next heading (past it while the passage is short and not a section of
    its own); lines kept. A longer term weighs more, and a term of the
    article's `topic` (its title and keywords: what every sentence is about) little."""
    units = _units(body)
    if not units:
        return ""
    topic = topic.lower()
    weights = {t: 1 if t in topic else 2 * len(t) for t in query_terms(question) if t not in feedback.QUESTION_WORDS}
    # What the question asks for (在哪里: 地点; 多少钱: 收费; 多久: 时限) points at its section
    # more than the matter's own words do, which every section of the article shares.
    for group in synonym_groups("knowledge_synonyms.txt"):
        if any(w in question for w in group if w in _ASKING_FORMS):
            for t in group:
                if t in weights:
                    weights[t] *= ASKED_FOR

    def weight(unit: _Unit) -> int:
        lowered = unit.text.lower()
        return sum(w for t, w in weights.items() if t in lowered)

    start = max(range(len(units)), key=lambda i: (weight(units[i]), -i))
    if weight(units[start]) == 0:
        start = 0
    chosen = [units[start]]
    size = len(units[start].text)
    for unit in units[start + 1 :]:
        # A section ends at the next heading; an opening too short to answer goes on into it.
        if unit.heading and any(not u.heading for u in chosen) and (chosen[0].heading or size >= MIN_PASSAGE_CHARS):
            break
        if size >= PASSAGE_CHARS or size + len(unit.text) > MAX_PASSAGE_CHARS:
            break
        chosen.append(unit)
        size += len(unit.text)
    text, line = "", chosen[0].line
    for unit in chosen:
        if unit.line != line:
            text += "\n"
            line = unit.line
        text += unit.text + ("：" if unit.heading and not unit.text.endswith(("：", ":")) else "")
    return text[:MAX_PASSAGE_CHARS]


# ------------------------------------------------------------------ asking


def _topic(article: Article) -> str:
    return " ".join([article.title, *article.keywords])


def next_steps(phone: str) -> list[dict[str, str]]:
    """What a citizen can do when the assistant has no answer: call, or file online."""
    return [
        {"action": "call", "label": f"拨打{phone}热线", "phone": phone},
        {"action": "file", "label": "在线提交诉求", "url": "/public/v1/assistant/handoff"},
    ]


def no_answer(phone: str) -> str:
    return (
        f"抱歉，知识库里没有能确切回答这个问题的内容，为免误导，我不作猜测。"
        f"您可以拨打{phone}热线（24小时）咨询，或在线提交诉求，由工作人员为您办理。"
    )


def ask(runtime, question: str) -> Reply:
    """Answer a citizen's question from the published public articles valid today, or hand
    over (and count the question as a knowledge gap)."""
    question = clean_question(question)
    now = runtime.now()
    phone = runtime.settings.phone
    today = articles.local_today(now)
    with runtime.db.read_session() as session:
        hits = search.search(session, question, limit=MAX_ARTICLES, public_only=True, today=today)
        found = trusted(session, question, hits)
        if found:
            # The best article, and the others that cover the question as well.
            best = [session.get(Article, h.id) for h in hits]
            best = best[:1] + [a for a in best[1:] if coverage(question, a) >= MIN_COVERAGE]
            passages = [llm.Passage(a.title, passage(a.body, question, _topic(a))) for a in best]
    if not found:
        with runtime.db.session() as session:
            feedback.record_gap(session, question, source="assistant", at=now)
        return Reply(no_answer(phone), [], True, None, next_steps(phone))
    links = [{"id": a.id, "title": a.title, "url": f"/kb/{a.id}"} for a in best]
    # The model (if configured) sees the passages of the articles listed, nothing else.
    model_answer = llm.answer(runtime.settings, question, passages)
    if model_answer is not None:
        return Reply(model_answer, links, False, "model")
    return Reply(f"根据《{best[0].title}》：\n{passages[0].text}", links, False, "passage")


# ------------------------------------------------------------------ the hand-over


# What a hand-over's success says beside the ticket's number, which the pages show once, on a
# line of its own (工单编号：…), and the API returns as `number`.
FILED_MESSAGE = "工作人员将尽快处理，并按您留的电话与您联系。请记下工单编号，凭编号和电话号码可以查询办理进度。"


def transcript(content: str, conversation: list[dict[str, str]]) -> str:
    """The ticket's content: the matter in the citizen's words, then the conversation."""
    if not conversation:
        return content
    lines = [f"{TURN_LABELS[turn['role']]}：{turn['text']}" for turn in conversation]
    return content + "\n\n【智能客服对话记录】\n" + "\n".join(lines)


def _clean_conversation(conversation: list[dict[str, str]]) -> list[dict[str, str]]:
    if len(conversation) > MAX_TURNS:
        raise Invalid(f"conversation: at most {MAX_TURNS} turns", field="conversation", zh="对话记录过长")
    out = []
    for i, turn in enumerate(conversation):
        if turn.get("role") not in TURN_LABELS:
            raise Invalid(
                f"conversation.{i}.role: citizen or assistant", field=f"conversation.{i}.role", zh="对话记录有误"
            )
        text = clean_text(str(turn.get("text") or ""), f"conversation.{i}.text", MAX_TURN_CHARS, label="对话记录")
        out.append({"role": turn["role"], "text": text})
    return out


def _place(session: Session, street: str | None, community: str | None) -> tuple[str | None, str | None]:
    """The street and community, checked against the district's places (tickets.check_place)."""
    street, community = (street or "").strip() or None, (community or "").strip() or None
    check_place(places(session), street, community)
    return street, community


def check_matter(
    session: Session, content: str, caller_phone: str, street: str | None, community: str | None
) -> tuple[str, str, str | None, str | None]:
    """The matter, the mobile number and the place as they will be filed (Invalid naming the
    field otherwise): the hand-over form checks them before a code goes out."""
    content = clean_text(content, "content", MAX_CONTENT_CHARS, label="诉求内容")
    phone = filing.mobile(caller_phone)
    street, community = _place(session, street, community)
    return content, phone, street, community


def hand_over(
    runtime,
    *,
    content: str,
    conversation: list[dict[str, str]],
    caller_phone: str,
    code: str,
    caller_name: str | None = None,
    street: str | None = None,
    community: str | None = None,
    now: datetime,
) -> Ticket:
    """File the citizen's matter online: a consultation ticket of the web channel, waiting for
    dispatch (registered), the conversation with the assistant attached, under a mobile number
    proved by the code sent to it (filing.send_code_now), as the online filing's form does. At most
    FILINGS_PER_PHONE_HOUR an hour per phone number with the online filings (429). The code is
    used in the ticket's transaction (a refused hand-over keeps it good); a wrong one counts a
    try in a transaction of its own."""
    try:
        with runtime.db.session() as session:
            ticket = _hand_over(
                session, runtime, content, conversation, caller_phone, code, caller_name, street, community, now
            )
            session.flush()
            session.expunge(ticket)
            return ticket
    except filing.WrongCode as exc:
        filing.count_wrong_try(runtime, exc.code_id)
        raise


def _hand_over(
    session: Session,
    runtime,
    content: str,
    conversation: list[dict[str, str]],
    caller_phone: str,
    code: str,
    caller_name: str | None,
    street: str | None,
    community: str | None,
    now: datetime,
) -> Ticket:
    content, phone, street, community = check_matter(session, content, caller_phone, street, community)
    turns = _clean_conversation(conversation)
    name = clean_text(caller_name, "caller_name", 50, label="姓名") if (caller_name or "").strip() else None
    check_filing_rate(session, runtime, phone, now)
    if not (code or "").strip():
        raise Invalid("code: the code sent to the phone", field="code", zh="请填写短信验证码")
    filing.use_code(session, phone, code, now)
    data = {
        "type": "consultation",
        "channel": "web",
        "caller_name": name,
        "caller_phone": phone,
        "anonymous": False,
        "title": content.splitlines()[0][:40],
        "content": transcript(content, turns),
        "street": street,
        "community": community,
    }
    ticket, _ = create_ticket(
        session,
        runtime,
        CITIZEN,
        data,
        now=now,
        details={"via": "assistant"},
        source_details={"assistant": {"question": content, "conversation": turns}},
    )
    return ticket
