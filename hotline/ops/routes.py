"""/healthz, /readyz and /metrics: for the load balancer, the orchestrator and Prometheus.

- /healthz: 200 while the process answers (no database read).
- /readyz: 200 when the database answers, its schema is at this code's newest migration and a
  scheduler leader holds a current lease; otherwise 503 with the reason.
- /metrics: Prometheus text (hotline.ops.metrics), to loopback clients only, or to anyone
  presenting `Authorization: Bearer <HOTLINE_METRICS_TOKEN>` when that setting is given. The
  nginx configuration in deploy/ does not pass /metrics through (nginx itself is a loopback
  client), so Prometheus scrapes the workers directly.

None of them is in the OpenAPI document: they are for machines that know them.
"""

import hmac
from functools import lru_cache
from ipaddress import ip_address

from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from hotline.migrate import alembic_config
from hotline.ops.leader import current_lease
from hotline.ops.metrics import DatabaseCollector, exposition

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=1)
def code_head() -> str:
    """The newest migration this code has."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


def not_ready(runtime) -> str | None:
    """Why this process should not get traffic, or None."""
    try:
        with runtime.db.read_session() as session:
            version = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:
        return "the database does not answer"
    if version != code_head():
        return f"the database schema is at migration {version}, this code expects {code_head()}"
    if current_lease(runtime.db) is None:
        return "no scheduler leader holds a current lease"
    return None


@router.get("/readyz")
def readyz(request: Request) -> Response:
    reason = not_ready(request.app.state.runtime)
    if reason is not None:
        return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)
    return JSONResponse({"status": "ready"})


def _loopback(request: Request) -> bool:
    try:
        return request.client is not None and ip_address(request.client.host).is_loopback
    except ValueError:  # a test client's made-up host
        return False


def may_scrape(request: Request, token: str | None) -> bool:
    """With a metrics token set, its bearer only; without, loopback clients."""
    if token:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    return _loopback(request)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    runtime = request.app.state.runtime
    if not may_scrape(request, runtime.settings.metrics_token):
        detail = "metrics are served to loopback clients, or to the bearer of the metrics token when one is set"
        return JSONResponse({"detail": detail}, status_code=403)
    collector = getattr(request.app.state, "metrics_collector", None)
    if collector is None:
        collector = request.app.state.metrics_collector = DatabaseCollector(runtime)
    return Response(exposition(collector), media_type="text/plain; version=0.0.4; charset=utf-8")
