"""The guards and effects a workflow may name (see registry.py for why only these)."""

from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import func
from sqlmodel import select

from hotline import appends, notices
from hotline.db import dialect_insert
from hotline.deadlines import sla
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.directory import centre_department, communities_of
from hotline.errors import Invalid
from hotline.evaluation import ratings
from hotline.models import (
    COUNTED_ROLES,
    INTEGRATION,
    Approval,
    Article,
    Assignment,
    Callback,
    Department,
    Escalation,
    RatingInvitation,
    SupervisionOrder,
    Ticket,
    TicketEvent,
    User,
)
from hotline.routing import route
from hotline.workflow import texts
from hotline.workflow.engine import Context, GuardFailed, changing
from hotline.workflow.registry import condition, effect

APPROVAL_LABELS = {"return": "退单", "extension": "延期", "suspension": "挂起"}
# A callback's source by who records it: the citizen's rating link, the rating system (好差评)
# through its integration account, or else an agent's call.
CALLBACK_SOURCES = {"citizen": "link", INTEGRATION: "external"}
# The citizen's own ratings (not an agent's record of a call): a dissatisfied one goes to a
# supervisor before any rehandling.
CITIZENS_OWN_RATINGS = ("link", "external")


def _pending(ctx: Context, kind: str) -> Approval | None:
    return ctx.session.exec(
        select(Approval).where(Approval.ticket_id == ctx.ticket.id, Approval.kind == kind, Approval.status == "pending")
    ).first()


def _active_assignments(ctx: Context) -> list[Assignment]:
    return list(
        ctx.session.exec(
            select(Assignment).where(Assignment.ticket_id == ctx.ticket.id, Assignment.status != "withdrawn")
        ).all()
    )


def _main_assignment(ctx: Context) -> Assignment | None:
    return _active_assignment(ctx, "main")


def _active_assignment(ctx: Context, role: str) -> Assignment | None:
    """The ticket's active assignment of a role: `main`, or `sub` (the community's)."""
    return next((a for a in _active_assignments(ctx) if a.role == role), None)


def in_round(t: Ticket, callback: Callback) -> bool:
    """Whether a callback is about the ticket's current reply (`_this_round` as a test)."""
    return t.callback_started_at is None or callback.at >= t.callback_started_at


def _this_round(t: Ticket):
    """Callbacks about the current reply: a rehandled ticket starts a new round."""
    cond = Callback.ticket_id == t.id
    if t.callback_started_at is not None:
        cond = cond & (Callback.at >= t.callback_started_at)
    return cond


def _last_reached_callback(ctx: Context) -> Callback | None:
    return ctx.session.exec(
        select(Callback).where(_this_round(ctx.ticket), Callback.reached).order_by(Callback.id.desc())
    ).first()


def _satisfied(ctx: Context, cb: Callback) -> bool:
    return ratings.satisfied(ctx.limits, cb)


def _calendar(ctx: Context):
    return ctx.runtime.calendar(ctx.session)


# --- guards ---------------------------------------------------------------------------


@condition("assignment_awaiting_signature")
def assignment_awaiting_signature(ctx: Context, _arg=None) -> None:
    if ctx.assignment is not None and ctx.assignment.status != "dispatched":
        raise GuardFailed("your department has already signed for this ticket", zh="本单位已签收该工单")


@condition("assignment_signed")
def assignment_signed(ctx: Context, _arg=None) -> None:
    if ctx.assignment is None:
        return
    if ctx.assignment.status == "dispatched":
        raise GuardFailed("sign for the ticket before replying", zh="请先签收再回复")
    if ctx.assignment.status == "replied":
        raise GuardFailed("your department has already replied", zh="本单位已回复")


@condition("co_handlers_replied")
def co_handlers_replied(ctx: Context, _arg=None) -> None:
    if ctx.as_co_handler:
        return
    waiting = [a for a in _active_assignments(ctx) if a.role == "co" and a.status != "replied"]
    if waiting:
        names = ", ".join(ctx.session.get(Department, a.department_id).name for a in waiting)
        raise GuardFailed(
            f"the main department replies after every co-handler; still waiting for: {names}",
            zh=f"协办单位全部回复后主办单位方可办结回复，尚未回复：{names}",
        )


@condition("community_of_street")
def community_of_street(ctx: Context, _arg=None) -> None:
    """The street office passes a ticket only to one of its own communities (二级派单)."""
    if ctx.dry_run:
        if not communities_of(ctx.session, ctx.ticket.main_department_id):
            raise GuardFailed("the street office has no communities to pass the ticket to", zh="本单位没有下辖社区")
        return
    _named_community(ctx)


def _named_community(ctx: Context) -> Department:
    """The community the payload names: 422 when no such department, 409 when it is not one of
    the street office's communities."""
    code = ctx.payload["community"]
    community = ctx.session.exec(select(Department).where(Department.code == code)).first()
    if community is None or not community.active:
        raise Invalid(
            f"no active department with the code {code!r}", field="community", zh=f"没有代码为 {code} 的在用社区"
        )
    street = ctx.session.get(Department, ctx.ticket.main_department_id)
    if community.parent_id is None or community.parent_id != ctx.ticket.main_department_id:
        owner = ctx.session.get(Department, community.parent_id) if community.parent_id else None
        what = f"a community of {owner.name}" if owner else "not a community"
        raise GuardFailed(
            f"{community.name} ({code}) is {what}; {street.name} passes tickets only to its own communities",
            zh=f"{community.name}不是{street.name}下辖的社区，只能派至本街道的社区",
        )
    return community


