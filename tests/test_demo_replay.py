"""The demo loader against the engine: every demo history, replayed through the gateway and
the scheduler into an empty database with the same directory, leaves the same rows.

The people's events of each history (everything but the scheduler's) are fired at their
times through hotline.workflow.engine.fire (a citizen's rating through the rating link, a
rectification through hotline.evaluation.rectifications); between them, hotline.scheduler.sweep
runs at every minute the demo's scheduler acted on a ticket (hotline.demo.life.next_sweep).
Then every column of every ticket and of every row it owns is compared, ids and the rating
links' random tokens aside.
"""

import heapq
import io
import re
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import select

from hotline import audit
from hotline.config import Settings
from hotline.db import Database
from hotline.demo import load_demo
from hotline.demo.life import at, next_sweep, seconds
from hotline.evaluation.ratings import rate_by_link
from hotline.evaluation.rectifications import decide_rectification, report_rectification
from hotline.migrate import upgrade
from hotline.models import (
    Approval,
    Assignment,
    Callback,
    Category,
    Escalation,
    Message,
    Notification,
    RatingInvitation,
    Rectification,
    SupervisionOrder,
    Ticket,
    TicketCounter,
    TicketEvent,
    User,
)
from hotline.runtime import Runtime
from hotline.scheduler import sweep
from hotline.tickets import TICKET_FIELDS, create_ticket
from hotline.workflow.engine import Actor, fire

# A Friday morning in Asia/Shanghai, in office hours.
NOW = datetime(2026, 11, 27, 2, 30, tzinfo=UTC)
TICKETS = 300
SEED = 1
TOKEN = re.compile(r"/rate/\S+ ")

# The rows a ticket owns, by table; `maps` names the columns that point at another of the
# ticket's rows (compared by position, as ids differ).
CHILDREN: dict[str, tuple[type, dict[str, str]]] = {
    "assignments": (Assignment, {}),
    "approvals": (Approval, {}),
    "callbacks": (Callback, {}),
    "escalations": (Escalation, {}),
    "supervision_orders": (SupervisionOrder, {}),
    "notifications": (Notification, {}),
    "messages": (Message, {}),
    "rating_invitations": (RatingInvitation, {"message_id": "messages"}),
    "rectifications": (Rectification, {"callback_id": "callbacks"}),
}
# History details that name a row of the ticket's, or a ticket.
DETAIL_ROWS = {
    "lapsed_orders": "supervision_orders",
    "approval_id": "approvals",
    "invitation": "rating_invitations",
    "supervision_order": "supervision_orders",
    "order": "supervision_orders",
    "rectification": "rectifications",
}
DETAIL_TICKETS = ("master", "merged_ticket")


def _runtime(db: Database) -> Runtime:
    rt = Runtime(db, Settings(database_url=db.url, embedded_scheduler=False))
    rt.clock = lambda: NOW
    return rt


def _rows(rt: Runtime) -> dict[str, Any]:
    """Every ticket and the rows it owns, by ticket id, in id order (history: in time order)."""
    with rt.db.read_session() as s:
        out: dict[str, Any] = {"tickets": {t.id: t for t in s.exec(select(Ticket).order_by(Ticket.id)).all()}}
        for name, (model, _) in CHILDREN.items():
            rows = defaultdict(list)
            for row in s.exec(select(model).where(model.ticket_id.is_not(None)).order_by(model.id)).all():
                rows[row.ticket_id].append(row)
            out[name] = rows
        events = defaultdict(list)
        for row in s.exec(select(TicketEvent).order_by(TicketEvent.at, TicketEvent.id)).all():
            events[row.ticket_id].append(row)
        out["events"] = events
    return out


