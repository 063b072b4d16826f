"""The district's own settings: its name and administrative region code."""

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func
from sqlmodel import select

from hotline import directory
from hotline.api.deps import RuntimeDep
from hotline.errors import HotlineError
from hotline.models import Department, DistrictSettings
from hotline.runtime import Runtime
from hotline.web.admin.common import AdminForm, AdminUser, _done, _page, router
from hotline.web.forms import page_message


def _district_page(request: Request, runtime: Runtime, context: dict[str, Any], status_code: int = 200) -> Response:
    with runtime.db.read_session() as session:
        stored = session.get(DistrictSettings, 1)
        without_org_code = session.exec(
            select(func.count()).select_from(Department).where(Department.active, Department.org_code.is_(None))
        ).one()
    form = {"name": stored.name or "", "region_code": stored.region_code or ""} if stored else {}
    ctx = {
        "stored": stored,
        "fallback_name": runtime.settings.district_name,
        "without_org_code": without_org_code,
        "form": form,
    }
    return _page(request, "admin/district.html", {**ctx, **context}, status_code)


@router.get("/district", response_class=HTMLResponse)
def district_settings(request: Request, runtime: RuntimeDep, _: AdminUser) -> Response:
    return _district_page(request, runtime, {})


@router.post("/district", response_class=HTMLResponse)
def save_district(
    request: Request,
    runtime: RuntimeDep,
    _: AdminForm,
    name: Annotated[str, Form(max_length=200)] = "",
    region_code: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    try:
        with runtime.db.session() as session:
            row = directory.set_district(session, name=name, region_code=region_code, now=runtime.now())
    except HotlineError as exc:
        form = {"name": name, "region_code": region_code}
        return _district_page(request, runtime, {"error": page_message(exc), "form": form}, exc.status_code)
    runtime.invalidate_district()
    code = f"，行政区划代码 {row.region_code}" if row.region_code else "，未填行政区划代码"
    return _done("/admin/district", f"已保存区县设置：{row.name}{code}")
