"""Operations: /healthz, /readyz, /metrics (who may read it, what it says), JSON logs."""

import json
import logging
import re
import time
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from hotline.config import Settings
from hotline.main import create_app
from hotline.models import Ticket
from hotline.ops.leader import Leadership
from hotline.ops.logs import JsonFormatter, Redact, TextFormatter, log_config
from tests.conftest import local
from tests.helpers import make_dispatched


def test_healthz_answers_without_the_database(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_wants_a_scheduler_leader_and_the_newest_schema(client, database):
    refused = client.get("/readyz")
    assert refused.status_code == 503 and refused.json()["reason"] == "no scheduler leader holds a current lease"
    leader = Leadership(database, 30)
    with database.engine.connect() as conn:
        newest = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
    try:
        assert leader.tick()
        assert client.get("/readyz").json() == {"status": "ready"}
        with database.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0010'")
        behind = client.get("/readyz")
        assert behind.status_code == 503 and "schema is at migration 0010" in behind.json()["reason"]
    finally:
        with database.engine.begin() as conn:
            # Back as it was: on PostgreSQL the next tests share this database's schema.
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": newest})
        leader.resign()
    assert client.get("/readyz").status_code == 503  # resigned, and nobody else leads


def test_readyz_says_when_the_database_does_not_answer(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path}/missing/dir/x.db", embedded_scheduler=False)
    with TestClient(create_app(settings)) as c:
        answer = c.get("/readyz")
    assert answer.status_code == 503 and answer.json()["reason"] in (
        "the database does not answer",
        "the database schema is at migration None, this code expects 0014",
    )


def _metrics(server: str, **headers) -> httpx.Response:
    return httpx.get(f"{server}/metrics", headers=headers, timeout=10)


def _value(text: str, name: str, **labels) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    match = re.search(r"^" + pattern + "$", text, re.MULTILINE)
    assert match, f"{name} {labels} not in the metrics"
    return float(match.group(1))


def test_metrics_by_route_template_tickets_by_state_and_escalations(runtime, district, server):
    from hotline.scheduler import run_sweep

    (tid,) = make_dispatched(runtime, 1, now=local(2026, 11, 2, 9, 0))
    with runtime.db.read_session() as s:
        number = s.get(Ticket, tid).number
    with httpx.Client(base_url=server, headers=district.headers("agent")) as http:
        assert http.get(f"/api/v1/tickets/{tid}").status_code == 200
        assert http.get("/api/v1/tickets/987654").status_code == 404
    text = _metrics(server).text  # the test server's client is a loopback one
    # The route's template, never the path; by status class.
    template = {"method": "GET", "route": "/api/v1/tickets/{ticket_id}"}
    for status in ("2xx", "4xx"):
        assert _value(text, "hotline_http_request_duration_seconds_count", **template, status=status) >= 1
    assert number not in text and 'route="/api/v1/tickets/987654"' not in text
    assert _value(text, "hotline_tickets", state="dispatched") == 1
    assert _value(text, "hotline_scheduler_leader_known") == 0
    assert _value(text, "hotline_outbox_lag_seconds", stage="delivery") == 0
    before = _escalations(text)
    runtime.clock.set(local(2026, 11, 20, 10, 0))  # overdue: urged, supervised, reported
    run_sweep(runtime)  # the scheduled job counts what it escalates
    after = _escalations(_metrics(server).text)
    assert {step: after.get(step, 0) - before.get(step, 0) for step in after} == {
        "urge": 1,
        "supervise": 1,
        "report": 1,
    }


def _escalations(text: str) -> dict[str, float]:
    return {m[0]: float(m[1]) for m in re.findall(r'^hotline_escalations_total\{step="(\w+)"\} (\S+)$', text, re.M)}


def test_metrics_are_refused_to_others_and_open_to_the_token(runtime, database):
    closed = TestClient(create_app(Settings(database_url=database.url, embedded_scheduler=False), runtime=runtime))
    refused = closed.get("/metrics")  # the test client's address is not a loopback one
    assert refused.status_code == 403 and "loopback" in refused.json()["detail"]
    settings = Settings(database_url=database.url, embedded_scheduler=False, metrics_token="s3cret-metrics")
    runtime.settings = settings
    with TestClient(create_app(settings, runtime=runtime)) as c:
        assert c.get("/metrics").status_code == 403
        assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
        answer = c.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics"})
        assert answer.status_code == 200 and "hotline_http_request_duration_seconds_bucket" in answer.text


def test_the_operations_endpoints_are_not_in_the_api_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert not {"/healthz", "/readyz", "/metrics"} & set(paths)


@pytest.mark.parametrize(
    "message",
    [
        "GET /api/v1/tickets?phone=13812345678 HTTP/1.1",
        "GET /tickets?caller_name=%E5%BC%A0%E4%B8%89&token=abcdef123 HTTP/1.1",
        "GET /rate/AbC_123-xyz HTTP/1.1",
    ],
)
def test_json_logs_are_one_object_a_line_without_phone_name_or_token(message):
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, "%s", (message,), None)
    assert Redact().filter(record)
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert set(entry) == {"time", "level", "logger", "pid", "message"} and "\n" not in line
    for secret in ("12345678", "%E5%BC%A0", "abcdef123", "AbC_123"):
        assert secret not in entry["message"]


@pytest.fixture
def beijing(monkeypatch):
    """The process in Asia/Shanghai's time, and back in its own zone after."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_text_log_lines_name_their_zone(beijing):
    """A person's line carries the local time with its offset: 09:30 in Beijing is 01:30 UTC."""
    record = logging.LogRecord("hotline", logging.INFO, "", 0, "sweep done", None, None)
    record.created = datetime(2026, 12, 7, 1, 30, 0, 123000, tzinfo=UTC).timestamp()
    config = log_config(Settings())
    formatter = TextFormatter(config["formatters"]["main"]["fmt"])
    assert config["formatters"]["main"]["()"] is TextFormatter
    assert formatter.format(record) == "2026-12-07T09:30:00.123+08:00 hotline INFO sweep done"


def test_the_log_settings_reach_uvicorn_and_ours():
    config = log_config(Settings(log_format="json", log_level="DEBUG"))
    assert config["formatters"]["main"] == {"()": JsonFormatter}
    assert {config["loggers"][n]["level"] for n in ("hotline", "uvicorn.access")} == {"DEBUG"}
    with pytest.raises(ValueError):
        Settings(log_format="xml")
