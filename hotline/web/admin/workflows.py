"""The workflows, drawn and listed."""

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func
from sqlmodel import select

from hotline.api.deps import RuntimeDep
from hotline.models import (
    ROLES,
    Category,
    Ticket,
)
from hotline.web.admin.common import (
    ACTOR_LABELS,
    AdminUser,
    _page,
    router,
)
from hotline.web.admin.limits import workflow_file
from hotline.web.diagram import workflow_svg
from hotline.web.render import TYPE_LABELS
from hotline.workflow.definition import RETURN_FROM, Workflow
from hotline.workflow.fields import FIELDS

# ------------------------------------------------------------------ workflows


def _events_of(wf: Workflow) -> list[dict[str, Any]]:
    rows = []
    for ev in wf.events.values():
        if ev.dest is None:
            dest = "（状态不变）"
        elif ev.dest == RETURN_FROM:
            dest = "退单前的状态"
        else:
            dest = wf.state_label(ev.dest)
        rows.append(
            {
                "name": ev.name,
                "label": ev.label,
                "sources": [wf.state_label(s) for s in ev.sources],
                "dest": dest,
                "moves": ev.dest is not None,
                "roles": [ACTOR_LABELS.get(r, r) for r in sorted(ev.roles, key=_role_order)],
                "required": [FIELDS[f].label for f in ev.required],
                "optional": [FIELDS[f].label for f in ev.optional],
                "co": [wf.state_label(s) for s in ev.co_sources] if ev.co_sources else [],
            }
        )
    return rows


def _role_order(role: str) -> int:
    order = [*ROLES, "system", "citizen"]
    return order.index(role) if role in order else len(order)


@router.get("/workflows", response_class=HTMLResponse)
def workflows(
    request: Request, runtime: RuntimeDep, _: AdminUser, name: Annotated[str | None, Query(max_length=40)] = None
) -> Response:
    """One workflow at a time, drawn, with its events; a tab per workflow."""
    wfs = runtime.workflows
    wf = wfs.workflows.get(name or "") or wfs.get(wfs.default)
    with runtime.db.read_session() as session:
        used = dict(
            session.exec(
                select(Category.workflow, func.count())
                .where(Category.workflow.is_not(None))
                .group_by(Category.workflow)
            ).all()
        )
        open_tickets = dict(
            session.exec(
                select(Ticket.workflow, func.count()).where(Ticket.closed_at.is_(None)).group_by(Ticket.workflow)
            ).all()
        )
        roots = {line.category for line in wfs.lines.all if line.category}
        root_names = dict(session.exec(select(Category.code, Category.name).where(Category.code.in_(roots))).all())
    # The merged hotlines (一个号码), as workflows/selection.yaml lists them; a root category
    # the tree lacks is flagged (the line's tickets would have no category to take).
    lines = [
        {
            "line": line,
            "category": (root_names.get(line.category) if line.category else "全部分类"),
            "workflow": wfs.get(line.workflow).label if line.workflow else "按分类、诉求类型选择",
        }
        for line in wfs.lines.all
    ]
    tabs = [(w.name, w.label, used.get(w.name, 0)) for w in wfs.workflows.values()]
    item = {
        "wf": wf,
        "file": workflow_file(wf),
        "svg": workflow_svg(wf),
        "events": _events_of(wf),
        "categories": used.get(wf.name, 0),
        "open_tickets": open_tickets.get(wf.name, 0),
        "types": [TYPE_LABELS.get(t, t) for t, w in wfs.by_type.items() if w == wf.name],
    }
    return _page(
        request,
        "admin/workflows.html",
        {"item": item, "tabs": tabs, "default_workflow": wfs.default, "lines": lines},
    )
