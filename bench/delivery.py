"""Webhook delivery: what subscriptions cost intake, throughput to one receiver, and the lag
from commit to receipt while intake runs at full speed. Real servers, real HTTP.

    .venv/bin/python bench/delivery.py [--database sqlite|postgresql] [--requests 2000]
        [--concurrency 16] [--rounds 3]

Sets up a district in a temporary SQLite file (or a fresh PostgreSQL database on the local
server), starts a webhook receiver (bench/receiver_app.py under uvicorn, answering 204 at
once) and `hotline serve`, then measures:

  intake 0 / 3   POST /api/v1/tickets with no subscription, then with three (every topic,
                 everything in scope), alternating, `--rounds` times each; the median round
  throughput     one delivery process (the scheduler's `Deliverer`) draining one
                 subscription's backlog of ticket.created events to the receiver: events/s
  lag            `hotline serve` with its embedded scheduler (delivery every second), one
                 subscription, intake at full speed: from each event's time to its arrival
                 at the receiver, p50 / p95 / max, and how long the last one took to arrive

Prints a table and writes bench/results/delivery-{database}.json. Not part of the test suite.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import intake  # bench/intake.py: the load client, the servers, the district set-up

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PG_BASE = os.environ.get("HOTLINE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TOPICS = ["ticket.created", "ticket.changed", "ticket.rated", "rating.overturned", "notice"]


def fresh_postgres(name: str = "hotline_bench_delivery") -> str:
    """An empty database `name` on the local server (dropped first if it exists), as a URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(PG_BASE)
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def runtime_for(url: str):
    from hotline.config import Settings
    from hotline.db import Database
    from hotline.runtime import Runtime

    return Runtime(Database(url), Settings(database_url=url, embedded_scheduler=False))


def set_subscriptions(runtime, count: int, url: str) -> list[int]:
    """Exactly `count` subscriptions to the receiver (older ones and their deliveries gone)."""
    from sqlmodel import delete

    from hotline.integration import subscriptions
    from hotline.models import Delivery, Subscription

    with runtime.db.session() as s:
        s.exec(delete(Delivery))
        s.exec(delete(Subscription))
        made = [
            subscriptions.create(
                s,
                name=f"bench {i}",
                url=url,
                topics=TOPICS,
                department=None,
                source=None,
                allowed_hosts="",
                actor_id=None,
                now=datetime.now(UTC),
            ).id
            for i in range(count)
        ]
    return made


def receiver_stats(port: int) -> list[list]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=30) as r:
        return json.loads(r.read())


