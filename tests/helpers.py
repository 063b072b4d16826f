"""Test helpers: a small district and an API caller per role."""

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.testclient import TestClient

from hotline.db import Database, foreign_keys, indexes, utcnow
from hotline.directory import create_category, create_department, create_rule, create_user, issue_token
from hotline.models import User
from hotline.runtime import Runtime
from hotline.security import hash_password

# Meets the password policy (hotline.directory.check_password_policy).
PASSWORD = "Correct horse battery 9"
# Hashing is deliberately slow; the test users share one hash of PASSWORD.
_HASH: list[str] = []


def password_hash() -> str:
    if not _HASH:
        _HASH.append(hash_password(PASSWORD))
    return _HASH[0]


@dataclass
class District:
    tokens: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}


DEPARTMENTS = [
    ("housing", "区住建局"),
    ("urban", "区城管局"),
    ("market", "区市场监管局"),
    ("water", "区水务局"),
    ("street_a", "东城街道办事处"),
]

USERS = [
    ("admin", "admin", None),
    ("agent", "agent", None),
    ("supervisor", "supervisor", None),
    ("editor", "editor", None),
    ("housing_h", "handler", "housing"),
    ("housing_l", "leader", "housing"),
    ("urban_h", "handler", "urban"),
    ("market_h", "handler", "market"),
    ("water_h", "handler", "water"),
    ("street_a_h", "handler", "street_a"),
]


def build_district(runtime: Runtime) -> District:
    """Five departments, a small category tree, routing rules, users and tokens."""
    district = District()
    now = utcnow()
    with runtime.db.session() as s:
        depts = {code: create_department(s, code=code, name=name, now=now) for code, name in DEPARTMENTS}
        create_category(s, runtime, code="01", name="城乡建设")
        create_category(s, runtime, code="0101", name="物业管理", parent="01", department="housing")
        create_category(s, runtime, code="0102", name="违章搭建", parent="01", department="urban")
        create_category(s, runtime, code="02", name="市场监管", department="market")
        create_category(s, runtime, code="0201", name="食品安全", parent="02")
        create_category(s, runtime, code="03", name="供水", department="water")
        create_category(s, runtime, code="09", name="其他")
        # Illegal building in 东城街道 goes to the street office.
        create_rule(s, department="street_a", category="0102", street="东城街道")
        for username, role, dept in USERS:
            add_user(s, district, username, role, depts[dept].id if dept else None, now)
    return district


def add_user(s, district: District, username: str, role: str, department_id: int | None, now) -> None:
    """A test user with the shared password and an API token, remembered in the district."""
    user = User(
        username=username,
        role=role,
        department_id=department_id,
        password_hash=password_hash(),
        display_name=username,
        created_at=now,
    )
    s.add(user)
    s.flush()
    district.user_ids[username] = user.id
    district.tokens[username] = issue_token(s, username, now=now)


def add_accounts(runtime: Runtime, district: District, accounts: tuple[tuple[str, str, str | None], ...]) -> District:
    """More users of the district, each `(username, role, source)` (the source: an integration
    account's system), with the shared password and an API token."""
    now = utcnow()
    with runtime.db.session() as s:
        for username, role, source in accounts:
            user = create_user(
                s, username=username, role=role, password=PASSWORD, source=source, must_change=False, now=now
            )
            district.user_ids[username] = user.id
            district.tokens[username] = issue_token(s, username, now=now)
    return district


class Api:
    """Calls the API as one user; asserts the status code it expects."""

    def __init__(self, client: TestClient, district: District, username: str) -> None:
        self.client, self.headers = client, district.headers(username)

    def get(self, path: str, expect: int = 200, **params: Any) -> Any:
        r = self.client.get(f"/api/v1{path}", headers=self.headers, params=params)
        assert r.status_code == expect, r.text
        return r.json()

    def post(self, path: str, body: Any, expect: int = 200) -> Any:
        r = self.client.post(f"/api/v1{path}", headers=self.headers, json=body)
        assert r.status_code == expect, r.text
        return r.json()

    def fire(self, ticket_id: int, event: str, expect: int = 200, **payload: Any) -> Any:
        return self.post(f"/tickets/{ticket_id}/transitions", {"event": event, **payload}, expect)

    def create(self, expect: int = 201, **fields: Any) -> Any:
        body = {
            "type": "complaint",
            "category": "0101",
            "content": "小区电梯坏了一周没人修",
            "caller_name": "张三",
            "caller_phone": "13812345678",
            "street": "西城街道",
            "community": "和平社区",
            **fields,
        }
        return self.post("/tickets", body, expect)


def make_dispatched(runtime: Runtime, n: int, *, now, department: str = "housing", **fields: Any) -> list[int]:
    """N tickets logged and dispatched through the gateway, at `now`."""
    from hotline.tickets import create_ticket
    from hotline.workflow.engine import Actor, fire

    agent = Actor(None, "agent", "agent")
    ids = []
    with runtime.db.session() as s:
        for i in range(n):
            data = {"type": "complaint", "category": "0101", "content": f"第{i}号诉求", **fields}
            ticket, _ = create_ticket(s, runtime, agent, data, now=now)
            fire(s, runtime, ticket.id, "dispatch", agent, {"department": department}, now=now)
            ids.append(ticket.id)
    return ids


def race(url: str, headers: dict, path: str, bodies: list[dict]) -> list[int]:
    """POST each body at the same moment, one connection each, over real HTTP; the status codes."""
    barrier = threading.Barrier(len(bodies))

    def one(body: dict) -> int:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
            barrier.wait()
            return c.post(path, json=body).status_code

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(one, bodies))


def sign_in(client: TestClient, username: str, password: str = PASSWORD, **extra: str):
    """Sign in to the pages as a browser does: the form (and its CSRF cookie) first, then the post."""
    import re

    form = client.get("/login", follow_redirects=False)
    if form.status_code != 200:  # signed in already: as another user now
        client.cookies.clear()
        form = client.get("/login", follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    data = {"username": username, "password": password, "csrf_token": token, **extra}
    return client.post("/login", data=data, follow_redirects=False)


def sqlite_plan(path: str, sql: str) -> str:
    """SQLite's query plan of `sql` on the database file at `path`, as one string."""
    from hotline.db import Database

    db = Database(f"sqlite:///{path}")
    try:
        with db.read_engine.connect() as conn:
            return " ".join(str(row) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all())
    finally:
        db.dispose()


def index_definitions(runtime: Runtime) -> set[tuple[str, str]]:
    """Every index of the database, with its definition (SQLite's or PostgreSQL's own; on
    SQLite, not those its constraints own, which have none)."""
    with runtime.db.engine.connect() as connection:
        return {(name, definition) for name, _, definition, _ in indexes(connection) if definition is not None}


def foreign_key_definitions(db: Database) -> set[tuple[str, ...]]:
    """Every foreign key of the database with its name and definition (PostgreSQL's own; on
    SQLite, where they are part of the tables' definitions, those)."""
    with db.engine.connect() as connection:
        if not db.is_sqlite:
            return {(table, name, definition) for table, name, definition, _ in foreign_keys(connection)}
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
        return {tuple(row) for row in connection.exec_driver_sql(query).all()}


def app_routes(items):
    """Every API route of an app's routes, those of included routers too (FastAPI keeps a
    router included with a prefix as a route whose `original_router` holds them)."""
    from fastapi.routing import APIRoute

    for route in items:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from app_routes(route.original_router.routes)
