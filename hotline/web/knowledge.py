"""The knowledge base's pages (知识库): the list and the search, one article with its
versions and flags, the forms that write articles, the spreadsheet import, the review
queue, the knowledge gaps and the flagged articles.

Every staff role reads the published articles; a department's leader also its own
department's, and writes its drafts; the editors (知识库管理员) and administrators write
everything and deal with the gaps and flags. What may be done is the services' to decide
(hotline.knowledge); a page only leaves out the buttons its user may not press.
"""

import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError
from sqlmodel import Session, select

from hotline.api.deps import RuntimeDep
from hotline.api.schemas import MAX_ID
from hotline.directory import active_departments
from hotline.errors import Conflict, HotlineError, Invalid, NotFound, NotPermitted
from hotline.knowledge import articles, catalog, feedback, search, spreadsheet
from hotline.knowledge.articles import ACTIONS, EDITORS, FIELDS, MAX_IMPORT, STAFF, ArticleIn, ArticlePatch
from hotline.knowledge.text import render as render_markdown
from hotline.models import ARTICLE_KINDS, ARTICLE_STATUSES, FLAG_REASONS, Article, ArticleFlag, KnowledgeGap, Ticket
from hotline.runtime import Runtime
from hotline.web.auth import PageUser, role_form_user, role_user
from hotline.web.forms import safe_path, submit
from hotline.web.render import render

router = APIRouter(prefix="/knowledge", include_in_schema=False)

Staff = Annotated[PageUser, role_user(*STAFF)]
StaffForm = Annotated[PageUser, role_form_user(*STAFF)]
Writer = Annotated[PageUser, role_user(*sorted(EDITORS), "leader")]
WriterForm = Annotated[PageUser, role_form_user(*sorted(EDITORS), "leader")]
Editor = Annotated[PageUser, role_user(*sorted(EDITORS))]
EditorForm = Annotated[PageUser, role_form_user(*sorted(EDITORS))]
ArticleId = Annotated[int, PathParam(ge=1, le=MAX_ID)]
PageNo = Annotated[int, Query(ge=1, le=100_000)]
Done = Annotated[str | None, Query(max_length=20)]

STATUS_LABELS = {"draft": "草稿", "under_review": "待审核", "published": "已发布", "retired": "已下线"}
ACTION_LABELS = {
    "create": "新建",
    "edit": "修改",
    "import": "导入",
    "submit": "提交审核",
    "publish": "发布",
    "return": "退回修改",
    "retire": "下线",
    "expire": "到期下线",
}
FIELD_LABELS = {**spreadsheet.COLUMNS, "status": "状态"}
# What the pages say after a change (the redirect's `done`): fixed words, never the address's.
DONE = {
    "created": "已新建知识条目（草稿）",
    "saved": "已保存修改",
    "unchanged": "内容没有变化，未生成新版本",
    "submit": "已提交审核",
    "publish": "已发布",
    "return": "已退回修改",
    "retire": "已下线",
    "flagged": "反馈已提交，知识库管理员会尽快处理",
    "resolved": "已处理该条目的反馈",
    "closed": "已处理该知识缺口",
}
PER_PAGE = 20
GAPS_PER_PAGE = 50
SEARCH_LIMIT = search.MAX_LIMIT
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
# The form of an article, as typed.
FORM_FIELDS = ("category", "title", "body", "department", "kind", "keywords", "region", "valid_from", "valid_until")


def _labels(user: PageUser) -> dict[str, Any]:
    """What every knowledge page's template uses: the labels, and whether its user edits."""
    return {
        "STATUS_LABELS": STATUS_LABELS,
        "ACTION_LABELS": ACTION_LABELS,
        "FIELD_LABELS": FIELD_LABELS,
        "FLAG_REASONS": FLAG_REASONS,
        "KINDS": ARTICLE_KINDS,
        "is_editor": user.role in EDITORS,
    }


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    """A knowledge page, with the labels every one of them uses."""
    return render(request, name, {**_labels(request.state.page_user), **context}, status_code)


def _done(done: str | None) -> str | None:
    return DONE.get(done or "")


# ------------------------------------------------------------------ who may do what