def receiver_reset(port: int) -> None:
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/reset", method="POST"), timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--requests", type=int, default=2000, help="timed intake requests per round")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="intake rounds with 0 and with 3 subscriptions")
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="hotline-bench-delivery-"))
    url = f"sqlite:///{tmp / 'bench.db'}" if args.database == "sqlite" else fresh_postgres()
    env = {
        **os.environ,
        "HOTLINE_DATABASE_URL": url,
        "HOTLINE_EMBEDDED_SCHEDULER": "false",
        "HOTLINE_RATE_LIMIT_PER_MINUTE": "0",
    }
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "database": args.database,
        "settings": {"requests": args.requests, "concurrency": args.concurrency, "rounds": args.rounds},
        "machine": {"cpus": os.cpu_count(), "loadavg_before": round(os.getloadavg()[0], 2)},
    }
    print(f"set-up ({args.database}) in {tmp} ...", flush=True)
    tokens = intake.set_up_district(env, args.concurrency)["agent"]
    runtime = runtime_for(url)
    rport = intake.free_port()
    receiver = intake.Server(
        "receiver",
        [sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH), "receiver_app:app", "--port", str(rport)]
        + ["--no-access-log", "--log-level", "warning"],
        env,
        rport,
        tmp / "receiver.log",
    )
    receiver.wait_ready("/stats")
    hook = f"http://127.0.0.1:{rport}/hook"
    serial = [0]

    def batch(n: int) -> list[dict]:
        serial[0] += n
        return intake.intake_requests(serial[0] - n, n, tokens)

    def serve(embedded: bool) -> intake.Server:
        port = intake.free_port()
        argv = [*intake.hotline_command(), "serve", "--port", str(port), "--no-access-log", "--log-level", "warning"]
        server_env = {**env, "HOTLINE_EMBEDDED_SCHEDULER": "true" if embedded else "false"}
        server = intake.Server("hotline serve", argv, server_env, port, tmp / f"serve-{embedded}.log")
        server.wait_ready("/api/v1/tickets")
        return server

    # The load client is intake.py's, in a process of its own.
    args_load = argparse.Namespace(concurrency=args.concurrency, client=args.client)

    def load(server: intake.Server, name: str, requests: list[dict]) -> dict[str, Any]:
        return intake.run_load(args_load, server.port, server.pid, [(name, requests)])[name]

    try:
        # 1. Intake with 0 and 3 subscriptions, alternating.
        server = serve(embedded=False)
        load(server, "warmup", batch(args.warmup))
        rounds: dict[int, list[dict[str, Any]]] = {0: [], 3: []}
        for r in range(args.rounds):
            for count in (0, 3):
                set_subscriptions(runtime, count, hook)
                phase = load(server, f"intake-{count}", batch(args.requests))
                figs = intake.figures(phase, 201)
                assert figs["ok"] == args.requests, intake.errors_of(phase, 201)
                rounds[count].append(figs)
                print(f"  round {r + 1}: intake with {count} subscriptions: {figs['rps']} req/s", flush=True)
        server.stop()
        med = {c: statistics.median(f["rps"] for f in rs) for c, rs in rounds.items()}
        report["intake"] = {
            "rps_0_subscriptions": med[0],
            "rps_3_subscriptions": med[3],
            "cost": round(1 - med[3] / med[0], 3),
            "rounds": {str(c): rs for c, rs in rounds.items()},
        }

        # 2. Throughput: one delivery process drains one subscription's backlog.
        from hotline.integration.delivery import Deliverer

        (sub,) = set_subscriptions(runtime, 1, hook)
        server = serve(embedded=False)
        backlog = args.requests * 2
        load(server, "backlog", batch(backlog))
        server.stop()
        receiver_reset(rport)
        deliverer = Deliverer(runtime)
        started = time.perf_counter()
        done = deliverer.drain(budget_seconds=3600)
        wall = time.perf_counter() - started
        deliverer.close()
        arrived = len(receiver_stats(rport))
        report["throughput"] = {
            "events": done.delivered,
            "received": arrived,
            "seconds": round(wall, 2),
            "events_per_s": round(done.delivered / wall, 1),
            "concurrency": runtime.settings.webhook_concurrency,
        }
        print(f"  throughput: {done.delivered} events in {wall:.1f} s", flush=True)

        # 3. Lag while intake runs at full speed, the scheduler delivering inside serve.
        set_subscriptions(runtime, 1, hook)
        receiver_reset(rport)
        server = serve(embedded=True)
        phase = load(server, "intake-lag", batch(args.requests))
        intake_done = time.time()
        deadline = time.monotonic() + 600
        while len(receiver_stats(rport)) < args.requests and time.monotonic() < deadline:
            time.sleep(0.5)
        server.stop()
        got = receiver_stats(rport)
        lags = sorted(g[1] for g in got)
        report["lag"] = {
            "intake_rps": intake.figures(phase, 201)["rps"],
            "events": len(got),
            "p50_s": round(intake.percentile(lags, 0.50), 3),
            "p95_s": round(intake.percentile(lags, 0.95), 3),
            "max_s": round(lags[-1], 3),
            "last_arrived_after_intake_s": round(max(g[0] for g in got) - intake_done, 3),
        }
    finally:
        receiver.stop()
        runtime.db.dispose()

    print(json.dumps(report, ensure_ascii=False, indent=2))
    out = BENCH / "results" / f"delivery-{args.database}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
