"""The scheduler: sweeps that escalate overdue tickets, run by APScheduler or by hand.

A sweep reads only the tickets whose stored `next_due_at` has come (an indexed
range scan), never the open backlog. A batch of due tickets is locked and re-checked
in one statement before it is touched, so two schedulers (several `serve` workers, or
`hotline scheduler` beside them) never escalate a ticket twice; the escalation table's
unique key is the last guard. A batch commits as a whole, with one flush for all its
events: a sweep that dies half-way leaves nothing half-done, and the next sweep finds
the same tickets still due.
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from hotline import audit, notices
from hotline.attachments.files import remove_expired
from hotline.db import collector_paused, dialect_insert
from hotline.deadlines import sla
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.errors import HotlineError
from hotline.evaluation.messaging import deliver_pending
from hotline.evaluation.rectifications import RECT_LADDER, rect_next_step
from hotline.indicators.analysis import check_surges
from hotline.indicators.reports import generate_due_reports
from hotline.integration import events
from hotline.integration.delivery import Deliverer, prune
from hotline.knowledge.articles import retire_expired
from hotline.knowledge.feedback import warn_expiring
from hotline.models import Assignment, CalendarWarning, Rectification, Ticket
from hotline.ops.leader import Leadership
from hotline.ops.metrics import ESCALATIONS, JOB_SECONDS, WEBHOOK_ATTEMPTS
from hotline.runtime import Runtime
from hotline.supervision import escalate_part
from hotline.workflow import texts
from hotline.workflow.engine import SCHEDULER, changing, fire

log = logging.getLogger("hotline.scheduler")

BATCH = 200
# On PostgreSQL the due tickets' batches run this many at a time, each in its own transaction
# on its own connection: one batch's Python work goes on while another waits for the server
# (the lock of `FOR UPDATE SKIP LOCKED` keeps them apart). SQLite has one writer: one at a time.
LANES = 2
# The due tickets read at once, in batches: enough to keep the lanes busy.
WINDOW_BATCHES = 8
STEP_LABELS = {
    "warn": "预警",
    "urge": "催办",
    "supervise": "督办",
    "report": "通报",
    "invite": "发送评价短信",
    "close": "归档",
}


@dataclass
class SweepReport:
    """What one sweep did."""

    now: datetime
    steps: list[tuple[str, str, str]] = field(default_factory=list)  # (number, step, deadline kind)
    deferred: int = 0
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (number, step, why)
    notices: list[str] = field(default_factory=list)

    def count(self, step: str) -> int:
        return sum(1 for _, s, _ in self.steps if s == step)

    def merge(self, other: "SweepReport") -> None:
        """Add what another part of the same sweep did."""
        self.steps += other.steps
        self.skipped += other.skipped
        self.deferred += other.deferred
        self.notices += other.notices

    def lines(self) -> list[str]:
        out = [f"{number} {step} ({STEP_LABELS[step]}, {kind})" for number, step, kind in self.steps]
        out += [f"{number} {step} skipped: {why}" for number, step, why in self.skipped]
        out += self.notices
        summary = ", ".join(f"{self.count(s)} {s}" for s in STEP_LABELS)
        out.append(
            f"sweep at {self.now.astimezone(LOCAL_TZ).isoformat()}: {summary}; {self.deferred} waiting for office hours"
        )
        return out


class _Redo(Exception):
    """A step was refused half-way through a batch taken at speed: do it again carefully."""


def _escalate(session: Session, runtime: Runtime, ticket: Ticket, now: datetime, report: SweepReport, careful: bool):
    """The ticket's due ladder steps (it is locked, and due). `careful`: each step in a
    savepoint of its own, a refused step skipped; otherwise no savepoint and no flush (the
    batch flushes once), and a refused step raises `_Redo`."""
    cal = runtime.calendar(session)
    if ticket.due_kind == "callback":
        _evaluate(session, runtime, ticket, now, report)
        return
    office = cal.next_office_time(now)
    if office > now:
        ticket.next_due_at = office  # notices go out in office hours
        report.deferred += 1
        return
    while ticket.next_due_at is not None and ticket.next_due_at <= now and ticket.escalation_step < len(sla.LADDER):
        step = sla.LADDER[ticket.escalation_step]
        kind = ticket.due_kind
        if sla.is_noise(step, ticket, now):
            _pass_over(session, runtime, ticket, step, now, sla.NOISE)
            continue
        try:
            with session.begin_nested() if careful else nullcontext():
                # The step's effect moves the ticket's ladder past it; a savepoint flushes its own
                # rows, a batch taken at speed flushes once at its end.
                fire(session, runtime, ticket, step, SCHEDULER, now=now, context={"auto": True, "step": step})
            report.steps.append((ticket.number, step, kind))
        except HotlineError as exc:
            if not careful:
                raise _Redo from exc
            report.skipped.append((ticket.number, step, exc.message))
            _pass_over(session, runtime, ticket, step, now, exc.extra.get("zh") or exc.message)


def _pass_over(session: Session, runtime: Runtime, ticket: Ticket, step: str, now: datetime, why: str) -> None:
    """The ladder moves past a step the scheduler does not take, recorded in the history."""
    details = {"auto": True, "step": step, "deadline": ticket.due_kind, "reason": why}
    with changing(session, runtime, ticket, "escalation_skipped", SCHEDULER, now=now, details=details):
        ticket.escalation_step += 1


def _lock_due(session: Session, ids: list[int], now: datetime) -> list[Ticket]:
    """The batch's tickets that are still due, locked, in one statement. PostgreSQL skips a
    ticket another transaction holds (another scheduler's batch, a person's change): the
    next sweep finds it if it is still due. SQLite's write transaction is the lock."""
    return list(
        session.exec(
            select(Ticket)
            .where(Ticket.id.in_(ids), Ticket.next_due_at <= now)
            .order_by(Ticket.id)
            .with_for_update(skip_locked=True)
        ).all()
    )


