"""Personal data sealed at rest (hotline.crypto): what the database holds, the lookups by the
keyed hashes, the key's sources, the rotation, the upgrade of a database in clear."""

import copy
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlmodel import select

from hotline import crypto
from hotline.config import Settings
from hotline.db import Database, utcnow
from hotline.evaluation.messaging import queue
from hotline.migrate import alembic_config, upgrade
from hotline.models import Message, Ticket
from hotline.tickets import recent_tickets, same_phone
from tests.helpers import Api

NAME, PHONE = "欧阳娜娜", "13912345678"
# The same last four digits, another number.
NEIGHBOUR = "13700005678"


def _raw(db: Database, sql: str) -> list[tuple]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql).all()]


def _log(client, district, **fields) -> int:
    return Api(client, district, "agent").create(caller_name=NAME, caller_phone=PHONE, **fields)["id"]


def test_the_database_holds_no_name_or_phone_in_clear(client, district, runtime):
    ticket_id = _log(client, district)
    with runtime.db.session() as s:
        queue(s, runtime.channel, to=PHONE, body="请评价", ticket_id=ticket_id, now=utcnow())
    rows = _raw(runtime.db, 'SELECT caller_name, caller_phone FROM tickets UNION ALL SELECT "to", body FROM messages')
    assert len(rows) == 2
    for value in (v for row in rows for v in row if v != "请评价"):
        assert value.startswith(f"e1.{runtime.db.keys.active.id}.")
        assert PHONE not in value and "5678" not in value
    # The events for other systems name the caller too.
    payloads = _raw(runtime.db, "SELECT CAST(payload AS TEXT) FROM outbox")
    assert payloads and all(p.startswith('"e1.') and PHONE not in p for (p,) in payloads)
    if runtime.db.is_sqlite:
        # The file and its write-ahead log, where the newest pages are.
        path = Path(runtime.db.engine.url.database)
        data = b"".join(p.read_bytes() for p in path.parent.glob(f"{path.name}*"))
        assert PHONE.encode() not in data and NAME.encode() not in data
    # The models read it back whole; the staff see it as before.
    with runtime.db.read_session() as s:
        ticket = s.get(Ticket, ticket_id)
        assert (ticket.caller_name, ticket.caller_phone) == (NAME, PHONE)
        assert s.exec(select(Message.to)).one() == PHONE
    assert Api(client, district, "agent").get(f"/tickets/{ticket_id}")["caller_phone"] == PHONE


def test_the_message_list_shows_masked_numbers(client, district, runtime):
    ticket_id = _log(client, district)
    with runtime.db.session() as s:
        queue(s, runtime.channel, to=PHONE, body="请评价", ticket_id=ticket_id, now=utcnow())
    [message] = Api(client, district, "admin").get("/messages")
    assert message["to"] == "139****5678"


def test_a_ticket_is_found_by_phone_tail_and_name(client, district, runtime):
    mine = _log(client, district)
    other = Api(client, district, "agent").create(caller_name="李四", caller_phone=NEIGHBOUR)["id"]
    api = Api(client, district, "agent")

    def found(q: str) -> set[int]:
        return {t["id"] for t in api.get("/tickets", q=q)["items"]}

    assert found(PHONE) == {mine}
    assert found("139-1234-5678") == {mine}
    assert found("5678") == {mine, other}  # the last four digits
    assert found("345678") == {mine}  # more of them: the tail's tickets opened and compared
    assert found(NAME) == {mine}
    assert found("欧阳") == set()  # a sealed name is found whole only
    with runtime.db.read_session() as s:
        seen = recent_tickets(s, phone=PHONE, street="", community="", address="", now=runtime.now())
        assert [t.id for t in seen["by_phone"]] == [mine]
        assert [t.id for t in s.exec(select(Ticket).where(same_phone(s, "139 1234 5678")))] == [mine]


def test_a_sealed_column_refuses_a_comparison_in_sql():
    with pytest.raises(TypeError, match="keyed hash"):
        _ = Ticket.caller_phone == PHONE
    with pytest.raises(TypeError):
        Ticket.caller_name.like("%张%")
    assert Ticket.caller_phone.is_(None) is not None


