"""A ticket's files: who may add which kind, an upload checked (size counted as it is read,
type judged by content) and stored with its thumbnail, the row and its history entry written
in one transaction with the files removed again if that transaction fails; who may read them
(exactly who may see the ticket: `tickets.get_visible`); and the retention rule."""

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from io import BytesIO
from pathlib import PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit

from sqlalchemy import func
from sqlmodel import Session, select
from starlette.responses import StreamingResponse

from hotline.attachments.images import UnreadableImage, thumbnail
from hotline.attachments.sniff import ALLOWED, EXTENSIONS, IMAGES, content_type
from hotline.attachments.storage import CHUNK, Storage, directory_storage, new_key
from hotline.deadlines.calendar import local_iso
from hotline.errors import Conflict, HotlineError, Invalid, NotFound, NotPermitted
from hotline.models import ATTACHMENT_KINDS, INTEGRATION, Attachment, Ticket
from hotline.tickets import get_visible
from hotline.workflow.engine import Actor, changing

KIND_LABELS = {"photo": "照片", "proof": "办理佐证", "document": "材料", "recording": "通话录音"}
# Who adds which kind: the centre and the platforms log citizens' photos, documents and call
# recordings; departments add photos, documents and their proof of handling; a citizen filing
# online adds photos, with the matter only (hotline.filing).
_CENTRE = frozenset({"agent", "supervisor", INTEGRATION})
_DEPARTMENT = frozenset({"handler", "leader"})
ADDERS = {
    "photo": _CENTRE | _DEPARTMENT | {"citizen"},
    "document": _CENTRE | _DEPARTMENT,
    "proof": _DEPARTMENT,
    "recording": _CENTRE,
}
# Characters a stored name keeps out: path separators, quotes, controls.
_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f"\\/:*?<>|;]')
MAX_NAME_CHARS = 100


class TooLarge(HotlineError):
    status_code = 413


class UnsupportedType(HotlineError):
    status_code = 415


def storage_of(runtime) -> Storage:
    """The attachment store of this process (a directory unless another is configured)."""
    return directory_storage(runtime.settings.attachments_dir)


def addable_kinds(actor: Actor) -> list[str]:
    """The kinds of file the actor may add to a ticket it sees."""
    return [kind for kind in ATTACHMENT_KINDS if actor.role in ADDERS[kind]]


def clean_name(sent: str | None, content_type: str) -> str:
    """The name a file is shown and downloaded with: the sender's last path part without
    unsafe characters, its extension the one its content has."""
    base = re.split(r"[\\/]", sent or "")[-1]
    stem = _UNSAFE_NAME.sub("", PurePosixPath(base).stem).strip(" .")[:MAX_NAME_CHARS] or "附件"
    return stem + EXTENSIONS.get(content_type, "")


@dataclass
class Stored:
    """An upload as it lies in the store."""

    key: str
    thumbnail_key: str | None
    size: int
    content_type: str
    sha256: str


def size_text(size: int) -> str:
    """A size limit as people write it: "10 MB", "2.5 MB" (one decimal at most, no useless
    ".0"), below a megabyte "40 KB"."""
    if size >= 1024 * 1024:
        return f"{round(size / (1024 * 1024), 1):g} MB"
    return f"{max(1, round(size / 1024))} KB"


def _measure(file: BinaryIO, limit: int) -> tuple[int, str]:
    """Size and SHA-256 of the file, read in chunks; TooLarge as soon as it passes `limit`."""
    file.seek(0)
    digest, size = hashlib.sha256(), 0
    while chunk := file.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the file is larger than {limit} bytes", zh=f"文件超过 {size_text(limit)} 上限")
        digest.update(chunk)
    file.seek(0)
    return size, digest.hexdigest()


