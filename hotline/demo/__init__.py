"""A demo district for `hotline demo-data`: departments, categories, routing rules, users,
and N tickets spread over the past six months, in every state of the default workflow.

The directory (a few hundred rows) goes through hotline.directory. The tickets do not go
through the ORM or the gateway: each ticket's life is played in plain Python
(hotline.demo.life), and every value the gateway and the scheduler would derive on the way
(deadlines, warning and escalation times, facts on assignments, close reasons, texts) comes
from the engine's own functions, run on the demo's rows. A large demo is played in worker
processes, a stretch of days each (_Player), and the rows they make are written in bulk by
this process with SQLAlchemy Core (hotline.demo.writer), ids assigned here so that child rows
need no round trip (on PostgreSQL each worker writes the stretches it plays, over a
connection of its own); into empty tables, the indexes are built after the rows.
tests/test_demo_replay.py replays the histories through the gateway and the scheduler and
holds every row to what the loader wrote. (No outbox messages are written: a demo
district has no other systems to tell.)

The data is reproducible for a seed; only the printed API tokens and the rating links'
tokens are random.
"""

import multiprocessing
import multiprocessing.util
import random
import time
from collections import Counter, deque
from datetime import date, datetime
from typing import TextIO

from sqlalchemy import select
from sqlmodel import Session

from hotline import directory
from hotline.db import collector_paused
from hotline.deadlines.calendar import LOCAL_TZ, WorkCalendar
from hotline.demo.callers import Callers, cumulative, season
from hotline.demo.calls import calls_of, demo_line, leaf_lines
from hotline.demo.district import (
    ANSWER_SHARE,
    CATEGORY_NODES,
    CITY,
    DEMO_PASSWORD,
    DEPARTMENTS,
    DISTRICT,
    LEAVES,
    STREETS,
    TOKEN_USERS,
    WORKFLOW,
    Directory,
    build_directory,
    demo_codes,
)
from hotline.demo.life import DAY, EPOCH_ORDINAL, Days, Life, Master, TicketRow, at, day_of, midnight, seconds
from hotline.demo.second_level import STREET_HELD, pass_down
from hotline.demo.writer import Batch, Writer, worker_count
from hotline.errors import Conflict, Invalid
from hotline.evaluation.ratings import app_secret
from hotline.indicators import totals
from hotline.knowledge.articles import MAX_IMPORT
from hotline.models import Department, User
from hotline.words import DATA_DIR
from hotline.workflow.definition import Workflow

__all__ = ["DEMO_PASSWORD", "load_demo"]

_HISTORY_DAYS = 183
_PROGRESS_EVERY = 100_000
# Below this many tickets the days are played in this process; above, in worker processes.
_PARALLEL_FROM = 20_000
# Hour-of-day profile of intake (local time), from midnight.
_HOURS = [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.5, 3, 6, 8, 8, 7, 5, 5, 7, 7, 6, 5, 4, 4, 4, 3, 2, 1.5]
_HOURS_CUM = cumulative(_HOURS)
# The last ticket of the day so many days back ends in that state, so that every state of
# the workflow occurs whatever the number of tickets; the oldest is left overdue, with its
# supervision orders unanswered.
_SHOWCASE = [
    ("registered", 0),
    ("dispatched", 5),
    ("returned", 2),
    ("replied", 3),
    ("in_progress", 4),
    ("pending_callback", 1),
    ("merged", 6),
    ("cancelled", 7),
    ("suspended", 9),
    ("in_progress", 20),
    # A street office's ticket in hand, passed to a community after the load (二级派单).
    (STREET_HELD, 1),
    (STREET_HELD, 2),
    (STREET_HELD, 3),
]


