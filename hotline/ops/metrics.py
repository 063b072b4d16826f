"""Prometheus metrics (`prometheus-client`), served at /metrics (hotline.ops.routes).

Two kinds:

- Measured in the process: request latency by route template (`/api/v1/tickets/{number}`,
  never the raw path), the scheduler's job durations, the escalations the sweeps made, the
  leader elections won. With several `serve` workers these live in prometheus-client's
  multiprocess mode: `hotline serve --workers N` points PROMETHEUS_MULTIPROC_DIR at a fresh
  directory (unless it is set), and a scrape of any worker sums over all of them. A separate
  `hotline scheduler` shares them only if it is given the same directory (deploy/ does).
- Read from the database at scrape time, cached for `DB_CACHE_SECONDS` (the same in every
  worker, so never summed): tickets by state, the outbox's lag, webhook deliveries pending
  and dead, and whether a scheduler leader is known.
"""

import atexit
import os
import shutil
import tempfile
import threading
import time
from datetime import datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from starlette.types import ASGIApp, Receive, Scope, Send

from hotline.db import utcnow
from hotline.models import Delivery, OutboxMessage, Ticket

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DB_CACHE_SECONDS = 30.0

REQUEST_SECONDS = Histogram(
    "hotline_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status class.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10),
)
JOB_SECONDS = Histogram(
    "hotline_job_duration_seconds",
    "Time one run of a scheduler job took (sweep, surges, delivery, reports, ...).",
    ["job"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
ESCALATIONS = Counter("hotline_escalations_total", "Ladder steps the sweeps took, by step.", ["step"])
WEBHOOK_ATTEMPTS = Counter(
    "hotline_webhook_attempts_total", "Webhook deliveries tried, by outcome (delivered, failed, dead).", ["outcome"]
)


def prepare_multiprocess(workers: int) -> None:
    """Before `serve` starts N > 1 workers: a fresh directory for their metrics (removed at
    exit), unless PROMETHEUS_MULTIPROC_DIR names one already."""
    if workers <= 1 or os.environ.get(MULTIPROC_ENV):
        return
    path = tempfile.mkdtemp(prefix="hotline-metrics-")
    os.environ[MULTIPROC_ENV] = path
    atexit.register(shutil.rmtree, path, ignore_errors=True)


class RequestTimer:
    """ASGI middleware: each HTTP request's time into REQUEST_SECONDS, labelled with the
    template of the route that answered (`unmatched` when none did, e.g. a 404)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # (method, route, status class) -> its series: `labels()` checks and locks on every
        # call, a dict lookup does not. As many entries as the histogram has series.
        self._series: dict[tuple[str, str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = time.perf_counter() - start
            key = (scope["method"], route_template(scope), f"{status[0] // 100}xx")
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = REQUEST_SECONDS.labels(*key)
            series.observe(elapsed)


def route_template(scope: Scope) -> str:
    """The template of the route that answered, with the prefix of the router it was included
    under (a route may know its path without it): `/api/v1/tickets/{ticket_id}`."""
    route, path = scope.get("route"), scope.get("path", "")
    template, regex = getattr(route, "path", None), getattr(route, "path_regex", None)
    if not template or regex is None:
        return "unmatched"
    for i, char in enumerate(path):
        if char == "/" and regex.match(path[i:]):
            return path[:i] + template
    return template


class DatabaseCollector:
    """The gauges read from the database, at most once per DB_CACHE_SECONDS."""

    def __init__(self, runtime) -> None:
        self.runtime = runtime
        self._cached: tuple[float, list] | None = None
        self._lock = threading.Lock()

    def collect(self):
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > DB_CACHE_SECONDS:
                self._cached = (time.monotonic(), self._read(utcnow()))
            return list(self._cached[1])

    def _read(self, now: datetime) -> list:
        from hotline.ops.leader import current_lease

        tickets = GaugeMetricFamily("hotline_tickets", "Tickets by state.", labels=["state"])
        deliveries = GaugeMetricFamily("hotline_webhook_deliveries", "Webhook deliveries by status.", labels=["status"])
        with self.runtime.db.read_session() as s:
            for state, n in s.execute(select(Ticket.state, func.count()).group_by(Ticket.state)):
                tickets.add_metric([state], n)
            for status in ("pending", "dead"):
                n = s.execute(select(func.count()).where(Delivery.status == status)).scalar_one()
                deliveries.add_metric([status], n)
            oldest_event = s.execute(
                select(OutboxMessage.recorded_at).where(OutboxMessage.fanned_out.is_(False)).order_by(OutboxMessage.id)
            ).first()
            oldest_due = s.execute(
                select(func.min(Delivery.next_attempt_at)).where(
                    Delivery.status == "pending", Delivery.next_attempt_at <= now
                )
            ).scalar_one()
        lag = GaugeMetricFamily(
            "hotline_outbox_lag_seconds",
            "Age of the oldest event not yet handed to its subscriptions, and of the oldest "
            "webhook delivery due and not yet sent (0: none).",
            labels=["stage"],
        )
        lag.add_metric(["fan_out"], (now - oldest_event[0]).total_seconds() if oldest_event else 0.0)
        lag.add_metric(["delivery"], (now - oldest_due).total_seconds() if oldest_due else 0.0)
        leader = GaugeMetricFamily(
            "hotline_scheduler_leader_known", "1 when a scheduler process holds a current lease."
        )
        leader.add_metric([], 1.0 if current_lease(self.runtime.db, now) else 0.0)
        return [tickets, deliveries, lag, leader]


def exposition(collector: DatabaseCollector) -> bytes:
    """The text a scrape gets: the process's metrics (all workers' in multiprocess mode),
    then the database's."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        measured = CollectorRegistry()
        multiprocess.MultiProcessCollector(measured)
    else:
        measured = REGISTRY
    database = CollectorRegistry(auto_describe=False)
    database.register(collector)
    return generate_latest(measured) + generate_latest(database)
