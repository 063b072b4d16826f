"""新建知识 and 修改知识: the article's form, refused as typed with the reason by its field."""

from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError
from sqlmodel import Session

from hotline.api.deps import RuntimeDep
from hotline.directory import active_departments
from hotline.errors import Conflict, HotlineError, NotPermitted
from hotline.inputs import MAX_ID, IdQuery
from hotline.knowledge import articles, feedback
from hotline.knowledge.articles import EDITORS, ArticleIn, ArticlePatch
from hotline.models import ARTICLE_KINDS, Article, KnowledgeGap
from hotline.runtime import Runtime
from hotline.web.auth import PageUser
from hotline.web.knowledge.common import (
    STATUS_LABELS,
    ArticleId,
    Writer,
    WriterForm,
    _category_options,
    _page,
    _refusal,
    _visible,
    _writable,
    router,
    zh_message,
)

# The form of an article, as typed.
FORM_FIELDS = ("category", "title", "body", "department", "kind", "keywords", "region", "valid_from", "valid_until")


def _form_of(article: Article) -> dict[str, str]:
    """An article's fields as the form shows them."""
    return {
        "category": article.category,
        "title": article.title,
        "body": article.body,
        "department": article.department,
        "kind": article.kind,
        "keywords": "，".join(article.keywords),
        "region": article.region or "",
        "valid_from": article.valid_from.isoformat() if article.valid_from else "",
        "valid_until": article.valid_until.isoformat() if article.valid_until else "",
        "public": "1" if article.public else "0",
    }


def _typed(values: dict[str, str]) -> dict[str, Any]:
    """The form's text as an article's fields: blanks of the optional ones are none."""
    data: dict[str, Any] = {name: values[name] for name in FORM_FIELDS}
    for name in ("region", "valid_from", "valid_until"):
        if not data[name].strip():
            data[name] = None
    data["public"] = values["public"] != "0"
    return data


def _form_context(session: Session, user: PageUser, form: dict[str, str], **extra: Any) -> dict[str, Any]:
    departments = active_departments(session)
    if user.role == "leader":
        departments = [d for d in departments if d.id == user.actor.department_id]
    return {
        "form": form,
        "errors": {},
        "departments": departments,
        "leader": user.role == "leader",
        "category_paths": [path for path, _ in _category_options(session, counted=False)],
        "max_title": 128,
        **extra,
    }


def _form_page(
    request: Request, runtime: Runtime, user: PageUser, form: dict[str, str], status_code: int = 200, **extra: Any
) -> Response:
    with runtime.db.read_session() as session:
        ctx = _form_context(session, user, form, **extra)
        if ctx.get("taken_id"):
            ctx["taken"] = session.get(Article, ctx["taken_id"])
    return _page(request, "knowledge/form.html", ctx, status_code)


def _refused_form(
    request: Request, runtime: Runtime, user: PageUser, form: dict[str, str], exc: Exception, **extra: Any
) -> Response:
    """The form again, as typed, with each refusal by its field."""
    errors: dict[str, str] = {}
    if isinstance(exc, ValidationError):
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ())]
            field, message = zh_message(loc[0] if loc else "", err.get("msg", ""))
            errors.setdefault(field or "form", message)
        status_code, error = 422, "填写的内容有误，请按提示修改"
    else:
        assert isinstance(exc, HotlineError)
        if exc.status_code == 404:
            raise _refusal(exc)
        field, message = zh_message(str(exc.extra.get("field") or ""), exc.message)
        message = str(exc.extra.get("zh") or message)
        if field in FORM_FIELDS or field == "public":
            errors[field] = message
        status_code, error = exc.status_code, message
        extra["taken_id"] = exc.extra.get("article_id") if exc.status_code == 409 else None
    return _form_page(request, runtime, user, form, status_code, errors=errors, error=error, **extra)