class Replay:
    """Fires the demo's histories, in time order across tickets, into the replay database."""

    def __init__(self, rt: Runtime, demo: dict[str, Any]) -> None:
        self.rt, self.demo = rt, demo
        self.ids: dict[int, int] = {}  # demo ticket id -> replayed ticket id
        self.last: dict[int, int] = {}  # demo ticket id -> its last event (epoch second)
        self.by_number = {t.number: t.id for t in demo["tickets"].values()}
        with rt.db.read_session() as s:
            self.users = {u.id: Actor.of(u) for u in s.exec(select(User)).all()}
            self.categories = {c.id: c.code for c in s.exec(select(Category)).all()}

    def run(self) -> None:
        """The people's events in time order; a sweep at each minute a ticket is next due."""
        queue: list[tuple] = []
        for ticket_id, rows in self.demo["events"].items():
            for row in rows:
                if row.actor_role != "system" and row.event != "merge_in":
                    heapq.heappush(queue, (seconds(row.at), 0, row.id, ticket_id, row))
        due: dict[int, int | None] = {}  # demo ticket id -> its next sweep
        while queue:
            t, kind, _, ticket_id, row = heapq.heappop(queue)
            if kind == 0:
                self.person(ticket_id, row)
                self.last[ticket_id] = t
                due[ticket_id] = self.schedule(queue, ticket_id)
                if row.event == "merge":  # the master changed too
                    master = row.details["master"]
                    self.last[master] = max(self.last[master], t)
                    due[master] = self.schedule(queue, master)
                continue
            swept = [demo_id for demo_id, when in due.items() if when == t]
            if not swept:
                continue  # rescheduled since
            report = sweep(self.rt, now=at(t), with_surges=False)
            for number, _, _ in report.steps + report.skipped:  # each wrote a history row
                self.last[self.by_number[number]] = t
            for demo_id in swept:
                due[demo_id] = self.schedule(queue, demo_id)

    def schedule(self, queue: list, demo_id: int) -> int | None:
        """The ticket's next sweep, as the demo's scheduler would run it (before now)."""
        with self.rt.db.read_session() as s:
            ticket_id = self.ids[demo_id]
            # The ticket's own clocks, and a community's it was passed to (二级派单).
            looks = [s.get(Ticket, ticket_id).next_due_at]
            looks += s.exec(select(Assignment.next_due_at).where(Assignment.ticket_id == ticket_id)).all()
        next_due = min((look for look in looks if look is not None), default=None)
        t = next_sweep(next_due, self.last[demo_id])
        if t is None or t >= seconds(NOW):
            return None
        heapq.heappush(queue, (t, 1, 0, demo_id, None))
        return t

    def actor(self, row: TicketEvent) -> Actor:
        return self.users[row.actor_id]

    def person(self, demo_id: int, row: TicketEvent) -> None:
        now, d = row.at, row.details
        if row.event == "create":
            self.create(demo_id, row)
            return
        ticket_id = self.ids[demo_id]
        with self.rt.db.session() as s:
            if row.event == "rectification_report":
                rect = self.counterpart(s, "rectifications", demo_id, d["rectification"])
                verification = self.find("rectifications", demo_id, d["rectification"]).verification
                report_rectification(
                    s, self.rt, rect, self.actor(row), verification=verification, measures=d["measures"], now=now
                )
            elif row.event == "rectification_accept":
                rect = self.counterpart(s, "rectifications", demo_id, d["rectification"])
                decide_rectification(s, self.rt, rect, self.actor(row), accept=True, reason=d["reason"], now=now)
            elif row.actor_role == "citizen":
                link = s.exec(
                    select(RatingInvitation).where(
                        RatingInvitation.ticket_id == ticket_id,
                        RatingInvitation.used_at.is_(None),
                        RatingInvitation.revoked_at.is_(None),
                    )
                ).one()
                token = TOKEN.search(s.get(Message, link.message_id).body).group(0)[len("/rate/") : -1]
                rate_by_link(
                    s, self.rt, token, rating=d["rating"], solved=d["solved"], comment=d.get("comment"), now=now
                )
            else:
                fire(s, self.rt, ticket_id, row.event, self.actor(row), self.payload(s, demo_id, row), now=now)

    def payload(self, s, demo_id: int, row: TicketEvent) -> dict[str, Any]:
        """What the person sent: the event's fields, as the history keeps them."""
        ev = self.rt.workflows.get("default").events[row.event]
        payload = {k: v for k, v in row.details.items() if k in (*ev.required, *ev.optional)}
        if row.event == "dispatch" and row.details["routed_by"] != "given":
            del payload["department"]  # routed by the rules
        if not payload.get("co_departments", True):
            del payload["co_departments"]
        if "order" in payload:
            payload["order"] = self.counterpart(s, "supervision_orders", demo_id, payload["order"])
        if "master" in payload:
            payload["master"] = self.ids[payload["master"]]
        return payload

    def find(self, table: str, demo_id: int, row_id: int) -> Any:
        return next(r for r in self.demo[table][demo_id] if r.id == row_id)

    def counterpart(self, s, table: str, demo_id: int, row_id: int) -> int:
        """The replayed row at the demo row's place among the ticket's rows of that table."""
        position = [r.id for r in self.demo[table][demo_id]].index(row_id)
        model = CHILDREN[table][0]
        ids = s.exec(select(model.id).where(model.ticket_id == self.ids[demo_id]).order_by(model.id)).all()
        return ids[position]

    def create(self, demo_id: int, row: TicketEvent) -> None:
        ticket = self.demo["tickets"][demo_id]
        data = {name: getattr(ticket, name) for name in TICKET_FIELDS}
        data["category"] = self.categories[ticket.category_id]
        data["line"] = ticket.line  # a merged line's (一个号码), as the call would have named it
        with self.rt.db.session() as s:
            # The demo's number: the day's counter just below it.
            day, value = ticket.number[:8], int(ticket.number[8:])
            s.merge(TicketCounter(day=day, value=value - 1))
            s.flush()
            created, _ = create_ticket(s, self.rt, self.actor(row), data, now=row.at)
            self.ids[demo_id] = created.id