def _escalate_batch(runtime: Runtime, ids: list[int], now: datetime, report: SweepReport) -> None:
    """One batch in one transaction: at speed (one flush for the batch), or, when a step is
    refused half-way, again from the start with a savepoint per step."""
    with collector_paused():
        _escalate_batch_once(runtime, ids, now, report)


def _escalate_batch_once(runtime: Runtime, ids: list[int], now: datetime, report: SweepReport) -> None:
    marks = (len(report.steps), len(report.skipped), report.deferred)
    try:
        with runtime.db.session() as session:
            locked = _lock_due(session, ids, now)
            # The chains' heads and the assignments of the batch, each in one read.
            audit.prime(session, [t.id for t in locked])
            events.prime(session, locked)
            for ticket in locked:
                _escalate(session, runtime, ticket, now, report, careful=False)
        return
    except _Redo:
        del report.steps[marks[0] :], report.skipped[marks[1] :]
        report.deferred = marks[2]
    with runtime.db.session() as session:
        for ticket in _lock_due(session, ids, now):
            _escalate(session, runtime, ticket, now, report, careful=True)


def _escalate_due(runtime: Runtime, now: datetime, report: SweepReport, batch: int) -> None:
    """Every ticket due by `now` (an indexed range of `next_due_at`), a batch per transaction;
    on PostgreSQL `LANES` batches at a time. A ticket is taken once per sweep: one another
    transaction held (skipped by the lock) waits for the next sweep."""
    lanes = 1 if runtime.db.is_sqlite else LANES
    seen: set[int] = set()
    with ThreadPoolExecutor(lanes, thread_name_prefix="sweep") if lanes > 1 else nullcontext() as pool:
        while True:
            with runtime.db.read_session() as session:
                ids = session.exec(
                    select(Ticket.id)
                    .where(Ticket.next_due_at <= now)
                    .order_by(Ticket.next_due_at)
                    .limit(batch * (WINDOW_BATCHES if pool else 1))
                ).all()
            ids = [i for i in ids if i not in seen]
            if not ids:
                return
            seen.update(ids)
            chunks = [ids[i : i + batch] for i in range(0, len(ids), batch)]
            if pool is None or len(chunks) == 1:
                for chunk in chunks:
                    _escalate_batch(runtime, chunk, now, report)
                continue
            # Each batch reports apart; the parts are added in the batches' order.
            parts = [SweepReport(now=now) for _ in chunks]
            futures = [pool.submit(_escalate_batch, runtime, c, now, p) for c, p in zip(chunks, parts, strict=True)]
            for future in futures:
                future.result()
            for part in parts:
                report.merge(part)