@router.get("/new", response_class=HTMLResponse)
def new_article(
    request: Request,
    runtime: RuntimeDep,
    user: Writer,
    title: Annotated[str, Query(max_length=200)] = "",
    gap: IdQuery = None,
) -> Response:
    """新建知识; from a knowledge gap, its question as the title."""
    form = {name: "" for name in FORM_FIELDS} | {"title": title.strip()[:128], "public": "1", "kind": ARTICLE_KINDS[0]}
    if user.role == "leader" and user.department_name:
        form["department"] = user.department_name
    return _form_page(request, runtime, user, form, gap=gap)


FormText = Annotated[str, Field(max_length=500)]


class ArticleForm(BaseModel):
    """An article's form as posted: text as typed (ArticleIn checks it)."""

    category: FormText = ""
    title: FormText = ""
    body: Annotated[str, Field(max_length=articles.MAX_BODY_CHARS * 2)] = ""
    department: FormText = ""
    kind: FormText = ""
    keywords: Annotated[str, Field(max_length=2000)] = ""
    region: FormText = ""
    valid_from: FormText = ""
    valid_until: FormText = ""
    public: Annotated[str, Field(max_length=1)] = "1"
    # From a knowledge gap (新建知识 on 知识缺口): closed with the new article.
    gap: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    # An edit: the version the form was shown at.
    version: Annotated[int, Field(ge=1)] | None = None


@router.post("/new", response_class=HTMLResponse)
def create_article(
    request: Request, runtime: RuntimeDep, user: WriterForm, posted: Annotated[ArticleForm, Form()]
) -> Response:
    form = posted.model_dump(exclude={"gap", "version"})
    try:
        data = ArticleIn.model_validate(_typed(form))
        with runtime.db.session() as session:
            article = articles.create(session, data, user.actor, runtime.now())
            if posted.gap is not None and user.role in EDITORS:
                _answer_gap(session, user, posted.gap, article.id, runtime)
            article_id = article.id
    except (ValidationError, HotlineError) as exc:
        return _refused_form(request, runtime, user, form, exc, gap=posted.gap)
    return RedirectResponse(f"/knowledge/{article_id}?done=created", status_code=303)


def _answer_gap(session: Session, user: PageUser, gap_id: int, article_id: int, runtime: Runtime) -> None:
    """A gap answered by the article just written is closed with it (if still open)."""
    gap = session.get(KnowledgeGap, gap_id)
    if gap is not None and gap.closed_at is None:
        feedback.close_gap(session, gap_id, user.actor, runtime.now(), article_id=article_id)


@router.get("/{article_id}/edit", response_class=HTMLResponse)
def edit_article(request: Request, runtime: RuntimeDep, user: Writer, article_id: ArticleId) -> Response:
    with runtime.db.read_session() as session:
        article = _visible(session, user, article_id)
        if not _writable(user, article):
            raise NotPermitted("not writable", zh=f"该条目{STATUS_LABELS[article.status]}，只有知识库管理员可以修改")
        form, version = _form_of(article), article.version
    return _form_page(request, runtime, user, form, article_id=article_id, version=version)


@router.post("/{article_id}/edit", response_class=HTMLResponse)
def save_article(
    request: Request,
    runtime: RuntimeDep,
    user: WriterForm,
    article_id: ArticleId,
    posted: Annotated[ArticleForm, Form()],
) -> Response:
    form = posted.model_dump(exclude={"gap", "version"})
    version = posted.version
    extra = {"article_id": article_id, "version": version}
    try:
        # Every field is on the form: checked whole, as a new article is.
        data = ArticleIn.model_validate(_typed(form))
        with runtime.db.session() as session:
            article = _visible(session, user, article_id)
            if article.version != version:
                raise Conflict("changed since", zh="该条目刚刚已被他人修改：请打开最新内容后再修改")
            patch = ArticlePatch.model_validate(data.model_dump(exclude={"external_id"}))
            article = articles.update(session, article_id, patch, user.actor, runtime.now())
            changed = article.version != version
    except (ValidationError, HotlineError) as exc:
        return _refused_form(request, runtime, user, form, exc, **extra)
    return RedirectResponse(f"/knowledge/{article_id}?done={'saved' if changed else 'unchanged'}", status_code=303)
