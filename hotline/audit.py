"""Tamper-evident records (安全审计): every ticket's history is a hash chain.

Each history row carries `chain`, the SHA-256 of the chain of the ticket's previous row (or
of nothing, for its first) and of the row's own content in a canonical form. Changing,
removing or inserting a row anywhere breaks the chain from there on; `hotline audit verify`
recomputes every chain and names the first row that does not match.

A chain per ticket, not one for the whole table: a change locks its ticket row already, so
two tickets' histories are written side by side without waiting for each other.
"""

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import tuple_
from sqlmodel import Session, func, select

from hotline.appends import kept_through_savepoints
from hotline.models import TicketEvent

# The chain before a ticket's first row.
GENESIS = "0" * 64
# The session.info key of the chains written in this unit of work (a session is one
# transaction: hotline.db), by ticket id.
_HEADS = "hotline.audit.heads"


# One encoder for every row: json.dumps with options builds a new one on each call, which
# doubled the cost of a row's canonical form on the bulk loaders' and the sweep's paths.
_CANONICAL = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


_MOMENT = "%Y-%m-%dT%H:%M:%S.%fZ"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The moment's parts, made once: the date of each day met, and the clock's minutes and
# seconds. strftime took half the time of a row's canonical form (the bulk loaders write
# millions); these give the same text in a fifth of the time.
_DATES: dict[int, str] = {}  # days since 1970 -> "YYYY-MM-DDT"
_MINUTES = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]
_SECONDS = [f"{s:02d}." for s in range(60)]


def _moment(at: datetime) -> str:
    """The UTC time as `at.astimezone(UTC).strftime(_MOMENT)` writes it."""
    if at.tzinfo is None:  # a naive time is local time to astimezone
        return at.astimezone(UTC).strftime(_MOMENT)
    delta = at - _EPOCH
    day = _DATES.get(delta.days)
    if day is None:
        day = _DATES[delta.days] = (_EPOCH + timedelta(days=delta.days)).strftime("%Y-%m-%dT")
    minute, second = divmod(delta.seconds, 60)
    micro = delta.microseconds
    return day + _MINUTES[minute] + _SECONDS[second] + (f"{micro:06d}Z" if micro else "000000Z")


def canonical(
    ticket_id: int,
    event: str,
    actor_id: int | None,
    actor_name: str,
    actor_role: str,
    from_state: str | None,
    to_state: str,
    at: datetime,
    details: dict[str, Any],
) -> bytes:
    """A history row's content as the bytes its hash is taken of: the same whichever way the
    row was written (the engine, the demo loader) and read back (either database)."""
    return canonical_of(
        ticket_id, event, actor_id, actor_name, actor_role, from_state, to_state, at, canonical_details(details)
    )


def canonical_details(details: dict[str, Any]) -> str:
    """A history row's details as its canonical form writes them: JSON, keys sorted, no
    spaces, text unescaped (the bulk loaders store this text too, to encode the details once)."""
    return _CANONICAL.encode(details)


# The canonical form of the fields between the ticket and the moment, by their values: a
# district has few actors, events and states, and each row's differ from another's only there.
_MIDDLES: dict[tuple, str] = {}
_MIDDLES_KEPT = 1 << 16


def canonical_of(
    ticket_id: int,
    event: str,
    actor_id: int | None,
    actor_name: str,
    actor_role: str,
    from_state: str | None,
    to_state: str,
    at: datetime,
    details: str,
) -> bytes:
    """`canonical`, with the details in their canonical JSON already (`canonical_details`):
    the JSON list [ticket_id, event, actor_id, actor_name, actor_role, from_state, to_state,
    moment, details], compact, made of its items' own JSON (the very bytes the encoder writes
    for the whole list)."""
    key = (event, actor_id, actor_name, actor_role, from_state, to_state)
    middle = _MIDDLES.get(key)
    if middle is None or type(actor_id) is bool:
        if len(_MIDDLES) >= _MIDDLES_KEPT:
            _MIDDLES.clear()
        middle = _CANONICAL.encode(list(key))[1:-1]
        if type(actor_id) is not bool:  # True == 1 as a key, not as JSON
            _MIDDLES[key] = middle
    head = str(ticket_id) if type(ticket_id) is int else _CANONICAL.encode(ticket_id)
    # A moment is digits and -T:.Z only: its JSON string is itself in quotes.
    return f'[{head},{middle},"{_moment(at)}",{details}]'.encode()


def link(previous: str, content: bytes) -> str:
    return hashlib.sha256(previous.encode() + content).hexdigest()


