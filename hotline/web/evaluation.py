"""Evaluation pages: rectification of bad ratings (差评整改) and appeals (申诉复核)."""

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import case
from sqlmodel import Session, select

from hotline.api.deps import RuntimeDep
from hotline.evaluation import appeals as appeal_rules
from hotline.evaluation import rectifications as rectification_rules
from hotline.inputs import IdPath
from hotline.models import DEPARTMENT_ROLES, Appeal, Callback, Department, Rectification, Ticket
from hotline.web.auth import PageUser, role_form_user, role_user
from hotline.web.forms import submit
from hotline.web.render import render

router = APIRouter(include_in_schema=False)
Reader = Annotated[PageUser, role_user("handler", "leader", "supervisor", "admin")]
Department_ = Annotated[PageUser, role_form_user("handler", "leader")]
Supervisor = Annotated[PageUser, role_form_user("supervisor")]
RECTIFICATIONS = "evaluation/rectifications.html"
APPEALS = "evaluation/appeals.html"


def _rectifications(session: Session, user: PageUser) -> list[tuple]:
    stmt = (
        select(Rectification, Ticket, Department, Callback)
        .join(Ticket, Ticket.id == Rectification.ticket_id)
        .join(Department, Department.id == Rectification.department_id)
        .join(Callback, Callback.id == Rectification.callback_id)
    )
    if user.role in DEPARTMENT_ROLES:
        stmt = stmt.where(Rectification.department_id == user.actor.department_id)
    # What waits for the reader first (a department reports, the centre decides), the earliest
    # due first; the accepted ones last, the latest first.
    first = "reported" if user.role == "supervisor" else "open"
    done = Rectification.status == "accepted"
    waiting = case((Rectification.status == first, 0), (done, 2), else_=1)
    soonest = case((done, None), else_=Rectification.due_at)
    latest = case((done, Rectification.due_at), else_=None)
    order = (waiting, soonest.asc(), latest.desc(), Rectification.id)
    return list(session.exec(stmt.order_by(*order).limit(300)).all())


@router.get("/evaluation/rectifications", response_class=HTMLResponse)
def rectifications(request: Request, runtime: RuntimeDep, user: Reader, flash: str | None = None) -> Response:
    with runtime.db.read_session() as session:
        rows = _rectifications(session, user)
    return render(request, RECTIFICATIONS, {"rows": rows, "now": runtime.now(), "flash": flash})


def _flash(path: str, message: str) -> str:
    """The list page again, with a notice of what was done."""
    return f"{path}?flash={quote(message)}"


def _listing(runtime, user: PageUser, rows: Callable[[Session, PageUser], list[tuple]]):
    """The context of a list page shown again after a refused action."""
    return lambda session: {"rows": rows(session, user), "now": runtime.now()}


@router.post("/evaluation/rectifications/{rect_id}/report", response_class=HTMLResponse)
def report(
    request: Request,
    rect_id: IdPath,
    runtime: RuntimeDep,
    user: Department_,
    verification: Annotated[str, Form(min_length=1, max_length=4000)],
    measures: Annotated[str, Form(min_length=1, max_length=4000)],
) -> Response:
    def change(session: Session) -> str:
        rectification_rules.report_rectification(
            session,
            runtime,
            rect_id,
            user.actor,
            verification=verification.strip(),
            measures=measures.strip(),
            now=runtime.now(),
        )
        return _flash("/evaluation/rectifications", "整改情况已反馈，等待中心审核")

    return submit(request, runtime, change, template=RECTIFICATIONS, context=_listing(runtime, user, _rectifications))


@router.post("/evaluation/rectifications/{rect_id}/decision", response_class=HTMLResponse)
def decide_rectification(
    request: Request,
    rect_id: IdPath,
    runtime: RuntimeDep,
    user: Supervisor,
    decision: Annotated[str, Form(pattern="^(accept|return)$")],
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    def change(session: Session) -> str:
        rectification_rules.decide_rectification(
            session,
            runtime,
            rect_id,
            user.actor,
            accept=decision == "accept",
            reason=reason.strip() or None,
            now=runtime.now(),
        )
        return _flash("/evaluation/rectifications", "已通过整改" if decision == "accept" else "已退回整改")

    return submit(request, runtime, change, template=RECTIFICATIONS, context=_listing(runtime, user, _rectifications))


def _appeals(session: Session, user: PageUser) -> list[tuple]:
    stmt = (
        select(Appeal, Ticket, Department, Callback)
        .join(Ticket, Ticket.id == Appeal.ticket_id)
        .join(Department, Department.id == Appeal.department_id)
        .join(Callback, Callback.id == Appeal.callback_id, isouter=True)
    )
    if user.role in DEPARTMENT_ROLES:
        stmt = stmt.where(Appeal.department_id == user.actor.department_id)
    return list(session.exec(stmt.order_by(Appeal.status.desc(), Appeal.id.desc()).limit(300)).all())


@router.get("/evaluation/appeals", response_class=HTMLResponse)
def appeals(request: Request, runtime: RuntimeDep, user: Reader, flash: str | None = None) -> Response:
    with runtime.db.read_session() as session:
        rows = _appeals(session, user)
    return render(request, APPEALS, {"rows": rows, "flash": flash})


@router.post("/tickets/{ticket_id}/appeal", response_class=HTMLResponse)
def file_appeal(
    request: Request,
    ticket_id: IdPath,
    runtime: RuntimeDep,
    user: Department_,
    kind: Annotated[str, Form(pattern="^(rating|unreasonable)$")],
    grounds: Annotated[str, Form(min_length=1, max_length=4000)],
) -> Response:
    def change(session: Session) -> str:
        appeal_rules.open_appeal(
            session, runtime, ticket_id, user.actor, kind=kind, grounds=grounds.strip(), now=runtime.now()
        )
        return _flash("/evaluation/appeals", "申诉已提交，等待中心复核")

    return submit(request, runtime, change, template=APPEALS, context=_listing(runtime, user, _appeals))


@router.post("/evaluation/appeals/{appeal_id}/decision", response_class=HTMLResponse)
def decide_appeal(
    request: Request,
    appeal_id: IdPath,
    runtime: RuntimeDep,
    user: Supervisor,
    decision: Annotated[str, Form(pattern="^(grant|refuse)$")],
    reason: Annotated[str, Form(min_length=1, max_length=2000)],
) -> Response:
    def change(session: Session) -> str:
        appeal_rules.decide_appeal(
            session,
            runtime,
            appeal_id,
            user.actor,
            grant=decision == "grant",
            reason=reason.strip(),
            now=runtime.now(),
        )
        return _flash("/evaluation/appeals", "申诉成立，已从统计中剔除" if decision == "grant" else "已驳回申诉")

    return submit(request, runtime, change, template=APPEALS, context=_listing(runtime, user, _appeals))