def _readable(user: PageUser, article: Article) -> bool:
    """Published articles to every staff role; the others to the editors and to the leader
    of the article's department."""
    return (
        article.status == "published"
        or user.role in EDITORS
        or (user.role == "leader" and article.department_id == user.actor.department_id)
    )


def _writable(user: PageUser, article: Article) -> bool:
    if user.role in EDITORS:
        return True
    return user.role == "leader" and article.department_id == user.actor.department_id and article.status == "draft"


def _actions(user: PageUser, article: Article) -> list[str]:
    """The lifecycle actions this user may take on the article now."""
    return [
        action
        for action, (sources, _) in ACTIONS.items()
        if article.status in sources and (user.role in EDITORS or (action == "submit" and _writable(user, article)))
    ]


def _visible(session: Session, user: PageUser, article_id: int) -> Article:
    """The article, or 404 when this user may not read it."""
    article = articles.get(session, article_id)
    if not _readable(user, article):
        raise NotFound()
    return article


# ------------------------------------------------------------------ messages in Chinese

_KINDS = "、".join(ARTICLE_KINDS)
# The services' and the validators' English, said in Chinese (the field stays the field).
_MESSAGES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), zh)
    for p, zh in (
        (r"^(Field required|String should have at least 1 character)", "必填"),
        (r"^String should have at most (\d+) characters?", "不能超过 {0} 个字"),
        (r"^Input should be '办事指南'", f"应为 {_KINDS} 之一"),
        (r"^Input should be a valid date", "日期无法识别，请写作 2026-11-01"),
        (r"^Input should be a valid boolean", "应为 是 或 否"),
        (r"^a path of names separated by '/'", "应为以“/”分隔的类目名称，如 社会保障/养老保险"),
        (r"^at most (\d+) keywords", "关键字最多 {0} 个"),
        (r"^a keyword has at most (\d+) characters: (.*)", "每个关键字不超过 {0} 个字：{1}"),
        (r"before valid_from", "失效日期早于生效日期"),
        (r"a keyword repeats the title", "关键字不能与标题相同"),
        (r"already has an article with this title: article (\d+)", "该发文单位已有同名的知识条目（条目号 {0}）"),
        (r"^external_id: already used by article (\d+)", "编号已被条目号 {0} 的知识使用"),
        (r"^repeats row (\d+)", "与第 {0} 行重复"),
        (r"^the article is (\w+): only the editors", "该条目{status}，只有知识库管理员可以修改"),
        (r"^a leader writes only the articles its own department issues", "单位负责人只能编写本单位发文的知识"),
        (r"^cannot (\w+) an article that is (\w+)", "条目当前为“{status2}”，不能{action}"),
        (r"^the article expired on (\S+): change valid_until", "该条目已于 {0} 失效：请先修改失效日期"),
        (r"^the role .* may not", "您的角色无权执行此操作"),
        (r"^unknown field", "未知的字段"),
        (r"^refused by the database: (.*)", "数据库拒绝写入：{0}"),
    )
]
# Messages of the whole article that are about one field.
_FIELD_OF = {"before valid_from": "valid_until", "a keyword repeats the title": "keywords"}


def zh_message(field: str, message: str) -> tuple[str, str]:
    """A refusal's field and its message in Chinese (an unknown message as it is)."""
    message = message.removeprefix("Value error, ")
    for hint, name in _FIELD_OF.items():
        if hint in message:
            field = name
    for pattern, zh in _MESSAGES:
        match = pattern.search(message)
        if match:
            groups = match.groups()
            extra = {
                "status": STATUS_LABELS.get(groups[0], "") if groups else "",
                "status2": STATUS_LABELS.get(groups[1], groups[1]) if len(groups) > 1 else "",
                "action": ACTION_LABELS.get(groups[0], "") if groups else "",
            }
            return field, zh.format(*groups, **extra)
    return field, message


def _refusal(exc: HotlineError) -> HotlineError:
    """The error with its message in Chinese for the page (forms.page_message reads `zh`)."""
    if "zh" not in exc.extra:
        exc.extra["zh"] = zh_message(str(exc.extra.get("field") or ""), exc.message)[1]
    return exc


