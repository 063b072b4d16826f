"""The editors' workbench: the spreadsheet import, the knowledge gaps, the flagged articles."""

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from hotline.api.deps import RuntimeDep
from hotline.errors import Invalid, NotFound
from hotline.inputs import IdPath
from hotline.knowledge import articles, catalog, feedback, spreadsheet
from hotline.knowledge.articles import MAX_IMPORT
from hotline.web.forms import submit
from hotline.web.knowledge.common import (
    MAX_UPLOAD_BYTES,
    Done,
    Editor,
    EditorForm,
    PageNo,
    _done,
    _labels,
    _page,
    router,
    zh_message,
)

GAPS_PER_PAGE = 50
IMPORT = "knowledge/import.html"


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
    errors = list(sheet.errors)
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
            errors.append(spreadsheet.RowError(e["index"], *zh_message(e["field"], e["message"])))
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
    gap_id: IdPath,
    article: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    def change(session: Session) -> str:
        named = _article_named(session, article)
        try:
            feedback.close_gap(session, gap_id, user.actor, runtime.now(), article_id=named)
        except NotFound:
            raise NotFound(zh="该知识缺口不存在") from None
        return "/knowledge/gaps?done=closed"

    return submit(request, runtime, change, template=GAPS, context=lambda s: _gaps_context(s, False, 1) | _labels(user))


@router.get("/flags", response_class=HTMLResponse)
def flags_page(request: Request, runtime: RuntimeDep, _: Editor, done: Done = None) -> Response:
    """反馈: articles flagged unhelpful, out of date or wrong, most flagged first."""
    with runtime.db.read_session() as session:
        flagged = feedback.flagged(session, limit=100)
    return _page(request, "knowledge/flags.html", {"flagged": flagged, "flash": _done(done)})