def _evaluate(session: Session, runtime: Runtime, ticket: Ticket, now: datetime, report: SweepReport) -> None:
    """The callback clock: send the rating link (in office hours), or close the ticket when
    the attempts ran out or the window passed with no rating (never counted satisfied)."""
    if sla.wants_invitation(ticket) and ticket.callbacks_exhausted_at is None:
        office = runtime.calendar(session).next_office_time(now)
        if office > now:
            ticket.next_due_at = office
            report.deferred += 1
            return
        try:
            with session.begin_nested():
                fire(session, runtime, ticket, "invite", SCHEDULER, now=now, context={"auto": True})
            report.steps.append((ticket.number, "invite", "callback"))
        except HotlineError as exc:
            # Nothing to send to: the link is given up, the rating window still runs.
            details = {"auto": True, "step": "invite", "reason": exc.extra.get("zh") or exc.message}
            with changing(session, runtime, ticket, "invite_skipped", SCHEDULER, now=now, details=details):
                ticket.invitation_sent_at = now
            report.skipped.append((ticket.number, "invite", exc.message))
        return
    try:
        with session.begin_nested():
            fire(session, runtime, ticket, "close", SCHEDULER, now=now, context={"auto": True})
        report.steps.append((ticket.number, "close", "callback"))
    except HotlineError as exc:
        # A dissatisfied callback waits for a person to rehandle or close it.
        ticket.next_due_at = None
        report.skipped.append((ticket.number, "close", exc.message))


def _escalate_rectifications(runtime: Runtime, now: datetime, report: SweepReport) -> None:
    """Overdue rectifications are urged, then supervised, like tickets (once each)."""
    with runtime.db.session() as session:
        cal = runtime.calendar(session)
        if cal.next_office_time(now) > now:
            return
        due = session.exec(
            select(Rectification).where(Rectification.next_due_at <= now).order_by(Rectification.next_due_at).limit(500)
        ).all()
        for rect in due:
            ticket = session.get(Ticket, rect.ticket_id)
            wf = runtime.workflows.get(ticket.workflow)
            while rect.next_due_at is not None and rect.next_due_at <= now:
                step = RECT_LADDER[rect.escalation_step]
                role = "handler" if step == "urge" else "leader"
                title, body = texts.rectification_step_notice(step, ticket.number, rect.due_at)
                event, details = f"rectification_{step}", {"rectification": rect.id, "auto": True}
                with changing(session, runtime, rect.ticket_id, event, SCHEDULER, now=now, details=details) as change:
                    notices.send(
                        session,
                        kind=step,
                        title=title,
                        body=body,
                        at=now,
                        ticket=change.ticket,
                        department_id=rect.department_id,
                        role=role,
                    )
                    rect.escalation_step += 1
                    rect.next_due_at = rect_next_step(cal, wf, rect)
                report.steps.append((ticket.number, step, "rectification"))


def _escalate_parts(runtime: Runtime, now: datetime, report: SweepReport, batch: int) -> None:
    """The communities' own clocks (二级派单): the parts whose stored `next_due_at` has come (an
    indexed range), a batch at a time, each batch in one transaction. The tickets are locked
    first, as every change locks them (PostgreSQL skips those another transaction holds: the
    next sweep finds them), then the parts re-checked, so no step is taken twice."""
    seen: set[int] = set()
    while True:
        with runtime.db.read_session() as session:
            due = session.exec(
                select(Assignment.id, Assignment.ticket_id)
                .where(Assignment.next_due_at <= now)
                .order_by(Assignment.next_due_at)
                .limit(batch)
            ).all()
        due = [(part_id, ticket_id) for part_id, ticket_id in due if part_id not in seen]
        if not due:
            return
        seen.update(part_id for part_id, _ in due)
        with runtime.db.session() as session:
            tickets = {
                t.id: t
                for t in session.exec(
                    select(Ticket)
                    .where(Ticket.id.in_({ticket_id for _, ticket_id in due}))
                    .order_by(Ticket.id)
                    .with_for_update(skip_locked=True)
                ).all()
            }
            parts = session.exec(
                select(Assignment)
                .where(
                    Assignment.id.in_([part_id for part_id, _ in due]),
                    Assignment.ticket_id.in_(list(tickets)),
                    Assignment.next_due_at <= now,
                )
                .order_by(Assignment.id)
                .execution_options(populate_existing=True)
            ).all()
            for part in parts:
                ticket = tickets[part.ticket_id]
                taken = escalate_part(session, runtime, ticket, part, now)
                if taken is None:
                    report.deferred += 1  # notices go out in office hours
                    continue
                report.steps += [(ticket.number, step, kind) for step, kind in taken]