def test_an_altered_or_moved_value_does_not_open():
    ring = crypto.Keyring([crypto.new_secret()])
    sealed = ring.seal(PHONE, b"tickets.caller_phone")
    assert ring.open(sealed, b"tickets.caller_phone") == PHONE
    with pytest.raises(crypto.SecretKeyError, match="does not open"):
        ring.open(sealed, b"tickets.caller_name")
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(crypto.SecretKeyError, match="does not open"):
        ring.open(flipped, b"tickets.caller_phone")
    with pytest.raises(crypto.SecretKeyError, match="missing"):
        crypto.Keyring([crypto.new_secret()]).open(sealed, b"tickets.caller_phone")
    # A fresh nonce each time: the same phone never seals the same twice.
    assert ring.seal(PHONE, b"x") != ring.seal(PHONE, b"x")


def test_the_key_sources(tmp_path):
    bare = Settings(secret_key=None, key_file=None)
    url = f"sqlite:///{tmp_path / 'data' / 'x.db'}"
    ring = crypto.load(url, bare)
    key_file = tmp_path / "data" / "hotline.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert crypto.load(url, bare).active.id == ring.active.id  # made once, then read
    with pytest.raises(crypto.SecretKeyError, match="must be set on PostgreSQL"):
        crypto.load("postgresql+psycopg://u@127.0.0.1/db", bare)
    with pytest.raises(crypto.SecretKeyError, match="at least 32"):
        crypto.load(url, Settings(secret_key="short", key_file=None))
    secret = crypto.new_secret()
    assert crypto.load(url, Settings(secret_key=secret)).active.id == crypto.Key(secret).id
    assert crypto.load(url, Settings(secret_key=None, key_file=key_file)).active.id == ring.active.id
    with pytest.raises(crypto.SecretKeyError, match="cannot read"):
        crypto.load(url, Settings(secret_key=None, key_file=tmp_path / "none.key"))