@condition("not_designated", explained=True)
def not_designated(ctx: Context, _arg=None) -> None:
    if ctx.ticket.designated:
        raise GuardFailed(
            f"the centre designated this department after {ctx.ticket.dispatch_count} "
            "dispatches; it can no longer be returned",
            zh=f"该工单已派发 {ctx.ticket.dispatch_count} 次，由中心指定承办，不能再退单",
        )


@condition("within_return_window", explained=True)
def within_return_window(ctx: Context, _arg=None) -> None:
    dispatched_at = ctx.assignment.dispatched_at if ctx.assignment else ctx.ticket.dispatched_at
    if dispatched_at is None:
        return
    deadline = sla.due(_calendar(ctx), dispatched_at, ctx.limits.return_window).at
    if ctx.now > deadline:
        raise GuardFailed(
            f"a return must come within the return window after dispatch (it closed at "
            f"{deadline.isoformat()}); the department must handle the ticket",
            zh=f"已超过退单时限（{deadline.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}），请承办单位办理",
        )


@condition("no_pending", explained=True)
def no_pending(ctx: Context, kind: str) -> None:
    if _pending(ctx, kind) is not None:
        raise GuardFailed(
            f"a request for {APPROVAL_LABELS.get(kind, kind)} ({kind}) is already waiting for the centre",
            zh=f"已有待中心审核的{APPROVAL_LABELS.get(kind, kind)}申请",
        )


@condition("has_pending")
def has_pending(ctx: Context, kind: str) -> None:
    if _pending(ctx, kind) is None:
        raise GuardFailed(
            f"there is no pending request for {APPROVAL_LABELS.get(kind, kind)} ({kind})",
            zh=f"没有待审核的{APPROVAL_LABELS.get(kind, kind)}申请",
        )


@condition("before_handle_deadline", explained=True)
def before_handle_deadline(ctx: Context, _arg=None) -> None:
    if ctx.ticket.handle_by is not None and ctx.now > ctx.ticket.handle_by:
        raise GuardFailed(
            "an extension must be asked for before the handling deadline, which has passed",
            zh="办理时限已过，不能再申请延期",
        )


def _approved_extension_days(ctx: Context) -> int:
    total = ctx.session.exec(
        select(func.coalesce(func.sum(Approval.days), 0)).where(
            Approval.ticket_id == ctx.ticket.id, Approval.kind == "extension", Approval.status == "approved"
        )
    ).one()
    return int(total)


@condition("within_extension_cap", explained=True)
def within_extension_cap(ctx: Context, _arg=None) -> None:
    days = ctx.payload.get("days")
    if days is None:
        return
    used = _approved_extension_days(ctx)
    cap = ctx.limits.extension_cap_working_days
    if used + days > cap:
        raise GuardFailed(
            f"extensions of one ticket are capped at {cap} working days; {used} already approved, {days} asked",
            zh=f"延期累计不得超过 {cap} 个工作日（已批准 {used} 天，本次申请 {days} 天）",
        )


@condition("callback_complete")
def callback_complete(ctx: Context, _arg=None) -> None:
    if ctx.dry_run:
        return
    p = ctx.payload
    if p["reached"]:
        for name in ("rating", "solved"):
            if p.get(name) is None:
                raise Invalid(
                    f"a callback that reached the citizen needs {name!r}",
                    field=name,
                    zh="联系上来电人的回访须填写" + ("满意度评价" if name == "rating" else "问题是否解决"),
                )
    else:
        for name in ("rating", "solved"):
            if p.get(name) is not None:
                raise Invalid(
                    f"a callback that did not reach the citizen has no {name!r}",
                    field=name,
                    zh="未联系上来电人的回访不能填写" + ("满意度评价" if name == "rating" else "问题是否解决"),
                )


@condition("closable", explained=True)
def closable(ctx: Context, _arg=None) -> None:
    if _close_reason(ctx) is None:
        raise GuardFailed(
            "close needs a satisfactory callback, or the callback attempts exhausted, or the "
            "callback window passed; after a dissatisfied callback, rehandle or close with a reason",
            zh="归档需要满意的回访、回访次数用尽或回访期限已过；不满意的回访请重办，或填写理由后归档",
        )


def _close_reason(ctx: Context) -> str | None:
    last = _last_reached_callback(ctx)
    unreached = 0
    if last is None:
        unreached = ctx.session.exec(
            select(func.count()).select_from(Callback).where(_this_round(ctx.ticket), ~Callback.reached)
        ).one()
    reason = ctx.dry_run or bool(ctx.payload.get("reason"))
    return close_reason(ctx.limits, ctx.ticket, last, unreached, ctx.actor.role, reason, ctx.now)