def _daily_counts(days: Days, first: int, last: int, now: int, n: int) -> list[int]:
    """How many tickets each day gets: fewer on days off, a slow rise, today only so far."""
    weights = []
    for day in range(first, last + 1):
        w = (1.0 if days.is_working(day) else 0.62) * (0.85 + 0.3 * (day - first) / max(1, last - first))
        if day == last:
            hour, rest = divmod(now - midnight(day), 3600)
            w *= (sum(_HOURS[:hour]) + _HOURS[hour] * rest / 3600) / sum(_HOURS)
        weights.append(w)
    total = sum(weights)
    counts, cum, given = [], 0.0, 0
    for w in weights:
        cum += w
        c = round(n * cum / total) - given
        counts.append(c)
        given += c
    return counts


def _times(rng: random.Random, day: int, count: int, now: int) -> list[int]:
    """Intake moments of one day, in order; all before now."""
    start = midnight(day)
    times = [start + h * 3600 + rng.randrange(3600) for h in rng.choices(range(24), cum_weights=_HOURS_CUM, k=count)]
    if start + DAY >= now:
        times = [t if t < now - 60 else start + rng.randrange(max(1, now - 60 - start)) for t in times]
    times.sort()
    return times


def _showcase(counts: list[int], first: int, last: int) -> dict[int, str]:
    """The day whose last ticket ends in each showcase state."""
    chosen: dict[int, str] = {}
    for state, ago in _SHOWCASE:
        day = last - ago
        while day >= first and (counts[day - first] == 0 or day in chosen):
            day -= 1
        if day >= first:
            chosen[day] = state
    return chosen


def _pick_master(rng: random.Random, pool: deque, created: int) -> Master | None:
    """A recent ticket still open three days on: the duplicate is merged into it."""
    for _ in range(min(6, len(pool))):
        master = pool[rng.randrange(len(pool))]
        if master.closed is None or master.closed > created + 3 * DAY:
            return master
    return None


def _start(rng: random.Random, life: Life, callers: Callers, d: Directory, ticket_id: int, number: str,
           created: int, stop_at: str | None, pool: deque):  # fmt: skip
    """A ticket at intake: its request, its creator, and the course its life takes."""
    path, stage, master = "dispatch", None, None
    street_held = stop_at == STREET_HELD
    if street_held:
        stop_at = "in_progress"
    if stop_at is None:
        r = rng.random()
        if r < 0.015:
            path = "cancel"
        elif r < 0.05:
            master = _pick_master(rng, pool, created)
            if master is not None:
                stage = "registered" if rng.random() < 0.6 else rng.choice(("dispatched", "dispatched", "in_progress"))
    elif stop_at == "cancelled":
        path = "cancel"
    elif stop_at == "pending_callback":
        path = "answer"
    elif stop_at == "merged":
        master = _pick_master(rng, pool, created)
        stage = "registered" if master is not None else None
    req = callers.pick(season(day_of(created)), master)
    if street_held:
        req = _street_request(callers, d, season(day_of(created)), req)
    answer_share = ANSWER_SHARE.get(req["type"], 0.0)
    if path == "dispatch" and master is None and stop_at is None and rng.random() < answer_share:
        path = "answer"
    creator = life.agent()
    place = d.places[req["place"]]
    channel = req["channel"]
    when = at(created)
    line = demo_line(d.leaf_lines[req["leaf"]], channel, ticket_id)
    tk = TicketRow(
        id=ticket_id, number=number, workflow=WORKFLOW, type=req["type"], urgency=req["urgency"],
        category_id=d.leaf_ids[req["leaf"]], channel=channel,
        external_id=f"JZ{number}" if channel == "city" else f"API-{number}" if channel == "api" else None,
        caller_name=req["caller_name"], caller_phone=req["caller_phone"], confidential=req["confidential"],
        anonymous=req["anonymous"], reply_wanted=req["reply_wanted"], title=req["title"], content=req["content"],
        street=place.street, community=place.community, address=req["address"], lat=req["lat"], lng=req["lng"],
        created_by_id=creator.id, created_at=when, leaf=req["leaf"], place=req["place"], stop_at=stop_at,
        line=line or d.default_line,
    )  # fmt: skip
    details = {"channel": channel, "workflow": WORKFLOW, **({"line": line} if line else {})}
    tk.events.append(("create", creator, None, "registered", when, details))
    request = (tk.type, tk.leaf, tk.place, req["issue"], tk.address, tk.lat, tk.lng, tk.urgency)
    return tk, request, path, stage, master


