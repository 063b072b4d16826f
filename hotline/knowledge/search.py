"""Search of the knowledge base: the caller's words, their official terms, the best first.

`search()` cuts the question into concepts (hotline.knowledge.text: each word, weighed by
how much it says, with its parts and the terms of the synonym list), asks the index of the
database (hotline.knowledge.index) for candidates, keeps what the caller may see (the public
side only published, public articles valid today; staff the published ones; editors, when
they ask, every status) and ranks the candidates again here, alike on both databases, by
how much of the question each covers. `answerable()` tells the assistant whether the first
hit may be given as the answer. Each hit carries a snippet of the body as HTML in which
only the matched words are marked (<mark>) and everything else is escaped. See
docs/knowledge.md.
"""

import math
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session, or_, select

from hotline.deadlines.calendar import LOCAL_TZ
from hotline.errors import Invalid
from hotline.knowledge import index
from hotline.knowledge.text import Concept, plain, query_concepts, snippet
from hotline.models import Article

MAX_QUERY_CHARS = 200
MAX_LIMIT = 50
# The index's best this many (its own ranking) are ranked again here, alike on both databases.
CANDIDATES = 60
# _candidates(): the concepts of the question whose combinations the index is asked for first,
# and how many matching articles the index scores at most a query.
KEY_CONCEPTS, MOST_KEY_CONCEPTS = 5, 3
SCORED = 1000
# In a large base, a term in more than this share of the articles (办理, 电话: every guide has
# them) is not looked for by itself in the index, only weighed in the ranking.
COMMON_SHARE = 0.05
LARGE_BASE = 2000
# A word of one character is looked for by itself when it says at least this much.
SINGLE_CHARACTER_WEIGHT = 4.0
# Where a term of the question is found in an article, and how much that says of it.
TITLE_MATCH, KEYWORD_MATCH, CATEGORY_MATCH, BODY_MATCH, BODY_MATCH_MAX = 1.0, 0.9, 0.6, 0.3, 0.5
# The index's own order breaks near ties: at most this much to the first candidate.
INDEX_RANK_BONUS = 0.02
# A match this good is in the title, the keywords or the category (see match()).
HEADING_MATCH = 0.55
# answerable(): the least confidence of a first hit given as the answer, tuned on the dev
# half of bench/knowledge/questions.jsonl (bench/knowledge_eval.py).
ANSWER_CONFIDENCE = 0.82


@dataclass(frozen=True)
class Hit:
    id: int
    external_id: str | None
    title: str
    snippet: str  # HTML: the matched words in <mark>, the rest escaped
    score: float
    category: str
    kind: str
    department: str
    status: str
    # The share of what the question says that the article covers, weighed by how much
    # each word says and where it is found (title, keywords, category, body): 0 to 1.
    coverage: float = 0.0
    # The strongest single piece of evidence: the most telling word of the question found in
    # the article's title, keywords or category, less when many candidates have it there too.
    anchor: float = 0.0
    # confidence(coverage, anchor): what answerable() judges the first hit by.
    confidence: float = 0.0


def clean_query(query: str) -> str:
    """The question, trimmed; 422 when it is empty or too long."""
    q = " ".join(query.split())
    if not q:
        raise Invalid("q: the question is empty", field="q", zh="请输入要查找的内容")
    if len(q) > MAX_QUERY_CHARS:
        raise Invalid(
            f"q: the question is longer than {MAX_QUERY_CHARS} characters",
            field="q",
            zh=f"查找内容请不要超过{MAX_QUERY_CHARS}个字",
        )
    return q


def visible_today(today: date):
    """Published, public, and valid today: what the public side may show."""
    return (
        (Article.status == "published")
        & Article.public.is_(True)
        & (Article.valid_from.is_(None) | (Article.valid_from <= today))
        & (Article.valid_until.is_(None) | (Article.valid_until >= today))
    )


def search(
    session: Session,
    query: str,
    *,
    limit: int = 10,
    public_only: bool = False,
    category: str | None = None,
    kind: str | None = None,
    department: str | None = None,
    all_statuses: bool = False,
    today: date | None = None,
) -> list[Hit]:
    """The articles that answer `query`, best first.

    `category` is a path prefix (社会保障 finds 社会保障/养老保险); `department` the issuing
    body as the articles give it; `all_statuses` (editors) includes drafts, articles under
    review and retired ones; `today` is the local day validity is judged on (default: the
    local date now)."""
    q = clean_query(query)
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit: between 1 and {MAX_LIMIT}", field="limit", zh=f"结果条数应为 1 到 {MAX_LIMIT}")
    concepts = query_concepts(q)
    terms = list(dict.fromkeys(t for c in concepts for t in c.terms))
    if not terms:
        return []
    where = []
    if public_only:
        where.append(visible_today(today or datetime.now(LOCAL_TZ).date()))
    elif not all_statuses:
        where.append(Article.status == "published")
    if category:
        path = category.strip("/")
        escaped = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(or_(Article.category == path, Article.category.like(f"{escaped}/%", escape="\\")))
    if kind:
        where.append(Article.kind == kind)
    if department:
        where.append(Article.department == department)
    candidates = _candidates(session, concepts, where)
    return [
        Hit(
            id=a.id,
            external_id=a.external_id,
            title=a.title,
            snippet=snippet(plain(a.body), [t for t in terms if len(t) > 1] or terms),
            score=round(score, 6),
            category=a.category,
            kind=a.kind,
            department=a.department,
            status=a.status,
            coverage=round(cover, 6),
            anchor=round(anchor, 6),
            confidence=round(confidence(cover, anchor), 6),
        )
        for a, score, cover, anchor in rank(candidates, concepts)[:limit]
    ]


