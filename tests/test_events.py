"""Events for other systems: one per history row, notice and rating, numbered per ticket
with no gap; the pull feed with its scopes and cursors; delivery processes killed with
kill -9 or racing each other lose and double nothing."""

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func
from sqlmodel import select

from hotline.models import Notification, OutboxMessage, TicketEvent
from tests.helpers import Api
from tests.receivers import Receiver


@pytest.fixture
def as_(client, district, runtime):
    # The feed holds back the last moments' events on PostgreSQL (see feed_settle_seconds);
    # these tests read what they have just written.
    runtime.settings.feed_settle_seconds = 0
    return lambda username: Api(client, district, username)


def test_every_history_row_and_notice_is_an_event_numbered_without_gaps(runtime, as_):
    tid = as_("agent").create()["id"]
    as_("agent").fire(tid, "dispatch", department="housing")
    as_("housing_h").fire(tid, "sign")
    as_("housing_h").fire(tid, "request_extension", days=3, reason="需要协调")
    as_("supervisor").fire(tid, "reject_extension", reason="不同意")
    with runtime.db.read_session() as s:
        events = s.exec(select(OutboxMessage).where(OutboxMessage.ticket_id == tid).order_by(OutboxMessage.id)).all()
        rows = s.exec(select(func.count()).select_from(TicketEvent).where(TicketEvent.ticket_id == tid)).one()
        notices = s.exec(select(func.count()).select_from(Notification).where(Notification.ticket_id == tid)).one()
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    topics = [e.topic for e in events]
    assert topics.count("ticket.created") == 1 and topics.count("ticket.changed") == rows - 1
    assert topics.count("notice") == notices > 0
    assert len({e.uid for e in events}) == len(events)


def test_a_refused_event_publishes_nothing(runtime, as_):
    tid = as_("agent").create()["id"]
    with runtime.db.read_session() as s:
        before = s.exec(select(func.count()).select_from(OutboxMessage)).one()
    as_("housing_h").fire(tid, "sign", expect=404)
    as_("agent").fire(tid, "reply", expect=403, result="x")
    as_("supervisor").fire(tid, "approve_reply", expect=409)
    with runtime.db.read_session() as s:
        assert s.exec(select(func.count()).select_from(OutboxMessage)).one() == before


def test_the_feed_pages_with_a_stable_cursor(as_):
    ids = [as_("agent").create(content=f"第{i}件")["id"] for i in range(5)]
    first = as_("agent").get("/events", limit=3, topic="ticket.created")
    second = as_("agent").get("/events", limit=3, topic="ticket.created", after=first["next"])
    numbers = [e["data"]["ticket_number"] for e in first["events"] + second["events"]]
    assert len(numbers) == 5 == len(set(numbers)) and len(ids) == 5
    again = as_("agent").get("/events", limit=3, topic="ticket.created", after=first["next"])
    assert again == second
    assert as_("agent").get("/events", after=second["next"], topic="ticket.created")["events"] == []


def test_a_department_pulls_its_own_tickets_without_a_confidential_caller(as_):
    mine = as_("agent").create(confidential=True)["id"]
    as_("agent").fire(mine, "dispatch", department="housing")
    theirs = as_("agent").create()["id"]
    as_("agent").fire(theirs, "dispatch", department="urban")
    feed = as_("housing_h")
    events = feed.get("/events")["events"]
    number = as_("agent").get(f"/tickets/{mine}")["number"]
    assert events and {e["data"]["ticket_number"] for e in events} == {number}
    assert all(e["data"]["ticket"]["caller_phone"] is None for e in events if "ticket" in e["data"])
    # The centre reads the same ticket's caller in full.
    full = [e for e in as_("supervisor").get("/events", topic="ticket.created")["events"]]
    assert any(e["data"]["ticket"]["caller_phone"] == "13812345678" for e in full)


def test_the_feed_refuses_a_bad_cursor_or_topic(as_):
    as_("agent").get("/events", expect=422, after="abc")
    r = as_("agent").get("/events", expect=422, topic="ticket.deleted")
    assert "topic" in str(r)


HOTLINE = [sys.executable, "-m", "hotline"]


def _deliverer(database, *, timeout: float = 1.0) -> subprocess.Popen:
    env = {
        **os.environ,
        "HOTLINE_DATABASE_URL": database.url,
        "HOTLINE_WEBHOOK_TIMEOUT_SECONDS": str(timeout),
        "HOTLINE_WEBHOOK_CONCURRENCY": "4",
        "HOTLINE_DELIVERY_INTERVAL_SECONDS": "0.2",
    }
    return subprocess.Popen(
        [*HOTLINE, "outbox", "deliver", "--watch"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_a_delivery_process_killed_mid_delivery_loses_nothing(runtime, as_, database):
    receiver = Receiver().start()
    arrived = []
    # The first request hangs (the process will be killed meanwhile); the others go through.
    receiver.hang_seconds = lambda got: 30.0 if not arrived and not arrived.append(got) else 0.0
    try:
        body = {"name": "部门系统", "url": receiver.url, "topics": ["ticket.created"]}
        as_("admin").post("/subscriptions", body, 201)
        numbers = {as_("agent").create(content=f"第{i}件")["number"] for i in range(6)}
        first = _deliverer(database, timeout=1.0)
        receiver.wait_for(1, timeout=60)
        time.sleep(0.5)  # the rest of its batch is out meanwhile
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = _deliverer(database, timeout=1.0)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                got = {b["data"]["ticket_number"] for b in receiver.bodies()}
                again = [g.id for g in receiver.got].count(arrived[0].id)
                if got == numbers and again >= 2:
                    break
                time.sleep(0.2)
        finally:
            second.terminate()
            second.wait(10)
        # Every event arrived; the one in flight when the first process died went out again, same id.
        assert {b["data"]["ticket_number"] for b in receiver.bodies()} == numbers
        ids = [g.id for g in receiver.got]
        assert ids.count(arrived[0].id) >= 2
        with runtime.db.read_session() as s:
            assert set(s.exec(select(OutboxMessage.uid)).all()) >= set(ids)
    finally:
        receiver.stop()


# SKIP LOCKED is PostgreSQL's; on SQLite one writer at a time claims.
@pytest.mark.parametrize("database", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_two_delivery_processes_on_postgresql_never_send_an_event_twice(runtime, as_, database):
    receiver = Receiver().start()
    receiver.hang_seconds = lambda _: 0.05
    try:
        body = {"name": "城市平台", "url": receiver.url, "topics": ["ticket.created"]}
        as_("admin").post("/subscriptions", body, 201)
        procs = [_deliverer(database, timeout=5.0) for _ in range(2)]
        try:
            for p in procs:  # both are polling before the events arrive
                assert "delivering" in p.stdout.readline()
            for i in range(120):
                as_("agent").create(content=f"第{i}件")
            receiver.wait_for(120, timeout=120)
            time.sleep(1.0)
        finally:
            for p in procs:
                p.terminate()
            outputs = [p.communicate(timeout=10)[0] for p in procs]
        ids = [g.id for g in receiver.got]
        assert len(ids) == 120 == len(set(ids))
        # Both processes took part.
        assert all("delivered" in out for out in outputs), outputs
    finally:
        receiver.stop()
