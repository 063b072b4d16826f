"""Append-only rows written with Core (hotline.appends): a batch of the scheduler's writes what
one ticket at a time writes; the unit of work reads what it added; a savepoint rolled back
takes its rows, and its links of the history chains, with it."""

from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import select

from hotline import audit
from hotline.models import Escalation, Notification, OutboxMessage, Ticket, TicketEvent
from hotline.scheduler import SweepReport, _escalate, _escalate_batch
from hotline.workflow.engine import Actor, fire
from tests.conftest import local
from tests.helpers import make_dispatched

SUPERVISOR = Actor(None, "supervisor", "supervisor")
NOW = local(2026, 11, 4, 9, 0)  # the sign deadline (11-03) passed: warn passed over, then urge
LATER = local(2026, 11, 4, 9, 30)


def _plain(value: Any, ticket: Ticket) -> Any:
    """A row's value with what names the ticket itself (its id, its number) taken out."""
    if isinstance(value, dict):
        return {k: _plain(v, ticket) for k, v in value.items() if not (k == "id" and v == ticket.id)}
    if isinstance(value, list):
        return [_plain(v, ticket) for v in value]
    if isinstance(value, str):
        return value.replace(ticket.number, "N")
    return value


def _written(runtime, ticket_id: int) -> dict[str, Any]:
    """Everything the ticket's escalation wrote, as comparable values."""
    with runtime.db.read_session() as s:
        t = s.get(Ticket, ticket_id)

        def rows(model, *columns):
            found = s.exec(select(model).where(model.ticket_id == ticket_id).order_by(model.id)).all()
            return [_plain({c: getattr(r, c) for c in columns}, t) for r in found]

        return {
            "ticket": (t.version, t.escalation_step, t.next_due_at, t.event_sequence, t.updated_at),
            "history": rows(
                TicketEvent, "event", "actor_name", "actor_role", "from_state", "to_state", "details", "at"
            ),
            "notices": rows(Notification, "kind", "role", "department_id", "user_id", "title", "body", "created_at"),
            "events": rows(OutboxMessage, "topic", "sequence", "departments", "source", "payload", "created_at"),
            "escalations": rows(Escalation, "department_id", "deadline_kind", "deadline_at", "step", "at"),
        }


def _chains_hold(runtime) -> int:
    with runtime.db.read_session() as s:
        checked, broken = audit.verify(s)
    assert broken is None, str(broken)
    return checked


def test_a_batch_of_escalations_writes_what_one_ticket_at_a_time_writes(runtime, district):
    ids = make_dispatched(runtime, 6, now=local(2026, 11, 2, 9, 0), content="楼道灯坏了")
    batch, alone = ids[:3], ids[3:]
    report = SweepReport(now=NOW)
    _escalate_batch(runtime, batch, NOW, report)  # one transaction, one statement per table
    for ticket_id in alone:  # each in its own transaction, each step in a savepoint
        with runtime.db.session() as s:
            _escalate(s, runtime, s.get(Ticket, ticket_id), NOW, SweepReport(now=NOW), careful=True)
    assert [step for _, step, _ in report.steps] == ["urge"] * 3
    for a, b in zip(batch, alone, strict=True):
        written = _written(runtime, a)
        assert [r["event"] for r in written["history"]] == ["create", "dispatch", "escalation_skipped", "urge"]
        assert [r["topic"] for r in written["events"][-3:]] == ["ticket.changed", "ticket.changed", "notice"]
        assert [r["step"] for r in written["escalations"]] == ["urge"]
        assert written == _written(runtime, b)
    assert _chains_hold(runtime) == 6 * 4


def test_the_unit_of_work_reads_the_rows_it_added(runtime, district):
    (tid,) = make_dispatched(runtime, 1, now=local(2026, 11, 2, 9, 0))
    with runtime.db.session() as s:
        fire(s, runtime, tid, "urge", SUPERVISOR, {"message": "请今天内签收"}, now=NOW)
        # Through the session, as autoflush does for ORM rows: history, notice, events, escalation.
        assert s.exec(select(TicketEvent.event).where(TicketEvent.ticket_id == tid)).all()[-1] == "urge"
        assert s.exec(select(Notification.body).where(Notification.kind == "urge")).all() == ["请今天内签收"]
        assert s.exec(select(Escalation.step).where(Escalation.ticket_id == tid)).all() == ["urge"]
        topics = s.exec(select(OutboxMessage.topic).where(OutboxMessage.ticket_id == tid)).all()
        assert topics[-2:] == ["ticket.changed", "notice"]
        # A read that flushes nothing does not write them either (as with ORM rows).
        fire(s, runtime, tid, "supervise", SUPERVISOR, now=NOW)
        with s.no_autoflush:
            assert s.exec(select(Escalation.step).where(Escalation.ticket_id == tid)).all() == ["urge"]
        s.flush()  # a flush writes them: a plain connection sees them
        steps = s.connection().execute(text("SELECT step FROM escalations ORDER BY id")).scalars().all()
        assert steps == ["urge", "supervise"]
    assert [r["event"] for r in _written(runtime, tid)["history"]] == ["create", "dispatch", "urge", "supervise"]
    assert _chains_hold(runtime) == 4


@pytest.mark.parametrize("read_inside", [False, True])
def test_a_savepoint_rolled_back_takes_its_rows_and_chain_links_with_it(runtime, district, read_inside):
    """`read_inside`: the savepoint wrote the rows waiting when it began (a read), then rolled
    back: they are written again, by the transaction they belong to."""
    (tid,) = make_dispatched(runtime, 1, now=local(2026, 11, 2, 9, 0))
    with runtime.db.session() as s:
        fire(s, runtime, tid, "urge", SUPERVISOR, {"message": "第一次"}, now=NOW)
        with pytest.raises(RuntimeError), s.begin_nested():
            if read_inside:
                assert s.exec(select(Notification.body).where(Notification.kind == "urge")).all() == ["第一次"]
            fire(s, runtime, tid, "urge", SUPERVISOR, {"message": "撤回"}, now=LATER)
            s.exec(select(Notification.id)).all()  # the savepoint's rows written too
            raise RuntimeError("the step is abandoned")
        # The urge rolled back holds nothing back (a person's urges are half an hour apart).
        fire(s, runtime, tid, "urge", SUPERVISOR, {"message": "第二次"}, now=LATER)
    written = _written(runtime, tid)
    assert [n["body"] for n in written["notices"] if n["kind"] == "urge"] == ["第一次", "第二次"]
    assert [r["event"] for r in written["history"]] == ["create", "dispatch", "urge", "urge"]
    assert [r["sequence"] for r in written["events"]] == list(range(1, len(written["events"]) + 1))
    assert _chains_hold(runtime) == 4
