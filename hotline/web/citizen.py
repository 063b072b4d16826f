"""The citizen's rating page, reached through the one-use link in a text message, and the site icon."""

import hmac
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from hotline.api.deps import RuntimeDep
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.errors import HotlineError
from hotline.evaluation.ratings import RATING_LABELS, LinkUnusable, app_secret, form_nonce, invitation_for, rate_by_link
from hotline.models import Department, Ticket
from hotline.web import public
from hotline.web.public import Flag, Switch

router = APIRouter(include_in_schema=False)
FAVICON = Path(__file__).parent / "static" / "favicon.svg"


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    """The site icon where browsers look for it without a link (an SVG: every current browser takes one)."""
    return FileResponse(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


def _page(request: Request, runtime, ctx: dict, status_code: int = 200, mode: str = "") -> Response:
    """The rating page in the citizens' layout (the large-text mode too); never cached: the
    address is a personal one-use link."""
    ctx = {"ratings": RATING_LABELS, **ctx}
    return public.page(request, runtime, "citizen/rate.html", ctx, status_code=status_code, cache=False, mode=mode)


@router.get("/rate/{token}", response_class=HTMLResponse)
def rating_form(request: Request, token: str, runtime: RuntimeDep, mode: Switch = "") -> Response:
    now = runtime.now()
    with runtime.db.session() as session:
        try:
            invitation = invitation_for(session, token, now)
        except LinkUnusable as exc:
            ctx = {"unusable": exc.extra.get("zh")}
        else:
            ticket = session.get(Ticket, invitation.ticket_id)
            ctx = {
                "ticket": ticket,
                "department": session.get(Department, ticket.main_department_id) if ticket.main_department_id else None,
                "token": token,
                "nonce": form_nonce(app_secret(session, "rating_link", now), token),
                "expires_text": f"{invitation.expires_at.astimezone(LOCAL_TZ):%m月%d日 %H:%M}",
            }
        session.expunge_all()
    return _page(request, runtime, ctx, 410 if "unusable" in ctx else 200, mode)


@router.post("/rate/{token}", response_class=HTMLResponse)
def rate(
    request: Request,
    token: str,
    runtime: RuntimeDep,
    nonce: Annotated[str, Form()],
    rating: Annotated[int, Form(ge=1, le=5)],
    solved: Annotated[str, Form(pattern="^(yes|no)$")],
    comment: Annotated[str, Form(max_length=500)] = "",
    mode: Flag = "",
) -> Response:
    now = runtime.now()
    try:
        with runtime.db.session() as session:
            if not hmac.compare_digest(nonce, form_nonce(app_secret(session, "rating_link", now), token)):
                return _page(request, runtime, {"unusable": "页面已过期，请重新打开短信中的链接。"}, 403, mode)
            rate_by_link(
                session, runtime, token, rating=rating, solved=solved == "yes", comment=comment.strip() or None, now=now
            )
    except LinkUnusable as exc:
        return _page(request, runtime, {"unusable": exc.extra.get("zh")}, 410, mode)
    except HotlineError as exc:
        unusable = exc.extra.get("zh") or "暂时无法提交评价，请稍后再试或拨打12345。"
        return _page(request, runtime, {"unusable": unusable}, exc.status_code, mode)
    return _page(request, runtime, {"thanks": True, "rating_label": RATING_LABELS[rating]}, mode=mode)