def close_reason(limits, t: Ticket, last_reached, unreached: int, role: str, reason: bool, now) -> str | None:
    """Why the ticket may close now, or None: from the round's last callback that reached the
    citizen, its unreached attempts, who closes it, and whether they gave a reason."""
    if last_reached is not None:
        if ratings.satisfied(limits, last_reached):
            return "satisfied"
        if role != "system" and reason:
            return "dissatisfied_closed"
        return None
    if unreached >= limits.callback_attempts:
        return "not_called_back"
    if t.callback_by is not None and now > t.callback_by and role in ("system", "supervisor"):
        return "not_called_back"
    if not t.reply_wanted:
        return "no_reply_wanted"
    return None


@condition("dissatisfied_callback")
def dissatisfied_callback(ctx: Context, _arg=None) -> None:
    last = _last_reached_callback(ctx)
    if last is None or _satisfied(ctx, last):
        raise GuardFailed("rehandling needs a dissatisfied callback", zh="只有回访不满意的工单才能重办")


@condition("has_main_department")
def has_main_department(ctx: Context, _arg=None) -> None:
    if ctx.ticket.main_department_id is None:
        raise GuardFailed("the ticket has no handling department", zh="该工单没有承办单位")


def order_awaits_answer(order_id: int) -> str:
    """Why no second supervision order is issued."""
    return f"supervision order {order_id} on this ticket still awaits the department leader's answer"


def order_awaits_answer_zh(issued_at: datetime) -> str:
    """The same for the people who read it: the refusal's words, and what the history records
    when the scheduler passes the step over."""
    return (
        f"该工单已有督办单（{issued_at.astimezone(LOCAL_TZ):%m-%d %H:%M} 下发）"
        "尚待单位负责人答复，未重复下发；如需再次提醒，请使用催办"
    )


@condition("no_open_supervision_order", explained=True)
def no_open_supervision_order(ctx: Context, _arg=None) -> None:
    """A centre does not issue a second order while the first waits for its answer."""
    pending = ctx.session.exec(
        select(SupervisionOrder)
        .where(SupervisionOrder.ticket_id == ctx.ticket.id, SupervisionOrder.status == "open")
        .order_by(SupervisionOrder.id)
    ).first()
    if pending is not None:
        raise GuardFailed(order_awaits_answer(pending.id), zh=order_awaits_answer_zh(pending.issued_at))


@condition("urge_interval", explained=True)
def urge_interval(ctx: Context, _arg=None) -> None:
    """No second urge by a person within the workflow's interval of the last
    (`urge_interval_minutes`): a department is not sent the same notice twice because two
    supervisors, or one twice, pressed the button. The machines' ladders (the scheduler's,
    an outside platform's) are not held back: their steps are their own to pace."""
    minutes = ctx.limits.urge_interval_minutes
    if not minutes or ctx.actor.role in ("system", INTEGRATION):
        return
    last = ctx.session.exec(
        select(TicketEvent.at, TicketEvent.actor_id, TicketEvent.actor_name, TicketEvent.actor_role)
        .where(TicketEvent.ticket_id == ctx.ticket.id, TicketEvent.event == "urge")
        .order_by(TicketEvent.id.desc())
        .limit(1)
    ).first()
    if last is None or ctx.now - last.at >= timedelta(minutes=minutes):
        return
    again = last.at + timedelta(minutes=minutes)
    # Who, as the people who read it know them: the name shown on the pages, or 系统.
    person = ctx.session.get(User, last.actor_id) if last.actor_id else None
    by = "系统" if last.actor_role == "system" else (person.display_name if person else None) or last.actor_name
    raise GuardFailed(
        f"the ticket was urged at {last.at.isoformat()} by {last.actor_name}; it may be urged again "
        f"{minutes} minutes after that, from {again.isoformat()}",
        zh=f"该工单已于 {last.at.astimezone(LOCAL_TZ):%m-%d %H:%M} 由{by}催办，"
        f"{minutes} 分钟内不重复催办（{texts.local_time_from(again, ctx.now)} 后可再催办）",
    )


@condition("valid_master")
def valid_master(ctx: Context, _arg=None) -> None:
    if ctx.dry_run:
        return
    master_id = ctx.payload["master"]
    if master_id == ctx.ticket.id:
        raise Invalid("a ticket cannot be merged into itself", field="master", zh="工单不能并入其自身")
    master = ctx.session.get(Ticket, master_id)
    if master is None:
        raise Invalid(f"no ticket {master_id} to merge into", field="master", zh="要并入的主工单不存在")
    wf = ctx.runtime.workflows.get(master.workflow)
    if wf.states[master.state].final:
        raise GuardFailed(
            f"the master ticket {master.number} is closed ({wf.state_label(master.state)})",
            zh=f"主工单 {master.number} 状态为“{wf.state_label(master.state)}”，不能并入",
        )


