"""The knowledge base (知识库): staff search, articles, their lifecycle and import under
/api/v1/knowledge; the public side (no token) under /public/v1/knowledge."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import Field

from hotline.api.deps import RuntimeDep, public_client, require
from hotline.api.schemas import Body, RowId
from hotline.errors import NotPermitted
from hotline.inputs import MAX_ID, IdPath, PageQuery
from hotline.knowledge import articles, catalog, feedback, search
from hotline.knowledge.articles import EDITORS, MAX_IMPORT, STAFF, ArticleIn, ArticlePatch
from hotline.models import ARTICLE_KINDS, ARTICLE_STATUSES, FLAG_REASONS
from hotline.workflow.engine import Actor

router = APIRouter(prefix="/knowledge", tags=["knowledge"])
public_router = APIRouter(prefix="/public/v1/knowledge", tags=["knowledge (public)"])

StaffActor = Annotated[Actor, require(*STAFF)]
EditorActor = Annotated[Actor, require(*sorted(EDITORS))]
WriterActor = Annotated[Actor, require(*sorted(EDITORS), "leader")]
ArticleId = GapId = IdPath
Page = PageQuery
PerPage = Annotated[int, Query(ge=1, le=catalog.MAX_PER_PAGE)]
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


class FlagIn(Body):
    reason: Literal[tuple(FLAG_REASONS)]  # type: ignore[valid-type]
    comment: Annotated[str, Field(max_length=500)] | None = None


class GapCloseIn(Body):
    article_id: RowId | None = None


class DraftFromTicketIn(Body):
    ticket_id: RowId


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


@router.get("/articles")
def list_articles(
    actor: StaffActor,
    runtime: RuntimeDep,
    status: Annotated[Literal[ARTICLE_STATUSES] | None, Query()] = None,  # type: ignore[valid-type]
    category: Text = None,
    kind: Kind = None,
    department: Annotated[int | None, Query(ge=1, le=MAX_ID, description="a department's id")] = None,
    title: Text = None,
    page: Page = 1,
    per_page: PerPage = 20,
) -> dict[str, Any]:
    """Articles, most recently changed first (a category path includes the paths below it),
    without their bodies. Editors list every status; a leader also its own department's
    unpublished articles; everyone else published ones."""
    statuses, department = catalog.scope(actor, status, department)
    with runtime.db.read_session() as session:
        found = catalog.listing(
            session,
            statuses=statuses,
            category=category,
            kind=kind,
            department_id=department,
            title=title,
            page=page,
            per_page=per_page,
        )
        return {
            "total": found.total,
            "page": found.page,
            "per_page": found.per_page,
            "articles": [_summary(a) for a in found.articles],
        }


def _summary(article) -> dict[str, Any]:
    out = articles.article_out(article)
    del out["body"], out["body_html"]
    return out


@router.post("/articles/from-ticket", status_code=status.HTTP_201_CREATED)
def draft_from_ticket(body: DraftFromTicketIn, actor: WriterActor, runtime: RuntimeDep) -> dict[str, Any]:
    """知识回流: a consultation ticket's answer as a draft article (internal until an editor
    decides), filed under the ticket's category and issued by the department that answered."""
    with runtime.db.session() as session:
        return articles.article_out(feedback.draft_from_ticket(session, body.ticket_id, actor, runtime.now()))


@router.get("/articles/{article_id}")
def get_article(article_id: ArticleId, actor: StaffActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.db.read_session() as session:
        return articles.article_out(articles.get_readable(session, article_id, actor))


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


@router.post("/articles/{article_id}/flags", status_code=status.HTTP_201_CREATED)
def flag_article(article_id: ArticleId, body: FlagIn, actor: StaffActor, runtime: RuntimeDep) -> dict[str, Any]:
    """Flag an article as unhelpful, out of date or wrong; the editors see it listed."""
    with runtime.db.session() as session:
        return feedback.flag_out(
            feedback.flag(session, article_id, reason=body.reason, comment=body.comment, actor=actor, at=runtime.now())
        )


@router.get("/flags")
def flagged_articles(
    actor: EditorActor, runtime: RuntimeDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> dict[str, Any]:
    """Articles with open flags, most flagged first, each with its open flags."""
    with runtime.db.read_session() as session:
        return {
            "articles": [
                {
                    "id": item.article.id,
                    "title": item.article.title,
                    "status": item.article.status,
                    "count": item.count,
                    "flags": [feedback.flag_out(f) for f in item.flags],
                }
                for item in feedback.flagged(session, limit=limit)
            ]
        }


@router.post("/articles/{article_id}/flags/resolve")
def resolve_flags(article_id: ArticleId, actor: EditorActor, runtime: RuntimeDep) -> dict[str, Any]:
    """The editor has dealt with an article's open flags."""
    with runtime.db.session() as session:
        return {"resolved": feedback.resolve_flags(session, article_id, actor, runtime.now())}


@router.get("/gaps")
def knowledge_gaps(
    actor: EditorActor,
    runtime: RuntimeDep,
    closed: bool = False,
    page: Page = 1,
    per_page: PerPage = 50,
) -> dict[str, Any]:
    """知识缺口: questions agents and the assistant found no answer for, most asked first."""
    with runtime.db.read_session() as session:
        rows, total = feedback.gaps(session, closed=closed, limit=per_page, offset=(page - 1) * per_page)
        return {"total": total, "page": page, "per_page": per_page, "gaps": [feedback.gap_out(g) for g in rows]}


@router.post("/gaps/{gap_id}/close")
def close_gap(gap_id: GapId, body: GapCloseIn, actor: EditorActor, runtime: RuntimeDep) -> dict[str, Any]:
    """Close a gap, naming the article that now answers it if there is one."""
    with runtime.db.session() as session:
        return feedback.gap_out(feedback.close_gap(session, gap_id, actor, runtime.now(), article_id=body.article_id))


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
    public_client(request, runtime)
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
    public_client(request, runtime)
    with runtime.db.read_session() as session:
        article = articles.get_public(session, article_id, articles.local_today(runtime.now()))
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return articles.article_out(article, public=True)


@public_router.post("/{article_id}/flags", status_code=status.HTTP_201_CREATED)
def public_flag(article_id: ArticleId, body: FlagIn, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    """A citizen found a public article unhelpful, out of date or wrong (no token)."""
    public_client(request, runtime)
    with runtime.db.session() as session:
        row = feedback.flag(session, article_id, reason=body.reason, comment=body.comment, actor=None, at=runtime.now())
        return {"id": row.id, "reason": row.reason}
