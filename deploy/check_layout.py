"""The production layout on this machine: PostgreSQL, two server processes, the scheduler;
load on both, then one worker killed with `kill -9` mid-load.

    .venv/bin/python deploy/check_layout.py [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
                                            [--seconds 20] [--clients 8]

What deploy/ runs under systemd, started by hand: a scratch database (`layout_check`, dropped
afterwards) with a small demo district, `hotline serve` on two ports with the embedded
scheduler off, one `hotline scheduler`. The clients play nginx's part (round robin; a request
whose connection could not be made goes to the other worker; one cut after it was sent is
not resent) and take tickets in through the API, each with an `external_id`. Half-way, the
first worker is killed. Then it checks, and exits 1 if any fails:

- every intake answered 201 is in the database, once (by its external_id); no ticket exists
  that no client sent;
- the requests that failed are only those in flight on the killed worker's connections;
- the scheduler led throughout, /readyz answered 200 on the surviving worker, and no
  escalation is recorded twice (the unique key; the sweeps' counts in the scheduler's log).

Not part of the test suite (it starts a layout and runs for a while); its last run is in
docs/operations.md.
"""

import argparse
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

HOTLINE = [sys.executable, "-m", "hotline"]
DB = "layout_check"


def _admin(url: str, sql: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(sql))
    engine.dispose()


def _run(env: dict, *args: str) -> str:
    done = subprocess.run([*HOTLINE, *args], env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"hotline {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


def _start(env: dict, log: Path, *args: str) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([*HOTLINE, *args], env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait_ready(base: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{base} ended at start")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{base} not ready within {timeout} s")


class Clients:
    """Intake requests over both workers, round robin, as nginx passes them."""

    def __init__(self, bases: list[str], token: str, clients: int) -> None:
        self.bases = bases
        self.headers = {"Authorization": f"Bearer {token}"}
        self.clients = clients
        self.counter = itertools.count(1)
        self.lock = threading.Lock()
        self.created: dict[str, str] = {}  # external_id -> number
        self.failed: list[tuple[str, str]] = []  # (external_id, why)
        self.refused: list[tuple[str, int]] = []
        self.stop = threading.Event()

    def run(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(self.clients)]
        for t in threads:
            t.start()
        return threads

    def _client(self, i: int) -> None:
        sessions = [httpx.Client(base_url=b, headers=self.headers, timeout=30) for b in self.bases]
        turn = i
        while not self.stop.is_set():
            n = next(self.counter)
            external_id = f"layout-{n:07d}"
            body = {
                "type": "complaint",
                "category": "CX0101",
                "content": f"负载测试诉求 {n}",
                "external_id": external_id,
            }
            first = turn % len(sessions)
            turn += 1
            for attempt in (first, 1 - first):
                try:
                    answer = sessions[attempt].post("/api/v1/tickets", json=body)
                except httpx.ConnectError:
                    continue  # never reached the worker: the other one gets it, as nginx does
                except httpx.TransportError as exc:
                    with self.lock:
                        self.failed.append((external_id, f"{self.bases[attempt]}: {exc.__class__.__name__}"))
                    break
                with self.lock:
                    if answer.status_code == 201:
                        self.created[external_id] = answer.json()["number"]
                    else:
                        self.refused.append((external_id, answer.status_code))
                break
        for s in sessions:
            s.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seconds", type=float, default=20, help="seconds of load (the kill half-way)")
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    _admin(args.pg_url, f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    _admin(args.pg_url, f'CREATE DATABASE "{DB}"')
    url = make_url(args.pg_url).set(database=DB).render_as_string(hide_password=False)
    logs = Path(tempfile.mkdtemp(prefix="hotline-layout-"))
    env = {
        **os.environ,
        "HOTLINE_DATABASE_URL": url,
        "HOTLINE_EMBEDDED_SCHEDULER": "false",
        "HOTLINE_LOG_FORMAT": "json",
        "HOTLINE_SCHEDULER_LEASE_SECONDS": "6",
        "HOTLINE_SWEEP_INTERVAL_SECONDS": "2",
        "HOTLINE_RATE_LIMIT_PER_MINUTE": "0",
        "PROMETHEUS_MULTIPROC_DIR": str(logs / "metrics"),
    }
    (logs / "metrics").mkdir()
    processes: list[subprocess.Popen] = []
    ok = True
    try:
        print("loading a small demo district ...", flush=True)
        _run(env, "demo-data", "--tickets", "200")
        token = _run(env, "users", "token", "agent1").strip()
        ports = [18101, 18102]
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        for port in ports:
            processes.append(_start(env, logs / f"worker-{port}.log", "serve", "--port", str(port), "--no-access-log"))
        processes.append(_start(env, logs / "scheduler.log", "scheduler"))
        for base, process in zip(bases, processes, strict=False):
            _wait_ready(base, process)
        print(f"two workers and the scheduler up; logs in {logs}", flush=True)

        clients = Clients(bases, token, args.clients)
        threads = clients.run()
        time.sleep(args.seconds / 2)
        before_kill = len(clients.created)
        processes[0].send_signal(signal.SIGKILL)
        processes[0].wait(10)
        print(f"killed the worker on {ports[0]} after {before_kill} intakes", flush=True)
        time.sleep(args.seconds / 2)
        clients.stop.set()
        for t in threads:
            t.join(60)

        engine = create_engine(url)
        with engine.connect() as conn:
            stored = dict(
                conn.execute(text("SELECT external_id, number FROM tickets WHERE external_id LIKE 'layout-%'")).all()
            )
            doubled = conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT ticket_id, deadline_kind, deadline_at, step FROM escalations "
                    "GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d"
                )
            ).scalar()
            lease = conn.execute(text("SELECT holder, expires_at > now() FROM scheduler_leases")).first()
        engine.dispose()
        ready = httpx.get(f"{bases[1]}/readyz", timeout=5)
        metrics = httpx.get(f"{bases[1]}/metrics", timeout=5).text
        lost = sorted(set(clients.created) - set(stored))
        unknown = sorted(set(stored) - set(clients.created) - {e for e, _ in clients.failed})
        wrong = [e for e, n in clients.created.items() if stored.get(e) != n]
        result = {
            "intakes_answered_201": len(clients.created),
            "failed_in_flight_on_the_killed_worker": len(clients.failed),
            "of_those_stored_anyway": len({e for e, _ in clients.failed} & set(stored)),
            "refused": clients.refused[:5],
            "lost": lost[:5],
            "stored_but_never_sent": unknown[:5],
            "stored_with_another_number": wrong[:5],
            "escalations_doubled": doubled,
            "leader": list(lease) if lease else None,
            "survivor_readyz": ready.status_code,
            "requests_per_second": round(
                (len(clients.created) + len(clients.failed) + len(clients.refused)) / args.seconds, 1
            ),
            "metrics_pooled": "hotline_http_request_duration_seconds_count" in metrics,
        }
        print(json.dumps(result, ensure_ascii=False, indent=2, default=str))
        failed_elsewhere = [why for _, why in clients.failed if not why.startswith(bases[0])]
        ok = (
            not lost
            and not unknown
            and not wrong
            and not clients.refused
            and not failed_elsewhere
            and doubled == 0
            and lease is not None
            and lease[1]
            and ready.status_code == 200
        )
        print("layout check:", "passed" if ok else "FAILED", flush=True)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
        _admin(args.pg_url, f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