@condition("open_supervision_order")
def open_supervision_order(ctx: Context, _arg=None) -> None:
    orders = ctx.session.exec(
        select(SupervisionOrder).where(
            SupervisionOrder.ticket_id == ctx.ticket.id,
            SupervisionOrder.department_id == ctx.actor.department_id,
            SupervisionOrder.status == "open",
        )
    ).all()
    if not orders:
        raise GuardFailed(
            "your department has no open supervision order on this ticket", zh="本单位在该工单上没有待答复的督办单"
        )
    if not ctx.dry_run and ctx.payload["order"] not in {o.id for o in orders}:
        raise Invalid(
            f"supervision order {ctx.payload['order']} is not open for your department",
            field="order",
            zh="该督办单不是本单位待答复的督办单",
        )


@condition("own_source")
def own_source(ctx: Context, _arg=None) -> None:
    """An outside platform (an integration account) acts only on the tickets it sent."""
    if ctx.actor.role == INTEGRATION and ctx.actor.source != ctx.ticket.source:
        raise GuardFailed(
            f"the platform {ctx.actor.source!r} acts only on its own tickets; this one came from {ctx.ticket.source!r}",
            zh="对接平台只能对本平台转来的工单执行此操作",
        )


@condition("rating_from_system")
def rating_from_system(ctx: Context, _arg=None) -> None:
    """An integration account's callback is a rating of the rating system (POST /api/v1/ratings),
    which carries the rating's own id; it records no callback of its own through the transitions."""
    if ctx.actor.role == INTEGRATION and not ctx.extra.get("external_id"):
        raise GuardFailed(
            "an outside platform sends a rating through POST /api/v1/ratings, not as a callback",
            zh="对接平台的评价须通过评价接口提交",
        )


# --- effects --------------------------------------------------------------------------


def _department(ctx: Context, code: str, field: str) -> Department:
    dept = ctx.session.exec(select(Department).where(Department.code == code)).first()
    if dept is None or not dept.active:
        raise Invalid(f"no active department with the code {code!r}", field=field, zh=f"没有代码为 {code} 的在用单位")
    return centre_department(ctx.session, dept, field=field)


@effect("assign_departments")
def assign_departments(ctx: Context, _arg=None) -> None:
    t, now = ctx.ticket, ctx.now
    if ctx.payload.get("department"):
        main = _department(ctx, ctx.payload["department"], "department")
        how = "given"
    else:
        r = route(ctx.session, category_id=t.category_id, street=t.street, community=t.community)
        main, how = centre_department(ctx.session, r.department), r.how
    co = []
    for code in ctx.payload.get("co_departments") or []:
        dept = _department(ctx, code, "co_departments")
        if dept.id != main.id and dept not in co:
            co.append(dept)
    for a in _active_assignments(ctx):
        a.status = "withdrawn"
        ctx.session.add(a)
    sign_by, handle_by = sla.dispatch_deadlines(_calendar(ctx), ctx.workflow, t, now)
    ctx.session.add(
        Assignment(
            ticket_id=t.id,
            department_id=main.id,
            role="main",
            status="dispatched",
            dispatched_at=now,
            sign_by=sign_by,
            handle_by=handle_by,
        )
    )
    for dept in co:
        ctx.session.add(
            Assignment(ticket_id=t.id, department_id=dept.id, role="co", status="dispatched", dispatched_at=now)
        )
    t.main_department_id = main.id
    t.dispatch_count += 1
    t.designated = t.dispatch_count >= ctx.limits.designate_after_dispatches
    t.dispatched_at = now
    t.signed_at = t.replied_at = None
    t.return_from_state = None
    # A new dispatch starts the department's clocks afresh (recomputed by the gateway).
    t.handle_started_at, t.extension_days, t.suspended_seconds = now, 0, 0.0
    _notify_dispatch(ctx, main, co, sign_by)
    ctx.details.update(
        {
            "department": main.code,
            "department_name": main.name,
            "routed_by": how,
            "co_departments": [d.code for d in co],
            "dispatch_no": t.dispatch_count,
            "designated": t.designated,
        }
    )


def _notify_dispatch(ctx: Context, main: Department, co: list[Department], sign_by) -> None:
    """Tell the departments a ticket was dispatched (or redispatched) to, main and co-handling."""
    for role, department_id, title, body in texts.dispatch_notices(ctx.ticket, main.name, [d.id for d in co], sign_by):
        _notify(ctx, kind="dispatch", role=role, department_id=department_id, title=title, body=body)


def _notify_decision(
    ctx: Context, approval: Approval | None, kind: str, approved: bool, days: int | None = None
) -> None:
    """Tell the department that asked (its handlers and leader) what the centre decided."""
    if approval is None or approval.department_id is None:
        return
    title, body = texts.decision_notice(ctx.ticket.number, kind, approved, ctx.payload.get("reason"), days)
    _notify(ctx, kind=kind, department_id=approval.department_id, title=title, body=body)


@effect("sign_assignment")
def sign_assignment(ctx: Context, _arg=None) -> None:
    a = ctx.assignment
    if a is None:
        return
    a.status, a.signed_at, a.signed_by_id = "signed", ctx.now, ctx.actor.id
    if a.role in COUNTED_ROLES:
        a.signed_on_time = sla.on_time(a.sign_by, ctx.now)
    if a.role == "main":
        ctx.ticket.signed_at = ctx.now
    if a.role == "sub":
        # From its sign-by to its handle-by: the community's ladder starts again.
        a.escalation_step = 0
        _watch(ctx, a)
    ctx.session.add(a)
    ctx.details["department_id"] = a.department_id