def _normal(row: Any, table: str, positions: dict, ticket_ids: dict) -> dict[str, Any]:
    """A row's columns as compared: no id, its own rows by position, tickets by demo id."""
    values = row.model_dump()
    values.pop("id")
    values.pop("ticket_id", None)
    for column, other in CHILDREN.get(table, (None, {}))[1].items():
        values[column] = positions[other].get(values[column])
    if table == "messages":
        values["body"] = TOKEN.sub("/rate/TOKEN ", values["body"])
    if table == "rating_invitations":
        values.pop("token_hash")
    if table == "tickets":
        values["master_id"] = ticket_ids.get(values["master_id"])
        # The demo's past is not told to other systems (docs/integration.md): the engine
        # numbers the events it publishes, the demo publishes none.
        values.pop("event_sequence")
    if table == "events":
        # Each side's chain is over its own ids: checked by audit.verify on each (below).
        values.pop("chain")
        details = dict(values["details"])
        for key, other in DETAIL_ROWS.items():
            if isinstance(details.get(key), list):
                details[key] = [positions[other].get(i) for i in details[key]]
            elif key in details:
                details[key] = positions[other].get(details[key])
        for key in DETAIL_TICKETS:
            if key in details:
                details[key] = ticket_ids.get(details[key])
        values["details"] = details
    return values


def _compare(demo: dict, replayed: dict, ids: dict[int, int]) -> list[str]:
    """Every difference between the demo's rows and the replay's, ticket by ticket."""
    back = {replay_id: demo_id for demo_id, replay_id in ids.items()}
    own = {demo_id: demo_id for demo_id in ids}
    diffs: list[str] = []
    for demo_id, replay_id in ids.items():
        number = demo["tickets"][demo_id].number
        sides = []
        for data, ticket_id, ticket_ids in ((demo, demo_id, own), (replayed, replay_id, back)):
            positions = {name: {r.id: i for i, r in enumerate(data[name][ticket_id])} for name in CHILDREN}
            side = {"tickets": [_normal(data["tickets"][ticket_id], "tickets", positions, ticket_ids)]}
            for name in (*CHILDREN, "events"):
                side[name] = [_normal(r, name, positions, ticket_ids) for r in data[name][ticket_id]]
            sides.append(side)
        for name, rows in sides[0].items():
            other = sides[1][name]
            if len(rows) != len(other):
                diffs.append(f"{number} {name}: the demo wrote {len(rows)}, the engine {len(other)}")
                continue
            for i, (a, b) in enumerate(zip(rows, other, strict=True)):
                for column in a:
                    if a[column] != b[column]:
                        diffs.append(f"{number} {name}[{i}].{column}: demo {a[column]!r}, engine {b[column]!r}")
    return diffs


@pytest.fixture
def demo_runtime(database: Database) -> Runtime:
    return _runtime(database)


def test_every_demo_history_replayed_through_the_engine_leaves_the_same_rows(demo_runtime, tmp_path):
    load_demo(demo_runtime, tickets=TICKETS, seed=SEED, out=io.StringIO())
    demo = _rows(demo_runtime)
    db = Database(f"sqlite:///{tmp_path / 'replay.db'}")
    upgrade(db)
    rt = _runtime(db)
    load_demo(rt, tickets=0, seed=SEED, out=io.StringIO())  # the same directory, the same ids
    replay = Replay(rt, demo)
    replay.run()
    replayed = _rows(rt)
    assert len(replay.ids) == TICKETS
    diffs = _compare(demo, replayed, replay.ids)
    for side in (demo_runtime, rt):  # the demo's chains and the engine's both hold
        with side.db.read_session() as s:
            checked, broken = audit.verify(s)
        assert broken is None and checked > 0, broken
    assert not diffs, f"{len(diffs)} differences, the first: " + "\n".join(diffs[:40])
    db.dispose()
