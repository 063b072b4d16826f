"""Attachments (附件): a ticket's files added and listed, one file downloaded; exactly those
who may see the ticket may read them."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, UploadFile, status
from fastapi.responses import JSONResponse, StreamingResponse

from hotline.api.deps import CurrentActor, RuntimeDep
from hotline.attachments import files
from hotline.errors import Invalid
from hotline.inputs import IdPath
from hotline.models import ATTACHMENT_KINDS
from hotline.tickets import get_visible

router = APIRouter(tags=["attachments"])

Kind = Literal[ATTACHMENT_KINDS]  # type: ignore[valid-type]


@router.post("/tickets/{ticket_id}/attachments", status_code=status.HTTP_201_CREATED, response_model=None)
def add_attachment(
    ticket_id: IdPath,
    actor: CurrentActor,
    runtime: RuntimeDep,
    kind: Annotated[Kind, Form()],
    file: Annotated[UploadFile | None, File(description="the file (multipart)")] = None,
    reference: Annotated[
        str | None, Form(max_length=500, description="instead of a file: its address elsewhere (a call recording)")
    ] = None,
) -> JSONResponse:
    """Add a file (or, for a call recording, its address elsewhere) to a ticket: 413 over the
    size limit, 415 a type not allowed (judged by content), 404 a ticket not visible."""
    if (file is None) == (reference is None):
        raise Invalid("file: send either a file or a reference", field="file")
    if reference is not None and kind != "recording":
        raise Invalid("reference: only a recording may be given by reference", field="reference")
    if file is not None:
        row = files.upload(runtime, actor, ticket_id, kind=kind, name=file.filename, file=file.file)
        return JSONResponse(files.out(runtime, row), status_code=status.HTTP_201_CREATED)
    with runtime.db.session() as session:
        files.check_may_add(runtime, actor, get_visible(session, actor, ticket_id), kind)
        row = files.add(
            session,
            runtime,
            actor,
            ticket_id,
            kind=kind,
            name="录音链接",
            now=runtime.now(),
            reference=files.check_reference(reference or ""),
        )
        body = files.out(runtime, row)
    return JSONResponse(body, status_code=status.HTTP_201_CREATED)


@router.get("/tickets/{ticket_id}/attachments")
def list_attachments(ticket_id: IdPath, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    """The ticket's attachments, oldest first."""
    with runtime.db.read_session() as session:
        get_visible(session, actor, ticket_id)
        return {"items": [files.out(runtime, row) for row in files.listed(session, ticket_id)]}


@router.get("/attachments/{attachment_id}", response_model=None)
def download(attachment_id: IdPath, actor: CurrentActor, runtime: RuntimeDep) -> StreamingResponse:
    """The file, to be saved (never shown in place), under a safe name."""
    with runtime.db.read_session() as session:
        row = files.get_readable(session, actor, attachment_id)
    return files.response(runtime, row)


@router.get("/attachments/{attachment_id}/thumbnail", response_model=None)
def download_thumbnail(attachment_id: IdPath, actor: CurrentActor, runtime: RuntimeDep) -> StreamingResponse:
    """A photo's thumbnail (JPEG)."""
    with runtime.db.read_session() as session:
        row = files.get_readable(session, actor, attachment_id)
    return files.response(runtime, row, thumbnail_only=True)