def _street_request(callers: Callers, d: Directory, when: int, req: dict) -> dict:
    """A request that the routing rules send to a street office: `req`, or another caller's."""
    streets = {s.code for s in STREETS}
    for _ in range(200):
        if d.routes[req["leaf"]][req["place"]][0] in streets:
            break
        req = callers.pick(when, None)
    return req


class _Played:
    """A stretch's tickets played, as rows ready for the writer; or, once a worker wrote them
    itself, what it wrote (`rows` None, `written` the rows by table)."""

    __slots__ = ("rows", "counters", "states", "tickets", "written")

    def __init__(self, batch: Batch, states: Counter, tickets: int) -> None:
        self.rows, self.counters, self.states, self.tickets = batch.rows, batch.counters, states, tickets
        self.written: dict[str, int] | None = None


class _Player:
    """Plays the demo's tickets a stretch of days at a time. Each stretch is played on its own:
    its random numbers come from the seed and its first day, its ticket ids and numbers
    continue the stretches before it (the days' counts are known in advance), and the other
    rows' ids come from a range reserved for it. So the same seed gives the same rows whether
    one process plays the stretches or several (hotline.demo's workers, forked after this is
    set up, share it). A duplicate is merged into a ticket of its own stretch."""

    def __init__(self, runtime, d: Directory, wf: Workflow, cal: WorkCalendar, link_key: bytes, district_name: str,
                 seed: int, now_ts: int, days: Days, callers: Callers, counts: list[int], first: int,
                 ids: dict[str, int], counters: dict[str, int], writer: Writer) -> None:  # fmt: skip
        self.d, self.wf, self.cal, self.days, self.callers = d, wf, cal, days, callers
        self.settings, self.link_key, self.district_name = runtime.settings, link_key, district_name
        self.seed, self.now_ts, self.first = seed, now_ts, first
        self.counts, self.counters = counts, counters
        self.showcase = _showcase(counts, first, day_of(now_ts))
        self.sqlite = writer.sqlite
        self.makers = {name: writer.row_maker(name) for name in ("tickets", *(table for table, _ in Batch.CHILDREN))}
        # The stretches: days with tickets, together until they have _STRETCH tickets; each
        # with its first ticket id, and the first id of each other table's range for it.
        self.stretches: list[tuple[list[int], int, dict[str, int]]] = []
        ticket_id, bases = ids["tickets"], {name: ids[name] for name in _ROOM}
        days_with_tickets = [day for day, count in enumerate(counts, first) if count > 0]
        stretch: list[int] = []
        for day in days_with_tickets:
            stretch.append(day)
            tickets = sum(counts[d - first] for d in stretch)
            if tickets >= _STRETCH or day == days_with_tickets[-1]:
                self.stretches.append((stretch, ticket_id, dict(bases)))
                ticket_id += tickets
                bases = {name: base + _room(tickets) for name, base in bases.items()}
                stretch = []

    def play(self, index: int) -> _Played:
        """A stretch's tickets: their lives played and their rows made."""
        days, ticket_id, bases = self.stretches[index]
        rng = random.Random(f"{self.seed}/{days[0]}")
        self.days.rng = self.callers.rng = rng
        batch: Batch | None = None

        def merged_in(master: TicketRow, event: tuple) -> None:
            batch.changed(master, event)

        life = Life(rng, self.wf, self.cal, self.days, self.d, self.now_ts, self.settings, self.district_name,
                    self.link_key, merged_in)  # fmt: skip
        life.ids.update({name: bases[name] for name in life.ids})
        batch = Batch(self.sqlite, dict(bases), self.makers)
        states: Counter = Counter()
        pool: deque = deque(maxlen=64)
        played = 0
        for day in days:
            count = self.counts[day - self.first]
            stamp = date.fromordinal(day + EPOCH_ORDINAL).strftime("%Y%m%d")
            base = self.counters.get(stamp, 0)
            for i, created in enumerate(_times(rng, day, count, self.now_ts)):
                ticket_id += 1
                number = f"{stamp}{base + i + 1:06d}"
                stop_at = self.showcase.get(day) if i == count - 1 else None
                tk, request, path, stage, master = _start(rng, life, self.callers, self.d, ticket_id, number, created,
                                                          stop_at, pool)  # fmt: skip
                life.live(tk, path, stage, master)
                tk.calls = calls_of(life, tk, source=self.settings.call_source)
                batch.add(tk)
                states[tk.state] += 1
                if tk.main_department_id is not None and tk.state not in ("merged", "cancelled"):
                    closed = seconds(tk.closed_at) if tk.closed_at is not None else None
                    pool.append(Master(tk, request, closed))
            batch.counters[stamp] = base + count
            played += count
        room = _room(played)
        for name in _ROOM:
            used = life.ids[name] if name in life.ids else batch.ids[name]
            if used - bases[name] > room:
                raise RuntimeError(f"hotline.demo: a stretch's {name} outgrew the ids reserved for them")
        return _Played(batch, states, played)