@contextmanager
def stored(runtime, file: BinaryIO) -> Iterator[Stored]:
    """The upload checked (413 over the size limit, 415 a type not allowed, judged by content)
    and saved with its thumbnail; when the block raises (the row's transaction failed), both
    files are deleted again: nothing is left half written."""
    size, sha256 = _measure(file, runtime.settings.max_attachment_bytes)
    if size == 0:
        raise Invalid("file: the file is empty", field="file", zh="文件为空")
    found = content_type(file)
    if found is None:
        raise UnsupportedType(f"a type not allowed (judged by content); allowed: {ALLOWED}", zh="不支持的文件类型")
    small: BytesIO | None = None
    if found in IMAGES:
        try:
            small = thumbnail(file)
        except UnreadableImage as exc:
            if found != "image/heic":  # HEIC variants libheif cannot read are kept, without a thumbnail
                raise UnsupportedType(f"the image cannot be read: {exc}", zh="图片无法识别或已损坏") from exc
    storage = storage_of(runtime)
    result = Stored(new_key(), new_key() if small else None, size, found, sha256)
    try:
        storage.save(result.key, file)
        if small is not None and result.thumbnail_key:
            storage.save(result.thumbnail_key, small)
        yield result
    except BaseException:
        for key in (result.key, result.thumbnail_key):
            if key:
                storage.delete(key)
        raise


def upload(runtime, actor: Actor, ticket_id: int, *, kind: str, name: str | None, file: BinaryIO) -> Attachment:
    """Add an uploaded file to a ticket: refused before anything is stored where the ticket is
    not visible (404), the role may not add the kind (403) or the ticket is finished (409);
    then stored and recorded together (see `stored`)."""
    with runtime.db.read_session() as session:
        check_may_add(runtime, actor, get_visible(session, actor, ticket_id), kind)
    with stored(runtime, file) as kept, runtime.db.session() as session:
        row = add(session, runtime, actor, ticket_id, kind=kind, name=name, now=runtime.now(), file=kept)
        session.expunge(row)
    return row


def intake_kind(file: Stored) -> str:
    """The kind of a file logged with a new ticket: a photo, else a document."""
    return "photo" if file.content_type in IMAGES else "document"


def media_reference(url: str) -> bool:
    """Whether `url` may name a file kept elsewhere: an http(s) address of at most 500 characters."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and len(url) <= 500


def check_reference(url: str) -> str:
    """A file kept elsewhere, named by an http(s) address (Invalid naming the field otherwise)."""
    url = url.strip()
    if not media_reference(url):
        raise Invalid(
            "reference: an http or https address of at most 500 characters",
            field="reference",
            zh="链接须为 http 或 https 地址，且不超过 500 个字符",
        )
    return url


def add(
    session: Session,
    runtime,
    actor: Actor,
    ticket_id: int,
    *,
    kind: str,
    name: str | None,
    now: datetime,
    file: Stored | None = None,
    reference: str | None = None,
) -> Attachment:
    """Add a stored file (or a reference to one) to a ticket the actor sees, with its history
    row (`attach`, carrying the file's link to other systems), in the caller's transaction."""
    check_may_add(runtime, actor, get_visible(session, actor, ticket_id), kind)
    with changing(session, runtime, ticket_id, "attach", actor, now=now) as change:
        row = Attachment(
            ticket_id=ticket_id,
            kind=kind,
            name=clean_name(name, file.content_type if file else ""),
            content_type=file.content_type if file else "text/uri-list",
            size=file.size if file else 0,
            sha256=file.sha256 if file else None,
            storage_key=file.key if file else None,
            thumbnail_key=file.thumbnail_key if file else None,
            reference=reference,
            created_by_id=actor.id,
            created_at=now,
        )
        session.add(row)
        session.flush()
        change.details["attachment"] = {k: v for k, v in out(runtime, row).items() if k != "created_at"}
    return row


def check_may_add(runtime, actor: Actor, ticket: Ticket, kind: str) -> None:
    """The actor's role may add this kind, to a ticket still open."""
    if kind not in ATTACHMENT_KINDS:
        raise Invalid(f"kind: one of {', '.join(ATTACHMENT_KINDS)}", field="kind", zh="请选择附件类型")
    if actor.role not in ADDERS[kind]:
        raise NotPermitted(f"the role {actor.role!r} may not add a {kind}", zh="您的角色不能上传此类附件")
    wf = runtime.workflows.get(ticket.workflow)
    if wf.states[ticket.state].final:
        raise Conflict("the ticket is finished: its files stay as they were", zh="工单已办结，不能再上传附件")


def listed(session: Session, ticket_id: int) -> list[Attachment]:
    """A ticket's attachments, oldest first."""
    return list(session.exec(select(Attachment).where(Attachment.ticket_id == ticket_id).order_by(Attachment.id)))


def get_readable(session: Session, actor: Actor, attachment_id: int, ticket_id: int | None = None) -> Attachment:
    """The attachment whose bytes the actor may read: its ticket visible to the actor (and the
    one named, if any); NotFound otherwise, and once the retention rule removed it."""
    row = session.get(Attachment, attachment_id)
    if row is None or (ticket_id is not None and row.ticket_id != ticket_id):
        raise NotFound(f"attachment {attachment_id} not found, or not visible to you", zh="附件不存在，或您无权查看")
    get_visible(session, actor, row.ticket_id)
    if row.removed_at is not None or row.storage_key is None:
        raise NotFound(
            f"attachment {attachment_id} has no file here (removed under the retention rule, or a link)",
            zh="该附件没有可下载的文件（已按保存期限清理，或只是一个链接）",
        )
    return row


def out(runtime, row: Attachment) -> dict[str, Any]:
    """An attachment as the API and the events show it; `url` downloads it (with a token)."""
    base = runtime.settings.public_url.rstrip("/")
    has_file = row.storage_key is not None and row.removed_at is None
    return {
        "id": row.id,
        "ticket": row.ticket_id,
        "kind": row.kind,
        "name": row.name,
        "size": row.size,
        "content_type": row.content_type,
        "created_at": local_iso(row.created_at),
        "url": f"{base}/api/v1/attachments/{row.id}" if has_file else None,
        "thumbnail_url": f"{base}/api/v1/attachments/{row.id}/thumbnail" if has_file and row.thumbnail_key else None,
        "reference": row.reference,
        "removed": row.removed_at is not None,
    }


def download_headers(row: Attachment, *, thumbnail_only: bool = False) -> dict[str, str]:
    """A download's headers: saved, never shown in place (but a thumbnail, an image of ours),
    under a safe name; the type as judged, never sniffed again; not kept in any cache."""
    if thumbnail_only:
        disposition = "inline"
    else:
        ascii_name = f"attachment-{row.id}{EXTENSIONS.get(row.content_type, '')}"
        disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(row.name)}"
    return {
        "Content-Disposition": disposition,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }


