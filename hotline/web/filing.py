"""The citizens' online filing pages (网上诉求), no sign-in, mobile first, working without
JavaScript: /file (the form: type, street and community, the matter, the phone and the code
sent to it) and /progress (进度查询: a matter by its number and phone). The rules are in
hotline.filing; these pages only ask and show. Every post carries the public forms' nonce
and passes the public rate limit per address."""

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from hotline import filing
from hotline.api.deps import RuntimeDep
from hotline.attachments.files import size_text
from hotline.directory import places
from hotline.errors import HotlineError
from hotline.labels import TYPE_LABELS
from hotline.web import public
from hotline.web.forms import page_message
from hotline.web.public import Flag, Switch
from hotline.web.uploads import only_files

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form(max_length=4000)]
Short = Annotated[str, Form(max_length=60)]
FORM, LOOKUP = "file", "progress"
# The inputs of each step, and the input of each field a refusal names (the street and the
# community share one select): a refusal is said next to its input.
STEP_ONE, STEP_TWO = ("type", "place", "content", "caller_name", "caller_phone"), ("code", "photos")
INPUT_OF = {"street": "place", "community": "place"}


def _form_page(request: Request, runtime, mode: str, ctx: dict[str, Any], status_code: int = 200) -> Response:
    with runtime.db.read_session() as session:
        known = places(session)
    ctx = {
        "types": [(t, TYPE_LABELS[t]) for t in filing.FILING_TYPES],
        "places": sorted(known.items()),
        "nonce": public.nonce(runtime, FORM, runtime.now()),
        "code_minutes": filing.CODE_MINUTES,
        "max_photos": filing.MAX_PHOTOS,
        "max_photo_size": size_text(runtime.settings.max_attachment_bytes),
        "form": {},
        "errors": {},
        **ctx,
    }
    return public.page(request, runtime, "citizen/file.html", ctx, status_code=status_code, cache=False, mode=mode)


@router.get("/file", response_class=HTMLResponse)
def file_form(request: Request, runtime: RuntimeDep, mode: Switch = "") -> Response:
    if busy := public.limited(request, runtime):
        return busy
    return _form_page(request, runtime, mode, {})


@router.post("/file", response_class=HTMLResponse)
def file_post(
    request: Request,
    runtime: RuntimeDep,
    nonce: Short,
    action: Short = "file",
    type: Short = "",
    place: Short = "",
    content: Text = "",
    caller_name: Short = "",
    caller_phone: Short = "",
    code: Short = "",
    step: Short = "",
    mode: Flag = "",
    photos: Annotated[list[UploadFile | str], File()] = [],  # noqa: B006 (FastAPI copies defaults)
) -> Response:
    """Step 1 (the form) posts `action=code`: the matter is checked, a code sent to the phone,
    and step 2 asks for it, the matter kept in hidden fields; step 2 posts `action=file` with
    the code and the photos, if any (the matter filed, its number shown), `code` again, or
    `edit` (back to the form as typed)."""
    if busy := public.limited(request, runtime):
        return busy
    now = runtime.now()
    street, _, community = place.partition("/")
    typed = {"type": type, "place": place, "content": content, "caller_name": caller_name, "caller_phone": caller_phone}
    matter = filing.Filing(
        type=type,
        content=content,
        caller_phone=caller_phone,
        code=code,
        caller_name=caller_name,
        street=street,
        community=community,
    )
    if not public.nonce_ok(runtime, FORM, nonce, now):
        return _form_page(request, runtime, mode, {"form": typed, "error": "页面已过期，请重新提交。"}, 403)
    try:
        if action == "edit":
            return _form_page(request, runtime, mode, {"form": typed})
        if action == "code":
            with runtime.db.read_session() as session:
                filing.check(session, matter)  # what is wrong is said before a code goes out
            filing.send_code_now(runtime, caller_phone, now)
            return _form_page(request, runtime, mode, {"form": typed, "sent": True})
        chosen = [(photo.filename, photo.file) for photo in only_files(photos)]
        ticket = filing.file_matter(runtime, matter, now, chosen)
    except HotlineError as exc:
        # A file refused (too large, not a photo) is the photos' fault.
        field = exc.extra.get("field") or ("photos" if exc.status_code in (413, 415) else None)
        # On the code's step, a wrong code, a photo refused or a refusal to send another code
        # keeps the step; what is wrong with the matter itself goes back to the form.
        sent = step == "2" and (field in STEP_TWO or exc.status_code == 429)
        ctx = {"form": typed, "sent": sent, **_refusals(exc, field, STEP_TWO if sent else STEP_ONE)}
        response = _form_page(request, runtime, mode, ctx, exc.status_code)
        if retry := exc.extra.get("retry_after"):
            response.headers["Retry-After"] = str(retry)
        return response
    ctx = {"filed": ticket.number, "phone_tail": ticket.caller_phone[-4:], "photos": len(chosen)}
    return public.page(request, runtime, "citizen/filed.html", ctx, cache=False, mode=mode)


def _refusals(exc: HotlineError, field: str | None, inputs: tuple[str, ...]) -> dict[str, Any]:
    """What the page says of a refusal: `errors`, each input shown with what is wrong with it
    (every field the check found wrong, in the form's order), and `error`, what concerns no
    input shown (a refusal to send a code, on the code's step, say)."""
    listed = exc.extra.get("errors") or [{"field": field, "zh": page_message(exc)}]
    errors: dict[str, str] = {}
    rest: list[str] = []
    for item in listed:
        name = INPUT_OF.get(item["field"], item["field"])
        said = item.get("zh") or page_message(exc)
        if name in inputs:
            errors.setdefault(name, said)
        elif said not in rest:
            rest.append(said)
    return {"errors": errors, "error": "；".join(rest) or None}


def _progress_page(request: Request, runtime, mode: str, ctx: dict[str, Any], status_code: int = 200) -> Response:
    ctx = {"nonce": public.nonce(runtime, LOOKUP, runtime.now()), **ctx}
    return public.page(request, runtime, "citizen/progress.html", ctx, status_code=status_code, cache=False, mode=mode)


@router.get("/progress", response_class=HTMLResponse)
def progress_form(
    request: Request, runtime: RuntimeDep, mode: Switch = "", number: Annotated[str, Query(max_length=20)] = ""
) -> Response:
    if busy := public.limited(request, runtime):
        return busy
    return _progress_page(request, runtime, mode, {"number": number})


@router.post("/progress", response_class=HTMLResponse)
def progress_post(
    request: Request, runtime: RuntimeDep, nonce: Short, number: Short = "", caller_phone: Short = "", mode: Flag = ""
) -> Response:
    """The phone goes in the body, not the address: it never reaches an access log."""
    if busy := public.limited(request, runtime):
        return busy
    if not public.nonce_ok(runtime, LOOKUP, nonce, runtime.now()):
        return _progress_page(request, runtime, mode, {"number": number, "error": "页面已过期，请重新查询。"}, 403)
    with runtime.db.read_session() as session:
        found = filing.progress(session, runtime, number, caller_phone)
    if found is None:
        error = "没有找到与该工单编号和手机号码相符的诉求，请核对后再查。"
        return _progress_page(request, runtime, mode, {"number": number, "error": error}, 404)
    return _progress_page(request, runtime, mode, {"number": number, "found": found})