# Tickets of a stretch of days played together (a day of a large demo is one stretch).
_STRETCH = 1_000
# Ids reserved for each stretch's rows of these tables: so many a ticket, and a few over (a
# stretch of few tickets may have one with a long history). A stretch's rows take their ids
# in its range, so ids leave gaps between stretches.
_ROOM_PER_TICKET = 64
_ROOM_OVER = 256
_ROOM = (
    "ticket_events", "assignments", "approvals", "callbacks", "escalations", "supervision_orders",
    "notifications", "messages", "rating_invitations", "rectifications", "calls",
)  # fmt: skip


def _room(tickets: int) -> int:
    return tickets * _ROOM_PER_TICKET + _ROOM_OVER


# The player the forked workers play with, and the writer they write with where each
# writes its own stretches (set before they fork).
_PLAYER: _Player | None = None
_WRITER: Writer | None = None


def _play(index: int) -> _Played:
    return _PLAYER.play(index)


def _open_writer() -> None:
    """A worker's start, where the workers write: a connection of its own, closed when the
    pool lets it go."""
    _WRITER.reopen()
    multiprocessing.util.Finalize(None, _WRITER.release, exitpriority=10)


def _play_and_write(index: int) -> _Played:
    """A stretch played and written (its own transaction) by this worker: only what it
    wrote goes back."""
    return _WRITER.write_here(_PLAYER.play(index))


def _workers(n: int) -> int:
    """Worker processes for `n` tickets: one a core, none for a small demo."""
    return worker_count(n, _PARALLEL_FROM)


