"""Attachments on the pages: a ticket page's upload form, the files and thumbnails it shows
(to exactly those who see the ticket)."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hotline.api.deps import RuntimeDep
from hotline.attachments import files
from hotline.errors import HotlineError, Invalid
from hotline.inputs import IdPath
from hotline.web.auth import FormUser, UserDep
from hotline.web.forms import page_message
from hotline.web.render import render
from hotline.web.uploads import posted_files
from hotline.web.views import ticket_context

router = APIRouter(include_in_schema=False)


@router.post("/tickets/{ticket_id}/attachments", response_class=HTMLResponse)
async def upload(request: Request, ticket_id: IdPath, runtime: RuntimeDep, user: FormUser) -> Response:
    """上传附件 from the ticket page; refused, the page again with the reason."""
    form = await request.form()
    try:
        chosen = posted_files(form, "file")
        if not chosen:
            raise Invalid("file: choose a file", field="file", zh="请选择要上传的文件")
        kind = str(form.get("kind") or "")
        files.upload(runtime, user.actor, ticket_id, kind=kind, name=chosen[0].filename, file=chosen[0].file)
    except HotlineError as exc:
        if exc.status_code == 404:
            raise
        with runtime.db.read_session() as session:
            ctx = ticket_context(runtime, session, user, ticket_id)
        return render(request, "ticket.html", {**ctx, "attach_error": page_message(exc)}, exc.status_code)
    return RedirectResponse(f"/tickets/{ticket_id}?attached=1#attachments", status_code=303)


@router.get("/tickets/{ticket_id}/attachments/{attachment_id}")
def download(ticket_id: IdPath, attachment_id: IdPath, runtime: RuntimeDep, user: UserDep) -> Response:
    with runtime.db.read_session() as session:
        row = files.get_readable(session, user.actor, attachment_id, ticket_id)
    return files.response(runtime, row)


@router.get("/tickets/{ticket_id}/attachments/{attachment_id}/thumbnail")
def thumbnail(ticket_id: IdPath, attachment_id: IdPath, runtime: RuntimeDep, user: UserDep) -> Response:
    with runtime.db.read_session() as session:
        row = files.get_readable(session, user.actor, attachment_id, ticket_id)
    return files.response(runtime, row, thumbnail_only=True)