def chain_of(previous: str, row: TicketEvent) -> str:
    return link(
        previous,
        canonical(
            row.ticket_id,
            row.event,
            row.actor_id,
            row.actor_name,
            row.actor_role,
            row.from_state,
            row.to_state,
            row.at,
            row.details,
        ),
    )


def seal(session: Session, row: dict[str, Any]) -> None:
    """Set a new history row's chain (its columns, before it is written): after the ticket's
    last row, the one written earlier in this transaction or else the last one stored."""
    heads: dict[int, str] = session.info.setdefault(_HEADS, {})
    ticket_id = row["ticket_id"]
    previous = heads.get(ticket_id)
    if previous is None:
        if row["from_state"] is None:  # the ticket's first row
            previous = GENESIS
        else:
            with session.no_autoflush:
                previous = session.exec(
                    select(TicketEvent.chain)
                    .where(TicketEvent.ticket_id == ticket_id)
                    .order_by(TicketEvent.id.desc())
                    .limit(1)
                ).first()
            previous = previous or GENESIS
    row["chain"] = heads[ticket_id] = link(
        previous,
        canonical(
            ticket_id,
            row["event"],
            row["actor_id"],
            row["actor_name"],
            row["actor_role"],
            row["from_state"],
            row["to_state"],
            row["at"],
            row["details"],
        ),
    )


def prime(session: Session, ticket_ids: list[int]) -> None:
    """Read the last chain link of many tickets in one statement, for the rows this
    transaction is about to add to them (a batch of the scheduler's): what `seal` would read
    one ticket at a time. Only for tickets with no row added yet in this transaction."""
    heads: dict[int, str] = session.info.setdefault(_HEADS, {})
    wanted = [t for t in ticket_ids if t not in heads]
    if not wanted:
        return
    last = (
        select(func.max(TicketEvent.id)).where(TicketEvent.ticket_id.in_(wanted)).group_by(TicketEvent.ticket_id)
    ).scalar_subquery()
    with session.no_autoflush:
        found = session.exec(select(TicketEvent.ticket_id, TicketEvent.chain).where(TicketEvent.id.in_(last))).all()
    for ticket_id, chain in found:
        heads.setdefault(ticket_id, chain or GENESIS)
    for ticket_id in wanted:  # no history yet (only a bulk load makes such a ticket)
        heads.setdefault(ticket_id, GENESIS)


# The rows a savepoint rolled back are no link of any chain: the heads as it found them.
kept_through_savepoints(_HEADS, dict)


@dataclass(frozen=True)
class Break:
    """The first history row whose chain does not match."""

    ticket_id: int
    row_id: int
    expected: str
    found: str | None

    def __str__(self) -> str:
        return (
            f"ticket {self.ticket_id}: history row {self.row_id} does not match its chain "
            f"(expected {self.expected[:16]}…, found {(self.found or 'nothing')[:16]}…)"
        )


# What a history row's link is computed from, and the link: read as plain rows, not ORM
# objects (a city's history is tens of millions of rows).
_CHAINED = (
    TicketEvent.ticket_id,
    TicketEvent.id,
    TicketEvent.event,
    TicketEvent.actor_id,
    TicketEvent.actor_name,
    TicketEvent.actor_role,
    TicketEvent.from_state,
    TicketEvent.to_state,
    TicketEvent.at,
    TicketEvent.details,
    TicketEvent.chain,
)


def _rows(session: Session, batch: int) -> Iterator[Any]:
    """Every history row (its chained columns), ticket by ticket, each ticket's in order
    (keyset pages: memory stays flat whatever the table's size)."""
    after = (0, 0)
    while True:
        rows = session.execute(
            select(*_CHAINED)
            .where(tuple_(TicketEvent.ticket_id, TicketEvent.id) > after)
            .order_by(TicketEvent.ticket_id, TicketEvent.id)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        after = (rows[-1].ticket_id, rows[-1].id)


def verify(session: Session, *, batch: int = 5000) -> tuple[int, Break | None]:
    """Recompute every ticket's chain: how many rows were checked, and the first that does
    not match (None when all do)."""
    ticket, previous, checked = None, GENESIS, 0
    for row in _rows(session, batch):
        if row.ticket_id != ticket:
            ticket, previous = row.ticket_id, GENESIS
        expected = chain_of(previous, row)
        if row.chain != expected:
            return checked, Break(row.ticket_id, row.id, expected, row.chain)
        previous = expected
        checked += 1
    return checked, None
