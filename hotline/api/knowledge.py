"""The knowledge base (知识库): staff search, articles, their lifecycle and import under
/api/v1/knowledge; the public side (no token) under /public/v1/knowledge."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import Field

from hotline.api.deps import RuntimeDep, require
from hotline.api.schemas import Body
from hotline.errors import NotFound, NotPermitted
from hotline.knowledge import articles, search
from hotline.knowledge.articles import EDITORS, MAX_IMPORT, STAFF, ArticleIn, ArticlePatch
from hotline.models import ARTICLE_KINDS
from hotline.workflow.engine import Actor

router = APIRouter(prefix="/knowledge", tags=["knowledge"])
public_router = APIRouter(prefix="/public/v1/knowledge", tags=["knowledge (public)"])

StaffActor = Annotated[Actor, require(*STAFF)]
EditorActor = Annotated[Actor, require(*sorted(EDITORS))]
WriterActor = Annotated[Actor, require(*sorted(EDITORS), "leader")]
ArticleId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Q = Annotated[str, Query(max_length=2000, description="the question, 1 to 200 characters")]
Limit = Annotated[int, Query(ge=1, le=search.MAX_LIMIT)]
Kind = Annotated[Literal[ARTICLE_KINDS] | None, Query()]  # type: ignore[valid-type]
Text = Annotated[str | None, Query(max_length=200)]
# The public side may be cached by the website and browsers for this long.
PUBLIC_CACHE = "public, max-age=300"
# An import's body may be this large (the other calls: HOTLINE_MAX_BODY_BYTES).
MAX_IMPORT_BYTES = 16 * 1024 * 1024


class ImportIn(Body):
    # Rows are validated one by one (a bad row is listed, the others kept).
    articles: Annotated[list[dict[str, Any]], Field(max_length=MAX_IMPORT)]


class TransitionIn(Body):
    action: Literal[tuple(articles.ACTIONS)]  # type: ignore[valid-type]


def _hits(hits: list[search.Hit], *, public: bool) -> dict[str, Any]:
    fields = ("id", "title", "snippet", "score", "category", "kind", "department")
    if not public:
        fields += ("external_id", "status")
    return {"results": [{name: getattr(h, name) for name in fields} for h in hits]}


@router.get("/search")
def staff_search(
    actor: StaffActor,
    runtime: RuntimeDep,
    q: Q,
    limit: Limit = 10,
    category: Text = None,
    kind: Kind = None,
    department: Text = None,
    all: Annotated[bool, Query(description="editors: drafts, reviews and retired articles too")] = False,
) -> dict[str, Any]:
    """Published articles (internal ones too), best first; `snippet` is HTML in which only
    the matched words are marked up (<mark>)."""
    if all and actor.role not in EDITORS:
        raise NotPermitted("only editors search articles of every status")
    with runtime.db.read_session() as session:
        hits = search.search(
            session,
            q,
            limit=limit,
            category=category,
            kind=kind,
            department=department,
            all_statuses=all,
            today=articles.local_today(runtime.now()),
        )
    return _hits(hits, public=False)


@router.post("/import")
def import_articles(body: ImportIn, actor: EditorActor, runtime: RuntimeDep) -> dict[str, Any]:
    """Upsert up to 1,000 articles by external_id; invalid rows listed, valid ones kept."""
    with runtime.db.session() as session:
        return articles.import_rows(session, body.articles, actor, runtime.now())


@router.post("/articles", status_code=status.HTTP_201_CREATED)
def create_article(body: ArticleIn, actor: WriterActor, runtime: RuntimeDep) -> dict[str, Any]:
    """A new draft (a leader: of its own department)."""
    with runtime.db.session() as session:
        return articles.article_out(articles.create(session, body, actor, runtime.now()))


@router.get("/articles/{article_id}")
def get_article(article_id: ArticleId, actor: StaffActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.db.read_session() as session:
        article = articles.get(session, article_id)
        own = actor.role == "leader" and article.department_id == actor.department_id
        if article.status != "published" and actor.role not in EDITORS and not own:
            raise NotFound()
        return articles.article_out(article)


@router.patch("/articles/{article_id}")
def edit_article(article_id: ArticleId, body: ArticlePatch, actor: WriterActor, runtime: RuntimeDep) -> dict[str, Any]:
    """Edit an article: a new version."""
    with runtime.db.session() as session:
        return articles.article_out(articles.update(session, article_id, body, actor, runtime.now()))


@router.post("/articles/{article_id}/transitions")
def transition_article(
    article_id: ArticleId, body: TransitionIn, actor: WriterActor, runtime: RuntimeDep
) -> dict[str, Any]:
    """submit (draft → under_review), publish, return (to draft), retire."""
    with runtime.db.session() as session:
        return articles.article_out(articles.transition(session, article_id, body.action, actor, runtime.now()))


@router.get("/articles/{article_id}/versions")
def article_versions(article_id: ArticleId, actor: EditorActor, runtime: RuntimeDep) -> list[dict[str, Any]]:
    """Every change of the article: who, when, what, the fields after it."""
    with runtime.db.read_session() as session:
        return [
            {"version": v.version, "action": v.action, "at": v.at, "by": v.by_name, "fields": v.fields}
            for v in articles.versions(session, article_id)
        ]


def _public_client(request: Request, runtime) -> None:
    """The public side's rate limit, per client address."""
    runtime.rate_limiter.hit(f"public:{request.client.host if request.client else '-'}")


@public_router.get("/search")
def public_search(
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    q: Q,
    limit: Limit = 10,
    category: Text = None,
    kind: Kind = None,
) -> dict[str, Any]:
    """Published public articles valid today, best first (no token)."""
    _public_client(request, runtime)
    with runtime.db.read_session() as session:
        hits = search.search(
            session,
            q,
            limit=limit,
            public_only=True,
            category=category,
            kind=kind,
            today=articles.local_today(runtime.now()),
        )
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return _hits(hits, public=True)


@public_router.get("/{article_id}")
def public_article(article_id: ArticleId, request: Request, response: Response, runtime: RuntimeDep) -> dict[str, Any]:
    """One published public article valid today, its body as safe HTML (no token)."""
    _public_client(request, runtime)
    with runtime.db.read_session() as session:
        article = articles.get_public(session, article_id, articles.local_today(runtime.now()))
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return articles.article_out(article, public=True)