# ------------------------------------------------------------------ the list and the search


def _scope(user: PageUser, status: str, department_id: int | None) -> tuple[tuple[str, ...] | None, int | None]:
    """The statuses and the department a user's list shows: editors any; a leader the
    published articles, or its own department's of any status; the others the published."""
    if user.role in EDITORS:
        return ((status,) if status else None), department_id
    own = user.actor.department_id
    if user.role == "leader" and status in ("draft", "under_review", "retired"):
        return (status,), own
    if user.role == "leader" and not status and department_id == own:
        return None, own
    if status and status != "published":
        raise NotPermitted("only editors and a department's leader list unpublished articles")
    return ("published",), department_id


def _category_options(session: Session, counted: bool) -> list[tuple[str, str]]:
    """The category paths in use, as a select's options (indented by depth)."""
    out: list[tuple[str, str]] = []

    def walk(nodes: list[catalog.CategoryNode], depth: int) -> None:
        for node in nodes:
            count = f"（{node.count}）" if counted else ""
            out.append((node.path, "\u3000" * depth + node.name + count))
            walk(sorted(node.children.values(), key=lambda n: (-n.count, n.name)), depth + 1)

    walk(catalog.category_tree(session), 0)
    return out


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
        limit=SEARCH_LIMIT,
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
    department: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    page: PageNo = 1,
    done: Done = None,
) -> Response:
    """知识库: the articles this user may read, a page at a time, or the answers to a question."""
    q = " ".join(q.split())
    kind = kind if kind in ARTICLE_KINDS else ""
    statuses, department_id = _scope(user, status, department)
    with runtime.db.read_session() as session:
        departments = active_departments(session)
        categories = _category_options(session, counted=user.role in EDITORS)
        if q:
            rows = _search_rows(
                session,
                runtime,
                user,
                q,
                statuses=statuses,
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
            )
            rows, total, pages = [Row(a) for a in found.articles], found.total, found.pages
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


# ------------------------------------------------------------------ new and edit


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
            raise exc
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
    gap: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
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
            raise _refusal(
                NotPermitted("not writable", zh=f"该条目{STATUS_LABELS[article.status]}，只有知识库管理员可以修改")
            )
        form = _form_of(article)
        version, status = article.version, article.status
    return _form_page(request, runtime, user, form, article_id=article_id, version=version, status=status)


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


# ------------------------------------------------------------------ import

IMPORT = "knowledge/import.html"


@dataclass(frozen=True)
class ImportProblem:
    row: int
    column: str
    message: str


@router.get("/import", response_class=HTMLResponse)
def import_page(request: Request, _: Editor) -> Response:
    return _page(request, IMPORT, {"columns": spreadsheet.COLUMNS, "required": spreadsheet.REQUIRED})


@router.get("/import/template.xlsx")
def import_template(_: Editor) -> Response:
    name = quote("知识导入模板.xlsx")
    return Response(
        spreadsheet.template(),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f"attachment; filename=knowledge-template.xlsx; filename*=UTF-8''{name}"},
    )


@router.post("/import", response_class=HTMLResponse)
def import_sheet(
    request: Request, runtime: RuntimeDep, user: EditorForm, file: Annotated[UploadFile, File()]
) -> Response:
    """A department's spreadsheet: each valid row created or updated (a thousand a
    transaction), each invalid one listed by its row and column."""
    ctx: dict[str, Any] = {"columns": spreadsheet.COLUMNS, "required": spreadsheet.REQUIRED, "filename": file.filename}
    data = file.file.read(MAX_UPLOAD_BYTES + 1)
    try:
        if not data:
            raise spreadsheet.SheetError("请选择要上传的 .xlsx 文件")
        if len(data) > MAX_UPLOAD_BYTES:
            raise spreadsheet.SheetTooLarge(f"文件超过 {MAX_UPLOAD_BYTES // 1024 // 1024} MB：请分成几个文件上传")
        sheet = spreadsheet.read_sheet(data)
    except spreadsheet.SheetError as exc:
        return _page(request, IMPORT, {**ctx, "error": str(exc)}, exc.status)
    totals = {"created": 0, "updated": 0, "unchanged": 0}
    errors = [ImportProblem(e.row, e.column, e.message) for e in sheet.errors]
    for start in range(0, len(sheet.rows), MAX_IMPORT):
        # One transaction a batch, as `hotline knowledge import` does.
        with runtime.db.session() as session:
            answer = articles.import_rows(
                session,
                sheet.rows[start : start + MAX_IMPORT],
                user.actor,
                runtime.now(),
                indexes=sheet.lines[start : start + MAX_IMPORT],
            )
        for key in totals:
            totals[key] += answer[key]
        for e in answer["errors"]:
            field, message = zh_message(e["field"], e["message"])
            errors.append(ImportProblem(e["index"], FIELD_LABELS.get(field, "整行"), message))
    errors.sort(key=lambda e: e.row)
    return _page(request, IMPORT, {**ctx, "result": totals, "errors": errors, "rows": len(sheet.rows)})


