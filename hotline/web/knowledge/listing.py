"""知识库: the articles a page at a time, or the answers to a question, by role."""

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from hotline.api.deps import RuntimeDep
from hotline.directory import active_departments
from hotline.inputs import IdQuery
from hotline.knowledge import articles, catalog, search
from hotline.knowledge.articles import EDITORS
from hotline.models import ARTICLE_KINDS, ARTICLE_STATUSES, Article
from hotline.runtime import Runtime
from hotline.web.auth import PageUser
from hotline.web.knowledge.common import (
    Done,
    PageNo,
    Staff,
    _actions,
    _category_options,
    _done,
    _page,
    _readable,
    router,
)

PER_PAGE = 20


@dataclass(frozen=True)
class Row:
    article: Article
    snippet: str | None = None  # a search hit's passage: HTML the search escaped and marked


def _search_rows(
    session: Session,
    runtime: Runtime,
    user: PageUser,
    q: str,
    *,
    statuses: tuple[str, ...] | None,
    category: str | None,
    kind: str | None,
    department_id: int | None,
) -> list[Row]:
    """The best answers to `q` this user may read, within the filters."""
    hits = search.search(
        session,
        q,
        limit=search.MAX_LIMIT,
        category=category,
        kind=kind,
        all_statuses=user.role in EDITORS or user.role == "leader",
        today=articles.local_today(runtime.now()),
    )
    rows = []
    for hit in hits:
        article = articles.get(session, hit.id)
        if not _readable(user, article) or (statuses and article.status not in statuses):
            continue
        if department_id is not None and article.department_id != department_id:
            continue
        rows.append(Row(article, hit.snippet))
    return rows


@router.get("", response_class=HTMLResponse)
def knowledge_list(
    request: Request,
    runtime: RuntimeDep,
    user: Staff,
    q: Annotated[str, Query(max_length=search.MAX_QUERY_CHARS)] = "",
    status: Annotated[str, Query(pattern=f"^({'|'.join(ARTICLE_STATUSES)})?$")] = "",
    category: Annotated[str, Query(max_length=200)] = "",
    kind: Annotated[str, Query(max_length=8)] = "",
    department: IdQuery = None,
    page: PageNo = 1,
    done: Done = None,
) -> Response:
    """知识库: the articles this user may read, a page at a time, or the answers to a question."""
    q = " ".join(q.split())
    kind = kind if kind in ARTICLE_KINDS else ""
    statuses, department_id = catalog.scope(user.actor, status, department)
    with runtime.db.read_session() as session:
        departments = active_departments(session)
        categories = _category_options(session, counted=user.role in EDITORS)
        if q:
            # A search reads whatever the user may read: a leader's own drafts too.
            rows = _search_rows(
                session,
                runtime,
                user,
                q,
                statuses=None if user.role == "leader" and not status else statuses,
                category=category or None,
                kind=kind or None,
                department_id=department_id,
            )
            total, pages = len(rows), 1
        else:
            found = catalog.listing(
                session,
                statuses=statuses,
                category=category or None,
                kind=kind or None,
                department_id=department_id,
                page=page,
                per_page=PER_PAGE,
                clamp=True,
            )
            rows, total, pages = [Row(a) for a in found.articles], found.total, found.pages
            page = found.page
        reviewing = user.role in EDITORS and status == "under_review"
        filters = {"q": q, "status": status, "category": category, "kind": kind, "department": department or ""}
        return _page(
            request,
            "knowledge/list.html",
            {
                "rows": rows,
                "total": total,
                "page": page,
                "pages": pages,
                **filters,
                "query": urlencode({k: v for k, v in filters.items() if v}),
                "departments": departments,
                "department_names": {d.id: d.name for d in departments},
                "categories": categories,
                "heading": "待审核" if reviewing and not q else "知识库",
                "reviewing": reviewing,
                "own_department": user.actor.department_id if user.role == "leader" else None,
                "may_write": user.role in EDITORS or user.role == "leader",
                "flash": _done(done),
                "actions": {row.article.id: _actions(user, row.article) for row in rows},
            },
        )
