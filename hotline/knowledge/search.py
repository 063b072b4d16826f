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
from hotline.knowledge.text import plain, query_terms, snippet
from hotline.models import Article

MAX_QUERY_CHARS = 200
MAX_LIMIT = 50


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
    terms = query_terms(q)
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
    rows = session.exec(stmt.order_by(found.c.score.desc(), Article.id).limit(limit)).all()
    return [
        Hit(
            id=a.id,
            external_id=a.external_id,
            title=a.title,
            snippet=snippet(plain(a.body), terms),
            score=round(float(score), 6),
            category=a.category,
            kind=a.kind,
            department=a.department,
            status=a.status,
        )
        for a, score in rows
    ]