def _chunks(runtime, key: str) -> Iterator[bytes]:
    with storage_of(runtime).open(key) as source:
        while chunk := source.read(CHUNK):
            yield chunk


def response(runtime, row: Attachment, *, thumbnail_only: bool = False) -> StreamingResponse:
    """The stored file (or its thumbnail) with the download headers, read a chunk at a time."""
    key = row.thumbnail_key if thumbnail_only else row.storage_key
    if key is None:
        raise NotFound(f"attachment {row.id} has no thumbnail", zh="该附件没有缩略图")
    return StreamingResponse(
        _chunks(runtime, key),
        media_type="image/jpeg" if thumbnail_only else row.content_type,
        headers=download_headers(row, thumbnail_only=thumbnail_only),
    )


def remove_expired(runtime, *, now: datetime, batch: int = 500) -> int:
    """The retention rule: the files of tickets finished (archived, cancelled, merged) more than
    HOTLINE_ATTACHMENT_RETENTION_DAYS ago are deleted, their rows marked removed; the files go
    after the rows' transaction commits. Returns how many were removed."""
    days = runtime.settings.attachment_retention_days
    if not days:
        return 0
    cutoff = now - timedelta(days=days)
    removed = 0
    while True:
        with runtime.db.session() as session:
            rows = session.exec(
                select(Attachment)
                .join(Ticket, Ticket.id == Attachment.ticket_id)
                .where(
                    Attachment.removed_at.is_(None),
                    Ticket.state.not_in(runtime.workflows.open_states),
                    func.coalesce(Ticket.closed_at, Ticket.updated_at) < cutoff,
                )
                .order_by(Attachment.id)
                .limit(batch)
            ).all()
            keys = [k for r in rows for k in (r.storage_key, r.thumbnail_key) if k]
            for row in rows:
                row.removed_at = now
        storage = storage_of(runtime)
        for key in keys:
            storage.delete(key)
        removed += len(rows)
        if len(rows) < batch:
            return removed