def _load_tickets(runtime, d: Directory, wf: Workflow, cal: WorkCalendar, link_key: bytes,
                  rng: random.Random, seed: int, now: datetime, n: int, workers: int | None, out: TextIO,
                  started: float) -> tuple[Counter, dict[str, int]]:  # fmt: skip
    """Play and write the tickets; return the final states counted and the rows written."""
    global _PLAYER, _WRITER
    now_ts = seconds(now)
    last = day_of(now_ts)
    first = last - _HISTORY_DAYS + 1
    days = Days(cal, first - 7, last + 400, rng)
    states: Counter = Counter()
    writer = Writer(runtime)
    with runtime.db.read_session() as session:
        district = runtime.district(session)
    callers = Callers(rng, d)
    try:
        ids, counters = writer.start(defer=True)
        counts = _daily_counts(days, first, last, now_ts, n)
        player = _Player(runtime, d, wf, cal, link_key, district.name, seed, now_ts, days, callers, counts, first,
                         ids, counters, writer)  # fmt: skip
        if workers is None:
            workers = _workers(n)
        done = 0

        def written(played: _Played) -> None:
            nonlocal done
            if played.written is None:
                writer.write(played)
            else:  # a worker wrote it
                writer.add(played.written)
            states.update(played.states)
            before, done = done, done + played.tickets
            if done // _PROGRESS_EVERY > before // _PROGRESS_EVERY:
                out.write(f"  {done:,} tickets ({time.monotonic() - started:.0f} s)\n")
                out.flush()

        if workers == 0:
            for index in range(len(player.stretches)):
                written(player.play(index))
        else:
            _PLAYER = player
            # fork: the workers inherit the player (the directory, the calendar, the keys) as
            # it is. On SQLite they only play, this process writes (one writer at a time); on
            # PostgreSQL each writes the stretches it plays, one transaction a stretch, over
            # a connection of its own (no rows handed over; the server's sessions work side by
            # side), and this process only counts. The stretches' ids and numbers are set
            # before any is played, so their order of commit does not matter; a load cut short
            # is for an empty database, loaded again.
            parallel = writer.parallel
            _WRITER = writer if parallel else None
            task = _play_and_write if parallel else _play
            try:
                context = multiprocessing.get_context("fork")
                with context.Pool(workers, initializer=_open_writer if parallel else None) as pool:
                    waiting: deque = deque()
                    for index in range(len(player.stretches)):
                        waiting.append(pool.apply_async(task, (index,)))
                        if len(waiting) > workers + 1:  # a few stretches ahead of the writer, no more
                            written(waiting.popleft().get())
                    while waiting:
                        written(waiting.popleft().get())
                    pool.close()  # the workers end (and close their connections) before the indexes
                    pool.join()
            finally:
                _PLAYER = _WRITER = None
    finally:
        writer.close()
    return states, writer.written


def _refuse_if_loaded(session: Session) -> None:
    taken = session.execute(select(Department.code).where(Department.code.in_(demo_codes()))).scalar()
    if taken is not None:
        raise Conflict(
            f"the demo district is loaded already (department {taken!r} exists); load the demo into an empty database"
        )
    names = ["admin", "agent1", "agent2", "supervisor1", "supervisor2"]
    user = session.execute(select(User.username).where(User.username.in_(names))).scalar()
    if user is not None:
        raise Conflict(f"the user {user!r} exists already; load the demo into an empty database")


# The demo's knowledge base: government-service articles written for this project (the
# evaluation set of bench/knowledge_eval.py uses the same ones).
KNOWLEDGE = DATA_DIR / "knowledge_demo.jsonl"


