"""安全审计: the audit trail's page, its filters, paging and export (administrators only)."""

import json
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from hotline import audit_log
from hotline.api.deps import RuntimeDep
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.errors import Invalid
from hotline.indicators import reports
from hotline.inputs import PageQuery, check_day
from hotline.models import AuditRecord
from hotline.web.admin.common import ACTOR_LABELS, AdminUser, _page, router

PAGE_SIZE = 50
# Who acts, in the words of the page: the roles, the system, the command line.
ACTORS = {**ACTOR_LABELS, "cli": "命令行"}
# An export holds at most this many records (the newest); narrow the filters for older ones.
MAX_EXPORT = 50_000
DayText = Annotated[str, Query(pattern=r"^(\d{4}-\d{2}-\d{2})?$")]
Kind = Literal[("", *audit_log.KINDS)]  # type: ignore[valid-type]
Outcome = Literal[("", *audit_log.OUTCOMES)]  # type: ignore[valid-type]
FilterText = Annotated[str, Query(max_length=audit_log.MAX_FILTER)]
COLUMNS = [
    reports.Column("时间", "at", width=20),
    reports.Column("操作人", "actor", width=16),
    reports.Column("角色", "role", width=10),
    reports.Column("地址", "address", width=16),
    reports.Column("操作", "action", width=14),
    reports.Column("对象", "target", width=24),
    reports.Column("结果", "outcome", width=10),
    reports.Column("修改前", "before", width=40),
    reports.Column("修改后", "after", width=40),
]


def _day(text: str, field: str) -> date | None:
    if not text:
        return None
    try:
        return check_day(date.fromisoformat(text), field)
    except ValueError:
        raise Invalid(f"not a day: {text!r}", field=field, zh="日期格式应为 YYYY-MM-DD") from None


@dataclass(frozen=True)
class Chosen:
    """The filters as typed (for the form and the links) and as the search takes them."""

    form: dict[str, str]
    filters: audit_log.Filters


def chosen(
    since: DayText = "",
    until: DayText = "",
    actor: FilterText = "",
    kind: Kind = "",
    target: FilterText = "",
    outcome: Outcome = "",
) -> Chosen:
    """The page's and the export's filters, from the query."""
    form = {"since": since, "until": until, "actor": actor, "kind": kind, "target": target, "outcome": outcome}
    filters = audit_log.Filters.of(_day(since, "since"), _day(until, "until"), actor, kind, target, outcome)
    return Chosen(form, filters)


ChosenDep = Annotated[Chosen, Depends(chosen)]


def _changes(values: dict[str, Any] | None) -> str:
    """Changed fields as one line of text (for the export)."""
    if not values:
        return ""
    return "; ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(values.items()))


def _row(r: AuditRecord) -> dict[str, Any]:
    target = " ".join(
        p for p in (audit_log.KINDS.get(r.target_type, r.target_type), r.target_label or r.target_id) if p
    )
    return {
        "at": r.at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S"),
        "actor": r.actor_name,
        "role": ACTORS.get(r.actor_role, r.actor_role),
        "address": r.address or "",
        "action": audit_log.action_label(r.action),
        "target": target,
        "outcome": audit_log.OUTCOME_LABELS.get(r.outcome, r.outcome),
        "before": _changes(r.before),
        "after": _changes(r.after),
    }


@router.get("/audit", response_class=HTMLResponse)
def audit_trail(
    request: Request, runtime: RuntimeDep, _: AdminUser, chosen: ChosenDep, page: PageQuery = 1
) -> Response:
    """安全审计: sign-ins and administrative changes, newest first, filtered and paged."""
    with runtime.db.read_session() as session:
        rows, total = audit_log.search(session, chosen.filters, page=page, page_size=PAGE_SIZE)
    return _page(
        request,
        "admin/audit.html",
        {
            "rows": rows,
            "total": total,
            "page": page,
            "pages": (total + PAGE_SIZE - 1) // PAGE_SIZE,
            "form": chosen.form,
            "query": urlencode({k: v for k, v in chosen.form.items() if v}),
            "kinds": audit_log.KINDS,
            "outcomes": audit_log.OUTCOME_LABELS,
            "action_label": audit_log.action_label,
            "field_label": audit_log.field_label,
            "shown_value": audit_log.shown_value,
            "actors": ACTORS,
            "max_export": MAX_EXPORT,
        },
    )


@router.get("/audit/export")
def audit_export(
    runtime: RuntimeDep, _: AdminUser, chosen: ChosenDep, format: Literal["csv", "xlsx"] = "csv"
) -> Response:
    """The filtered records (the newest MAX_EXPORT) as CSV or a workbook; text that looks
    like a formula is neutralised."""
    with runtime.db.read_session() as session:
        rows, _total = audit_log.search(session, chosen.filters, page=1, page_size=MAX_EXPORT)
    sheet = reports.Sheet("安全审计", COLUMNS, [_row(r) for r in rows])
    stamp = runtime.now().astimezone(LOCAL_TZ).strftime("%Y%m%d")
    if format == "xlsx":
        body = reports.to_xlsx("安全审计记录", f"导出于 {stamp}，共 {len(rows)} 条", [sheet])
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        body, media = reports.to_csv(sheet), "text/csv; charset=utf-8"
    return Response(
        body,
        media_type=media,
        headers={
            "Content-Disposition": reports.content_disposition(f"安全审计_{stamp}.{format}"),
            "Cache-Control": "no-store",
        },
    )