# ------------------------------------------------------------------ gaps and flags

GAPS = "knowledge/gaps.html"


def _gaps_context(session: Session, closed: bool, page: int) -> dict[str, Any]:
    rows, total = feedback.gaps(session, closed=closed, limit=GAPS_PER_PAGE, offset=(page - 1) * GAPS_PER_PAGE)
    answered = {g.article_id for g in rows if g.article_id}
    titles = {i: articles.get(session, i).title for i in answered}
    return {
        "gaps": rows,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // GAPS_PER_PAGE)),
        "closed": closed,
        "titles": titles,
    }


@router.get("/gaps", response_class=HTMLResponse)
def gaps_page(
    request: Request, runtime: RuntimeDep, _: Editor, closed: bool = False, page: PageNo = 1, done: Done = None
) -> Response:
    """知识缺口: what callers asked that the knowledge base had no answer for, most asked first."""
    with runtime.db.read_session() as session:
        ctx = _gaps_context(session, closed, page)
    return _page(request, GAPS, {**ctx, "flash": _done(done)})


def _article_named(session: Session, text: str) -> int | None:
    """The article a gap is closed with: its number (#12 or 12), or a title (a part of it
    that names one article)."""
    text = text.strip().removeprefix("#").strip()
    if not text:
        return None
    if text.isdigit() and len(text) < 10:
        return int(text)
    found = catalog.listing(session, title=text, per_page=5)
    exact = [a for a in found.articles if a.title == text]
    if len(exact) == 1 or found.total == 1:
        return (exact or found.articles)[0].id
    if found.total == 0:
        raise Invalid("no such article", field="article", zh=f"没有标题包含“{text}”的知识条目")
    raise Invalid("several articles", field="article", zh=f"有 {found.total} 条知识的标题包含“{text}”：请填写条目号")


@router.post("/gaps/{gap_id}/close", response_class=HTMLResponse)
def close_gap(
    request: Request,
    runtime: RuntimeDep,
    user: EditorForm,
    gap_id: Annotated[int, PathParam(ge=1, le=MAX_ID)],
    article: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    def change(session: Session) -> str:
        feedback.close_gap(session, gap_id, user.actor, runtime.now(), article_id=_article_named(session, article))
        return "/knowledge/gaps?done=closed"

    return submit(request, runtime, change, template=GAPS, context=lambda s: _gaps_context(s, False, 1) | _labels(user))


@router.get("/flags", response_class=HTMLResponse)
def flags_page(request: Request, runtime: RuntimeDep, _: Editor, done: Done = None) -> Response:
    """反馈: articles flagged unhelpful, out of date or wrong, most flagged first."""
    with runtime.db.read_session() as session:
        flagged = feedback.flagged(session, limit=100)
    return _page(request, "knowledge/flags.html", {"flagged": flagged, "flash": _done(done)})


# ------------------------------------------------------------------ one article

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
    open_flags = (
        session.exec(
            select(ArticleFlag)
            .where(ArticleFlag.article_id == article.id, ArticleFlag.resolved_at.is_(None))
            .order_by(ArticleFlag.at.desc())
        ).all()
        if editor
        else []
    )
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
