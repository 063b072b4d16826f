"""One scheduler among many: leader election on each database (hotline.ops.leader).

In one process, two `Leadership`s stand for two processes; then two real `hotline scheduler`
processes: one leads and sweeps, the other waits; a `kill -9` of the leader and the other
takes over within the lease; a clean stop hands the lead over at once."""

import json
import time
from pathlib import Path

import httpx

from hotline.db import utcnow
from hotline.models import SchedulerLease
from hotline.ops.leader import Leadership, current_lease
from tests.processes import free_port, kill_hard, start, stop

LEASE = 3.0  # seconds, for the processes (ticks every second)


def test_one_of_two_leads_and_the_other_takes_over_when_it_resigns(database):
    first, second = Leadership(database, 30), Leadership(database, 30)
    try:
        assert first.tick() and not second.tick()
        assert first.tick() and not second.tick()  # renewed, still refused
        assert current_lease(database).holder == first.holder
        first.resign()
        assert current_lease(database) is None
        assert second.tick() and not first.tick()
        assert current_lease(database).holder == second.holder
    finally:
        first.resign()
        second.resign()


def test_an_expired_sqlite_lease_is_taken_over_and_the_late_leader_steps_down(database):
    if not database.is_sqlite:
        return  # on PostgreSQL the lock, not the lease, decides (the process tests cover it)
    first, second = Leadership(database, 1), Leadership(database, 1)
    changes = []
    first.on_change = changes.append
    assert first.tick() and not second.tick()
    time.sleep(1.2)  # the leader missed its renewals (paused, or dead)
    assert second.tick()
    assert not first.tick() and changes == [True, False]
    assert current_lease(database).holder == second.holder
    second.resign()


def _log_entries(path: Path) -> list[dict]:
    """The process's JSON log lines written so far: whole lines only (the last one may be
    half written while it is read; the next read has it whole)."""
    entries = []
    for line in path.read_text().split("\n")[:-1]:
        if line.startswith("{"):
            entries.append(json.loads(line))
    return entries


def _sweeps(path: Path) -> list[float]:
    """When the process's sweeps ran (the times of its `sweep at` lines, as epoch seconds)."""
    from datetime import datetime

    return [
        datetime.fromisoformat(e["time"]).timestamp()
        for e in _log_entries(path)
        if e["logger"] == "hotline.scheduler" and e["message"].startswith("sweep at")
    ]


def _leading(path: Path) -> bool:
    return any(e["message"].startswith("scheduler: leading") for e in _log_entries(path))


def _wait(done, what: str, timeout: float) -> float:
    start_at = time.monotonic()
    while not done():
        assert time.monotonic() - start_at < timeout, f"no {what} within {timeout} s"
        time.sleep(0.05)
    return time.monotonic() - start_at


def test_two_scheduler_processes_one_sweeps_and_the_other_takes_over_after_kill_9(database, tmp_path):
    env = {
        "HOTLINE_SCHEDULER_LEASE_SECONDS": str(LEASE),
        "HOTLINE_SWEEP_INTERVAL_SECONDS": "0.3",
        "HOTLINE_LOG_FORMAT": "json",
        "HOTLINE_LOG_LEVEL": "DEBUG",
    }
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    processes = [start(database.url, "scheduler", log=log, env=env) for log in logs]
    try:
        _wait(lambda: any(_sweeps(log) for log in logs), "sweep", 60)
        time.sleep(3 * LEASE)  # several lease renewals and sweeps
        counts = [len(_sweeps(log)) for log in logs]
        assert sorted(c > 0 for c in counts) == [False, True], counts  # one sweeps, the other not
        leader = 0 if counts[0] else 1
        other = 1 - leader
        assert _leading(logs[leader]) and not _leading(logs[other])
        with database.read_session() as s:
            lease = s.get(SchedulerLease, "scheduler")
        assert str(processes[leader].pid) in lease.holder and lease.expires_at > utcnow()

        kill_hard(processes[leader])
        killed_at = time.time()
        took = _wait(lambda: _sweeps(logs[other]), "takeover", 6 * LEASE)
        assert took <= LEASE + LEASE / 3 + 2, f"took {took:.1f} s"
        assert all(t <= killed_at for t in _sweeps(logs[leader]))  # nothing after its death
        assert min(_sweeps(logs[other])) >= killed_at - 0.5  # nor before it, by the other
        assert str(processes[other].pid) in current_lease(database).holder
        # JSON lines throughout, none of them a traceback.
        assert all("exception" not in e for log in logs for e in _log_entries(log))

        # A clean stop gives the lease up (SIGTERM): nobody is left holding it.
        stop(processes[other])
        assert processes[other].returncode == 0, logs[other].read_text()[-2000:]
        assert current_lease(database) is None
    finally:
        for process in processes:
            stop(process)


def test_serve_with_two_workers_runs_one_embedded_scheduler(database, tmp_path):
    """`hotline serve --workers 2` with the embedded scheduler: the workers elect, and only a
    worker that leads sweeps (uvicorn may restart a worker slow to answer its health check on
    a busy machine: a restarted leader is replaced, never doubled); the workers answer ready."""
    log = tmp_path / "serve.log"
    port = free_port()
    env = {
        "HOTLINE_EMBEDDED_SCHEDULER": "true",
        "HOTLINE_SCHEDULER_LEASE_SECONDS": str(LEASE),
        "HOTLINE_SWEEP_INTERVAL_SECONDS": "1",
        "HOTLINE_LOG_FORMAT": "json",
        "HOTLINE_LOG_LEVEL": "DEBUG",
    }
    server = start(database.url, "serve", "--port", str(port), "--workers", "2", "--no-access-log", log=log, env=env)
    try:
        _wait(lambda: _sweeps(log), "sweep", 120)
        time.sleep(2 * LEASE)
        entries = _log_entries(log)
        led = {}  # pid -> when it took the lead
        for e in entries:
            if e["message"].startswith("scheduler: leading"):
                led.setdefault(e["pid"], e["time"])
        sweeps = [e for e in entries if e["logger"] == "hotline.scheduler" and e["message"].startswith("sweep at")]
        assert {e["pid"] for e in sweeps} <= set(led), (led, {e["pid"] for e in sweeps})
        assert all(e["time"] >= led[e["pid"]] for e in sweeps)
        last = max(led, key=led.get)
        assert current_lease(database).holder.split(":")[1] == str(last)
        _wait(lambda: _ready(port), "ready", 60)
    finally:
        stop(server)


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).json() == {"status": "ready"}
    except httpx.TransportError:
        return False


def test_a_scheduler_stopped_directly_gives_up_the_lead(runtime):
    """`scheduler.shutdown()` (not only `stop_scheduler`) hands the lead on: another process
    leads at its next tick, not once the collector happens to free the stopped one."""
    from hotline.scheduler import build_scheduler

    scheduler = build_scheduler(runtime)
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while not scheduler.leadership.leading:
            assert time.monotonic() < deadline, "the scheduler did not take the lead"
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
    other = Leadership(runtime.db, 30)
    try:
        assert other.tick(), "the stopped scheduler still holds the lead"
    finally:
        other.resign()
