"""Search of the knowledge base: the caller's words, their official terms, the best first.

`search()` segments the question (jieba, search mode), adds the terms of the synonym list,
asks the index of the database (hotline.knowledge.index) and keeps what the caller may see:
the public side only published, public articles valid today; staff the published ones;
editors, when they ask, every status. Each hit carries a snippet of the body as HTML in
which only the matched words are marked (<mark>) and everything else is escaped.
"""

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
# Where a term of the question is found in an article, and how much that says of it.
TITLE_MATCH, KEYWORD_MATCH, CATEGORY_MATCH, BODY_MATCH, BODY_MATCH_MAX = 1.0, 0.9, 0.6, 0.3, 0.5
# The index's own order breaks near ties: at most this much to the first candidate.
INDEX_RANK_BONUS = 0.02


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


def clean_query(query: str) -> str:
    """The question, trimmed; 422 when it is empty or too long."""
    q = " ".join(query.split())
    if not q:
        raise Invalid("q: the question is empty", field="q")
    if len(q) > MAX_QUERY_CHARS:
        raise Invalid(f"q: the question is longer than {MAX_QUERY_CHARS} characters", field="q")
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
        raise Invalid(f"limit: between 1 and {MAX_LIMIT}", field="limit")
    concepts = query_concepts(q)
    terms = list(dict.fromkeys(t for c in concepts for t in c.terms))
    if not terms:
        return []
    found = index.matches(session, terms).subquery("found")
    stmt = select(Article, found.c.score).join(found, found.c.article_id == Article.id)
    if public_only:
        stmt = stmt.where(visible_today(today or datetime.now(LOCAL_TZ).date()))
    elif not all_statuses:
        stmt = stmt.where(Article.status == "published")
    if category:
        path = category.strip("/")
        escaped = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(or_(Article.category == path, Article.category.like(f"{escaped}/%", escape="\\")))
    if kind:
        stmt = stmt.where(Article.kind == kind)
    if department:
        stmt = stmt.where(Article.department == department)
    candidates = session.exec(stmt.order_by(found.c.score.desc(), Article.id).limit(CANDIDATES)).all()
    ranked = sorted(
        (
            (coverage(a, concepts) + INDEX_RANK_BONUS * (1 - rank / len(candidates)), rank, a)
            for rank, (a, _) in enumerate(candidates)
        ),
        key=lambda x: (-x[0], x[1]),
    )[:limit]
    rows = [(a, score) for score, _, a in ranked]
    return [
        Hit(
            id=a.id,
            external_id=a.external_id,
            title=a.title,
            snippet=snippet(plain(a.body), [t for t in terms if len(t) > 1] or terms),
            score=round(float(score), 6),
            category=a.category,
            kind=a.kind,
            department=a.department,
            status=a.status,
            coverage=round(float(score), 6),
        )
        for a, score in rows
    ]


def coverage(article: Article, concepts: list[Concept]) -> float:
    """How much of the question the article covers (0 to 1): for each concept of the
    question the best of its terms, by the term's weight and where the article has it,
    weighed by how much the concept says."""
    title = article.title.lower()
    keywords = [k.lower() for k in article.keywords]
    category = article.category.lower()
    body = plain(article.body).lower()
    total = got = 0.0
    for concept in concepts:
        total += concept.weight
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
        got += concept.weight * best
    return got / total if total else 0.0
