"""`kill -9` half-way: the sweep and the webhook delivery, each a real process on a real
backlog, killed once progress shows in the database, then run again to the end. Nothing is
done twice that the database records, and nothing is lost; a receiver may see an event that
was in flight at the kill again, with the same `webhook-id` (at least once), and nothing else."""

import time
from collections import Counter, defaultdict
from contextlib import contextmanager

import pytest
from sqlalchemy import func, text
from sqlmodel import select

from hotline.models import Delivery, Department, Escalation, Notification, OutboxMessage, SupervisionOrder, TicketEvent
from tests.conftest import local
from tests.helpers import Api, make_dispatched
from tests.processes import hotline, kill_hard, start, stop
from tests.receivers import Receiver

TOPICS = ["ticket.created", "ticket.changed", "ticket.rated", "rating.overturned", "notice"]


def wait_until(done, what: str, timeout: float = 180, process=None, log=None, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert process is None or process.poll() is None, f"the process ended before {what}: {log.read_text()}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(every)


@contextmanager
def _holding_back_one_batch(runtime, department: str):
    """On PostgreSQL the sweep's batches run side by side (two lanes), so that both can end
    before any kill. Holding one department's row (FOR UPDATE) makes the batch with that
    department's ticket wait at its first insert (the foreign key's check shares the row),
    while the other batch commits. A lock on the ticket itself would not do: the sweep skips
    a locked ticket. Yields whether a batch is held; on SQLite the batches run one after
    another and the kill falls between them."""
    if runtime.db.is_sqlite:
        yield False
        return
    with runtime.db.engine.connect() as connection:
        transaction = connection.begin()
        connection.execute(select(Department.id).where(Department.code == department).with_for_update())
        try:
            yield True
        finally:
            transaction.rollback()


def _server_sessions(runtime, *, waiting_on_a_lock: bool = False) -> set[int]:
    """PostgreSQL: the server sessions of this database (those waiting for a lock)."""
    query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    if waiting_on_a_lock:
        query += " AND wait_event_type = 'Lock'"
    with runtime.db.read_session() as s:
        return set(s.exec(text(query)).scalars())


def count(runtime, model, *where) -> int:
    with runtime.db.read_session() as s:
        return s.exec(select(func.count()).select_from(model).where(*where)).one()


@pytest.mark.slow
def test_a_sweep_killed_half_way_is_finished_by_the_next_once_each(runtime, district, database, tmp_path):
    # Batches of the sweep (200 tickets each): the kill falls after the first. On PostgreSQL
    # a held batch makes that certain (two); on SQLite, where nothing can hold a batch back,
    # five make it all but so: the poll would have to sleep through four batches to miss.
    tickets = 1000 if runtime.db.is_sqlite else 400
    ids = make_dispatched(runtime, tickets - 1, now=local(2026, 11, 2, 9, 0))
    ids += make_dispatched(runtime, 1, now=local(2026, 11, 2, 9, 0), department="urban")
    log = tmp_path / "sweep.log"
    waiting: set[int] = set()  # the server sessions of the held batch

    def held_batch_waits() -> bool:
        waiting.update(_server_sessions(runtime, waiting_on_a_lock=True))
        return bool(waiting)

    with _holding_back_one_batch(runtime, "urban") as held:
        # Overdue since Friday: each ticket is urged, supervised and reported (its warning passed over).
        sweep = start(database.url, "sweep", "--now", "2026-11-20T10:00", log=log)
        try:
            wait_until(lambda: count(runtime, Escalation) > 0, "escalation", process=sweep, log=log, every=0.01)
            if held:
                wait_until(held_batch_waits, "the held batch to wait", process=sweep, log=log)
        finally:
            kill_hard(sweep)
    if held:
        # The killed sweep's server session ends once the held batch goes on and finds its
        # client gone, taking its batch (and its tickets' locks) with it.
        wait_until(lambda: not waiting & _server_sessions(runtime), "the killed sweep's session to end")
    escalated = set(_rows(runtime, select(Escalation.ticket_id).distinct()))
    assert 0 < len(escalated) < tickets, "killed after the sweep's end: nothing to learn"
    assert not held or ids[-1] not in escalated

    done = hotline(database.url, "sweep", "--now", "2026-11-20T10:00").stdout
    assert f"{tickets - len(escalated)} urge" in done.splitlines()[-1]
    # Every step of every ticket once: the history, the escalations, the orders, the notices.
    steps = _rows(
        runtime,
        select(TicketEvent.ticket_id, TicketEvent.event, func.count())
        .where(TicketEvent.actor_role == "system")
        .group_by(TicketEvent.ticket_id, TicketEvent.event),
    )
    assert {n for *_, n in steps} == {1} and {t for t, *_ in steps} == set(ids)
    assert Counter(e for _, e, _ in steps) == {
        e: tickets for e in ("escalation_skipped", "urge", "supervise", "report")
    }
    assert Counter(_rows(runtime, select(Escalation.step))) == {s: tickets for s in ("urge", "supervise", "report")}
    assert count(runtime, SupervisionOrder) == tickets
    # Each ticket got the same notices and the same events, numbered without a gap.
    notices = _per_ticket(
        runtime, select(Notification.ticket_id, Notification.kind).where(Notification.ticket_id.is_not(None))
    )
    assert len({tuple(sorted(c.items())) for c in notices.values()}) == 1 and len(notices) == tickets
    events = _per_ticket(
        runtime, select(OutboxMessage.ticket_id, OutboxMessage.sequence).where(OutboxMessage.ticket_id.is_not(None))
    )
    assert len({tuple(sorted(c.elements())) for c in events.values()}) == 1
    assert all(sorted(c.elements()) == list(range(1, len(c) + 1)) for c in events.values())
    # And there is nothing left to do.
    assert " 0 urge, 0 supervise, 0 report" in hotline(database.url, "sweep", "--now", "2026-11-20T10:00").stdout


@pytest.mark.slow
def test_delivery_killed_half_way_delivers_every_event_and_records_each_once(
    runtime, district, database, client, tmp_path
):
    receiver = Receiver(hang_seconds=lambda _: 0.005).start()
    try:
        Api(client, district, "admin").post(
            "/subscriptions", {"name": "测试系统", "url": receiver.url, "topics": TOPICS}, 201
        )
        make_dispatched(runtime, 200, now=local(2026, 11, 2, 9, 0))
        # Short leases, so that what the killed process held is sent again soon.
        env = {"HOTLINE_WEBHOOK_TIMEOUT_SECONDS": "1", "HOTLINE_WEBHOOK_CONCURRENCY": "4"}
        log = tmp_path / "deliver.log"
        deliver = start(database.url, "outbox", "deliver", "--watch", log=log, env=env)
        wait_until(
            lambda: count(runtime, Delivery, Delivery.status == "delivered") >= 60,
            "deliveries",
            process=deliver,
            log=log,
        )
        kill_hard(deliver)
        total = count(runtime, OutboxMessage)
        assert count(runtime, Delivery) == total  # every event fanned out to the one subscription
        assert count(runtime, Delivery, Delivery.status == "delivered") < total, "killed after the end"
        in_flight = set(
            _rows(
                runtime,
                select(OutboxMessage.uid)
                .join(Delivery, Delivery.event_id == OutboxMessage.id)
                .where(Delivery.status == "pending", Delivery.lease_owner.is_not(None)),
            )
        )

        again = start(database.url, "outbox", "deliver", "--watch", log=log, env=env)
        try:
            wait_until(
                lambda: count(runtime, Delivery, Delivery.status == "delivered") == total,
                "end of the delivery",
                process=again,
                log=log,
            )
        finally:
            stop(again)

        uids = set(_rows(runtime, select(OutboxMessage.uid)))
        got = Counter(r.id for r in receiver.got)
        assert set(got) == uids  # nothing lost
        twice = {uid for uid, n in got.items() if n > 1}
        assert twice <= in_flight, "sent again without having been in flight at the kill"
        assert max(got.values()) <= 2
        # One delivery row per event, delivered.
        assert {
            n for (_, n) in _rows(runtime, select(Delivery.event_id, func.count()).group_by(Delivery.event_id))
        } == {1}
        # A ticket's events reached the receiver in their order (the first time each came).
        first: dict[str, list[int]] = defaultdict(list)
        seen: set[str] = set()
        for r in receiver.got:
            if r.id not in seen:
                seen.add(r.id)
                first[r.json["data"]["ticket_number"]].append(r.json["data"]["sequence"])
        assert all(seq == sorted(seq) for seq in first.values())
    finally:
        receiver.stop()


def _rows(runtime, query) -> list:
    with runtime.db.read_session() as s:
        return list(s.exec(query).all())


def _per_ticket(runtime, query) -> dict[int, Counter]:
    out: dict[int, Counter] = defaultdict(Counter)
    for ticket_id, value in _rows(runtime, query):
        out[ticket_id][value] += 1
    return out