def check_calendar(session: Session, runtime: Runtime, now: datetime, report: SweepReport) -> None:
    """Warn the administrators, once per year, when holiday data is missing.

    Every minute of November and December until next year's holidays are imported: the
    flag of the year (`calendar_warnings`, read by its key) says whether they were told; the
    process also remembers the years it found flagged, so its later sweeps read nothing."""
    cal = runtime.calendar(session)
    today = now.astimezone(LOCAL_TZ).date()
    years = [today.year] + ([today.year + 1] if today.month >= 11 else [])
    warned = runtime.calendar_warned
    for year in years:
        if year in cal.covered_years or year in warned:
            continue
        flag = dialect_insert(session.get_bind().dialect.name)(CalendarWarning.__table__)
        taken = session.execute(flag.values(year=year, warned_at=now).on_conflict_do_nothing()).rowcount
        warned.add(year)
        if not taken:  # told before (by this process or another)
            continue
        notices.send(
            session,
            role="admin",
            kind="calendar",
            title=texts.calendar_missing_title(year),
            at=now,
            body=f"{year} 年的法定节假日和调休安排尚未导入，涉及该年的时限暂按周一至周五计算并标记为“暂定”。"
            "请在“节假日日历”中导入国务院办公厅发布的安排，导入后暂定时限将自动重算。",
        )
        report.notices.append(f"calendar: no holiday data for {year}; administrators notified")


def surges(runtime: Runtime, now: datetime, report: SweepReport) -> None:
    """Raise an alert for each new surge (a job of its own: it reads the last hours' intake)."""
    with runtime.db.session() as session:
        for alert in check_surges(session, runtime, now):
            report.notices.append(
                f"surge: {alert.count} tickets in {alert.street or ''}{alert.community or ''} "
                f"(category {alert.category_id}) within {alert.window_hours:g} h"
            )


def sweep(runtime: Runtime, *, now: datetime, batch: int = BATCH, with_surges: bool = True) -> SweepReport:
    """One sweep at `now`: every due ladder step, once; the same code the scheduler runs.

    The scheduler runs the surge check as a job of its own every few minutes
    (`with_surges=False` here); `hotline sweep` does everything at once.
    """
    report = SweepReport(now=now)
    with runtime.db.session() as session:
        check_calendar(session, runtime, now, report)
    if with_surges:
        surges(runtime, now, report)
    _escalate_rectifications(runtime, now, report)
    _escalate_due(runtime, now, report, batch)
    _escalate_parts(runtime, now, report, batch)
    sent, failed = deliver_pending(runtime, runtime.channel)
    if sent or failed:
        report.notices.append(f"messages: {sent} sent, {failed} failed")
    return report


def run_sweep(runtime: Runtime) -> None:
    """The scheduled job: one sweep at the runtime's now, logged."""
    try:
        report = sweep(runtime, now=runtime.now(), with_surges=False)
    except Exception:
        log.exception("sweep failed; the next one will pick up where it stopped")
        return
    for _, step, _ in report.steps:
        ESCALATIONS.labels(step).inc()
    if report.steps or report.skipped or report.notices:
        log.info(report.lines()[-1])
    else:
        log.debug(report.lines()[-1])


def run_surges(runtime: Runtime) -> None:
    """The scheduled job: surge alerts, every few minutes."""
    report = SweepReport(now=runtime.now())
    try:
        surges(runtime, report.now, report)
    except Exception:
        log.exception("surge check failed; the next run tries again")
    for line in report.notices:
        log.info(line)


def run_reports(runtime: Runtime) -> None:
    """The scheduled job: the daily, weekly and monthly reports of the periods just ended."""
    try:
        for report in generate_due_reports(runtime, runtime.now()):
            log.info("report: %s", report.title)
    except Exception:
        log.exception("report generation failed; the next run tries again")


def run_statistics(runtime: Runtime) -> None:
    """The scheduled job: the database planner's statistics, kept fresh as the tables grow."""
    try:
        runtime.db.refresh_statistics()
    except Exception:
        log.exception("refreshing the planner statistics failed; the next run tries again")


def run_delivery(deliverer: Deliverer) -> None:
    """The scheduled job: webhooks due now, until none is (every second or so)."""
    try:
        report = deliverer.drain()
    except Exception:
        log.exception("webhook delivery failed; the next run tries again")
        return
    for outcome in ("delivered", "failed", "dead"):
        WEBHOOK_ATTEMPTS.labels(outcome).inc(getattr(report, outcome))
    if report.failed or report.dead or report.disabled:
        log.info(report.line())


