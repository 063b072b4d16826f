"""The stack's ceiling: FastAPI + pydantic + uvicorn + one raw SQLite INSERT per request.

`bench/intake.py` serves it with `uvicorn bench.ceiling_app:app` (the same uvicorn set-up,
worker count and machine as `hotline serve`) and compares `POST /api/v1/tickets` with it.

The endpoint is a sync `def`, like hotline's, so it runs in the same anyio thread pool; it
validates a body shaped like hotline's `TicketIn`, inserts one row shaped like a ticket
(same columns and indexes as hotline's `tickets` table) in a `BEGIN IMMEDIATE` transaction on
a WAL database with `synchronous=NORMAL` (hotline's pragmas), and returns a small JSON
object. No auth, no ORM, no history row, no counter: that is what makes it a ceiling.

The database file is `$CEILING_DATABASE` (default: ceiling.db in the working directory).
"""

import os
import sqlite3
import threading
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, status
from pydantic import BaseModel, ConfigDict, Field

DATABASE = os.environ.get("CEILING_DATABASE", "ceiling.db")

SCHEMA = """
CREATE TABLE IF NOT EXISTS tickets (
    id INTEGER PRIMARY KEY,
    number VARCHAR(20) NOT NULL UNIQUE,
    external_id VARCHAR(64) UNIQUE,
    workflow VARCHAR(40) NOT NULL,
    type VARCHAR(16) NOT NULL,
    category_id INTEGER,
    urgency VARCHAR(10) NOT NULL,
    channel VARCHAR(16) NOT NULL,
    caller_name VARCHAR(50),
    caller_phone VARCHAR(30),
    confidential BOOLEAN NOT NULL,
    anonymous BOOLEAN NOT NULL,
    reply_wanted BOOLEAN NOT NULL,
    title VARCHAR(200) NOT NULL,
    content TEXT NOT NULL,
    street VARCHAR(50),
    community VARCHAR(50),
    address VARCHAR(200),
    lat FLOAT,
    lng FLOAT,
    state VARCHAR(20) NOT NULL,
    version INTEGER NOT NULL,
    main_department_id INTEGER,
    created_by_id INTEGER,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    next_due_at DATETIME
);
CREATE INDEX IF NOT EXISTS ix_tickets_category_id ON tickets (category_id);
CREATE INDEX IF NOT EXISTS ix_tickets_caller_phone ON tickets (caller_phone);
CREATE INDEX IF NOT EXISTS ix_tickets_created_at ON tickets (created_at);
CREATE INDEX IF NOT EXISTS ix_tickets_next_due_at ON tickets (next_due_at);
CREATE INDEX IF NOT EXISTS ix_tickets_department_state ON tickets (main_department_id, state);
CREATE INDEX IF NOT EXISTS ix_tickets_state_created ON tickets (state, created_at);
"""

INSERT = """
INSERT INTO tickets (
    number, external_id, workflow, type, category_id, urgency, channel, caller_name, caller_phone,
    confidential, anonymous, reply_wanted, title, content, street, community, address, lat, lng,
    state, version, created_by_id, created_at, updated_at
) VALUES (?, ?, 'default', ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'registered', 1, 1, ?, ?)
"""

Short = Annotated[str, Field(max_length=50)]


class TicketIn(BaseModel):
    """The fields of hotline's TicketIn, with the same kinds of constraints."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: Literal["consultation", "complaint", "help", "suggestion", "report", "praise"]
    category: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.\-]+$")] | None = None
    urgency: Literal["normal", "urgent", "critical"] = "normal"
    channel: Literal["phone", "web", "app", "wechat", "email", "city", "api"] = "phone"
    caller_name: Short | None = None
    caller_phone: Annotated[str, Field(max_length=30, pattern=r"^[0-9+\-() ]*$")] | None = None
    confidential: bool = False
    anonymous: bool = False
    reply_wanted: bool = True
    title: Annotated[str, Field(max_length=200)] | None = None
    content: Annotated[str, Field(min_length=1, max_length=4000)]
    street: Short | None = None
    community: Short | None = None
    address: Annotated[str, Field(max_length=200)] | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lng: Annotated[float, Field(ge=-180, le=180)] | None = None
    external_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None


_local = threading.local()
_sequence = iter(range(1, 1 << 62))
_sequence_lock = threading.Lock()


def connection() -> sqlite3.Connection:
    """One connection per pool thread (sqlite3 connections are not shared between threads)."""
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(DATABASE, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        _local.conn = conn
    return conn


def _create_schema() -> None:
    with sqlite3.connect(DATABASE) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)


_create_schema()
app = FastAPI(title="ceiling", docs_url=None, redoc_url=None)


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/v1/tickets", status_code=status.HTTP_201_CREATED)
def create(body: TicketIn) -> dict[str, Any]:
    now = datetime.now(UTC)
    with _sequence_lock:
        seq = next(_sequence)
    number = f"{now:%Y%m%d}{os.getpid() % 1000:03d}{seq:07d}"
    title = body.title or body.content.splitlines()[0][:40]
    stamp = now.replace(tzinfo=None).isoformat(sep=" ")
    conn = connection()
    conn.execute("BEGIN IMMEDIATE")
    try:
        cursor = conn.execute(
            INSERT,
            (
                number,
                body.external_id,
                body.type,
                body.urgency,
                body.channel,
                body.caller_name,
                body.caller_phone,
                body.confidential,
                body.anonymous,
                body.reply_wanted,
                title,
                body.content,
                body.street,
                body.community,
                body.address,
                body.lat,
                body.lng,
                stamp,
                stamp,
            ),
        )
        ticket_id = cursor.lastrowid
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return {"id": ticket_id, "number": number, "state": "registered", "created_at": now.isoformat()}
