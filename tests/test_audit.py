"""Every ticket's history is a hash chain; `hotline audit verify` finds any row changed,
removed or slipped in (SQLite and PostgreSQL)."""

import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

from alembic import command
from sqlalchemy import text
from sqlmodel import select

from hotline import audit
from hotline.migrate import alembic_config
from hotline.models import TicketEvent
from tests.helpers import Api, race


def _life(client, district) -> list[int]:
    """Tickets with long histories: dispatched, signed, replied, reviewed, called back, closed;
    a duplicate merged into one of them."""
    agent, handler, supervisor = (Api(client, district, n) for n in ("agent", "housing_h", "supervisor"))
    ids = []
    for _ in range(3):
        t = agent.create()
        agent.fire(t["id"], "dispatch")
        handler.fire(t["id"], "sign")
        handler.fire(t["id"], "reply", result="已修好")
        supervisor.fire(t["id"], "approve_reply")
        agent.fire(t["id"], "callback", reached=True, solved=True, rating=5)
        ids.append(t["id"])
    duplicate = agent.create()
    agent.fire(duplicate["id"], "merge", master=ids[0])
    return ids


def _verify(runtime):
    with runtime.db.read_session() as s:
        return audit.verify(s, batch=7)  # small pages: the paging is checked too


def test_the_canonical_moment_is_strftimes():
    """A history row's moment is made from cached parts: the very text
    `astimezone(UTC).strftime` gives, whatever the zone, the microseconds and the year."""
    rng = random.Random(7)
    zones = [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]
    moments = [datetime(y, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC) for y in (1, 999, 1000, 1969, 1970, 9998)]
    moments += [datetime(y, 1, 1, tzinfo=UTC) for y in (2, 1000, 1970, 9999)]
    moments += [datetime(2026, 11, 27, 10, 30), datetime(2026, 3, 1, 0, 0, 0, 1)]  # naive: local time
    for _ in range(20_000):
        ts = rng.uniform(-2 * 10**9, 5 * 10**9)
        moments.append(datetime.fromtimestamp(round(ts) if rng.random() < 0.5 else ts, rng.choice(zones)))
    for at in moments:
        assert audit._moment(at) == at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), at


def test_the_canonical_form_is_the_json_of_the_rows_fields():
    """`canonical` puts the row together from its items' JSON, the middle ones remembered:
    the very bytes the encoder writes for the whole list, whatever the values."""
    rng = random.Random(11)
    names = ["agent1", "张三", 'say "hi"', "back\\slash", "tab\there", "\u2028line", "emoji 😀", ""]
    states = [None, "registered", "in_progress", "待办"]
    details = [{}, {"b": 1, "a": [1, 2.5, None], "c": {"z": "中文", "y": True}}, {"reason": 'x"y', "n": -3}]
    for _ in range(3_000):
        ticket_id = rng.choice([1, 2, 10**12, rng.randrange(10**6)])
        fields = [
            ticket_id,
            rng.choice(["create", "dispatch", "合并"]),
            rng.choice([None, 0, 1, True, 17, 10**15]),
            rng.choice(names),
            rng.choice(names[:3] + ["citizen"]),
            rng.choice(states),
            rng.choice(states[1:]),
        ]
        at = datetime.fromtimestamp(rng.uniform(0, 4 * 10**9), UTC)
        detail = rng.choice(details)
        expected = audit._CANONICAL.encode([*fields, audit._moment(at), detail]).encode()
        assert audit.canonical(*fields, at, detail) == expected, fields
        assert audit.canonical_of(*fields, at, audit.canonical_details(detail)) == expected


def test_the_chains_of_every_history_hold(client, district, runtime):
    _life(client, district)
    with runtime.db.read_session() as s:
        rows = s.exec(select(TicketEvent)).all()
    assert rows and all(len(r.chain) == 64 for r in rows)
    assert _verify(runtime) == (len(rows), None)


def test_a_changed_row_is_named(client, district, runtime, database):
    ids = _life(client, district)
    with runtime.db.read_session() as s:
        victim = s.exec(select(TicketEvent).where(TicketEvent.ticket_id == ids[1], TicketEvent.event == "reply")).one()
    with runtime.db.session() as s:
        s.execute(text("UPDATE ticket_events SET actor_name = 'someone_else' WHERE id = :id"), {"id": victim.id})
    checked, broken = _verify(runtime)
    assert broken is not None and (broken.ticket_id, broken.row_id) == (ids[1], victim.id)
    # The command says the same, with exit status 1.
    env = {**os.environ, "HOTLINE_DATABASE_URL": database.url}
    done = subprocess.run(
        [sys.executable, "-m", "hotline", "audit", "verify"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"ticket {ids[1]}: history row {victim.id} does not match" in done.stderr


def test_a_removed_row_breaks_the_chain_at_the_next(client, district, runtime):
    ids = _life(client, district)
    with runtime.db.read_session() as s:
        rows = s.exec(select(TicketEvent).where(TicketEvent.ticket_id == ids[2]).order_by(TicketEvent.id)).all()
    with runtime.db.session() as s:
        s.execute(text("DELETE FROM ticket_events WHERE id = :id"), {"id": rows[2].id})
    _, broken = _verify(runtime)
    assert broken is not None and broken.row_id == rows[3].id


def test_changes_at_the_same_moment_keep_each_chain(server, client, district, runtime):
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    agent = Api(client, district, "agent")
    tickets = [agent.create()["id"] for _ in range(6)]

    def dispatch(ticket_id: int) -> int:
        body = {"event": "dispatch", "department": "housing"}
        url = f"{server}/api/v1/tickets/{ticket_id}/transitions"
        return httpx.post(url, json=body, headers=district.headers("agent"), timeout=30).status_code

    with ThreadPoolExecutor(6) as pool:  # six tickets' histories written side by side
        assert list(pool.map(dispatch, tickets)) == [200] * len(tickets)
    # Two changes of one ticket at once: one wins, the other is refused; the chain holds.
    codes = race(
        server,
        district.headers("housing_h"),
        f"/api/v1/tickets/{tickets[0]}/transitions",
        [{"event": "sign"}, {"event": "sign"}],
    )
    assert sorted(codes) == [200, 409]
    checked, broken = _verify(runtime)
    assert broken is None and checked >= 2 * len(tickets) + 1


def test_the_migration_seals_the_rows_already_there(client, district, runtime, database):
    _life(client, district)
    with runtime.db.read_session() as s:
        before = {r.id: r.chain for r in s.exec(select(TicketEvent))}
    config = alembic_config(database.url)
    command.downgrade(config, "0008")  # before the chains (0009)
    command.upgrade(config, "head")
    with runtime.db.read_session() as s:
        after = {r.id: r.chain for r in s.exec(select(TicketEvent))}
    assert after == before
