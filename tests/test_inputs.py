"""No input a client can send makes a server error, or reaches a spreadsheet as a formula.

A property-based fuzzer (Schemathesis, from /openapi.json) runs against the app served over
real HTTP, once with the token of each role and once without, on SQLite and on PostgreSQL;
any 5xx fails the test with the request that caused it. Bounded: a fixed number of cases per
operation (HOTLINE_FUZZ_EXAMPLES, default 12) and a fixed seed (HOTLINE_FUZZ_SEED), so a run
takes the same time and finds the same things; change the seed to explore further.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from hotline.inputs import MAX_ID
from tests.helpers import Api, app_routes, make_dispatched

EXAMPLES = os.environ.get("HOTLINE_FUZZ_EXAMPLES", "8")
SEED = os.environ.get("HOTLINE_FUZZ_SEED", "20261206")
# Each role on the databases it is fuzzed on (a run takes about 25 s; the widest access and
# no token on both, the others on one each, alternating).
ROLES = {
    "admin": ("sqlite", "postgresql"),
    None: ("sqlite", "postgresql"),
    "agent": ("postgresql",),
    "supervisor": ("sqlite",),
    "housing_h": ("postgresql",),
    "housing_l": ("sqlite",),
    "editor": ("postgresql",),
}


def _st() -> str:
    found = Path(sys.executable).with_name("st")
    if found.exists():
        return str(found)
    path = shutil.which("st")
    if path is None:
        pytest.fail("schemathesis is not installed (make install installs it)")
    return path


@pytest.fixture
def populated(server, runtime, district, client, clock):
    """Rows for the fuzzer's ids to find: tickets in several states, an article."""
    make_dispatched(runtime, 3, now=clock())
    agent = Api(client, district, "agent")
    agent.create(type="consultation", category="09")
    Api(client, district, "editor").post(
        "/knowledge/import",
        {
            "articles": [
                {
                    "external_id": "f-1",
                    "title": "居住证办理",
                    "body": "携带身份证到派出所办理。",
                    "category": "公安/户政",
                    "department": "区公安分局",
                    "kind": "办事指南",
                    "status": "published",
                }
            ]
        },
    )
    return server


@pytest.mark.parametrize("role", ROLES, ids=[r or "anonymous" for r in ROLES])
def test_no_input_makes_a_server_error(populated, runtime, district, role, tmp_path):
    kind = "sqlite" if runtime.db.is_sqlite else "postgresql"
    if kind not in ROLES[role]:
        pytest.skip(f"this role is fuzzed on {ROLES[role][0]} (time)")
    command = [
        _st(),
        "run",
        f"{populated}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--phases",
        os.environ.get("HOTLINE_FUZZ_PHASES", "examples,coverage,fuzzing"),
        "--max-examples",
        EXAMPLES,
        "--seed",
        SEED,
        "--generation-deterministic",
        "--request-timeout",
        "10",
        "--workers",
        "2",
        "--no-color",
        "--output-truncate",
        "true",
    ]
    if role:
        command += ["--header", f"Authorization: Bearer {district.tokens[role]}"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    summary = "\n".join(line for line in done.stdout.splitlines() if "generated" in line or "Server error" in line)
    assert "Server error" not in done.stdout, done.stdout[-6000:]
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert "generated" in summary, done.stdout[-3000:]


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/tickets/{MAX_ID + 1}",
        "/api/v1/tickets/9223372036854775808",
        "/api/v1/tickets/170997031028910227456/history",
        "/api/v1/tickets?page=4611686018427387904",
        "/api/v1/tickets?created_from=0001-01-01",
        "/api/v1/stats/departments?from=0001-01-01&to=0001-01-31",
        "/api/v1/stats/departments?month=9999-12",
        "/api/v1/analysis/hot-words?week=0001-W01",
        "/api/v1/notifications?limit=99999999999999999999",
        "/api/v1/tickets?q=%00",
    ],
)
def test_out_of_range_numbers_and_days_are_422_saying_why(client, district, path):
    r = client.get(path, headers=district.headers("admin"))
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


def test_control_characters_are_refused_naming_the_field(client, district):
    agent = Api(client, district, "agent")
    for text in ("电梯坏了\x00", "电梯\x1b[31m坏了", "\x7f"):
        error = agent.create(expect=422, content=text)
        assert error["field"] == "content", error
    error = agent.create(expect=422, caller_name="张\x00三")
    assert error["field"] == "caller_name"
    # Tabs and line breaks are text.
    assert agent.create(content="第一行\r\n第二行\t完")["content"] == "第一行\r\n第二行\t完"
    # Pages: a form field with a NUL is refused too.
    r = client.get("/tickets", params={"q": "a\x00"}, headers=district.headers("agent"))
    assert r.status_code == 422


def test_open311_errors_keep_the_standards_form(client):
    for path in (
        "/open311/v2/requests.json?start_date=0001-01-01T00:00:00Z",
        "/open311/v2/requests.json?page=99999999999",
        "/open311/v2/requests/1%00.json",
    ):
        r = client.get(path)
        assert r.status_code in (400, 422), r.text
        body = r.json()
        assert isinstance(body, list) and body[0]["code"] and body[0]["description"], body