@effect("open_return")
def open_return(ctx: Context, _arg=None) -> None:
    ctx.ticket.return_from_state = ctx.from_state
    if ctx.assignment is not None:
        ctx.assignment.returned = True
        ctx.session.add(ctx.assignment)
    p = ctx.payload
    ctx.session.add(
        Approval(
            ticket_id=ctx.ticket.id,
            kind="return",
            department_id=ctx.actor.department_id,
            requested_by_id=ctx.actor.id,
            requested_at=ctx.now,
            reason=p["reason"],
            reason_code=p.get("reason_code", "other"),
            basis=p.get("basis"),
            from_state=ctx.from_state,
        )
    )


def _decide(ctx: Context, kind: str, status: str) -> Approval | None:
    approval = _pending(ctx, kind)
    if approval is not None:
        approval.status, approval.decided_at = status, ctx.now
        approval.decided_by_id = ctx.actor.id
        approval.decision_reason = ctx.payload.get("reason")
        ctx.session.add(approval)
        ctx.details["approval_id"] = approval.id
    return approval


@effect("approve_return")
def approve_return(ctx: Context, _arg=None) -> None:
    approval = _decide(ctx, "return", "approved")
    _notify_decision(ctx, approval, "return", True)


@effect("reject_return")
def reject_return(ctx: Context, _arg=None) -> None:
    approval = _decide(ctx, "return", "rejected")
    ctx.ticket.return_from_state = None
    _notify_decision(ctx, approval, "return", False)


@effect("open_approval", counted=False)
def open_approval(ctx: Context, kind: str) -> None:
    approval = Approval(
        ticket_id=ctx.ticket.id,
        kind=kind,
        department_id=ctx.actor.department_id,
        requested_by_id=ctx.actor.id,
        requested_at=ctx.now,
        reason=ctx.payload["reason"],
        days=ctx.payload.get("days"),
        from_state=ctx.from_state,
    )
    ctx.session.add(approval)


@effect("reject_approval", counted=False)
def reject_approval(ctx: Context, kind: str) -> None:
    approval = _decide(ctx, kind, "rejected")
    _notify_decision(ctx, approval, kind, False)


@effect("approve_extension")
def approve_extension(ctx: Context, _arg=None) -> None:
    approval = _pending(ctx, "extension")
    days = ctx.payload.get("days") or approval.days
    if days > approval.days:
        raise Invalid(
            f"the department asked for {approval.days} days; approve at most that",
            field="days",
            zh=f"承办单位申请延期 {approval.days} 个工作日，批准天数不能超过申请天数",
        )
    used = _approved_extension_days(ctx)
    cap = ctx.limits.extension_cap_working_days
    if used + days > cap:
        raise GuardFailed(
            f"extensions of one ticket are capped at {cap} working days; {used} already approved",
            zh=f"同一工单累计延期不能超过 {cap} 个工作日，已批准 {used} 个工作日",
        )
    _decide(ctx, "extension", "approved")
    approval.days = days
    ctx.ticket.extension_days += days
    _sync_main_handle_by(ctx)
    ctx.details.update({"days": days, "handle_by_before": _iso(ctx.ticket.handle_by)})
    _notify_decision(ctx, approval, "extension", True, days)


@effect("approve_suspension")
def approve_suspension(ctx: Context, _arg=None) -> None:
    approval = _decide(ctx, "suspension", "approved")
    ctx.ticket.suspended_at = ctx.now
    _notify_decision(ctx, approval, "suspension", True)


@effect("resume_clock")
def resume_clock(ctx: Context, _arg=None) -> None:
    t = ctx.ticket
    if t.suspended_at is not None:
        # The clock stood still while suspended: the handling time left is kept.
        paused = sla.elapsed(_calendar(ctx), sla.handle_limit(ctx.workflow, t), t.suspended_at, ctx.now)
        t.suspended_seconds = (t.suspended_seconds or 0) + max(paused, 0)
        ctx.details["suspended_seconds"] = paused
    t.suspended_at = None
    _sync_main_handle_by(ctx)


def _sync_main_handle_by(ctx: Context) -> None:
    """Keep the main assignment's handle-by (what on-time completion is judged by) current."""
    main = _main_assignment(ctx)
    if main is not None and main.first_replied_at is None:
        handle = sla.compute_handle_by(_calendar(ctx), ctx.workflow, ctx.ticket)
        if handle is not None:
            main.handle_by = handle.at
            ctx.session.add(main)


@effect("record_reply")
def record_reply(ctx: Context, _arg=None) -> None:
    a = ctx.assignment
    result = ctx.payload["result"]
    if a is not None:
        a.status, a.replied_at, a.replied_by_id, a.result = "replied", ctx.now, ctx.actor.id, result
        if a.role in COUNTED_ROLES and a.first_replied_at is None:
            a.first_replied_at = ctx.now
            a.replied_on_time = sla.on_time(a.handle_by, ctx.now)
        ctx.session.add(a)
    if ctx.as_community:
        _watch(ctx, a)
        _tell_street(ctx, "replied", None)
    elif ctx.as_main:
        ctx.ticket.result, ctx.ticket.replied_at = result, ctx.now


