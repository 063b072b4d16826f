"""What the administrator's pages share: the router, the role checks, form helpers."""

from datetime import date
from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hotline.deadlines.calendar import LOCAL_TZ
from hotline.directory import CODE
from hotline.errors import Invalid
from hotline.runtime import Runtime
from hotline.web.auth import PageUser, role_form_user, role_user
from hotline.web.render import ROLE_LABELS, render

router = APIRouter(prefix="/admin", include_in_schema=False)

AdminUser = Annotated[PageUser, role_user("admin")]
AdminForm = Annotated[PageUser, role_form_user("admin")]
Year = Annotated[int, PathParam(ge=2000, le=2100)]

FLASH_COOKIE = "hotline_admin_flash"
# Who may fire a workflow event, in the words of the pages (two are not users).
ACTOR_LABELS = {**ROLE_LABELS, "system": "系统", "citizen": "市民"}
PLACE_SEP = "|"


class FormError(Invalid):
    """A form field the page refuses before any service sees it; the message is Chinese."""

    def __init__(self, zh: str, field: str | None = None) -> None:
        super().__init__(zh, field=field, zh=zh)


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    """Render an admin page; the notice a redirect left behind is shown once."""
    notice = request.cookies.get(FLASH_COOKIE)
    if notice and "flash" not in context and status_code == 200:
        context = {**context, "flash": unquote(notice)}
    response = render(request, name, context, status_code)
    if notice:
        response.delete_cookie(FLASH_COOKIE, path="/admin")
    return response


def _done(url: str, notice: str) -> RedirectResponse:
    """Back to the page, with a notice for its next rendering."""
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(FLASH_COOKIE, quote(notice), max_age=60, httponly=True, samesite="strict", path="/admin")
    return response


def _code(value: str, label: str, field_name: str) -> str:
    value = value.strip()
    if not CODE.match(value):
        raise FormError(f"{label}只能由 1–32 位字母、数字、下划线、点或连字符组成", field_name)
    return value


def _name(value: str, label: str, field_name: str, max_length: int = 100) -> str:
    value = value.strip()
    if not value:
        raise FormError(f"请填写{label}", field_name)
    if len(value) > max_length:
        raise FormError(f"{label}不能超过 {max_length} 个字", field_name)
    return value


def _local_today(runtime: Runtime) -> date:
    return runtime.now().astimezone(LOCAL_TZ).date()


@router.get("", response_class=HTMLResponse)
def admin_home(_: AdminUser) -> Response:
    return RedirectResponse("/admin/departments", status_code=303)
