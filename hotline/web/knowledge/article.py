"""One article: its body, fields, versions and flags; its lifecycle buttons; 反馈."""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from hotline.api.deps import RuntimeDep
from hotline.errors import HotlineError, Invalid
from hotline.knowledge import articles, feedback
from hotline.knowledge.articles import ACTIONS, EDITORS, FIELDS
from hotline.knowledge.text import render as render_markdown
from hotline.models import Ticket
from hotline.runtime import Runtime
from hotline.web.auth import PageUser
from hotline.web.forms import safe_path, submit
from hotline.web.knowledge.common import (
    FIELD_LABELS,
    STATUS_LABELS,
    ArticleId,
    Done,
    EditorForm,
    Staff,
    StaffForm,
    WriterForm,
    _actions,
    _done,
    _labels,
    _page,
    _refusal,
    _visible,
    _writable,
    router,
)

ARTICLE = "knowledge/article.html"


@dataclass(frozen=True)
class Change:
    label: str
    before: str
    after: str


@dataclass(frozen=True)
class VersionRow:
    version: int
    action: str
    at: Any
    by: str
    changes: list[Change]


def _shown(name: str, value: Any) -> str:
    if value is None or value == "" or value == []:
        return "（空）"
    if name == "keywords":
        return "，".join(value)
    if name == "public":
        return "公开" if value else "仅内部"
    if name == "status":
        return STATUS_LABELS.get(value, value)
    return str(value)


def version_rows(versions: list) -> list[VersionRow]:
    """Each version with what changed against the one before it, newest first."""
    out = []
    previous: dict[str, Any] = {}
    for v in versions:
        changes = []
        if previous:
            for name in FIELDS:
                before, after = previous.get(name), v.fields.get(name)
                if before == after:
                    continue
                if name == "body":
                    changes.append(Change(FIELD_LABELS[name], f"{len(before or '')} 字", f"{len(after or '')} 字"))
                else:
                    changes.append(Change(FIELD_LABELS[name], _shown(name, before), _shown(name, after)))
        out.append(VersionRow(v.version, v.action, v.at, v.by_name, changes))
        previous = v.fields
    return out[::-1]


def _article_context(session: Session, user: PageUser, article_id: int) -> dict[str, Any]:
    article = _visible(session, user, article_id)
    editor = user.role in EDITORS
    source = session.get(Ticket, article.source_ticket_id) if article.source_ticket_id else None
    open_flags = feedback.open_flags(session, article.id) if editor else []
    return {
        "article": article,
        "body_html": render_markdown(article.body),
        "versions": version_rows(articles.versions(session, article.id)) if editor else [],
        "flags": open_flags,
        "actions": _actions(user, article),
        "may_edit": _writable(user, article),
        "source": source,
    }


@router.get("/{article_id}", response_class=HTMLResponse)
def article_page(
    request: Request, runtime: RuntimeDep, user: Staff, article_id: ArticleId, done: Done = None
) -> Response:
    with runtime.db.read_session() as session:
        ctx = _article_context(session, user, article_id)
    return _page(request, ARTICLE, {**ctx, "flash": _done(done)})


def _back(back: str, fallback: str, done: str) -> str:
    target = safe_path(back) if back.startswith("/knowledge") else None
    target = target or fallback
    return f"{target}{'&' if '?' in target else '?'}done={done}"


@router.post("/{article_id}/flags", response_class=HTMLResponse)
def flag_article(
    request: Request,
    runtime: RuntimeDep,
    user: StaffForm,
    article_id: ArticleId,
    reason: Annotated[str, Form(max_length=16)] = "",
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    def change(session: Session) -> str:
        _visible(session, user, article_id)
        if len(comment.strip()) > 500:
            raise Invalid("comment too long", field="comment", zh="说明不能超过 500 个字")
        feedback.flag(session, article_id, reason=reason, comment=comment, actor=user.actor, at=runtime.now())
        return f"/knowledge/{article_id}?done=flagged"

    return _submit(request, runtime, user, article_id, change)


@router.post("/{article_id}/flags/resolve", response_class=HTMLResponse)
def resolve_flags(
    request: Request,
    runtime: RuntimeDep,
    user: EditorForm,
    article_id: ArticleId,
    back: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    def change(session: Session) -> str:
        feedback.resolve_flags(session, article_id, user.actor, runtime.now())
        return _back(back, f"/knowledge/{article_id}", "resolved")

    return _submit(request, runtime, user, article_id, change)


@router.post("/{article_id}/{action}", response_class=HTMLResponse)
def transition(
    request: Request,
    runtime: RuntimeDep,
    user: WriterForm,
    article_id: ArticleId,
    action: Annotated[str, PathParam(pattern=f"^({'|'.join(ACTIONS)})$")],
    back: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """提交审核, 发布, 退回, 下线."""

    def change(session: Session) -> str:
        _visible(session, user, article_id)
        articles.transition(session, article_id, action, user.actor, runtime.now())
        return _back(back, f"/knowledge/{article_id}", action)

    return _submit(request, runtime, user, article_id, change)


def _submit(request: Request, runtime: Runtime, user: PageUser, article_id: int, change) -> Response:
    """forms.submit on the article's page: refused, the page again with the reason in Chinese."""

    def chinese(session: Session) -> str:
        try:
            return change(session)
        except HotlineError as exc:
            raise _refusal(exc) from None

    def context(session: Session) -> dict[str, Any]:
        return _article_context(session, user, article_id) | _labels(user)

    return submit(request, runtime, chinese, template=ARTICLE, context=context)