@effect("reopen_main_assignment")
def reopen_main_assignment(ctx: Context, _arg=None) -> None:
    main = _main_assignment(ctx)
    if main is not None:
        main.status, main.replied_at = "signed", None
        ctx.session.add(main)
    ctx.ticket.replied_at = None
    if ctx.ticket.main_department_id is not None:
        title, body = texts.reply_rejected_notice(ctx.ticket.number, ctx.payload.get("reason"))
        _notify(ctx, kind="reply_rejected", department_id=ctx.ticket.main_department_id, title=title, body=body)


@effect("record_answer", counted=False)
def record_answer(ctx: Context, _arg=None) -> None:
    article_id = ctx.payload.get("article")
    if article_id is not None:
        article = ctx.session.get(Article, article_id)
        if article is None or article.status != "published":
            raise Invalid(
                f"article {article_id} is not a published knowledge-base article",
                field="article",
                zh="所引用的知识库文章不存在或未发布",
            )
        ctx.ticket.article_id = article.id
    ctx.ticket.answer = ctx.payload["answer"]
    ctx.ticket.replied_at = ctx.now


@effect("start_callback_clock", counted=False)
def start_callback_clock(ctx: Context, _arg=None) -> None:
    ctx.ticket.callback_started_at = ctx.now


@effect("record_callback")
def record_callback(ctx: Context, _arg=None) -> None:
    t = ctx.ticket
    attempts = ctx.session.exec(select(func.count()).select_from(Callback).where(Callback.ticket_id == t.id)).one()
    p = ctx.payload
    callback = Callback(
        ticket_id=t.id,
        attempt=attempts + 1,
        reached=p["reached"],
        solved=p.get("solved"),
        rating=p.get("rating"),
        comment=p.get("comment"),
        source=CALLBACK_SOURCES.get(ctx.actor.role, "agent"),
        # A rating from the rating system (POST /api/v1/ratings): its channel and its own id.
        channel=ctx.extra.get("channel"),
        external_id=ctx.extra.get("external_id"),
        by_id=ctx.actor.id,
        at=ctx.now,
        department_id=t.main_department_id,
    )
    ctx.session.add(callback)
    ctx.session.flush()
    ctx.details["attempt"] = attempts + 1
    if not p["reached"]:
        unreached = ctx.session.exec(
            select(func.count()).select_from(Callback).where(_this_round(t), ~Callback.reached)
        ).one()
        if unreached >= ctx.limits.callback_attempts:
            t.callbacks_exhausted_at = ctx.now  # the scheduler closes it as not called back
        return
    if ctx.actor.role != "citizen":
        # One evaluation per handling: a callback that reached the citizen retires the link.
        for invitation in ctx.session.exec(
            select(RatingInvitation).where(
                RatingInvitation.ticket_id == t.id,
                RatingInvitation.used_at.is_(None),
                RatingInvitation.revoked_at.is_(None),
            )
        ).all():
            invitation.revoked_at = ctx.now
            ctx.session.add(invitation)
    if callback.rating is not None:
        ratings.record_rating(ctx.session, ctx.runtime, t, callback, ctx.now)


# Why the scheduler sends no rating link to a citizen already reached (the history records
# the Chinese; hotline.labels shows the English of older histories in Chinese).
ALREADY_RATED = "the citizen has been reached and has rated already"
ALREADY_RATED_ZH = "市民已评价，无需再发送评价短信"


@condition("can_invite", explained=True)
def can_invite(ctx: Context, _arg=None) -> None:
    t = ctx.ticket
    if not t.caller_phone:
        raise GuardFailed("the caller left no phone number for a rating link", zh="来电人未留电话，无法发送评价短信")
    if ctx.session.exec(select(Callback.id).where(_this_round(t), Callback.reached, ~Callback.overturned)).first():
        raise GuardFailed(ALREADY_RATED, zh=ALREADY_RATED_ZH)


@effect("send_invitation", counted=False)
def send_invitation(ctx: Context, _arg=None) -> None:
    sent = ratings.send_invitation(ctx.session, ctx.runtime, ctx.ticket, ctx.actor, ctx.now)
    ctx.result.update(sent)
    ctx.details.update({"invitation": sent["invitation"], "expires_at": sent["expires_at"].isoformat()})


@condition("rehandle_allowed", explained=True)
def rehandle_allowed(ctx: Context, _arg=None) -> None:
    if ctx.actor.role == "supervisor":
        return
    t = ctx.ticket
    if t.rehandle_count >= ctx.limits.agent_rehandles:
        raise GuardFailed(
            f"the ticket was rehandled {t.rehandle_count} times; a supervisor decides now",
            zh=f"该工单已重办 {t.rehandle_count} 次，需由督办员决定",
        )
    last = _last_reached_callback(ctx)
    if last is not None and last.source in CITIZENS_OWN_RATINGS:
        raise GuardFailed(
            "the citizen's own dissatisfied rating goes to a supervisor first",
            zh="市民通过短信给出的不满意评价，需先由督办员审核",
        )


