"""Browsing the knowledge base: articles listed by status, category, kind and issuing body,
a page at a time; and the category tree with its counts (for the editors' list and the
public pages)."""

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func
from sqlmodel import Session, or_, select

from hotline.models import Article

MAX_PER_PAGE = 100


def scope(actor, status: str | None, department_id: int | None) -> tuple[tuple[str, ...] | None, int | None]:
    """The statuses and the department a member of staff's list shows (the API's and the
    pages'): editors any; a leader the published articles, or its own department's of any
    status; the others the published ones (NotPermitted when they ask for another status)."""
    from hotline.errors import NotPermitted
    from hotline.knowledge.articles import EDITORS

    if actor.role in EDITORS:
        return ((status,) if status else None), department_id
    own = actor.department_id
    if actor.role == "leader" and status in ("draft", "under_review", "retired"):
        return (status,), own
    if actor.role == "leader" and not status and department_id == own:
        return None, own
    if status and status != "published":
        raise NotPermitted(
            "only editors and a department's leader list unpublished articles",
            zh="只有知识库管理员和单位负责人可以查看未发布的知识",
        )
    return ("published",), department_id


@dataclass(frozen=True)
class Listing:
    articles: list[Article]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _under(category: str):
    """The articles of a category path and of every path below it."""
    category = category.strip("/")
    return or_(Article.category == category, Article.category.startswith(category + "/", autoescape=True))


def listing(
    session: Session,
    *,
    statuses: tuple[str, ...] | None = None,
    public_today: date | None = None,
    category: str | None = None,
    kind: str | None = None,
    department_id: int | None = None,
    title: str | None = None,
    page: int = 1,
    per_page: int = 20,
    clamp: bool = False,
) -> Listing:
    """Articles, most recently changed first. `public_today`: only what citizens may read
    on that day (published, public, valid); `statuses`: only those states; `title`: a part
    of the title. `clamp`: a page past the last is the last (as the pages have it; the API
    answers an empty page)."""
    from hotline.knowledge.search import visible_today

    per_page = max(1, min(per_page, MAX_PER_PAGE))
    where = []
    if public_today is not None:
        where.append(visible_today(public_today))
    if statuses:
        where.append(Article.status.in_(statuses))
    if category:
        where.append(_under(category))
    if kind:
        where.append(Article.kind == kind)
    if department_id is not None:
        where.append(Article.department_id == department_id)
    if title:
        where.append(Article.title.contains(title.strip(), autoescape=True))
    total = session.exec(select(func.count()).select_from(Article).where(*where)).one()
    if clamp:
        page = min(page, max(1, -(-total // per_page)))
    rows = session.exec(
        select(Article)
        .where(*where)
        .order_by(Article.updated_at.desc(), Article.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return Listing(list(rows), total, page, per_page)


@dataclass
class CategoryNode:
    name: str
    path: str
    count: int = 0  # articles here and below
    children: dict[str, "CategoryNode"] = field(default_factory=dict)


def category_tree(session: Session, *, public_today: date | None = None) -> list[CategoryNode]:
    """The category paths in use, as a tree with each node's article count (only what
    citizens may read, with `public_today`)."""
    from hotline.knowledge.search import visible_today

    statement = select(Article.category, func.count()).group_by(Article.category)
    if public_today is not None:
        statement = statement.where(visible_today(public_today))
    roots: dict[str, CategoryNode] = {}
    for path, count in session.exec(statement):
        level = roots
        parts = path.split("/")
        for depth, name in enumerate(parts):
            node = level.setdefault(name, CategoryNode(name, "/".join(parts[: depth + 1])))
            node.count += count
            level = node.children
    return sorted(roots.values(), key=lambda n: (-n.count, n.name))
