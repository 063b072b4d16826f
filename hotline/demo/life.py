"""One demo ticket's life, played event by event.

What happens to a ticket, when and by whom is the demo's choice. What each event leaves
behind is the engine's: the rows the demo keeps while a ticket lives are plain objects
whose attributes are named as the models' columns, and the engine's own functions run on
them: hotline.deadlines.sla for every clock (over the database's working-day calendar),
hotline.workflow.rules and hotline.deadlines.sla for the facts on assignments and the close
reason, hotline.evaluation.ratings for what counts as satisfied, hotline.workflow.texts for
the words of notices and text messages. Which clocks run in which state, which states are
final and where a leader may answer a supervision order, the workflow says.

The scheduler sweeps once a minute, on the minute (`next_sweep`), and takes its steps as
hotline.scheduler does: notices in office hours, a warning skipped once red, the rating
link, then the close.
"""

import random
from bisect import bisect_left, bisect_right, insort
from contextlib import suppress
from dataclasses import make_dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hotline.deadlines import sla
from hotline.deadlines.calendar import WorkCalendar
from hotline.demo.callers import cumulative, pick
from hotline.demo.district import (
    ANSWERS,
    CANCEL_REASONS,
    COMMENTS,
    CONSULT_RESULT,
    DEPARTMENTS,
    DISSATISFIED_CLOSE,
    EXTENSION_REASONS,
    LEAVES,
    MERGE_REASON,
    PRAISE_ANSWER,
    RATING_WEIGHTS,
    RATINGS,
    RECTIFICATION_MEASURES,
    RECTIFICATION_VERIFIED,
    REDISPATCH,
    REHANDLE,
    REJECT_EXTENSION,
    REJECT_REPLY,
    REJECT_RETURN,
    REJECT_SUSPENSION,
    RESULTS,
    RESUME_REASON,
    RETURN_REASONS,
    SUPERVISION_ANSWERS,
    SUSPENSION_REASONS,
    Directory,
)
from hotline.demo.writer import COLUMNS
from hotline.evaluation.ratings import BAD_RATINGS, CITIZEN, RATING_LABELS, new_link_token, satisfied
from hotline.security import token_digest
from hotline.workflow import rules, texts
from hotline.workflow.definition import Workflow
from hotline.workflow.engine import SCHEDULER, Actor

# --- time -----------------------------------------------------------------------------------
# The plot counts in whole epoch seconds; the rows hold aware UTC datetimes, as the models do.
# Asia/Shanghai has kept UTC+8 all year since 1991, so a local day is a fixed slice (used
# only to choose moments; every deadline is the calendar's).

DAY = 86_400
_OFFSET = 8 * 3600
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_ORDINAL = _EPOCH.date().toordinal()
_SECOND = timedelta(seconds=1)
# The scheduler sweeps once a minute, on the minute.
_SWEEP_SECONDS = 60
_SWEEP_EVERY = timedelta(seconds=_SWEEP_SECONDS)


def at(ts: int) -> datetime:
    """The aware UTC time of an epoch second."""
    return datetime.fromtimestamp(ts, UTC)


def seconds(value: datetime) -> int:
    """The epoch second of a time (rounded down)."""
    return (value - _EPOCH) // _SECOND


def day_of(ts: int) -> int:
    """The local (Asia/Shanghai) day of an epoch second, counted from 1970-01-01."""
    return (ts + _OFFSET) // DAY


def midnight(day: int) -> int:
    return day * DAY - _OFFSET