@effect("record_close")
def record_close(ctx: Context, _arg=None) -> None:
    t = ctx.ticket
    t.closed_at = ctx.now
    if ctx.event.name == "cancel":
        t.close_reason = "cancelled"
    else:
        t.close_reason = _close_reason(ctx)
    ctx.details["close_reason"] = t.close_reason
    _lapse_supervision_orders(ctx)


def _lapse_supervision_orders(ctx: Context) -> None:
    """A finished ticket's unanswered supervision orders close as lapsed: nobody can answer
    them any more, and they stay on record as orders the department never answered."""
    orders = ctx.session.exec(
        select(SupervisionOrder).where(SupervisionOrder.ticket_id == ctx.ticket.id, SupervisionOrder.status == "open")
    ).all()
    for order in orders:
        order.status = "lapsed"
        ctx.session.add(order)
    if orders:
        ctx.details["lapsed_orders"] = [order.id for order in orders]


@effect("rehandle")
def rehandle(ctx: Context, _arg=None) -> None:
    t = ctx.ticket
    t.rehandle_count += 1
    reopen_main_assignment(ctx)
    main = _main_assignment(ctx)
    if main is not None:
        main.rehandles += 1
        ctx.session.add(main)
    # A fresh handling deadline from now; the callback clock, the rating link and the
    # callback attempts start again after the next reply.
    t.handle_started_at, t.extension_days, t.suspended_seconds = ctx.now, 0, 0.0
    t.callback_started_at = t.callback_by = None
    t.invitation_sent_at = t.callbacks_exhausted_at = None
    ctx.details["rehandle_no"] = t.rehandle_count


@effect("merge_into_master")
def merge_into_master(ctx: Context, _arg=None) -> None:
    t = ctx.ticket
    master = ctx.session.get(Ticket, ctx.payload["master"])
    t.master_id = master.id
    t.closed_at = ctx.now
    t.close_reason = "merged"
    for a in _active_assignments(ctx):
        a.status = "withdrawn"
        ctx.session.add(a)
    ctx.details["master_number"] = master.number
    _lapse_supervision_orders(ctx)
    details = {"merged_ticket": t.id, "merged_number": t.number}
    with changing(ctx.session, ctx.runtime, master.id, "merge_in", ctx.actor, now=ctx.now, details=details):
        pass  # the master's history, version and clocks follow; its own rows stay as they are


def _iso(value) -> str | None:
    return value.isoformat() if value else None


# --- second-level dispatch (二级派单) ------------------------------------------------------


@effect("assign_community")
def assign_community(ctx: Context, _arg=None) -> None:
    """The street passes the ticket to one of its communities: the community's assignment,
    with its own clocks inside the street's (an earlier community's part is withdrawn)."""
    community = _named_community(ctx)
    for a in _active_assignments(ctx):
        if a.role == "sub":
            a.status, a.next_due_at = "withdrawn", None
            ctx.session.add(a)
    sign_by, handle_by = sla.community_deadlines(_calendar(ctx), ctx.workflow, ctx.ticket, ctx.now)
    part = Assignment(
        ticket_id=ctx.ticket.id,
        department_id=community.id,
        role="sub",
        status="dispatched",
        dispatched_at=ctx.now,
        sign_by=sign_by,
        handle_by=handle_by,
    )
    _watch(ctx, part)
    ctx.session.add(part)
    title, body = texts.community_notices(
        ctx.ticket.number, "passed", community.name, ctx.payload.get("message"), sign_by
    )
    _notify(ctx, kind="dispatch", department_id=community.id, title=title, body=body)
    ctx.details.update(
        {
            "community": community.code,
            "community_name": community.name,
            "community_sign_by": _iso(sign_by),
            "community_handle_by": _iso(handle_by),
        }
    )


@effect("return_to_street")
def return_to_street(ctx: Context, _arg=None) -> None:
    """The community gives the ticket back to its street office (never to the centre)."""
    a = ctx.assignment
    if a is not None:
        a.returned, a.status, a.next_due_at = True, "withdrawn", None
        ctx.session.add(a)
    _tell_street(ctx, "returned", ctx.payload.get("reason"))


@effect("recall_from_community")
def recall_from_community(ctx: Context, _arg=None) -> None:
    """The street takes the ticket back from its community before it replies (收回): the
    community's part is withdrawn, its clocks stop, and it is told why."""
    a = _active_assignment(ctx, "sub")
    if a is None:
        return
    a.status, a.next_due_at = "withdrawn", None
    ctx.session.add(a)
    community = ctx.session.get(Department, a.department_id)
    title, body = texts.community_notices(ctx.ticket.number, "recalled", "", ctx.payload.get("reason"), None)
    _notify(ctx, kind="community_recalled", department_id=a.department_id, title=title, body=body)
    ctx.details.update({"community": community.code, "community_name": community.name})