def _hotline(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hotline", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_rotation_seals_every_row_again_and_retires_the_old_key(client, district, runtime, tmp_path):
    """The tickets were sealed with HOTLINE_SECRET_KEY; the installation moves to a key file
    holding that secret, rotates, and needs the old secret no more."""
    for i in range(25):
        Api(client, district, "agent").create(caller_name=f"来电人{i}", caller_phone=f"1380000{i:04d}")
    with runtime.db.session() as s:
        queue(s, runtime.channel, to=PHONE, body="请评价", ticket_id=None, now=utcnow())
    old = runtime.db.keys.active.id
    key_file = tmp_path / "rotate.key"
    crypto.write_key_file(key_file, [os.environ["HOTLINE_SECRET_KEY"]])
    env = {k: v for k, v in os.environ.items() if k != "HOTLINE_SECRET_KEY"}
    env.update(HOTLINE_KEY_FILE=str(key_file), HOTLINE_DATABASE_URL=runtime.db.url)
    out = _hotline(env, "keys", "rotate", "--wait", "0", "--batch", "10")
    assert "retired" in out
    [secret] = crypto.read_key_file(key_file)
    new = crypto.Key(secret).id
    assert new != old
    status = _hotline(env, "keys", "status").splitlines()
    assert len(status) == 1 and status[0].startswith(f"key {new} (seals): ")
    fresh = Database(runtime.db.url, keys=crypto.Keyring([secret]))
    try:
        with fresh.read_session() as s:
            tickets = s.exec(select(Ticket).order_by(Ticket.id)).all()
            assert [t.caller_phone for t in tickets] == [f"1380000{i:04d}" for i in range(25)]
            assert s.exec(select(Message.to)).one() == PHONE
            found = s.exec(select(Ticket.caller_name).where(same_phone(s, "13800000007"))).all()
            assert found == ["来电人7"]
        assert {r[0][3:11] for r in _raw(fresh, "SELECT caller_phone FROM tickets")} == {new}
    finally:
        fresh.dispose()


def test_rotation_with_the_environment_needs_the_new_key_first(runtime):
    with runtime.db.engine.connect() as conn, pytest.raises(crypto.SecretKeyError, match="new one first"):
        crypto.rotate(conn, runtime.db.keys, wait=0, batch=10, say=print)
    ring = crypto.Keyring([crypto.new_secret(), os.environ["HOTLINE_SECRET_KEY"]])
    lines: list[str] = []
    with runtime.db.engine.connect() as conn:
        crypto.rotate(conn, ring, wait=0, batch=10, say=lines.append)
    assert "may now be removed" in lines[-1]


def test_an_upgrade_seals_the_values_stored_in_clear(client, district, runtime):
    """Down to 0011 (every value opened, in clear as before 0013), then up again."""
    ticket_id = _log(client, district)
    with runtime.db.session() as s:
        queue(s, runtime.channel, to=PHONE, body="请评价", ticket_id=ticket_id, now=utcnow())
    cfg = alembic_config(runtime.db.url)
    with runtime.db.engine.connect() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0012")
        connection.commit()
    try:
        assert _raw(runtime.db, "SELECT caller_name, caller_phone FROM tickets") == [(NAME, PHONE)]
        assert _raw(runtime.db, 'SELECT "to" FROM messages') == [(PHONE,)]
    finally:
        upgrade(runtime.db)
    [(name, phone, phone_hash)] = _raw(runtime.db, "SELECT caller_name, caller_phone, caller_phone_hash FROM tickets")
    assert name.startswith("e1.") and phone.startswith("e1.") and phone_hash
    assert {t["id"] for t in Api(client, district, "agent").get("/tickets", q=PHONE)["items"]} == {ticket_id}
    with runtime.db.read_session() as s:
        assert s.exec(select(Message.to)).one() == PHONE


def test_a_missing_key_stops_the_command(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HOTLINE_SECRET_KEY"}
    env.update(HOTLINE_KEY_FILE=str(tmp_path / "absent.key"), HOTLINE_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    done = subprocess.run(
        [sys.executable, "-m", "hotline", "keys", "status"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "hotline: cannot read the key file" in done.stderr


def test_sealing_is_cheap_enough_for_the_bulk_loader():
    """A million tickets in 120 s leave a few microseconds a ticket for its caller."""
    ring = crypto.Keyring([crypto.new_secret()])
    key = ring.active
    start = time.perf_counter()
    for i in range(2000):
        key.seal(f"1380000{i:04d}", b"tickets.caller_phone")
        key.seal("张三", b"tickets.caller_name")
        ring.caller_hashes(f"1380000{i:04d}", "张三")
    assert (time.perf_counter() - start) / 2000 < 200e-6


def test_rotation_while_a_server_writes(runtime, district, settings, tmp_path):
    """A process that reads the key file (as a server does) logs tickets throughout a rotation
    run beside it: it picks up the new key, nothing it wrote is left under the old one, and
    every ticket opens with the new key alone."""
    import threading

    from hotline.runtime import Runtime
    from hotline.tickets import create_ticket
    from hotline.workflow.engine import Actor

    key_file = tmp_path / "serving.key"
    crypto.write_key_file(key_file, [os.environ["HOTLINE_SECRET_KEY"]])
    file_settings = Settings(database_url=runtime.db.url, secret_key=None, key_file=key_file)
    serving = Runtime(Database(runtime.db.url, keys=crypto.load(runtime.db.url, file_settings)), settings)
    rotating = Database(runtime.db.url, keys=crypto.load(runtime.db.url, file_settings))
    stop, written = threading.Event(), []

    def log_tickets() -> None:
        while not stop.is_set():
            with serving.db.session() as s:
                data = {"type": "complaint", "category": "0101", "content": "噪音扰民", "caller_phone": PHONE}
                ticket, _ = create_ticket(s, serving, Actor(None, "agent", "agent"), data, now=utcnow())
                written.append(ticket.id)
            time.sleep(0.05)

    writer = threading.Thread(target=log_tickets)
    writer.start()
    try:
        with rotating.engine.connect() as conn:
            crypto.rotate(conn, rotating.keys, wait=crypto.RELOAD_SECONDS + 1, batch=5, say=print)
    finally:
        stop.set()
        writer.join()
        serving.db.dispose()
        rotating.dispose()
    [secret] = crypto.read_key_file(key_file)
    fresh = Database(runtime.db.url, keys=crypto.Keyring([secret]))
    try:
        with fresh.read_session() as s:
            assert len(written) > 10
            assert s.exec(select(Ticket.id).where(same_phone(s, PHONE)).order_by(Ticket.id)).all() == written
        with fresh.engine.connect() as conn:
            assert set(crypto.count_by_key(conn, fresh.keys)) == {fresh.keys.active.id}
    finally:
        fresh.dispose()


def test_the_callers_hashes_follow_a_change_of_caller_on_a_stored_ticket(client, district, runtime):
    tid = _log(client, district)
    with runtime.db.session() as s:
        s.get(Ticket, tid).title = "another title"  # the caller untouched: the hashes stay
    with runtime.db.session() as s:
        ticket = s.get(Ticket, tid)
        assert ticket.caller_phone_hash == runtime.db.keys.caller_hashes(PHONE, NAME)["caller_phone_hash"]
        ticket.caller_phone, ticket.caller_name = NEIGHBOUR, "李四"
    with runtime.db.read_session() as s:
        ticket = s.get(Ticket, tid)
        hashes = runtime.db.keys.caller_hashes(NEIGHBOUR, "李四")
        assert {column: getattr(ticket, column) for column in hashes} == hashes


def test_a_rotation_hashes_again_a_caller_written_as_a_server_changed_keys(client, district, runtime, tmp_path):
    """A server that reads the new key file in the middle of writing a ticket may seal its
    caller with the new key and hash it with the old one. Reseal looks at the seals and leaves
    that row alone: the rotation hashes the callers again, so the ticket is still found by its
    caller's phone once the old key is retired."""
    ticket_id = _log(client, district)
    old = os.environ["HOTLINE_SECRET_KEY"]
    new = crypto.new_secret()
    key_file = tmp_path / "rotating.key"
    crypto.write_key_file(key_file, [new, old])  # a rotation under way: the new key seals
    settings = Settings(database_url=runtime.db.url, secret_key=None, key_file=key_file)
    rotating = Database(runtime.db.url, keys=crypto.load(runtime.db.url, settings))
    try:
        with rotating.engine.connect() as conn:
            crypto.reseal(conn, rotating.keys, batch=10)
            # The row as that server left it: sealed with the new key, hashed with the old one.
            stale = crypto.Keyring([old]).caller_hashes(PHONE, NAME)
            conn.execute(
                text(
                    "UPDATE tickets SET caller_phone_hash = :caller_phone_hash, caller_tail_hash = :caller_tail_hash, "
                    "caller_name_hash = :caller_name_hash WHERE id = :id"
                ),
                {**stale, "id": ticket_id},
            )
            conn.commit()
            said: list[str] = []
            crypto.rotate(conn, rotating.keys, wait=0, batch=10, say=said.append)
    finally:
        rotating.dispose()
    assert crypto.read_key_file(key_file) == [new]
    assert any("1 callers hashed again" in line for line in said), said
    fresh = Database(runtime.db.url, keys=crypto.Keyring([new]))
    try:
        with fresh.read_session() as s:
            assert s.exec(select(Ticket.id).where(same_phone(s, PHONE))).all() == [ticket_id]
    finally:
        fresh.dispose()


def test_hashing_callers_again_seals_again_what_an_older_key_sealed(client, district, runtime):
    """rehash, on a ticket written with the old key after the rotation's last look: sealed and
    hashed anew, so it opens and is found once the old key retires."""
    ticket_id = _log(client, district)
    new = crypto.new_secret()
    ring = crypto.Keyring([new, os.environ["HOTLINE_SECRET_KEY"]])
    with runtime.db.engine.connect() as conn:
        assert crypto.rehash(conn, ring, after_id=ticket_id - 1) == 1
        assert crypto.rehash(conn, ring, after_id=ticket_id - 1) == 0  # nothing left to change
    fresh = Database(runtime.db.url, keys=crypto.Keyring([new]))
    try:
        with fresh.read_session() as s:
            assert s.exec(select(Ticket.id).where(same_phone(s, PHONE))).all() == [ticket_id]
            ticket = s.get(Ticket, ticket_id)
            assert (ticket.caller_phone, ticket.caller_name) == (PHONE, NAME)
    finally:
        fresh.dispose()


def test_the_bulk_writer_hashes_a_caller_with_the_key_that_seals_it(runtime):
    """The demo loader and the import make their rows with one key: a rotation's new key file,
    read in the middle of a load, cannot leave a row sealed with one key and hashed with the
    other (which the caller's phone would not find once the old key retires)."""
    from hotline.demo.writer import COLUMNS, Writer

    writer = Writer(runtime)
    ring = writer.keys = copy.copy(runtime.db.keys)  # the runtime's own ring stays as it was
    try:
        make = writer.row_maker("tickets")
        sealing = ring.active
        # The key file read again as the load goes on: a new key seals from now on.
        ring.keys = [crypto.Key(crypto.new_secret()), *ring.keys]
        ring.by_id = {k.id: k for k in ring.keys}
        ticket = Ticket(type="complaint", content="楼道灯坏了", caller_phone=PHONE, caller_name=NAME)
        row = dict(zip(COLUMNS["tickets"], make(ticket), strict=True))
    finally:
        writer.conn.close()
    assert ring.key_id(row["caller_phone"]) == sealing.id != ring.active.id
    assert {c: row[c] for c in crypto.CALLER_HASHES} == sealing.caller_hashes(PHONE, NAME)
