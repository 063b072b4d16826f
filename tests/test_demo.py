"""The demo district: a believable directory, and tickets the workflow engine can carry on."""

import io
import json
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text
from sqlmodel import select

from hotline import audit
from hotline.config import Settings
from hotline.db import Database
from hotline.deadlines import sla
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.demo import DEMO_PASSWORD, load_demo
from hotline.directory import issue_token, places
from hotline.errors import Conflict
from hotline.evaluation.ratings import BAD_RATINGS, app_secret, signature_ok
from hotline.indicators.stats import department_stats
from hotline.main import create_app
from hotline.migrate import upgrade
from hotline.models import (
    ROLES,
    Approval,
    Assignment,
    Callback,
    Category,
    Department,
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
from hotline.routing import route
from hotline.runtime import Runtime
from hotline.scheduler import sweep
from hotline.security import token_digest, verify_password
from hotline.workflow.definition import RETURN_FROM
from tests.helpers import foreign_key_definitions, index_definitions

# A Friday morning in Asia/Shanghai: the demo's now, so that the data is the same every run.
NOW = datetime(2026, 11, 27, 2, 30, tzinfo=UTC)
TOKEN_LINE = re.compile(r"^token (\S+): (hl_\S+)$", re.MULTILINE)
TICKETS = 300
# Changes outside the workflow's events (engine.changing): the state stays, the version moves.
ASIDE = {
    "rectification_report",
    "rectification_accept",
    "merge_in",
    "escalation_skipped",
    "invite_skipped",
    # A community's own ladder (二级派单).
    "community_warn",
    "community_urge",
}


def _demo_runtime(path) -> Runtime:
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    rt = Runtime(db, Settings(database_url=db.url, embedded_scheduler=False))
    rt.clock = lambda: NOW
    return rt


def _snapshot(rt: Runtime) -> dict:
    """Everything the demo wrote, read right after loading (before any test changes it)."""
    with rt.db.read_session() as s:
        by_ticket = {}
        for name, model in [("events", TicketEvent), ("assignments", Assignment), ("approvals", Approval),
                            ("callbacks", Callback), ("escalations", Escalation), ("orders", SupervisionOrder),
                            ("notices", Notification), ("invitations", RatingInvitation), ("messages", Message),
                            ("rectifications", Rectification)]:  # fmt: skip
            rows = defaultdict(list)
            for row in s.exec(select(model).order_by(model.id)).all():
                rows[row.ticket_id].append(row)
            by_ticket[name] = rows
        for rows in by_ticket["events"].values():
            rows.sort(key=lambda e: e.at)  # a merge's row on its master comes later in id order
        return {
            "tickets": s.exec(select(Ticket).order_by(Ticket.id)).all(),
            **by_ticket,
            "users": {u.id: u for u in s.exec(select(User)).all()},
            "departments": {d.id: d for d in s.exec(select(Department)).all()},
            "categories": s.exec(select(Category)).all(),
            "counters": dict(s.exec(select(TicketCounter.day, TicketCounter.value)).all()),
            "calendar": rt.calendar(s),
            "link_key": app_secret(s, "rating_link", NOW),
            "places": places(s),
        }


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    rt = _demo_runtime(tmp_path_factory.mktemp("demo") / "demo.db")
    out = io.StringIO()
    load_demo(rt, tickets=TICKETS, seed=1, out=out)
    yield rt, out.getvalue(), _snapshot(rt)
    rt.db.dispose()


@pytest.fixture(scope="module")
def data(demo):
    return demo[2]


@pytest.fixture(scope="module")
def wf(demo):
    return demo[0].workflows.get("default")


def _client(rt: Runtime) -> TestClient:
    return TestClient(create_app(rt.settings, runtime=rt))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _token(rt: Runtime, username: str) -> str:
    with rt.db.session() as s:
        return issue_token(s, username, now=rt.now())


# --- the directory --------------------------------------------------------------------------


def test_the_district_has_departments_street_offices_and_a_category_tree(data):
    departments = list(data["departments"].values())
    assert len(departments) >= 15
    assert sum(d.name.endswith("街道办事处") for d in departments) >= 8
    categories = data["categories"]
    by_id = {c.id: c for c in categories}
    parents = {c.parent_id for c in categories}
    leaves = [c for c in categories if c.id not in parents]
    assert len(leaves) >= 40
    assert all(c.department_id is not None for c in leaves)
    depths = {len(_ancestry(by_id, c)) for c in leaves}
    assert depths <= {2, 3} and 3 in depths
    assert len({t.street for t in data["tickets"]}) >= 8
    assert len(data["places"]) >= 8 and all(4 <= len(c) <= 8 for c in data["places"].values())
    assert {(t.street, t.community) for t in data["tickets"]} <= {
        (street, c) for street, communities in data["places"].items() for c in communities
    }
    assert len({(t.street, t.community) for t in data["tickets"]}) >= 30


def _ancestry(by_id, category) -> list:
    chain = []
    while category is not None:
        chain.append(category)
        category = by_id.get(category.parent_id)
    return chain


def test_users_of_every_role_share_the_one_printed_password(demo, data):
    _, out, _ = demo
    users = list(data["users"].values())
    assert {u.role for u in users} == set(ROLES)
    names = {u.username for u in users}
    assert {"admin", "agent1", "agent2", "supervisor1", "supervisor2"} <= names
    for dept in data["departments"].values():
        assert {f"{dept.code}.handler", f"{dept.code}.leader"} <= names
    # Hashed once: every demo user carries the same argon2 hash of the demo password.
    assert len({u.password_hash for u in users}) == 1
    assert verify_password(users[0].password_hash, DEMO_PASSWORD)
    assert DEMO_PASSWORD in out


def test_routing_rules_and_category_defaults_decide_the_first_dispatch(demo, data):
    rt, _, _ = demo
    how = set()
    with rt.db.read_session() as s:
        for ticket in data["tickets"]:
            for e in data["events"][ticket.id]:
                if e.event == "dispatch":
                    r = route(s, category_id=ticket.category_id, street=ticket.street, community=ticket.community)
                    assert (r.department.code, r.how) == (e.details["department"], e.details["routed_by"])
                    how.add(r.how.split(":")[0])
    assert how == {"rule", "category"}


# --- the tickets ----------------------------------------------------------------------------


def test_every_state_of_the_default_workflow_occurs(data, wf):
    assert len(data["tickets"]) == TICKETS
    assert {t.state for t in data["tickets"]} == set(wf.states)


def test_every_history_is_a_path_through_the_default_workflow(data, wf):
    users = data["users"]
    for ticket in data["tickets"]:
        rows = data["events"][ticket.id]
        first = rows[0]
        assert (first.event, first.from_state, first.to_state) == ("create", None, wf.initial), ticket.number
        assert first.at == ticket.created_at, ticket.number
        state, came_from, last_at, updated, moves = wf.initial, None, first.at, first.at, 0
        departments = {a.department_id for a in data["assignments"][ticket.id]}
        for row in rows[1:]:
            where = f"ticket {ticket.number}, event {row.id} ({row.event})"
            # Steps of the escalation ladder due at one sweep share its time.
            assert row.at > last_at or row.at == last_at and row.actor_role == "system", where
            _check_actor(users, departments, row, where)
            last_at = row.at
            if row.event in ASIDE:
                assert row.from_state == row.to_state == state, where
                updated, moves = row.at, moves + 1
                continue
            ev = wf.events[row.event]
            assert row.actor_role in ev.roles, where
            assert row.from_state == state, where
            if row.details.get("as_co_handler"):
                # The co-handling variant acts on the department's own assignment only.
                assert state in ev.co_sources and row.to_state == state, where
            else:
                assert state in ev.sources, where
                expected = state if ev.dest is None else came_from if ev.dest == RETURN_FROM else ev.dest
                assert row.to_state == expected, where
            if row.to_state == "returned" and state != "returned":
                came_from = state
            state, updated, moves = row.to_state, row.at, moves + 1
        assert ticket.state == state, ticket.number
        assert ticket.version == moves + 1, ticket.number
        assert ticket.updated_at == updated and last_at < NOW, ticket.number


def _check_actor(users, departments, row, where: str) -> None:
    if row.actor_id is None:
        assert (row.actor_name, row.actor_role) in {("scheduler", "system"), ("citizen", "citizen")}, where
        return
    user = users[row.actor_id]
    assert (user.username, user.role) == (row.actor_name, row.actor_role), where
    if user.role in ("handler", "leader"):
        assert user.department_id in departments, where


def test_ticket_numbers_are_daily_sequences_and_the_counters_continue_them(data):
    numbers = [t.number for t in data["tickets"]]
    assert len(set(numbers)) == len(numbers)
    highest: dict[str, int] = {}
    for t in data["tickets"]:
        assert re.fullmatch(r"\d{14}", t.number)
        day = t.created_at.astimezone(LOCAL_TZ).strftime("%Y%m%d")
        assert t.number[:8] == day
        highest[day] = max(highest.get(day, 0), int(t.number[8:]))
    assert highest == data["counters"]
    assert [t.created_at for t in data["tickets"]] == sorted(t.created_at for t in data["tickets"])


def test_the_clocks_are_what_sla_computes_from_their_inputs(data, wf):
    cal = data["calendar"]
    for t in data["tickets"]:
        expected = Ticket(**t.model_dump())
        sla.recompute(cal, wf, expected)
        for name in ("sign_by", "handle_by", "callback_by", "deadlines_provisional", "due_at", "due_kind",
                     "warn_at", "escalation_step", "next_due_at"):  # fmt: skip
            assert getattr(t, name) == getattr(expected, name), f"{t.number} {name}"
        # The scheduler is up to date: nothing was due by now that it has not done.
        assert t.next_due_at is None or t.next_due_at > NOW, t.number
    overdue = [t for t in data["tickets"] if t.due_at is not None and t.due_at < NOW and t.due_kind != "callback"]
    assert overdue


def test_the_columns_match_the_history(data, wf):
    by_id = {t.id: t for t in data["tickets"]}
    for t in data["tickets"]:
        rows = data["events"][t.id]
        names = [e.event for e in rows]
        where = t.number
        assert t.dispatch_count == names.count("dispatch") + names.count("redispatch"), where
        assert t.rehandle_count == names.count("rehandle"), where
        assert t.designated == (t.dispatch_count >= wf.limits.designate_after_dispatches), where
        if t.dispatch_count:
            last_dispatch = [e for e in rows if e.event in ("dispatch", "redispatch")][-1]
            assert t.dispatched_at == last_dispatch.at, where
            restarts = [e.at for e in rows if e.event in ("dispatch", "redispatch", "rehandle")]
            assert t.handle_started_at == restarts[-1], where
        else:
            assert t.main_department_id is None and t.sign_by is None and t.handle_started_at is None, where
        final = wf.states[t.state].final
        assert (t.closed_at is not None) == final == (t.close_reason is not None), where
        if t.state == "cancelled":
            assert t.close_reason == "cancelled", where
        if t.state == "merged":
            master = by_id[t.master_id]
            merged_at = rows[-1].at
            assert t.close_reason == "merged" and master.id < t.id and master.state != "merged", where
            assert master.closed_at is None or master.closed_at > merged_at, where
        else:
            assert t.master_id is None, where
        if t.state == "archived":
            assert t.close_reason in {"satisfied", "dissatisfied_closed", "not_called_back", "no_reply_wanted"}, where
        assert (t.state == "returned") == (t.return_from_state is not None), where
        assert (t.state == "suspended") == (t.suspended_at is not None), where
        if t.state in ("replied", "pending_callback"):
            assert t.replied_at is not None and (t.result or t.answer), where


def test_every_history_chain_holds(demo, data):
    """The loader chains each ticket's rows itself, with the details stored as their canonical
    JSON: `hotline audit verify` finds every chain whole, and the stored text is the value."""
    rt = demo[0]
    with rt.db.read_session() as s:
        checked, broken = audit.verify(s)
        stored = s.exec(text("SELECT details FROM ticket_events ORDER BY id LIMIT 500")).all()
    assert broken is None and checked >= sum(len(rows) for rows in data["events"].values())
    assert all(audit.canonical_details(json.loads(row[0])) == row[0] for row in stored)


def test_assignments_approvals_and_callbacks_match_the_state(data):
    for t in data["tickets"]:
        where = t.number
        active = [a for a in data["assignments"][t.id] if a.status != "withdrawn"]
        mains = [a for a in active if a.role == "main"]
        if t.state in ("merged", "cancelled") or t.main_department_id is None:
            assert not active, where
        else:
            assert len(mains) == 1 and mains[0].department_id == t.main_department_id, where
            expected = {
                "dispatched": "dispatched", "in_progress": "signed", "suspended": "signed", "replied": "replied",
                "pending_callback": "replied", "archived": "replied",
                "returned": "dispatched" if t.return_from_state == "dispatched" else "signed",
                # Passed to a community (二级派单): the street office signed for it.
                "sub_dispatched": "signed", "sub_in_progress": "signed", "sub_replied": "signed",
            }[t.state]  # fmt: skip
            assert mains[0].status == expected, where
            if t.state in ("replied", "pending_callback", "archived"):
                assert all(a.status == "replied" for a in active), where
        pending = [p for p in data["approvals"][t.id] if p.status == "pending"]
        if t.state == "returned":
            assert [(p.kind, p.from_state) for p in pending] == [("return", t.return_from_state)], where
        else:
            assert all(p.kind in ("extension", "suspension") for p in pending), where
            assert not pending or t.state == "in_progress", where
        for p in data["approvals"][t.id]:
            assert (p.status == "pending") == (p.decided_at is None), where
        callbacks = data["callbacks"][t.id]
        assert [c.attempt for c in callbacks] == list(range(1, len(callbacks) + 1)), where
        for c in callbacks:
            assert c.reached == (c.rating is not None) == (c.solved is not None), where
            assert c.rating is None or 1 <= c.rating <= 5, where


def test_main_assignments_keep_the_facts_performance_counts(data, wf):
    cal = data["calendar"]
    for t in data["tickets"]:
        mains = [a for a in data["assignments"][t.id] if a.role == "main"]
        names = [e.event for e in data["events"][t.id]]
        for a in mains:
            assert a.sign_by == sla.due(cal, a.dispatched_at, wf.limits.sign.pick(t.type, t.urgency)).at, t.number
            assert a.signed_at is None or a.signed_on_time == (a.signed_at <= a.sign_by), t.number
            assert a.first_replied_at is None or a.replied_on_time == (a.first_replied_at <= a.handle_by), t.number
        assert sum(a.returned for a in mains) == names.count("return"), t.number
        assert sum(a.rehandles for a in mains) == t.rehandle_count, t.number


def test_the_performance_board_ranks_the_demo_departments(demo):
    rt, _, _ = demo
    with rt.db.read_session() as s:
        board = department_stats(s, rt, (NOW - timedelta(days=183)).date(), NOW.date())
    scored = [r for r in board["departments"] if r["score"] is not None]
    assert len(scored) >= 10 and board["red_list"]
    assert all(0 <= r["signed_on_time_rate"] <= 1 for r in scored if r["signed_on_time_rate"] is not None)


def test_the_escalation_ladder_left_its_rows(data):
    steps = 0
    for t in data["tickets"]:
        events = data["events"][t.id]
        # The ticket's ladder, and a community's own (二级派单), each step with its escalation row.
        ladder = [
            e for e in events if e.event in ("warn", "urge", "supervise", "report", "community_warn", "community_urge")
        ]
        steps += len(ladder)
        keys = {(e.details["deadline"], e.details["deadline_at"], e.event.removeprefix("community_")) for e in ladder}
        rows = {(x.deadline_kind, x.deadline_at.isoformat(), x.step) for x in data["escalations"][t.id]}
        assert rows == keys, t.number
        orders = {o.id: o for o in data["orders"][t.id]}
        assert sorted(orders) == sorted(e.details["supervision_order"] for e in ladder if e.event == "supervise")
        answered = {e.details["order"] for e in events if e.event == "answer_supervision"}
        assert answered == {o.id for o in orders.values() if o.status == "answered"}, t.number
        notices = {n.kind for n in data["notices"][t.id]}
        ladder_notices = notices & {"warn", "urge", "supervise", "report"}
        assert {e.event.removeprefix("community_") for e in ladder} == ladder_notices, t.number
    assert steps > 0


def test_rating_links_and_rectifications_follow_the_callbacks(data):
    links = rectifications = 0
    for t in data["tickets"]:
        events, callbacks = data["events"][t.id], data["callbacks"][t.id]
        invitations = data["invitations"][t.id]
        messages = {m.id: m for m in data["messages"][t.id]}
        assert [i.id for i in invitations] == [e.details["invitation"] for e in events if e.event == "invite"]
        for invitation in invitations:
            message = messages[invitation.message_id]
            assert (message.to, message.status, message.channel) == (t.caller_phone, "stored", "stored")
            token = re.search(r"/rate/(\S+) ", message.body).group(1)
            assert token_digest(token) == invitation.token_hash and signature_ok(data["link_key"], token)
            links += 1
        by_link = [c for c in callbacks if c.source == "link"]
        assert [c.at for c in by_link] == [i.used_at for i in invitations if i.used_at], t.number
        # A rehandled ticket starts a new round: its own rating link, its own attempts.
        this_round = [c for c in callbacks if t.callback_started_at is not None and c.at >= t.callback_started_at]
        unreached = [c for c in this_round if not c.reached]
        exhausted = unreached[2].at if len(unreached) >= 3 else None
        assert t.callbacks_exhausted_at == exhausted, t.number
        sent = [i for i in invitations if t.callback_started_at is not None and i.created_at >= t.callback_started_at]
        assert not sent or t.invitation_sent_at == sent[-1].created_at, t.number
        assert all(c.department_id == t.main_department_id for c in callbacks), t.number
        bad = [c.id for c in callbacks if c.rating in BAD_RATINGS and c.department_id is not None]
        rects = data["rectifications"][t.id]
        assert [r.callback_id for r in rects] == bad, t.number
        for r in rects:
            rectifications += 1
            done = {e.event for e in events if e.details.get("rectification") == r.id}
            expected = {"open": set(), "reported": {"rectification_report"}}.get(
                r.status, {"rectification_report", "rectification_accept"}
            )
            assert done == expected and (r.next_due_at is None) == (r.status != "open"), t.number
    assert links and rectifications


def test_loading_twice_refuses(demo):
    rt, _, _ = demo
    with pytest.raises(Conflict, match=r"loaded already \(department '[a-z]+' exists\)"):
        load_demo(rt, tickets=10, seed=1, out=io.StringIO())


def test_the_same_seed_gives_the_same_tickets_in_one_process_or_several(tmp_path):
    def tickets(name: str, workers: int):
        rt = _demo_runtime(tmp_path / name)
        load_demo(rt, tickets=2500, seed=7, out=io.StringIO(), workers=workers)  # a few stretches of days
        with rt.db.read_session() as s:
            rows = s.exec(
                select(Ticket.id, Ticket.number, Ticket.state, Ticket.title, Ticket.caller_phone, Ticket.version,
                       Ticket.due_at, Ticket.master_id)
                .order_by(Ticket.id)
            ).all()  # fmt: skip
            events = s.exec(
                select(TicketEvent.id, TicketEvent.ticket_id, TicketEvent.event, TicketEvent.at, TicketEvent.chain)
                .order_by(TicketEvent.id)
            ).all()  # fmt: skip
            parts = s.exec(
                select(Assignment.id, Assignment.ticket_id, Assignment.department_id, Assignment.status)
                .order_by(Assignment.id)
            ).all()  # fmt: skip
        rt.db.dispose()
        return rows, events, parts

    alone = tickets("a.db", 0)
    assert len(alone[0]) == 2500 and alone[1] and alone[2]
    assert tickets("b.db", 0) == alone
    assert tickets("c.db", 2) == alone


# --- the engine carries on ------------------------------------------------------------------


def test_printed_tokens_authenticate_and_a_handler_sees_only_its_department(demo):
    rt, out, data = demo
    tokens = dict(TOKEN_LINE.findall(out))
    assert {"admin", "agent1", "supervisor1"} <= set(tokens)
    handler = next(name for name in tokens if name.endswith(".handler"))
    client = _client(rt)
    for token in tokens.values():
        assert client.get("/api/v1/tickets", headers=_bearer(token)).status_code == 200
    everything = client.get("/api/v1/tickets", headers=_bearer(tokens["admin"])).json()
    assert everything["total"] == len(data["tickets"])
    dept = next(d for d in data["departments"].values() if f"{d.code}.handler" == handler)
    own = {
        ticket_id
        for ticket_id, rows in data["assignments"].items()
        if any(a.department_id == dept.id and a.status != "withdrawn" for a in rows)
    }
    seen = client.get("/api/v1/tickets", params={"page_size": 200}, headers=_bearer(tokens[handler])).json()
    assert own and seen["total"] == len(own)
    assert {item["id"] for item in seen["items"]} <= own


def _latest(data, state: str) -> Ticket:
    return next(t for t in reversed(data["tickets"]) if t.state == state)


def test_a_dispatched_demo_ticket_is_signed_through_the_gateway(demo):
    rt, _, data = demo
    ticket = _latest(data, "dispatched")
    code = data["departments"][ticket.main_department_id].code
    response = _client(rt).post(
        f"/api/v1/tickets/{ticket.id}/transitions",
        json={"event": "sign"},
        headers=_bearer(_token(rt, f"{code}.handler")),
    )
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "in_progress"


@pytest.mark.parametrize(
    ("state", "event", "payload", "after"),
    [
        ("returned", "reject_return", {"reason": "属于你单位职责，请继续办理"}, None),
        ("replied", "approve_reply", {}, "pending_callback"),
        ("suspended", "resume", {}, "in_progress"),
    ],
)
def test_the_centre_carries_on_from_demo_states(demo, state, event, payload, after):
    rt, _, data = demo
    ticket = _latest(data, state)
    response = _client(rt).post(
        f"/api/v1/tickets/{ticket.id}/transitions",
        json={"event": event, **payload},
        headers=_bearer(_token(rt, "supervisor1")),
    )
    assert response.status_code == 200, response.text
    assert response.json()["state"] == (after or ticket.return_from_state)


def test_a_demo_ticket_awaiting_callback_is_called_back_and_closed(demo):
    rt, _, data = demo
    ticket = next(t for t in reversed(data["tickets"]) if t.state == "pending_callback" and not data["callbacks"][t.id])
    client, headers = _client(rt), _bearer(_token(rt, "agent1"))
    url = f"/api/v1/tickets/{ticket.id}/transitions"
    called = client.post(url, json={"event": "callback", "reached": True, "solved": True, "rating": 5}, headers=headers)
    assert called.status_code == 200, called.text
    closed = client.post(url, json={"event": "close"}, headers=headers)
    assert closed.status_code == 200, closed.text
    assert (closed.json()["state"], closed.json()["close_reason"]) == ("archived", "satisfied")


def test_a_leader_answers_an_open_supervision_order(demo):
    rt, _, data = demo
    open_orders = [
        (t, o)
        for t in data["tickets"]
        for o in data["orders"][t.id]
        if o.status == "open" and t.state in ("dispatched", "in_progress") and o.department_id == t.main_department_id
    ]
    assert open_orders
    ticket, order = open_orders[-1]
    code = data["departments"][order.department_id].code
    response = _client(rt).post(
        f"/api/v1/tickets/{ticket.id}/transitions",
        json={"event": "answer_supervision", "order": order.id, "answer": "已督促承办科室限期办结。"},
        headers=_bearer(_token(rt, f"{code}.leader")),
    )
    assert response.status_code == 200, response.text


def test_demo_data_on_sqlite_and_postgresql_lets_the_scheduler_and_intake_carry_on(runtime):
    indexes, keys = index_definitions(runtime), foreign_key_definitions(runtime.db)
    load_demo(runtime, tickets=150, seed=3, out=io.StringIO())
    assert len(indexes) > 20 and index_definitions(runtime) == indexes  # those built after the rows, as they were
    assert len(keys) > 20 and foreign_key_definitions(runtime.db) == keys  # likewise
    with runtime.db.read_session() as s:
        checked, broken = audit.verify(s)  # the chains the loader made, read back from either database
    assert broken is None and checked > 150
    if not runtime.db.is_sqlite:  # the bulk load left the planner informed (not only autovacuum, later)
        with runtime.db.read_session() as s:
            analysed = s.exec(text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'tickets'")).one()
        assert analysed[0] is not None
    now = runtime.now()
    assert sweep(runtime, now=now).steps == []  # the ladder is done up to now
    later = sweep(runtime, now=now + timedelta(days=3))
    assert later.steps and not later.skipped
    client = _client(runtime)
    created = client.post(
        "/api/v1/tickets",
        json={"type": "complaint", "category": "CG0202", "content": "路灯不亮", "street": "翠湖街道"},
        headers=_bearer(_token(runtime, "agent1")),
    )
    assert created.status_code == 201, created.text
    with runtime.db.read_session() as s:
        assert created.json()["id"] == max(s.exec(select(Ticket.id)).all())
        numbers = s.exec(select(Ticket.number)).all()
    assert len(set(numbers)) == len(numbers) == 151


def test_workers_writing_their_own_stretches_give_the_rows_of_one_process(runtime, tmp_path):
    """On PostgreSQL each worker writes the stretches it plays over a connection of its own, in
    any order: the rows are those one process writes (ids, numbers, chains, counters), every
    chain holds, the indexes are as they were and the sequences are past the ids. (SQLite's
    workers hand their rows to the one writer: the test above.)"""
    if runtime.db.is_sqlite:
        pytest.skip(
            "SQLite's workers do not write: test_the_same_seed_gives_the_same_tickets_in_one_process_or_several"
        )

    def rows(rt: Runtime) -> dict:
        queries = {
            "tickets": (Ticket.id, Ticket.number, Ticket.state, Ticket.caller_phone, Ticket.due_at, Ticket.master_id),
            "events": (TicketEvent.id, TicketEvent.ticket_id, TicketEvent.event, TicketEvent.at, TicketEvent.chain),
            "assignments": (Assignment.id, Assignment.ticket_id, Assignment.status),
            "callbacks": (Callback.id, Callback.ticket_id, Callback.rating),
            "notices": (Notification.id, Notification.ticket_id, Notification.kind),
            "counters": (TicketCounter.day, TicketCounter.value),
        }
        with rt.db.read_session() as s:
            return {name: s.exec(select(*columns).order_by(columns[0])).all() for name, columns in queries.items()}

    indexes, keys = index_definitions(runtime), foreign_key_definitions(runtime.db)
    runtime.clock = lambda: NOW
    load_demo(runtime, tickets=2500, seed=7, out=io.StringIO(), workers=0)
    alone = rows(runtime)
    assert len(alone["tickets"]) == 2500 and alone["events"] and alone["counters"]
    base = make_url(runtime.db.url)
    name = f"{base.database}_workers"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = base.set(database=name).render_as_string(hide_password=False)
        db = Database(url)
        upgrade(db)
        rt = Runtime(db, Settings(database_url=url, embedded_scheduler=False))
        rt.clock = lambda: NOW
        try:
            load_demo(rt, tickets=2500, seed=7, out=io.StringIO(), workers=2)
            assert rows(rt) == alone
            assert index_definitions(rt) == indexes and foreign_key_definitions(rt.db) == keys
            with rt.db.read_session() as s:
                checked, broken = audit.verify(s)
                assert broken is None and checked == len(alone["events"])
                for table in ("tickets", "ticket_events", "assignments", "callbacks", "notifications"):
                    sequence = s.exec(text(f"SELECT pg_get_serial_sequence('{table}', 'id')")).one()[0]
                    behind = s.exec(text(f"SELECT MAX(id) > (SELECT last_value FROM {sequence}) FROM {table}")).one()
                    assert behind[0] is False, table
        finally:
            rt.db.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_a_bulk_load_whose_rows_break_foreign_keys_fails_on_them_with_the_rest_finished(runtime):
    """On PostgreSQL the writer's finish checks the foreign keys beside the index builds: rows
    that break two keys fail the load with one key's error and the other noted on it (not
    another session's error), with every index built and every other key checked, only those
    two left unchecked (an upgrade checks them once the rows are mended), the sequences past
    the ids written, and the connections given back as hotline.db sets them up."""
    if runtime.db.is_sqlite:
        pytest.skip("SQLite keeps its foreign keys in its tables' definitions: a load never drops them")
    from types import SimpleNamespace

    from sqlalchemy.exc import IntegrityError

    from hotline.db import foreign_keys
    from hotline.demo.writer import Writer
    from hotline.migrate import restore_foreign_keys

    indexes, keys = index_definitions(runtime), foreign_key_definitions(runtime.db)
    writer = Writer(runtime)
    ids, _ = writer.start(defer=True)
    # A history row and a callback of a ticket that does not exist.
    stray = ids["ticket_events"] + 5
    event = (stray, 424242, "create", None, "系统", "system", None, "registered", NOW, "{}", "0" * 64)
    callback = (ids["callbacks"] + 1, 424242, 1, False, None, None, None, "agent", None, NOW, None)
    writer.write(SimpleNamespace(rows={"ticket_events": [event], "callbacks": [callback]}, counters={}))
    broken = {"ticket_events_ticket_id_fkey", "callbacks_ticket_id_fkey"}
    with pytest.raises(IntegrityError) as raised:
        writer.close()
    told = str(raised.value) + "\n".join(getattr(raised.value, "__notes__", []))
    assert all(name in told for name in broken), told
    assert len(raised.value.__notes__) == 1 and raised.value.__notes__[0].startswith("also failed: ")
    assert index_definitions(runtime) == indexes
    pool = runtime.db.engine.pool
    connections = [runtime.db.engine.connect() for _ in range(max(1, pool.checkedin()))]
    try:
        for conn in connections:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "on"
        conn = connections[0]
        assert {name for _, name, _, checked in foreign_keys(conn) if not checked} == broken
        sequence = conn.exec_driver_sql("SELECT pg_get_serial_sequence('ticket_events', 'id')").scalar_one()
        assert conn.exec_driver_sql(f"SELECT last_value FROM {sequence}").scalar_one() == stray
        conn.exec_driver_sql("DELETE FROM ticket_events WHERE id = %(id)s", {"id": stray})
        conn.exec_driver_sql("DELETE FROM callbacks WHERE ticket_id = 424242")
        conn.commit()
    finally:
        for conn in connections:
            conn.close()
    assert {"ticket_events(ticket_id)", "callbacks(ticket_id)"} <= set(restore_foreign_keys(runtime.db))
    assert foreign_key_definitions(runtime.db) == keys