@effect("reopen_community_assignment")
def reopen_community_assignment(ctx: Context, _arg=None) -> None:
    """The street sends the community's reply back: the community handles it again."""
    a = _active_assignment(ctx, "sub")
    if a is None:
        return
    a.status, a.replied_at = "signed", None
    _watch(ctx, a)
    ctx.session.add(a)
    title, body = texts.community_notices(ctx.ticket.number, "rejected", "", ctx.payload.get("reason"), None)
    _notify(ctx, kind="reply_rejected", department_id=a.department_id, title=title, body=body)


def _watch(ctx: Context, part: Assignment) -> None:
    """When the scheduler next looks at a community's part (its own ladder, hotline.deadlines.sla)."""
    sla.watch_part(_calendar(ctx), ctx.workflow, ctx.ticket, part)


def _tell_street(ctx: Context, step: str, reason: str | None) -> None:
    """A notice to the street office from the community acting on the ticket."""
    community = ctx.session.get(Department, ctx.actor.department_id)
    title, body = texts.community_notices(ctx.ticket.number, step, community.name, reason, None)
    _notify(ctx, kind=f"community_{step}", department_id=ctx.ticket.main_department_id, title=title, body=body)


def _notify(
    ctx: Context,
    *,
    kind: str,
    title: str,
    body: str = "",
    role: str | None = None,
    department_id: int | None = None,
    user_id: int | None = None,
) -> None:
    """A notice about the ticket the event acts on."""
    notices.send(
        ctx.session,
        kind=kind,
        title=title,
        body=body,
        at=ctx.now,
        ticket=ctx.ticket,
        role=role,
        department_id=department_id,
        user_id=user_id,
    )


_ORDER_INSERT = SupervisionOrder.__table__.insert().returning(SupervisionOrder.__table__.c.id)


@lru_cache(maxsize=4)
def escalation_insert(dialect: str):
    """INSERT … ON CONFLICT DO NOTHING into the escalations, built (and compiled) once."""
    table = Escalation.__table__
    return dialect_insert(dialect)(table).on_conflict_do_nothing(
        index_elements=["ticket_id", "deadline_kind", "deadline_at", "step"]
    )


def _record_step(ctx: Context, step: str) -> None:
    """The ladder step for the ticket's running deadline, once (the table is unique on it)."""
    t = ctx.ticket
    kind, deadline = (t.due_kind, t.due_at) if t.due_at is not None else ("manual", ctx.now)
    # Written with the unit of work's other append-only rows (a batch of the scheduler's: in
    # one statement).
    appends.add(
        ctx.session,
        escalation_insert(ctx.session.get_bind().dialect.name),
        {
            "ticket_id": t.id,
            "department_id": t.main_department_id,
            "deadline_kind": kind,
            "deadline_at": deadline,
            "step": step,
            "at": ctx.now,
            "by_scheduler": ctx.actor.role == "system",
        },
    )
    ctx.details.update({"deadline": kind, "deadline_at": _iso(deadline)})
    if ctx.extra.get("step") == step:
        # Fired as the ladder's next step (the scheduler): the ladder moves past it, and the
        # gateway's recompute after the effects stores when the following step falls due.
        t.escalation_step = sla.LADDER.index(step) + 1


def _ladder_notices(ctx: Context, step: str, message: str | None) -> None:
    for role, department_id, title, body in texts.ladder_notices(step, ctx.ticket, message):
        _notify(ctx, kind=step, role=role, department_id=department_id, title=title, body=body)


@effect("warn", counted=False)
def warn(ctx: Context, _arg=None) -> None:
    _record_step(ctx, "warn")
    _ladder_notices(ctx, "warn", ctx.payload.get("message"))


@effect("urge", counted=False)
def urge(ctx: Context, _arg=None) -> None:
    _record_step(ctx, "urge")
    _ladder_notices(ctx, "urge", ctx.payload.get("message"))


@effect("supervise", counted=False)
def supervise(ctx: Context, _arg=None) -> None:
    t = ctx.ticket
    _record_step(ctx, "supervise")
    message = ctx.payload.get("message") or texts.supervision_message(t, ctx.now)
    # A Core insert on the session's connection: the order's id without flushing the session.
    ctx.details["supervision_order"] = (
        ctx.session.connection()
        .execute(
            _ORDER_INSERT,
            {
                "ticket_id": t.id,
                "department_id": t.main_department_id,
                "issued_at": ctx.now,
                "issued_by_id": ctx.actor.id,
                "message": message,
                "status": "open",
            },
        )
        .scalar_one()
    )
    _ladder_notices(ctx, "supervise", message)


@effect("report", counted=False)
def report(ctx: Context, _arg=None) -> None:
    _record_step(ctx, "report")
    _ladder_notices(ctx, "report", ctx.payload.get("message"))


@effect("answer_supervision", counted=False)
def answer_supervision(ctx: Context, _arg=None) -> None:
    order = ctx.session.get(SupervisionOrder, ctx.payload["order"])
    order.status, order.answered_at = "answered", ctx.now
    order.answered_by_id, order.answer = ctx.actor.id, ctx.payload["answer"]
    ctx.session.add(order)