def run_prune(runtime: Runtime) -> None:
    """The scheduled job: forget deliveries older than the retention (the events stay)."""
    before = datetime.now(UTC) - timedelta(days=runtime.settings.delivery_retention_days)
    try:
        while True:
            with runtime.db.session() as session:
                if not prune(session, before):
                    return
    except Exception:
        log.exception("pruning deliveries failed; the next run tries again")


def run_attachment_retention(runtime: Runtime) -> None:
    """The scheduled job: delete the files of tickets finished longer ago than the retention."""
    try:
        removed = remove_expired(runtime, now=runtime.now())
    except Exception:
        log.exception("removing expired attachments failed; the next run tries again")
        return
    if removed:
        log.info("attachments: %d removed under the retention rule", removed)


def run_knowledge_expiry(runtime: Runtime) -> None:
    """The scheduled job: retire the knowledge articles whose last valid day has passed, and
    warn the owners of those that expire within 15 days."""
    try:
        with runtime.db.session() as session:
            retired = retire_expired(session, runtime.now())
            warned = warn_expiring(session, runtime.now())
    except Exception:
        log.exception("retiring expired articles failed; the next run tries again")
        return
    if retired or warned:
        log.info("knowledge base: %d expired articles retired, %d owners warned", retired, warned)


# The jobs that run as soon as a process takes the lead (the others wait for their hour).
_AT_ONCE = ("surges", "reports", "knowledge_expiry", "delivery", "sweep")


def _led(leadership: Leadership, job):
    """The job, run only while this process leads (a run already started when the lead was
    lost finishes: every job is safe to run twice)."""

    def run(*args):
        if leadership.leading:
            with JOB_SECONDS.labels(job.__name__.removeprefix("run_")).time():
                job(*args)

    run.__name__ = run.__qualname__ = job.__name__
    return run


def _follow(scheduler, leading: bool) -> None:
    """Resume the jobs when this process takes the lead, pause them when it loses it."""
    now = datetime.now(LOCAL_TZ)
    for job in scheduler.get_jobs():
        if job.id == "leadership":
            continue
        if not leading:
            job.pause()
        elif job.id in _AT_ONCE:
            job.modify(next_run_time=now)
        else:
            job.resume()


def build_scheduler(runtime: Runtime, *, blocking: bool = False):
    """An APScheduler scheduler with the scheduler's jobs (Asia/Shanghai; one run at a time),
    paused until this process is elected to run them (hotline.ops.leader): start it in every
    process that may, and one of them runs the jobs. `stop_scheduler` stops it."""
    from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = cls(
        timezone=LOCAL_TZ,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
    )
    leadership = Leadership(
        runtime.db, runtime.settings.scheduler_lease_seconds, on_change=lambda leading: _follow(scheduler, leading)
    )
    scheduler.leadership = leadership

    def job(func, trigger: str, id: str, args: list, **when) -> None:
        scheduler.add_job(_led(leadership, func), trigger, id=id, args=args, next_run_time=None, **when)

    job(run_surges, "interval", "surges", [runtime], minutes=5)
    job(run_reports, "interval", "reports", [runtime], minutes=10)
    job(run_statistics, "cron", "statistics", [runtime], hour=3, minute=17)
    job(run_prune, "cron", "prune_deliveries", [runtime], hour=3, minute=37)
    job(run_attachment_retention, "cron", "attachment_retention", [runtime], hour=3, minute=47)
    # Just after midnight, and once on taking the lead (a server down at midnight retires
    # them late, not never).
    job(run_knowledge_expiry, "cron", "knowledge_expiry", [runtime], hour=0, minute=5)
    job(run_delivery, "interval", "delivery", [Deliverer(runtime)], seconds=runtime.settings.delivery_interval_seconds)
    job(run_sweep, "interval", "sweep", [runtime], seconds=runtime.settings.sweep_interval_seconds)
    scheduler.add_job(
        leadership.tick,
        "interval",
        id="leadership",
        seconds=runtime.settings.scheduler_lease_seconds / 3,
        next_run_time=datetime.now(LOCAL_TZ),
    )
    # However the scheduler is stopped, the lead goes with it: on PostgreSQL the lock's session
    # would otherwise stay open until the collector found the scheduler's reference cycle, and
    # no other scheduler on the database could lead until then.
    scheduler.add_listener(lambda event: leadership.resign(), EVENT_SCHEDULER_SHUTDOWN)
    return scheduler


def stop_scheduler(scheduler) -> None:
    """Stop the jobs (waiting for those running), then give up the lead if this process had it."""
    if scheduler.running:
        scheduler.shutdown(wait=True)
    scheduler.leadership.resign()