def _load_knowledge(runtime, now: datetime) -> int:
    """The demo's articles, imported as a department would send them, each issued by the
    demo department its short name names."""
    import json

    from hotline.knowledge.articles import import_rows

    full_names = {short: name for _, name, short in DEPARTMENTS}
    rows = [json.loads(line) for line in KNOWLEDGE.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        row["department"] = full_names.get(row["department"], row["department"])
    created = 0
    for start in range(0, len(rows), MAX_IMPORT):
        with runtime.db.session() as session:
            result = import_rows(session, rows[start : start + MAX_IMPORT], None, now)
        if result["errors"]:
            raise Conflict(f"the demo's articles do not import: {result['errors'][:3]}")
        created += result["created"]
    return created


def load_demo(runtime, *, tickets: int, seed: int = 12345, out: TextIO, workers: int | None = None) -> None:
    """Load the demo district and `tickets` tickets over the six months before runtime.now().

    Refuses (Conflict) when the demo district is there already: the demo is for an empty
    database. The same seed and the same now give the same data, whatever the number of
    `workers` (processes playing the tickets; by default one a core for a large demo, 0:
    this process plays them); the API tokens printed are new each time.
    """
    started = time.monotonic()
    if tickets < 0:
        raise Invalid("the number of tickets cannot be negative", field="tickets")
    if workers is not None and workers < 0:
        raise Invalid("the number of workers cannot be negative", field="workers")
    rng = random.Random(seed)
    wf = runtime.workflows.get(WORKFLOW)
    now = runtime.now()
    with runtime.db.session() as session:
        _refuse_if_loaded(session)
        d = build_directory(session, runtime, now, rng)
        d.leaf_lines = leaf_lines(runtime.workflows.lines)
        d.default_line = runtime.workflows.lines.default.number
        cal = runtime.calendar(session)
        link_key = app_secret(session, "rating_link", now)
    runtime.invalidate_district()  # the demo named its district
    out.write(
        f"demo district {CITY}{DISTRICT}: {len(d.departments)} departments, {len(STREETS)} streets, "
        f"{len(d.places)} communities, {len(CATEGORY_NODES)} categories ({len(LEAVES)} leaves), "
        f"{d.rules} routing rules\n"
        f"demo users, all with the password {DEMO_PASSWORD!r}:\n"
        "  admin (admin); agent1, agent2 (agent); supervisor1, supervisor2 (supervisor);\n"
        "  city12345, haochaping (integration: API tokens only, never the pages);\n"
        "  <code>.handler (handler) and <code>.leader (leader) for each department:\n"
    )
    for code, (_, name, _) in d.departments.items():
        out.write(f"    {code:<6} {name}\n")
    local_now = now.astimezone(LOCAL_TZ)
    out.write(f"tickets: {tickets:,} over the {_HISTORY_DAYS} days to {local_now:%Y-%m-%d %H:%M} (seed {seed})\n")
    out.flush()
    with collector_paused():
        states, written = _load_tickets(runtime, d, wf, cal, link_key, rng, seed, now, tickets, workers, out, started)
    out.write(
        f"wrote {written['tickets']:,} tickets, {written['ticket_events']:,} history rows, "
        f"{written['assignments']:,} assignments, {written['approvals']:,} approvals, "
        f"{written['callbacks']:,} callbacks, {written['escalations']:,} escalations, "
        f"{written['supervision_orders']:,} supervision orders, {written['notifications']:,} notices, "
        f"{written['rating_invitations']:,} rating links, {written['rectifications']:,} rectifications, "
        f"{written['calls']:,} calls\n"
        "states: " + ", ".join(f"{s} {states[s]:,}" for s in wf.states) + "\n"
    )
    out.write(f"knowledge base: {_load_knowledge(runtime, now):,} published articles\n")
    # The planner's view of the new rows (the knowledge base's too), before the totals'
    # queries read them all (without it, PostgreSQL counted a million tickets' callbacks in
    # 16 s rather than 0.3).
    runtime.db.refresh_statistics(after_bulk=True)
    with runtime.db.session() as session:  # the rows were written in bulk, past the gateway
        rows = totals.rebuild(session)
    out.write(f"running totals: {rows:,} rows\n")
    passed = pass_down(runtime, d, now, rng)
    out.write(
        f"passed to communities (二级派单) through the gateway: {sum(passed.values())} tickets, left "
        + ", ".join(f"{s} {n}" for s, n in sorted(passed.items()))
        + "\n"
    )
    with runtime.db.session() as session:
        tokens = [(username, directory.issue_token(session, username, now=now)) for username in TOKEN_USERS]
    out.write("API tokens (shown once; send 'Authorization: Bearer TOKEN'):\n")
    for username, token in tokens:
        out.write(f"token {username}: {token}\n")
    out.write(f"done in {time.monotonic() - started:.1f} s\n")
    out.flush()