def next_sweep(next_due_at: datetime | None, last: int) -> int | None:
    """When a scheduler sweeping once a minute, on the minute, next acts on a ticket: the
    first sweep at or after its next due time and its last event (epoch seconds; a sweep at
    the very second of an event comes after it)."""
    if next_due_at is None:
        return None
    due = -((_EPOCH - next_due_at) // _SWEEP_EVERY)  # minutes, rounded up
    return max(due, -(-last // _SWEEP_SECONDS)) * _SWEEP_SECONDS


class Days:
    """The working days around the demo's six months, to choose moments in office hours."""

    def __init__(self, cal: WorkCalendar, first: int, last: int, rng: random.Random) -> None:
        self.cal = cal
        self.rng = rng
        self.first = first
        hours = cal.office_hours
        self.open = hours.start.hour * 3600 + hours.start.minute * 60
        self.close = hours.end.hour * 3600 + hours.end.minute * 60
        span = range(first, last + 1)
        self.working = [cal.is_working_day(date.fromordinal(d + EPOCH_ORDINAL)) for d in span]
        self.workdays = [d for d, w in zip(span, self.working, strict=True) if w]
        self.before = [bisect_left(self.workdays, d) for d in span]  # working days before, in the span

    def is_working(self, day: int) -> bool:
        return self.working[day - self.first]

    def index(self, day: int) -> int:
        """Position in `workdays` of the first working day on or after `day`."""
        return self.before[day - self.first]

    def on_workday(self, index: int) -> int:
        """A random moment in office hours of the working day at that position."""
        return midnight(self.workdays[index]) + self.open + self.rng.randrange(self.close - self.open)

    def office(self, ts: int) -> int:
        """When someone at work does what `ts` asks: then, in office hours on a working day, or
        a while after the next opening (a choice of the demo's: the scheduler asks the calendar)."""
        day = day_of(ts)
        if self.working[day - self.first]:
            second = ts - midnight(day)
            if self.open <= second < self.close:
                return ts
            if second < self.open:
                return midnight(day) + self.open + self.rng.randrange(5400)
        return midnight(self.workdays[self.before[day + 1 - self.first]]) + self.open + self.rng.randrange(5400)


_RATING_CUM = cumulative(RATING_WEIGHTS)


# --- the rows a ticket's life leaves ----------------------------------------------------------


def _row_class(name: str, table: str) -> type:
    """A row while its ticket lives: attributes named as the table's columns, None unless given."""
    return make_dataclass(name, [(column, Any, None) for column in COLUMNS[table]], slots=True, kw_only=True)


AssignmentRow = _row_class("AssignmentRow", "assignments")
ApprovalRow = _row_class("ApprovalRow", "approvals")
CallbackRow = _row_class("CallbackRow", "callbacks")
OrderRow = _row_class("OrderRow", "supervision_orders")
MessageRow = _row_class("MessageRow", "messages")
InvitationRow = _row_class("InvitationRow", "rating_invitations")
RectificationRow = _row_class("RectificationRow", "rectifications")


class Cut(Exception):
    """The ticket's life goes on past now (or past its showcase state): it stops here."""


class TicketRow(_row_class("_TicketColumns", "tickets")):
    """A ticket while it lives: the columns the gateway keeps, and the rows it adds."""

    __slots__ = (
        "leaf", "place", "stop_at", "last", "events", "assignments", "approvals", "callbacks", "escalations",
        "orders", "notices", "invitations", "messages", "rectifications", "later", "extension_total", "calls",
        "clock_inputs", "clocks",
    )  # fmt: skip

    def __init__(self, *, leaf: int, place: int, stop_at: str | None, **columns: Any) -> None:
        super().__init__(**columns)
        self.leaf, self.place, self.stop_at = leaf, place, stop_at
        self.state, self.version, self.updated_at = "registered", 1, self.created_at
        self.last = seconds(self.created_at)
        self.dispatch_count = self.rehandle_count = self.escalation_step = 0
        self.extension_days = self.extension_total = 0
        self.suspended_seconds = 0.0
        self.designated = self.deadlines_provisional = False
        self.events: list[tuple] = []  # (event, actor, from state, to state, at, details)
        self.assignments: list = []
        self.approvals: list = []
        self.callbacks: list = []
        self.escalations: dict[tuple, tuple] = {}  # (kind, deadline, step) -> (department id, at)
        self.orders: list = []
        self.notices: list[tuple] = []  # (department id, role, kind, title, body, at)
        self.invitations: list = []
        self.messages: list = []
        self.rectifications: list = []
        self.calls: list = []  # the calls it was logged from (hotline.demo.calls)
        # What sla.recompute last counted the deadlines from, and the deadlines (Life._clocks).
        self.clock_inputs: tuple | None = None
        self.clocks: tuple = ()
        # What people do beside the ticket's course, in time order: (at, seq, what, row).
        self.later: list[tuple[int, int, str, Any]] = []

    def active(self, role: str) -> Any:
        for a in self.assignments:
            if a.role == role and a.status != "withdrawn":
                return a
        return None

    def pending(self, kind: str) -> Any:
        for p in self.approvals:
            if p.kind == kind and p.status == "pending":
                return p
        return None

    def open_invitation(self) -> Any:
        for i in self.invitations:
            if i.used_at is None and i.revoked_at is None:
                return i
        return None

    def last_reached(self) -> Any:
        """The round's last callback that reached the citizen (rules._last_reached_callback)."""
        for c in reversed(self.callbacks):
            if c.reached and rules.in_round(self, c):
                return c
        return None

    def unreached(self) -> int:
        """The round's callbacks that did not reach the citizen."""
        return sum(1 for c in self.callbacks if not c.reached and rules.in_round(self, c))


class Master:
    """A ticket a later duplicate may be merged into: what the duplicate copies, and its states."""

    __slots__ = ("id", "number", "closed", "request", "states", "moves", "ticket")

    def __init__(self, tk: TicketRow, request: tuple, closed: int | None) -> None:
        self.id, self.number, self.closed, self.request, self.ticket = tk.id, tk.number, closed, request, tk
        self.moves = [e[4] for e in tk.events]
        self.states = [e[3] for e in tk.events]

    def state_at(self, when: datetime) -> str:
        """The state after its events up to `when`."""
        return self.states[bisect_right(self.moves, when) - 1]


class Life:
    """Plays tickets' lives event by event, as the gateway and the scheduler record them."""

    def __init__(
        self,
        rng: random.Random,
        wf: Workflow,
        cal: WorkCalendar,
        days: Days,
        d: Directory,
        now: int,
        settings,
        district_name: str,
        link_key: bytes,
        merged_in,
    ) -> None:
        self.rng = rng
        self.wf = wf
        self.limits = wf.limits
        self.cal = cal
        self.days = days
        self.d = d
        self.now = now
        self.merged_in = merged_in  # (master, history row): a merge's row on its master, already played
        self.ids = dict.fromkeys(
            ("assignments", "approvals", "callbacks", "supervision_orders", "rating_invitations", "messages",
             "rectifications", "calls"), 0
        )  # fmt: skip
        self.link_key = link_key
        self.public_url = settings.public_url.rstrip("/")
        self.signature = texts.sms_signature(district_name, settings.phone)
        self.seq = 0
        self.final = frozenset(name for name, state in wf.states.items() if state.final)
        self.answerable = frozenset(wf.events["answer_supervision"].sources)

    def new_id(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]

    # -- who ------------------------------------------------------------------------------

    def agent(self) -> Actor:
        return self.rng.choice(self.d.agents)

    def supervisor(self) -> Actor:
        return self.rng.choice(self.d.supervisors)

    def centre(self, supervisor_share: float = 0.2) -> Actor:
        return self.supervisor() if self.rng.random() < supervisor_share else self.agent()

    def staff(self, dept_id: int) -> Actor:
        """Someone of the department: mostly its handler, sometimes its leader."""
        return self.d.leaders[dept_id] if self.rng.random() < 0.1 else self.d.handlers[dept_id]

    # -- recording, as the gateway does ------------------------------------------------------

    def _at(self, tk: TicketRow, t: int) -> tuple[int, datetime]:
        """The time of the next event: after the last one and what came between, before now."""
        if t <= tk.last:
            t = tk.last + self.rng.randint(30, 600)
        self._background(tk, min(t, self.now))
        if t >= self.now or tk.state in self.final:  # past now, or the scheduler closed the ticket
            raise Cut
        return t, at(t)

    def _done(self, tk: TicketRow, event: str, t: int, actor: Actor, to_state: str, details: dict) -> None:
        """What the gateway does after an event's effects: clocks, version, history."""
        from_state = tk.state
        tk.state = to_state
        self._clocks(tk)
        tk.version += 1
        tk.last = t
        tk.updated_at = when = at(t)
        tk.events.append((event, actor, from_state, to_state, when, details))
        if to_state == tk.stop_at and from_state != to_state:
            self._background(tk, self.now)
            raise Cut

    def _clocks(self, tk: TicketRow) -> None:
        """sla.recompute, as the gateway runs it after every event. Its first part, the sign-by,
        handle-by and callback-by, is counted from the ticket's type, urgency, dispatch,
        handling start, extensions, time suspended and callback start alone: while those stay
        as they were, the deadlines are the ones it counted last, and only the watch
        (sla.refresh_watch: the running deadline, its yellow time, the next step) is redone.
        Most events leave them (a call back, a sign, a reply, a ladder step)."""
        inputs = (tk.type, tk.urgency, tk.dispatched_at, tk.handle_started_at, tk.extension_days,
                  tk.suspended_seconds, tk.callback_started_at)  # fmt: skip
        if inputs == tk.clock_inputs:
            tk.sign_by, tk.handle_by, tk.callback_by, tk.deadlines_provisional = tk.clocks
            sla.refresh_watch(self.cal, self.wf, tk)
            return
        sla.recompute(self.cal, self.wf, tk)
        tk.clock_inputs = inputs
        tk.clocks = (tk.sign_by, tk.handle_by, tk.callback_by, tk.deadlines_provisional)

    def _later(self, tk: TicketRow, t: int, what: str, row: Any) -> None:
        self.seq += 1
        insort(tk.later, (t, self.seq, what, row))

    def _notice(self, tk: TicketRow, kind: str, notices: list[texts.Notice], when: datetime) -> None:
        for role, department_id, title, body in notices:
            tk.notices.append((department_id, role, kind, title, body, when))

    # -- the scheduler, and what people do beside the ticket's course -----------------------

    def _background(self, tk: TicketRow, limit: int) -> None:
        """Sweeps of the scheduler, and people's work beside the course, before `limit`."""
        while True:
            sweep = next_sweep(tk.next_due_at, tk.last)
            if tk.later and (sweep is None or tk.later[0][0] < sweep):
                t = max(tk.later[0][0], tk.last + 1)
                if t >= limit:
                    return
                _, _, what, row = tk.later.pop(0)
                if what == "answer":
                    self._answer_order(tk, t, row)
                elif what == "report":
                    self._report_rectification(tk, t, row)
                else:
                    self._accept_rectification(tk, t, row)
                continue
            if sweep is None or sweep >= limit:
                return
            self._sweep(tk, sweep)

    def _sweep(self, tk: TicketRow, t: int) -> None:
        """scheduler._escalate on one ticket at a sweep: every ladder step due, once."""
        now = at(t)
        if tk.due_kind == "callback":
            self._evaluate(tk, t, now)
            return
        office = self.cal.next_office_time(now)
        if office > now:
            tk.next_due_at = office  # notices go out in office hours
            return
        ladder = sla.LADDER
        while tk.next_due_at is not None and tk.next_due_at <= now and tk.escalation_step < len(ladder):
            step = ladder[tk.escalation_step]
            waiting = step == "supervise" and next((o for o in tk.orders if o.status == "open"), None)
            if sla.is_noise(step, tk, now) or waiting:
                # scheduler._pass_over: the ladder moves past it, in the history (a second
                # order is refused while one waits: the guard no_open_supervision_order).
                why = rules.order_awaits_answer_zh(waiting.issued_at) if waiting else sla.NOISE
                details = {"auto": True, "step": step, "deadline": tk.due_kind, "reason": why}
                tk.escalation_step += 1
                self._done(tk, "escalation_skipped", t, SCHEDULER, tk.state, details)
                continue
            tk.escalation_step += 1  # rules._record_step
            self._ladder_step(tk, step, t, now)

    def _ladder_step(self, tk: TicketRow, step: str, t: int, now: datetime) -> None:
        """The warn, urge, supervise or report effect, fired by the scheduler."""
        kind, deadline, department_id = tk.due_kind, tk.due_at, tk.main_department_id
        tk.escalations.setdefault((kind, deadline, step), (department_id, now))
        details: dict[str, Any] = {"auto": True, "step": step, "deadline": kind, "deadline_at": deadline.isoformat()}
        message = None
        if step == "supervise":
            message = texts.supervision_message(tk, now)
            order = OrderRow(
                id=self.new_id("supervision_orders"), ticket_id=tk.id, department_id=department_id,
                issued_at=now, message=message, status="open",
            )  # fmt: skip
            tk.orders.append(order)
            details["supervision_order"] = order.id
            if tk.stop_at is None and self.rng.random() < 0.7:
                self._later(tk, self.days.office(t + self.rng.randint(3600, 8 * 3600)), "answer", order)
        self._notice(tk, step, texts.ladder_notices(step, tk, message), now)
        self._done(tk, step, t, SCHEDULER, tk.state, details)

    def _evaluate(self, tk: TicketRow, t: int, now: datetime) -> None:
        """scheduler._evaluate: the rating link (in office hours), or the close once the
        attempts ran out or the window passed."""
        if sla.wants_invitation(tk) and tk.callbacks_exhausted_at is None:
            office = self.cal.next_office_time(now)
            if office > now:
                tk.next_due_at = office
                return
            if tk.last_reached() is None:  # the guard can_invite
                self._invite(tk, t, now)
            else:
                # Nothing to send to: the link is given up, the rating window still runs.
                tk.invitation_sent_at = now
                details = {"auto": True, "step": "invite", "reason": rules.ALREADY_RATED_ZH}
                self._done(tk, "invite_skipped", t, SCHEDULER, tk.state, details)
            return
        if self._close_reason(tk, now, SCHEDULER, None) is None:
            tk.next_due_at = None  # a dissatisfied callback waits for a person
            return
        self._close(tk, t, now, SCHEDULER, None, {"auto": True})

    def _invite(self, tk: TicketRow, t: int, now: datetime) -> None:
        """ratings.send_invitation: a one-use rating link, by text message (kept, never sent)."""
        for old in tk.invitations:
            if old.used_at is None and old.revoked_at is None:
                old.revoked_at = now
        expires = sla.due(self.cal, now, self.limits.rating_link).at
        token = new_link_token(self.link_key)
        url = f"{self.public_url}/rate/{token}"
        message = MessageRow(
            id=self.new_id("messages"), channel="stored", to=tk.caller_phone, ticket_id=tk.id, created_at=now,
            status="stored", body=texts.rating_sms(self.signature, tk.number, url, expires),
        )  # fmt: skip
        tk.messages.append(message)
        invitation = InvitationRow(
            id=self.new_id("rating_invitations"), ticket_id=tk.id, token_hash=token_digest(token), created_at=now,
            expires_at=expires, message_id=message.id,
        )  # fmt: skip
        tk.invitations.append(invitation)
        tk.invitation_sent_at = now
        details = {"auto": True, "invitation": invitation.id, "expires_at": expires.isoformat()}
        self._done(tk, "invite", t, SCHEDULER, tk.state, details)

    def _report_rectification(self, tk: TicketRow, t: int, rect: Any) -> None:
        """rectifications.report_rectification: the department reports (差评整改)."""
        actor = self.d.handlers[rect.department_id]
        measures = self.rng.choice(RECTIFICATION_MEASURES)
        rect.verification, rect.measures = RECTIFICATION_VERIFIED, measures
        rect.status, rect.reported_at, rect.reported_by_id = "reported", at(t), actor.id
        rect.next_due_at = None
        details = {"rectification": rect.id, "measures": measures}
        self._done(tk, "rectification_report", t, actor, tk.state, details)  # engine.changing
        self._later(tk, self.days.office(t + self.rng.randint(2 * 3600, 30 * 3600)), "accept", rect)

    def _accept_rectification(self, tk: TicketRow, t: int, rect: Any) -> None:
        """rectifications.decide_rectification: a supervisor accepts the report."""
        actor = self.supervisor()
        rect.decided_at, rect.decided_by_id, rect.decision_reason = at(t), actor.id, None
        rect.status = "accepted"
        details = {"rectification": rect.id, "reason": None}
        self._done(tk, "rectification_accept", t, actor, tk.state, details)  # engine.changing

    def _answer_order(self, tk: TicketRow, t: int, order: Any) -> None:
        """The leader answers a supervision order, while the department still has the ticket."""
        if tk.state not in self.answerable or order.department_id != tk.main_department_id:
            return
        if order.status != "open":
            return
        actor = self.d.leaders[order.department_id]
        text = self.rng.choice(SUPERVISION_ANSWERS)
        order.status, order.answered_at, order.answered_by_id, order.answer = "answered", at(t), actor.id, text
        self._done(tk, "answer_supervision", t, actor, tk.state, {"order": order.id, "answer": text})

    # -- events (each runs what its effects in hotline.workflow.rules do) ---------------------

    def dispatch(
        self,
        tk: TicketRow,
        t: int,
        actor: Actor,
        code: str,
        routed_by: str,
        co: str | None = None,
        redispatch_reason: str | None = None,
    ) -> None:
        t, now = self._at(tk, t)
        details: dict[str, Any] = {}
        event = "dispatch"
        if redispatch_reason is not None:
            event = "redispatch"
            details = {"department": code, "reason": redispatch_reason}
            details["approval_id"] = self._decide(tk, "return", "approved", now, actor, redispatch_reason)
            self._decided(tk, "return", True, redispatch_reason, now)
        for a in tk.assignments:
            if a.status != "withdrawn":
                a.status = "withdrawn"
        dept_id, name, _ = self.d.departments[code]
        sign_by, handle_by = sla.dispatch_deadlines(self.cal, self.wf, tk, now)
        tk.assignments.append(
            AssignmentRow(
                id=self.new_id("assignments"), ticket_id=tk.id, department_id=dept_id, role="main",
                status="dispatched", dispatched_at=now, sign_by=sign_by, handle_by=handle_by, returned=False,
                rehandles=0,
            )
        )  # fmt: skip
        if co:
            tk.assignments.append(
                AssignmentRow(
                    id=self.new_id("assignments"), ticket_id=tk.id, department_id=self.d.departments[co][0],
                    role="co", status="dispatched", dispatched_at=now, returned=False, rehandles=0,
                )
            )  # fmt: skip
        tk.main_department_id = dept_id
        tk.dispatch_count += 1
        tk.designated = tk.dispatch_count >= self.limits.designate_after_dispatches
        tk.dispatched_at = now
        tk.signed_at = tk.replied_at = tk.return_from_state = None
        tk.handle_started_at, tk.extension_days, tk.suspended_seconds = now, 0, 0.0
        co_ids = [self.d.departments[co][0]] if co else []
        self._notice(tk, "dispatch", texts.dispatch_notices(tk, name, co_ids, sign_by), now)
        details.update({
            "department": code, "department_name": name, "routed_by": routed_by,
            "co_departments": [co] if co else [], "dispatch_no": tk.dispatch_count, "designated": tk.designated,
        })  # fmt: skip
        self._done(tk, event, t, actor, "dispatched", details)

    def sign(self, tk: TicketRow, t: int, co: bool = False) -> None:
        a = tk.active("co" if co else "main")
        actor = self.staff(a.department_id)
        t, now = self._at(tk, t)
        a.status, a.signed_at, a.signed_by_id = "signed", now, actor.id
        if co:
            self._done(tk, "sign", t, actor, tk.state, {"department_id": a.department_id, "as_co_handler": True})
            return
        tk.signed_at = now
        a.signed_on_time = sla.on_time(a.sign_by, now)
        self._done(tk, "sign", t, actor, "in_progress", {"department_id": a.department_id})

    def return_(self, tk: TicketRow, t: int, reason: tuple[str, str, str | None]) -> None:
        actor = self.staff(tk.main_department_id)
        t, now = self._at(tk, t)
        code, text, basis = reason
        tk.return_from_state = tk.state
        tk.active("main").returned = True
        self._open(tk, "return", now, actor, text, code=code, basis=basis)
        details = {"reason": text, "reason_code": code}
        if basis:
            details["basis"] = basis
        self._done(tk, "return", t, actor, "returned", details)

    def reject_return(self, tk: TicketRow, t: int) -> None:
        actor = self.supervisor()
        t, now = self._at(tk, t)
        approval_id = self._decide(tk, "return", "rejected", now, actor, REJECT_RETURN)
        back, tk.return_from_state = tk.return_from_state, None
        self._decided(tk, "return", False, REJECT_RETURN, now)
        self._done(tk, "reject_return", t, actor, back, {"reason": REJECT_RETURN, "approval_id": approval_id})

    def request_extension(self, tk: TicketRow, t: int, days: int, reason: str) -> None:
        actor = self.staff(tk.main_department_id)
        t, now = self._at(tk, t)
        self._open(tk, "extension", now, actor, reason, days=days)
        self._done(tk, "request_extension", t, actor, tk.state, {"days": days, "reason": reason})

    def decide_extension(self, tk: TicketRow, t: int, approve: bool) -> None:
        actor = self.supervisor()
        t, now = self._at(tk, t)
        if not approve:
            approval_id = self._decide(tk, "extension", "rejected", now, actor, REJECT_EXTENSION)
            self._decided(tk, "extension", False, REJECT_EXTENSION, now)
            details = {"reason": REJECT_EXTENSION, "approval_id": approval_id}
            self._done(tk, "reject_extension", t, actor, tk.state, details)
            return
        days = tk.pending("extension").days
        approval_id = self._decide(tk, "extension", "approved", now, actor, None)
        tk.extension_days += days
        tk.extension_total += days
        self._sync_main_handle_by(tk)
        details = {"approval_id": approval_id, "days": days, "handle_by_before": _iso(tk.handle_by)}
        self._decided(tk, "extension", True, None, now, days)
        self._done(tk, "approve_extension", t, actor, tk.state, details)

    def request_suspension(self, tk: TicketRow, t: int, reason: str) -> None:
        actor = self.staff(tk.main_department_id)
        t, now = self._at(tk, t)
        self._open(tk, "suspension", now, actor, reason)
        self._done(tk, "request_suspension", t, actor, tk.state, {"reason": reason})

    def decide_suspension(self, tk: TicketRow, t: int, approve: bool) -> None:
        actor = self.supervisor()
        t, now = self._at(tk, t)
        if not approve:
            approval_id = self._decide(tk, "suspension", "rejected", now, actor, REJECT_SUSPENSION)
            self._decided(tk, "suspension", False, REJECT_SUSPENSION, now)
            details = {"reason": REJECT_SUSPENSION, "approval_id": approval_id}
            self._done(tk, "reject_suspension", t, actor, tk.state, details)
            return
        approval_id = self._decide(tk, "suspension", "approved", now, actor, None)
        tk.suspended_at = now
        self._decided(tk, "suspension", True, None, now)
        self._done(tk, "approve_suspension", t, actor, "suspended", {"approval_id": approval_id})

    def resume(self, tk: TicketRow, t: int) -> None:
        actor = self.supervisor() if self.rng.random() < 0.3 else self.staff(tk.main_department_id)
        t, now = self._at(tk, t)
        paused = sla.elapsed(self.cal, sla.handle_limit(self.wf, tk), tk.suspended_at, now)
        tk.suspended_seconds = (tk.suspended_seconds or 0) + max(paused, 0)
        tk.suspended_at = None
        self._sync_main_handle_by(tk)
        self._done(tk, "resume", t, actor, "in_progress", {"reason": RESUME_REASON, "suspended_seconds": paused})

    def _sync_main_handle_by(self, tk: TicketRow) -> None:
        """rules._sync_main_handle_by: the handle-by on-time completion is judged by."""
        main = tk.active("main")
        if main is not None and main.first_replied_at is None:
            handle = sla.compute_handle_by(self.cal, self.wf, tk)
            if handle is not None:
                main.handle_by = handle.at

    def reply(self, tk: TicketRow, t: int, result: str, co: bool = False) -> None:
        a = tk.active("co" if co else "main")
        actor = self.staff(a.department_id)
        t, now = self._at(tk, t)
        a.status, a.replied_at, a.replied_by_id, a.result = "replied", now, actor.id, result
        if a.role == "main" and a.first_replied_at is None:
            a.first_replied_at = now
            a.replied_on_time = sla.on_time(a.handle_by, now)
        if co:
            self._done(tk, "reply", t, actor, tk.state, {"result": result, "as_co_handler": True})
            return
        tk.result, tk.replied_at = result, now
        self._done(tk, "reply", t, actor, "replied", {"result": result})

    def approve_reply(self, tk: TicketRow, t: int) -> None:
        actor = self.supervisor()
        t, now = self._at(tk, t)
        tk.callback_started_at = now
        self._done(tk, "approve_reply", t, actor, "pending_callback", {})

    def reject_reply(self, tk: TicketRow, t: int) -> None:
        actor = self.supervisor()
        t, now = self._at(tk, t)
        self._reopen_main(tk, REJECT_REPLY, now)
        self._done(tk, "reject_reply", t, actor, "in_progress", {"reason": REJECT_REPLY})

    def answer(self, tk: TicketRow, t: int, text: str) -> None:
        actor = self.agent()
        t, now = self._at(tk, t)
        tk.answer, tk.replied_at, tk.callback_started_at = text, now, now
        self._done(tk, "answer", t, actor, "pending_callback", {"answer": text})

    def callback(self, tk: TicketRow, t: int, actor: Actor, rating: int | None, solved: bool | None) -> None:
        t, now = self._at(tk, t)
        reached = rating is not None
        comment = COMMENTS[rating] if reached and self.rng.random() < 0.6 else None
        citizen = actor.role == "citizen"
        callback = CallbackRow(
            id=self.new_id("callbacks"), ticket_id=tk.id, attempt=len(tk.callbacks) + 1, reached=reached,
            solved=solved, rating=rating, comment=comment, source="link" if citizen else "agent", by_id=actor.id,
            at=now, department_id=tk.main_department_id,
        )  # fmt: skip
        tk.callbacks.append(callback)
        details: dict[str, Any] = {"reached": reached}
        if reached:
            details.update({"solved": solved, "rating": rating})
        if comment:
            details["comment"] = comment
        details["attempt"] = callback.attempt
        if not reached:
            if tk.unreached() >= self.limits.callback_attempts:
                tk.callbacks_exhausted_at = now  # the scheduler closes it as not called back
        else:
            invitation = tk.open_invitation()
            if invitation is not None:
                # The citizen's rating uses the link; an agent's reaching the citizen retires it.
                if citizen:
                    invitation.used_at = now
                else:
                    invitation.revoked_at = now
            self._rated(tk, now, callback)
        self._done(tk, "callback", t, actor, tk.state, details)

    def _rated(self, tk: TicketRow, now: datetime, callback: Any) -> None:
        """ratings.record_rating: a bad rating opens a rectification (差评整改); a citizen's
        dissatisfied rating goes to a supervisor."""
        if callback.rating in BAD_RATINGS and callback.department_id is not None:
            due = sla.due(self.cal, now, self.limits.rectification)
            rect = RectificationRow(
                id=self.new_id("rectifications"), ticket_id=tk.id, callback_id=callback.id,
                department_id=callback.department_id, status="open", opened_at=now, due_at=due.at,
                provisional=due.provisional, next_due_at=due.at,
            )  # fmt: skip
            tk.rectifications.append(rect)
            title, body = texts.rectification_notice(tk.number, RATING_LABELS[callback.rating], due.at)
            self._notice(
                tk, "rectification", [(role, rect.department_id, title, body) for role in ("handler", "leader")], now
            )
            t = seconds(now)
            report = self.days.on_workday(self.days.index(day_of(t) + 1) + self.rng.randint(0, 8))
            self._later(tk, report, "report", rect)
        if callback.source == "link" and not satisfied(self.limits, callback):
            title, body = texts.rating_review_notice(tk.number)
            self._notice(tk, "rating_review", [("supervisor", None, title, body)], now)

    def _close_reason(self, tk: TicketRow, now: datetime, actor: Actor, reason: str | None) -> str | None:
        last = tk.last_reached()
        unreached = tk.unreached() if last is None else 0
        return rules.close_reason(self.limits, tk, last, unreached, actor.role, bool(reason), now)

    def close(self, tk: TicketRow, t: int, actor: Actor, reason: str | None = None) -> None:
        t, now = self._at(tk, t)
        self._close(tk, t, now, actor, reason, {"reason": reason} if reason else {})

    def _close(self, tk: TicketRow, t: int, now: datetime, actor: Actor, reason: str | None, details: dict) -> None:
        close_reason = self._close_reason(tk, now, actor, reason)
        if close_reason is None:
            raise AssertionError(f"demo ticket {tk.number} closed without a reason the workflow accepts")
        tk.closed_at, tk.close_reason = now, close_reason
        details["close_reason"] = close_reason
        self._lapse_orders(tk, details)
        self._done(tk, "close", t, actor, "archived", details)

    @staticmethod
    def _lapse_orders(tk: TicketRow, details: dict) -> None:
        """rules._lapse_supervision_orders: a finished ticket's unanswered orders lapse."""
        lapsed = [order for order in tk.orders if order.status == "open"]
        for order in lapsed:
            order.status = "lapsed"
        if lapsed:
            details["lapsed_orders"] = [order.id for order in lapsed]

    def rehandle(self, tk: TicketRow, t: int, actor: Actor) -> None:
        t, now = self._at(tk, t)
        tk.rehandle_count += 1
        self._reopen_main(tk, REHANDLE, now)
        main = tk.active("main")
        if main is not None:
            main.rehandles += 1
        # A fresh handling deadline from now; the callback clock, the rating link and the
        # callback attempts start again after the next reply (rules.rehandle).
        tk.handle_started_at, tk.extension_days, tk.suspended_seconds = now, 0, 0.0
        tk.callback_started_at = tk.callback_by = None
        tk.invitation_sent_at = tk.callbacks_exhausted_at = None
        self._done(tk, "rehandle", t, actor, "in_progress", {"reason": REHANDLE, "rehandle_no": tk.rehandle_count})

    def merge(self, tk: TicketRow, t: int, master: Master) -> None:
        actor = self.agent() if tk.state == "registered" else self.centre(0.5)
        t, now = self._at(tk, t)
        tk.master_id = master.id
        tk.closed_at, tk.close_reason = now, "merged"
        for a in tk.assignments:
            if a.status != "withdrawn":
                a.status = "withdrawn"
        details = {"master": master.id, "reason": MERGE_REASON, "master_number": master.number}
        self._lapse_orders(tk, details)
        # The master's history, version and updated_at (engine.changing); it was played to now,
        # and a merge in changes none of the times its own clocks fall due.
        state = master.state_at(now)
        master.ticket.version += 1
        master.ticket.updated_at = max(master.ticket.updated_at, now)
        self.merged_in(
            master.ticket,
            ("merge_in", actor, state, state, now, {"merged_ticket": tk.id, "merged_number": tk.number}),
        )
        self._done(tk, "merge", t, actor, "merged", details)

    def cancel(self, tk: TicketRow, t: int) -> None:
        actor = self.centre()
        t, now = self._at(tk, t)
        reason = self.rng.choice(CANCEL_REASONS)
        tk.closed_at, tk.close_reason = now, "cancelled"
        self._done(tk, "cancel", t, actor, "cancelled", {"reason": reason, "close_reason": "cancelled"})

    def _reopen_main(self, tk: TicketRow, reason: str, now: datetime) -> None:
        """rules.reopen_main_assignment: the reply goes back to the main department."""
        main = tk.active("main")
        if main is not None:
            main.status, main.replied_at = "signed", None
        tk.replied_at = None
        if tk.main_department_id is not None:
            title, body = texts.reply_rejected_notice(tk.number, reason)
            self._notice(tk, "reply_rejected", [(None, tk.main_department_id, title, body)], now)

    def _decided(self, tk: TicketRow, kind: str, approved: bool, reason: str | None, now: datetime,
                 days: int | None = None) -> None:  # fmt: skip
        """rules._notify_decision: the department that asked is told what the centre decided."""
        approval = next(p for p in reversed(tk.approvals) if p.kind == kind)
        if approval.department_id is not None:
            title, body = texts.decision_notice(tk.number, kind, approved, reason, days)
            self._notice(tk, kind, [(None, approval.department_id, title, body)], now)

    def _open(self, tk: TicketRow, kind: str, now: datetime, actor: Actor, reason: str, *, code: str | None = None,
              basis: str | None = None, days: int | None = None) -> None:  # fmt: skip
        """rules.open_return and rules.open_approval."""
        tk.approvals.append(
            ApprovalRow(
                id=self.new_id("approvals"), ticket_id=tk.id, kind=kind, status="pending",
                department_id=actor.department_id, requested_by_id=actor.id, requested_at=now, reason=reason,
                reason_code=code, basis=basis, days=days, from_state=tk.state,
            )
        )  # fmt: skip

    def _decide(self, tk: TicketRow, kind: str, status: str, now: datetime, actor: Actor, reason: str | None):
        """rules._decide: the pending request of the kind, approved or rejected."""
        approval = tk.pending(kind)
        if approval is None:
            return None
        approval.status, approval.decided_at, approval.decided_by_id = status, now, actor.id
        approval.decision_reason = reason
        return approval.id

    # -- the plot -------------------------------------------------------------------------

    def live(self, tk: TicketRow, path: str, merge_stage: str | None, master: Master | None) -> None:
        """Play the ticket's life until it ends, reaches its showcase state, or reaches now."""
        with suppress(Cut):
            self._plot(tk, path, merge_stage, master)
        with suppress(Cut):
            self._background(tk, self.now)  # what the scheduler and others did since, up to now

    def _plot(self, tk: TicketRow, path: str, merge_stage: str | None, master: Master | None) -> None:
        rng, days = self.rng, self.days
        if tk.stop_at == "registered":
            return
        t = tk.last
        if path == "cancel":
            self.cancel(tk, t + rng.randint(300, 4 * 3600))
            return
        if path == "answer":
            self.answer(tk, t + rng.randint(60, 900), self._answer_text(tk))
            self._callbacks(tk)
            return
        if merge_stage == "registered":
            self.merge(tk, t + rng.randint(600, 4 * 3600), master)
            return
        if tk.urgency != "normal":
            t += rng.randint(60, 600)
        elif rng.random() < 0.7:
            t += rng.randint(120, 2400)
        else:
            t = days.office(t + 600)
        code, routed_by = self.d.routes[tk.leaf][tk.place]
        co = self._co_department(tk, code) if rng.random() < 0.06 else None
        self.dispatch(tk, t, self.centre(0.15), code, routed_by, co)
        if merge_stage == "dispatched" and self._merge_if_open(tk, tk.last + rng.randint(1200, 6 * 3600), master):
            return
        self._returns(tk)
        if tk.state == "dispatched":
            self.sign(tk, self._sign_time(tk))
        if merge_stage == "in_progress" and self._merge_if_open(tk, tk.last + rng.randint(1200, 6 * 3600), master):
            return
        self._handle(tk)
        self._callbacks(tk)

    def _merge_if_open(self, tk: TicketRow, t: int, master: Master) -> bool:
        """Merge into the master if it is still open then (the guard valid_master)."""
        if master.closed is not None and t >= master.closed:
            return False
        self.merge(tk, t, master)
        return True

    def _between(self, lo: int, hi: int, low: float, high: float) -> int:
        """A moment part-way from lo to hi, moved into office hours when that still fits."""
        t = lo + int((hi - lo) * self.rng.uniform(low, high))
        moved = self.days.office(t)
        return moved if moved < hi else t

    def _returns(self, tk: TicketRow) -> None:
        """Returns (退单) within the return window; the centre rejects them or redispatches."""
        rng, days = self.rng, self.days
        showcase = tk.stop_at is not None
        for n in range(2):
            wanted = tk.stop_at == "returned" and n == 0
            if tk.designated or not wanted and (showcase or rng.random() >= (0.07 if n == 0 else 0.15)):
                return
            window_end = seconds(sla.due(self.cal, tk.dispatched_at, self.limits.return_window).at)
            if not showcase and tk.state == "dispatched" and rng.random() < 0.3:
                self.sign(tk, days.office(tk.last + rng.randint(600, 3 * 3600)))
            t = days.office(tk.last + rng.randint(900, 4 * 3600))
            if t > window_end:
                return
            self.return_(tk, t, rng.choice(RETURN_REASONS))
            t = days.office(tk.last + rng.randint(1800, 6 * 3600))
            if rng.random() < 0.3:
                self.reject_return(tk, t)
                return
            new = self._redispatch_target(tk)
            text = REDISPATCH.format(dept=self.d.departments[new][2])
            self.dispatch(tk, t, self.supervisor(), new, "given", redispatch_reason=text)

    def _sign_time(self, tk: TicketRow) -> int:
        rng = self.rng
        if sla.is_natural(self.limits.sign.pick(tk.type, tk.urgency)):  # urgent: minutes, natural time
            return tk.last + rng.randint(180, 1500)
        if tk.stop_at is None and rng.random() < 0.06:  # signed late
            return self.days.on_workday(self.days.index(day_of(seconds(tk.sign_by)) + 1) + rng.randint(0, 2))
        return self.days.office(tk.last + 300 + int(rng.expovariate(1 / 5400)))

    def _handle(self, tk: TicketRow) -> None:
        """From signing (or rehandling) to the approved reply."""
        rng, days = self.rng, self.days
        showcase = tk.stop_at is not None
        natural = sla.is_natural(sla.handle_limit(self.wf, tk))
        t0 = tk.last
        handle_by = seconds(tk.handle_by)
        late = not showcase and rng.random() < 0.08
        if showcase:
            reply_at = days.office(t0 + rng.randint(2 * 3600, 20 * 3600))
        elif natural:
            reply_at = (
                max(handle_by, t0) + rng.randint(3600, 30 * 3600) if late else t0 + rng.randint(2 * 3600, 20 * 3600)
            )
        else:
            first, deadline = days.index(day_of(t0)), days.index(day_of(handle_by))
            if late:
                index = deadline + rng.randint(1, 4)
            elif rng.random() < 0.004:  # stuck for weeks
                index = deadline + rng.randint(10, 40)
            else:
                index = first + int((deadline - first + 1) * rng.random() ** 1.6)
            reply_at = days.on_workday(max(index, first))
        if reply_at < t0 + 1200:
            reply_at = t0 + rng.randint(1200, 4 * 3600)

        cap = self.limits.extension_cap_working_days
        if not natural and not showcase and rng.random() < 0.05 and tk.extension_total < cap:
            limit = min(handle_by, reply_at)
            if limit - tk.last > 4 * 3600:
                asked = min(rng.choice((3, 5, 5, 7, 10)), cap - tk.extension_total)
                reason = rng.choice(EXTENSION_REASONS)
                self.request_extension(tk, self._between(tk.last, limit, 0.3, 0.8), asked, reason)
                self.decide_extension(tk, self._between(tk.last, reply_at, 0.05, 0.3), rng.random() < 0.8)

        if tk.stop_at == "suspended" or not showcase and rng.random() < 0.02:
            reason = rng.choice(SUSPENSION_REASONS)
            if showcase:
                self.request_suspension(tk, days.office(tk.last + rng.randint(1800, 3 * 3600)), reason)
                self.decide_suspension(tk, days.office(tk.last + rng.randint(3600, 4 * 3600)), True)
            else:
                self.request_suspension(tk, self._between(tk.last, reply_at, 0.1, 0.4), reason)
                approve = rng.random() < 0.85
                self.decide_suspension(tk, self._between(tk.last, reply_at, 0.1, 0.3), approve)
                if approve:
                    remaining = max(reply_at - tk.last, 1800)
                    self.resume(tk, days.office(tk.last + rng.randint(3, 25) * DAY))
                    reply_at = tk.last + remaining

        co = tk.active("co")
        if co is not None and co.status != "replied":
            if co.status == "dispatched":
                self.sign(tk, self._between(tk.last, reply_at, 0.05, 0.3), co=True)
            result = self._result_text(tk, co.department_id)
            self.reply(tk, self._between(tk.last, reply_at, 0.2, 0.8), result, co=True)
        self.reply(tk, reply_at, self._result_text(tk, tk.main_department_id))

        t = days.office(tk.last + rng.randint(1800, 20 * 3600))
        if not showcase and rng.random() < 0.08:
            self.reject_reply(tk, t)
            self.reply(tk, days.office(tk.last + rng.randint(2 * 3600, 2 * DAY)), "补充答复：" + tk.result)
            t = days.office(tk.last + rng.randint(1800, 20 * 3600))
        self.approve_reply(tk, t)

    def _callbacks(self, tk: TicketRow) -> None:
        """Callbacks (回访) until the ticket closes or goes back for rehandling; the scheduler
        sends the rating link, and closes the ticket when nobody reached the citizen."""
        rng, days = self.rng, self.days
        if not tk.reply_wanted:
            self.close(tk, days.office(tk.last + rng.randint(600, 4 * 3600)), self.agent())
            return
        while True:
            last = tk.last_reached()
            if last is None and rng.random() < 0.05:
                return  # nobody calls back: the scheduler closes it when the window has passed
            invitation = tk.open_invitation()
            citizen = invitation is not None and rng.random() < 0.12
            if citizen:
                t = max(tk.last, seconds(invitation.created_at)) + rng.randint(600, DAY)
                citizen = t <= seconds(invitation.expires_at)
            if citizen:
                actor, reached = CITIZEN, True
            else:
                actor, reached = self.agent(), rng.random() < 0.8
                t = days.office(tk.last + rng.randint(1800, (12 if tk.callbacks else 24) * 3600))
            if not reached:
                self.callback(tk, t, actor, None, None)
                if tk.unreached() < self.limits.callback_attempts:
                    continue
                if tk.last_reached() is None:
                    return  # the attempts ran out: the scheduler closes it as not called back
                self.close(tk, days.office(tk.last + rng.randint(600, 4 * 3600)), self.centre(0.5), DISSATISFIED_CLOSE)
                return
            rating = pick(rng, RATINGS, _RATING_CUM)
            solved = rating >= 4 or (rating == 3 and rng.random() < 0.7)
            self.callback(tk, t, actor, rating, solved)
            if rating in self.limits.satisfied_ratings and solved:
                self.close(tk, tk.last + rng.randint(30, 900), self.agent())
                return
            # A dissatisfied rating by link, or after the agents' rehandlings, is the supervisor's.
            supervisor_only = citizen or tk.rehandle_count >= self.limits.agent_rehandles
            if tk.main_department_id is not None and tk.rehandle_count < 2 and rng.random() < 0.55:
                actor = self.supervisor() if supervisor_only else self.centre(0.4)
                self.rehandle(tk, days.office(tk.last + rng.randint(300, 4 * 3600)), actor)
                self._handle(tk)
                continue
            actor = self.supervisor() if supervisor_only else self.centre(0.5)
            self.close(tk, days.office(tk.last + rng.randint(600, 2 * DAY)), actor, DISSATISFIED_CLOSE)
            return

    def _co_department(self, tk: TicketRow, main: str) -> str | None:
        """A co-handler (协办): the street office for a bureau, the bureau for a street office."""
        office = self.d.places[tk.place].street_code
        co = office if main != office else LEAVES[tk.leaf].department
        return co if co != main else None

    def _redispatch_target(self, tk: TicketRow) -> str:
        current = self.d.codes[tk.main_department_id]
        office = self.d.places[tk.place].street_code
        new = office if current != office else LEAVES[tk.leaf].department
        if new == current:
            new = self.rng.choice([code for code, _, _ in DEPARTMENTS if code != current])
        return new

    def _answer_text(self, tk: TicketRow) -> str:
        leaf = LEAVES[tk.leaf]
        if tk.type == "praise":
            return PRAISE_ANSWER.format(dept=self.d.departments[leaf.department][2])
        return self.rng.choice(ANSWERS).format(leaf=leaf.name)

    def _result_text(self, tk: TicketRow, dept_id: int) -> str:
        leaf = LEAVES[tk.leaf]
        if tk.type == "consultation":
            return CONSULT_RESULT.format(leaf=leaf.name)
        dept = self.d.departments[self.d.codes[dept_id]][2]
        return self.rng.choice(RESULTS).format(dept=dept, community=self.d.places[tk.place].community)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