def _candidates(session: Session, concepts: list[Concept], where: list) -> list[Article]:
    """The index's best CANDIDATES articles for the concepts: first those that have at least
    three (then two) of the KEY_CONCEPTS most telling concepts found in the index but not in
    every other article (each by any of its terms), then those that have any term that is
    not in every other article. Articles that have several things the question says come
    first, and in a large base the index ranks only them."""
    terms = list(dict.fromkeys(t for c in concepts for t in c.terms))
    size, share = index.shares(session, terms, COMMON_SHARE)
    # In a small base no term is too common to look for (and the statistics say little).
    common = COMMON_SHARE if size >= LARGE_BASE else 1.0
    # How common a concept is: its most common term's share (0: found nowhere).
    found_in = {c.word: max((share[t] for t in c.terms), default=0.0) for c in concepts}
    keys = sorted((c for c in concepts if 0 < found_in[c.word] <= common), key=lambda c: -c.weight)
    keys = keys[:KEY_CONCEPTS]
    # The last resort: any term that is not common; of one character only a telling word of
    # the question itself (狗, 税; not 人, 开: the index would find half the base by them).
    rare = [
        [t for t in c.terms if share[t] <= common and (len(t) > 1 or c.weight >= SINGLE_CHARACTER_WEIGHT)]
        for c in concepts
    ]
    levels = [([list(c.terms) for c in keys], n) for n in range(min(MOST_KEY_CONCEPTS, len(keys)), 1, -1)]
    levels.append(([g for g in rare if g] or [list(c.terms) for c in concepts], 1))
    found: dict[int, Article] = {}
    for groups, at_least in levels:
        matched = index.matches(session, groups, at_least=at_least, at_most=SCORED).subquery("found")
        stmt = select(Article).join(matched, matched.c.article_id == Article.id).where(*where)
        if found:
            stmt = stmt.where(Article.id.not_in(list(found)))
        for a in session.exec(stmt.order_by(matched.c.score.desc(), Article.id).limit(CANDIDATES - len(found))):
            found[a.id] = a
        if len(found) >= CANDIDATES:
            break
    return list(found.values())


def rank(candidates: list[Article], concepts: list[Concept]) -> list[tuple[Article, float, float, float]]:
    """The candidates (in the index's order) ranked again: (article, score, coverage, anchor),
    best first. The score is the coverage, with the index's order as a small tie-break."""
    if not candidates:
        return []
    matched = [[match(texts, c) for c in concepts] for texts in map(_texts, candidates)]
    total = sum(c.weight for c in concepts) or 1.0
    # In how many candidates each concept is found in the title, keywords or category.
    prominent = [sum(m[j] >= HEADING_MATCH for m in matched) for j in range(len(concepts))]
    out = []
    for i, (a, m) in enumerate(zip(candidates, matched, strict=True)):
        cover = sum(c.weight * x for c, x in zip(concepts, m, strict=True)) / total
        anchor = max(
            (c.weight * x / math.sqrt(n) for c, x, n in zip(concepts, m, prominent, strict=True) if x >= HEADING_MATCH),
            default=0.0,
        )
        score = cover + INDEX_RANK_BONUS * (1 - i / len(candidates))
        out.append((a, score, cover, anchor))
    out.sort(key=lambda x: -x[1])
    return out


def confidence(coverage: float, anchor: float) -> float:
    """How sure the search is that an article answers: the geometric mean of its coverage
    of the question and its anchor (both must be there: a title that has one telling word
    of a long question, or many weak words found in a body, are not enough)."""
    return math.sqrt(coverage * anchor)


def answerable(hits: list[Hit]) -> bool:
    """Whether the first hit may be given as the answer (True), or the question should go
    to a person (False): no hit, or a confidence under ANSWER_CONFIDENCE."""
    return bool(hits) and hits[0].confidence >= ANSWER_CONFIDENCE


def match(texts: tuple[str, list[str], str, str], concept: Concept) -> float:
    """How well an article (its _texts()) has the concept (0 to 1): the best of its terms,
    by the term's weight and where the article has it. A term of one character counts only
    as the concept's own word, and not in the body."""
    title, keywords, category, body = texts
    best = 0.0
    for term, weight in concept.terms.items():
        if weight <= best or len(term) < 2 and term != concept.word:
            continue
        if term in title:
            where = TITLE_MATCH
        elif any(term in k for k in keywords):
            where = KEYWORD_MATCH
        elif term in category:
            where = CATEGORY_MATCH
        elif (n := body.count(term)) and len(term) > 1:
            where = BODY_MATCH + (BODY_MATCH_MAX - BODY_MATCH) * min(n, 3) / 3
        else:
            continue
        best = max(best, weight * where)
    return best


def _texts(article: Article) -> tuple[str, list[str], str, str]:
    """The article's title, keywords, category and body (its Markdown marks left out) as the
    ranking reads them, lowercased."""
    return (
        article.title.lower(),
        [k.lower() for k in article.keywords],
        article.category.lower(),
        plain(article.body).lower(),
    )