def test_a_streamed_body_over_the_limit_is_413(server, district):
    def chunks():
        for _ in range(200):
            yield b"x" * 1024

    r = httpx.post(
        f"{server}/api/v1/tickets",
        content=chunks(),
        headers={**district.headers("agent"), "Content-Type": "application/json"},
    )
    assert r.status_code == 413, r.text


def test_the_api_takes_only_the_districts_places_once_it_lists_them(client, district, runtime):
    from hotline.directory import create_place

    agent = Api(client, district, "agent")
    agent.create(street="随便写的街道", community="=HYPERLINK(1)")  # no places listed: kept as typed
    with runtime.db.session() as s:
        create_place(s, street="西城街道", community="和平社区")
        create_place(s, street="东城街道", community="新华社区")
    assert agent.create(street="西城街道", community="和平社区")["community"] == "和平社区"
    assert agent.create(expect=422, street="=HYPERLINK(1)", community="")["field"] == "street"
    assert agent.create(expect=422, street="西城街道", community="新华社区")["field"] == "community"
    assert agent.create(expect=422, street="", community="和平社区")["field"] == "street"


def test_a_place_added_while_intake_keeps_the_places_is_taken_at_once(client, district, runtime):
    """Intake keeps the district's places a few seconds; a place added meanwhile (by another
    process: nothing tells this one) is read at the first ticket that names it."""
    from hotline.directory import create_place

    agent = Api(client, district, "agent")
    with runtime.db.session() as s:
        create_place(s, street="西城街道", community="和平社区")
    assert agent.create(street="西城街道", community="和平社区")["community"] == "和平社区"
    with runtime.db.session() as s:
        create_place(s, street="西城街道", community="新华社区")
        create_place(s, street="南城街道")
    assert agent.create(street="西城街道", community="新华社区")["community"] == "新华社区"
    assert agent.create(street="南城街道", community="")["street"] == "南城街道"
    assert agent.create(expect=422, street="西城街道", community="幸福社区")["field"] == "community"
    assert agent.create(expect=422, street="北城街道", community="")["field"] == "street"


def test_every_number_in_an_address_has_an_upper_bound(settings):
    """An id or a page number without one reaches the database as it came (a 500 on
    2**63); every integer path or query parameter of every route, page or API, has one."""
    import typing

    import annotated_types

    from hotline.main import create_app

    def params(dependant):
        yield from dependant.path_params
        yield from dependant.query_params
        for sub in dependant.dependencies:
            yield from params(sub)

    unbounded = []
    found = 0
    for route in app_routes(create_app(settings).routes):
        found += 1
        for field in params(route.dependant):
            kinds = typing.get_args(field.field_info.annotation) or (field.field_info.annotation,)
            bounded = any(isinstance(m, annotated_types.Le | annotated_types.Lt) for m in field.field_info.metadata)
            if int in kinds and not bounded:
                unbounded.append(f"{route.path} {field.name}")
    assert found > 100
    assert not unbounded, unbounded


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        (
            "/open311/v2/requests.json?api_key=hl_secret&status=open",
            "/open311/v2/requests.json?api_key=***&status=open",
        ),
        ("/rate/AbC_123-xyz?x=1", "/rate/***?x=1"),
        ("/tickets?q=13812345678", "/tickets?q=138****5678"),
        ("/tickets?q=010-87654321", "/tickets?q=010-****4321"),
        ("/tickets?q=010%2D87654321", "/tickets?q=010%2D****4321"),
        ("/api/v1/tickets/123?created_from=2026-11-01", "/api/v1/tickets/123?created_from=2026-11-01"),
    ],
)
def test_access_log_lines_carry_no_key_token_or_phone(path, logged):
    import logging

    from hotline.main import _REDACT_KEYS

    args = ("127.0.0.1:5000", "GET", path, "1.1", 200)
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', args, None)
    assert _REDACT_KEYS.filter(record)
    assert record.getMessage() == f'127.0.0.1:5000 - "GET {logged} HTTP/1.1" 200'


def test_a_row_changed_by_another_request_meanwhile_is_409_not_500(runtime, district, settings):
    """A routing rule deleted by one request while another updates it: the update is
    refused with 409 (the race itself is made here in one process, in order)."""
    from fastapi.testclient import TestClient
    from sqlmodel import Session, select

    from hotline import directory
    from hotline.main import create_app
    from hotline.models import RoutingRule

    if runtime.db.is_sqlite:
        pytest.skip("on SQLite the process's writers queue on one lock: this interleaving cannot happen")
    app = create_app(settings, runtime=runtime)
    with runtime.db.read_session() as s:
        rule_id = s.exec(select(RoutingRule.id)).first()

    def late_update() -> None:
        # This request read the rule, then another deleted it, then this one writes.
        with Session(runtime.db.engine) as mine:
            rule = mine.get(RoutingRule, rule_id)
            with runtime.db.session() as other:
                directory.delete_rule(other, rule_id)
            rule.priority = 5
            mine.add(rule)
            mine.commit()

    app.add_api_route("/api/v1/_race", late_update, methods=["POST"])
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/api/v1/_race", headers=district.headers("admin"))
    assert r.status_code == 409 and "changed meanwhile" in r.json()["detail"], r.text
