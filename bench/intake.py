"""Intake, sign and the stack's ceiling, through real HTTP against real servers on SQLite.

    .venv/bin/python bench/intake.py [--requests 3000] [--concurrency 16] [--warmup 300] [--rounds 1]

Sets up everything in a temporary directory (database, district, users, tokens), starts
`hotline serve` as a subprocess, and measures, after a warm-up, a fixed number of

  intake   POST /api/v1/tickets as an agent (201 each)
  sign     POST /api/v1/tickets/{id}/transitions {"event": "sign"} as a handler of the
           department the tickets were dispatched to (dispatched first, untimed, by the agent)
  ceiling  POST /api/v1/tickets on bench/ceiling_app.py: FastAPI + one raw sqlite3 INSERT,
           served by uvicorn the same way (one worker, same machine)

at a fixed number of concurrent keep-alive connections. The load generator is a separate
process (no shared GIL): a minimal HTTP/1.1 client on asyncio (uvloop when installed), far
lighter on the CPU than httpx (`--client httpx` to compare). Every response is checked against
the database afterwards: each returned id/number exists, the row counts equal the 201s, and
each signed ticket is in_progress with exactly one sign event.

Then (unless --profile none) the intake and the sign are run once more with py-spy sampling
the server, and the profile is summarised as a tree of hotline's functions and the notable
library calls under them. Profiled figures are not the headline figures.

Prints a table and writes bench/results/intake.json. Not part of the test suite.
"""

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"

DEPARTMENTS = [("housing", "区住建局"), ("urban", "区城管局"), ("market", "区市场监管局")]
CATEGORIES = [
    # code, name, parent, default department
    ("01", "城乡建设", None, None),
    ("0101", "物业管理", "01", "housing"),
    ("0102", "违章搭建", "01", "urban"),
    ("02", "市场监管", None, "market"),
]
# The district's streets and communities, as a district lists them (its own intake is checked
# against them): the street and community every ticket names, and more of each. A district
# that lists none is `--communities 0`: every intake then reads the table again, since its
# copy cannot show that a street named is one of the district's.
STREET, COMMUNITY = "东城街道", "幸福社区"
STREETS = 10
CATEGORY = "0101"  # routed to housing by the category default
HANDLER_DEPARTMENT = "housing"


def ticket_body(i: int) -> dict[str, Any]:
    return {
        "type": "complaint",
        "category": CATEGORY,
        "content": f"小区电梯坏了一周没人修，物业不管（第{i}次来电）",
        "caller_name": "张三",
        "caller_phone": "13812345678",
        "street": STREET,
        "community": COMMUNITY,
    }


# --------------------------------------------------------------------------- load generator
# Runs in its own process: `intake.py --load-client`, spec on stdin, results on stdout.


def _proc_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds (user, system) of a process, its threads and its direct children."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            pids.append(int(child))
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11]) / tick
        system += int(fields[12]) / tick
    return user, system


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    total = sum(values[:8])
    idle = values[3] + values[4]
    return (total - idle) / tick, total / tick


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class RawConnection:
    """One keep-alive HTTP/1.1 connection; just enough HTTP for JSON request/response."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def roundtrip(self, data: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(data)
        reader = self.reader
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length = -1
        chunked = close = False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await reader.readline()
                    break
                parts.append(await reader.readexactly(size))
                await reader.readline()
            body = b"".join(parts)
        elif length >= 0:
            body = await reader.readexactly(length)
        else:
            body = await reader.read()
            close = True
        if close:
            await self.close()
        return status, body


def _encode(host: str, port: int, req: dict[str, Any]) -> bytes:
    body = req["body"].encode()
    head = (
        f"{req.get('method', 'POST')} {req['path']} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"Authorization: Bearer {req.get('token', '')}\r\n"
        "Content-Type: application/json\r\n"
        "Accept: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _run_phase_raw(conns: list[RawConnection], host: str, port: int, requests: list[dict]) -> list[tuple]:
    payloads = [_encode(host, port, r) for r in requests]
    results: list[tuple] = [None] * len(payloads)  # type: ignore[list-item]
    indices = iter(range(len(payloads)))

    async def worker(conn: RawConnection) -> None:
        for i in indices:
            start = time.perf_counter()
            try:
                status, body = await conn.roundtrip(payloads[i])
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
                await conn.close()
                status, body = 0, repr(exc).encode()
            results[i] = (status, time.perf_counter() - start, body)

    await asyncio.gather(*(worker(c) for c in conns))
    return results


async def _run_phase_httpx(client, requests: list[dict], concurrency: int) -> list[tuple]:
    results: list[tuple] = [None] * len(requests)  # type: ignore[list-item]
    indices = iter(range(len(requests)))

    async def worker() -> None:
        for i in indices:
            req = requests[i]
            headers = {"Authorization": f"Bearer {req.get('token', '')}", "Content-Type": "application/json"}
            start = time.perf_counter()
            try:
                r = await client.request(req.get("method", "POST"), req["path"], content=req["body"], headers=headers)
                status, body = r.status_code, r.content
            except Exception as exc:  # noqa: BLE001 - every failure is a failed request here
                status, body = 0, repr(exc).encode()
            results[i] = (status, time.perf_counter() - start, body)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def _digest(body: bytes) -> dict[str, Any]:
    """What the checks need of a response body."""
    try:
        data = json.loads(body)
    except ValueError:
        return {"raw": body[:200].decode(errors="replace")}
    if not isinstance(data, dict):
        return {"raw": str(data)[:200]}
    keep = {k: data.get(k) for k in ("id", "number", "state", "version") if k in data}
    if "detail" in data:
        keep["detail"] = data["detail"]
    return keep


async def _client_main(spec: dict[str, Any]) -> dict[str, Any]:
    host, port, concurrency = spec["host"], spec["port"], spec["concurrency"]
    server_pid = spec.get("server_pid")
    out: dict[str, Any] = {"phases": {}}
    if spec["client"] == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        client = httpx.AsyncClient(base_url=f"http://{host}:{port}", limits=limits, timeout=120)
        conns: list[RawConnection] = []
    else:
        client = None
        conns = [RawConnection(host, port) for _ in range(concurrency)]
        await asyncio.gather(*(c.open() for c in conns))
    try:
        for phase in spec["phases"]:
            requests = phase["requests"]
            cpu0, server0, machine0 = _self_cpu(), _proc_cpu(server_pid), _machine_cpu()
            start = time.perf_counter()
            if client is not None:
                results = await _run_phase_httpx(client, requests, concurrency)
            else:
                results = await _run_phase_raw(conns, host, port, requests)
            wall = time.perf_counter() - start
            cpu1, server1, machine1 = _self_cpu(), _proc_cpu(server_pid), _machine_cpu()
            out["phases"][phase["name"]] = {
                "wall_s": wall,
                "client_cpu_s": cpu1 - cpu0,
                "server_cpu_s": server1[0] + server1[1] - server0[0] - server0[1],
                "server_sys_s": server1[1] - server0[1],
                "machine_busy_s": machine1[0] - machine0[0],
                "machine_total_s": machine1[1] - machine0[1],
                "status": [r[0] for r in results],
                "latency_s": [r[1] for r in results],
                "bodies": [_digest(r[2]) for r in results],
            }
    finally:
        if client is not None:
            await client.aclose()
        for c in conns:
            await c.close()
    return out


def load_client_entry() -> None:
    spec = json.load(sys.stdin)
    if spec["client"] == "raw":
        with contextlib.suppress(ImportError):
            import uvloop

            uvloop.install()
    result = asyncio.run(_client_main(spec))
    json.dump(result, sys.stdout)


def run_load(
    args: argparse.Namespace, port: int, server_pid: int, phases: list[tuple[str, list[dict]]]
) -> dict[str, Any]:
    """Run phases (name, requests) one after the other on the same connections, in a child process."""
    spec = {
        "host": "127.0.0.1",
        "port": port,
        "concurrency": args.concurrency,
        "client": args.client,
        "server_pid": server_pid,
        "phases": [{"name": name, "requests": reqs} for name, reqs in phases],
    }
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--load-client"],
        input=json.dumps(spec, ensure_ascii=False),
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise SystemExit(f"bench: the load client failed:\n{proc.stderr}")
    return json.loads(proc.stdout)["phases"]


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hotline_command() -> list[str]:
    script = Path(sys.executable).parent / "hotline"
    return [str(script)] if script.exists() else [sys.executable, "-m", "hotline"]


class Server:
    """A server subprocess, started and waited for; stopped with SIGTERM (uvicorn's clean stop)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.name, self.port = name, port
        self.log = log
        self._log_file = log.open("w")
        self.proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=self._log_file, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: {self.name} exited ({self.proc.returncode}):\n{self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
                    if s.recv(12).startswith(b"HTTP/1.1"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"bench: {self.name} did not answer within {timeout:.0f} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()


# --------------------------------------------------------------------------- set-up


def set_up_district(
    env: dict[str, str], users: int, departments: int = 0, categories: int = 0, communities: int = 100
) -> dict[str, list]:
    """Migrate, then departments, categories, `users` agents and as many housing handlers; their tokens.

    One user per connection: hotline limits the requests per token (HOTLINE_RATE_LIMIT_PER_MINUTE),
    and a call centre's load comes from many agents, not one.

    `departments` and `categories` add that many more of each (a real district has about a
    hundred departments and a category tree of several hundred nodes). `communities`, when not
    0, lists the district's places: that many communities over ten streets, the tickets' own
    among them.
    """
    subprocess.run([*hotline_command(), "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
    os.environ["HOTLINE_DATABASE_URL"] = env["HOTLINE_DATABASE_URL"]
    from hotline.config import get_settings
    from hotline.db import Database, utcnow
    from hotline.directory import create_category, create_department, create_place, create_user, issue_token
    from hotline.runtime import Runtime

    get_settings.cache_clear()
    runtime = Runtime(Database(env["HOTLINE_DATABASE_URL"]), get_settings())
    now = utcnow()
    tokens: dict[str, list[str]] = {"agent": [], "handler": []}
    with runtime.db.session() as s:
        for code, name in DEPARTMENTS:
            create_department(s, code=code, name=name, now=now)
        for code, name, parent, dept in CATEGORIES:
            create_category(s, runtime, code=code, name=name, parent=parent, department=dept)
        extra_departments = [f"d{i:03d}" for i in range(departments)]
        for code in extra_departments:
            create_department(s, code=code, name=f"部门{code}", now=now)
        for i in range(categories):
            # A two-level tree: every 20th node is a top-level one, the others hang under it.
            code, parent = f"c{i:04d}", None if i % 20 == 0 else f"c{i - i % 20:04d}"
            dept = extra_departments[i % len(extra_departments)] if extra_departments else None
            create_category(s, runtime, code=code, name=f"分类{code}", parent=parent, department=dept)
        for i in range(communities):
            street = STREET if i % STREETS == 0 else f"第{i % STREETS}街道"
            create_place(s, street=street, community=COMMUNITY if i == 0 else f"第{i}社区")
        for i in range(users):
            for role, dept in (("agent", None), ("handler", HANDLER_DEPARTMENT)):
                username = f"bench_{role}_{i}"
                # argon2 runs here, once per user, at set-up; never on a request's path.
                create_user(s, username=username, role=role, password="bench-password-1", department=dept, now=now)
                tokens[role].append(issue_token(s, username, now=now))
    runtime.db.dispose()
    return tokens


# --------------------------------------------------------------------------- figures and checks


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def figures(phase: dict[str, Any], ok_status: int) -> dict[str, Any]:
    lat = sorted(phase["latency_s"])
    n = len(lat)
    codes = Counter(phase["status"])
    wall = phase["wall_s"]
    machine = phase["machine_total_s"] or 1.0
    return {
        "requests": n,
        "ok": codes.get(ok_status, 0),
        "status_codes": {str(k): v for k, v in sorted(codes.items())},
        "wall_s": round(wall, 3),
        "rps": round(n / wall, 1) if wall else None,
        "p50_ms": round(percentile(lat, 0.50) * 1000, 2),
        "p90_ms": round(percentile(lat, 0.90) * 1000, 2),
        "p99_ms": round(percentile(lat, 0.99) * 1000, 2),
        "max_ms": round(lat[-1] * 1000, 2) if lat else None,
        "client_cpu_s": round(phase["client_cpu_s"], 3),
        "client_cores": round(phase["client_cpu_s"] / wall, 3) if wall else None,
        "server_cpu_s": round(phase["server_cpu_s"], 3),
        "server_cores": round(phase["server_cpu_s"] / wall, 3) if wall else None,
        "server_sys_share": round(phase["server_sys_s"] / phase["server_cpu_s"], 3) if phase["server_cpu_s"] else None,
        "server_cpu_ms_per_request": round(phase["server_cpu_s"] / n * 1000, 3) if n else None,
        "machine_busy_share": round(phase["machine_busy_s"] / machine, 3),
        "client_share_of_machine": round(phase["client_cpu_s"] / machine, 3),
        # CPU used by neither server nor client while the phase ran: other load on the machine (noise).
        "other_share_of_machine": round(
            max(0.0, phase["machine_busy_s"] - phase["server_cpu_s"] - phase["client_cpu_s"]) / machine, 3
        ),
    }


def errors_of(phase: dict[str, Any], ok_status: int, limit: int = 3) -> list[str]:
    out = []
    for status, body in zip(phase["status"], phase["bodies"], strict=True):
        if status != ok_status and len(out) < limit:
            out.append(f"{status}: {body}")
    return out


def created(phase: dict[str, Any]) -> list[tuple[int, str]]:
    return [(b["id"], b.get("number")) for s, b in zip(phase["status"], phase["bodies"], strict=True) if s == 201]


def signed(phase: dict[str, Any], ids: list[int]) -> list[int]:
    return [i for i, s in zip(ids, phase["status"], strict=True) if s == 200]


def verify_hotline(db_path: Path, created_ids: list[tuple[int, str]], signed_ids: list[int], dispatched: int) -> dict:
    """Every returned ticket exists with its number; counts match; every sign landed exactly once."""
    import sqlite3

    problems: list[str] = []
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = dict(conn.execute("SELECT id, number FROM tickets").fetchall())
        ids = [i for i, _ in created_ids]
        if len(set(ids)) != len(ids):
            problems.append(f"{len(ids) - len(set(ids))} ids were returned twice")
        missing = [i for i, _ in created_ids if i not in rows]
        wrong_number = [i for i, n in created_ids if i in rows and rows[i] != n]
        if missing:
            problems.append(f"{len(missing)} returned ids are not in the database, e.g. {missing[:5]}")
        if wrong_number:
            problems.append(f"{len(wrong_number)} tickets carry another number than returned, e.g. {wrong_number[:5]}")
        if len(rows) != len(created_ids):
            problems.append(f"{len(rows)} tickets in the database, {len(created_ids)} answered 201")
        numbers = [n for _, n in created_ids]
        if len(set(numbers)) != len(numbers):
            problems.append("duplicate ticket numbers were returned")
        creates = conn.execute("SELECT count(*) FROM ticket_events WHERE event = 'create'").fetchone()[0]
        if creates != len(rows):
            problems.append(f"{creates} create events for {len(rows)} tickets")
        dispatches = conn.execute("SELECT count(*) FROM ticket_events WHERE event = 'dispatch'").fetchone()[0]
        if dispatches != dispatched:
            problems.append(f"{dispatches} dispatch events, {dispatched} dispatches answered 200")
        state = dict(conn.execute("SELECT id, state FROM tickets").fetchall())
        signs = Counter(
            t for (t,) in conn.execute("SELECT ticket_id FROM ticket_events WHERE event = 'sign'").fetchall()
        )
        not_in_progress = [t for t in signed_ids if state.get(t) != "in_progress"]
        not_once = [t for t in signed_ids if signs.get(t) != 1]
        if not_in_progress:
            problems.append(f"{len(not_in_progress)} signed tickets are not in_progress, e.g. {not_in_progress[:5]}")
        if not_once:
            problems.append(f"{len(not_once)} signed tickets lack exactly one sign event, e.g. {not_once[:5]}")
        if sum(signs.values()) != len(signed_ids) or len(set(signed_ids)) != len(signed_ids):
            problems.append(f"{sum(signs.values())} sign events in the database, {len(signed_ids)} signs answered 200")
        assignments = conn.execute(
            "SELECT count(*) FROM assignments WHERE status = 'signed' AND signed_at IS NOT NULL"
        ).fetchone()[0]
        if assignments != len(signed_ids):
            problems.append(f"{assignments} signed assignments, {len(signed_ids)} signs answered 200")
        return {
            "ok": not problems,
            "problems": problems,
            "tickets_in_db": len(rows),
            "tickets_answered_201": len(created_ids),
            "create_events": creates,
            "dispatch_events": dispatches,
            "sign_events": sum(signs.values()),
            "signs_answered_200": len(signed_ids),
        }
    finally:
        conn.close()


def verify_ceiling(db_path: Path, created_ids: list[tuple[int, str]]) -> dict:
    import sqlite3

    problems = []
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = dict(conn.execute("SELECT id, number FROM tickets").fetchall())
    finally:
        conn.close()
    missing = [i for i, n in created_ids if rows.get(i) != n]
    if missing:
        problems.append(f"{len(missing)} returned ids/numbers are not in the database, e.g. {missing[:5]}")
    if len(rows) != len(created_ids):
        problems.append(f"{len(rows)} rows in the database, {len(created_ids)} answered 201")
    if len({i for i, _ in created_ids}) != len(created_ids):
        problems.append("an id was returned twice")
    return {"ok": not problems, "problems": problems, "rows_in_db": len(rows), "answered_201": len(created_ids)}


# --------------------------------------------------------------------------- profile

NOTABLE = [
    # (file, function): library calls worth a line of their own in the tree
    ("sqlalchemy/orm/session.py", "commit"),
    ("sqlalchemy/orm/session.py", "flush"),
    ("sqlalchemy/orm/session.py", "close"),
    ("sqlalchemy/orm/session.py", "__exit__"),
    ("sqlalchemy/orm/session.py", "_connection_for_bind"),
    ("sqlalchemy/orm/session.py", "get"),
    ("sqlalchemy/orm/session.py", "add"),
    ("sqlmodel/orm/session.py", "exec"),
    ("sqlalchemy/orm/loading.py", "instances"),
    ("sqlalchemy/orm/unitofwork.py", "execute"),
    ("sqlalchemy/sql/elements.py", "_compile_w_cache"),
    ("sqlalchemy/engine/base.py", "_execute_context"),
    ("sqlalchemy/engine/base.py", "exec_driver_sql"),
    ("sqlalchemy/engine/default.py", "do_execute"),
    ("sqlalchemy/engine/default.py", "do_execute_no_params"),
    ("sqlalchemy/engine/default.py", "do_commit"),
    ("sqlalchemy/engine/default.py", "do_rollback"),
    ("sqlalchemy/engine/base.py", "_begin_impl"),
    ("sqlalchemy/pool/base.py", "_checkout"),
    ("sqlalchemy/pool/base.py", "_finalize_fairy"),
    ("sqlmodel/main.py", "__init__"),
    ("sqlmodel/_compat.py", "sqlmodel_table_construct"),
    ("fastapi/routing.py", "serialize_response"),
    ("fastapi/dependencies/utils.py", "request_body_to_args"),
    ("fastapi/dependencies/utils.py", "solve_dependencies"),
    ("fastapi/encoders.py", "jsonable_encoder"),
    ("starlette/responses.py", "render"),
    ("starlette/requests.py", "json"),
    ("starlette/requests.py", "body"),
    ("starlette/concurrency.py", "run_in_threadpool"),
    ("anyio/to_thread.py", "run_sync"),
    ("uvicorn/protocols/http/httptools_impl.py", "data_received"),
    ("uvicorn/protocols/http/httptools_impl.py", "send"),
    ("transitions/core.py", "trigger"),
    ("transitions/core.py", "add_model"),
    ("transitions/core.py", "remove_model"),
    ("json/__init__.py", "dumps"),
    ("json/__init__.py", "loads"),
]
LIBRARIES = (
    "sqlalchemy",
    "sqlmodel",
    "pydantic",
    "fastapi",
    "starlette",
    "anyio",
    "uvicorn",
    "argon2",
    "transitions",
    "hotline",
    "json",
    "asyncio",
)


def _parse_frame(frame: str) -> tuple[str, str]:
    """py-spy's 'Class.function (package/file.py:123)' -> ('Class.function', 'package/file.py')."""
    func, _, rest = frame.partition(" (")
    path = rest.rsplit(":", 1)[0] if rest else ""
    return func, path


def _module(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def _interesting(func: str, path: str) -> str | None:
    """A label for the frames the tree shows: hotline's own, and the notable library calls."""
    if path.startswith("hotline/"):
        if path == "hotline/cli.py" or func == "BodySizeLimit.__call__":
            return None  # the server's start and the middleware around every request
        return f"{_module(path)}:{func}"
    for file, name in NOTABLE:
        if path.endswith(file) and (func == name or func.endswith("." + name)):
            return f"{_module(file)}:{func}"
    return None


def _library(path: str) -> str:
    top = path.split("/", 1)[0]
    if top in LIBRARIES:
        return top
    if top in ("threading.py", "queue.py", "concurrent"):
        return "threads / queues (stdlib)"
    return "other (stdlib, generated code)"


def summarise_profile(raw: Path, threshold: float = 0.01) -> dict[str, Any]:
    """py-spy's raw (collapsed) stacks: a tree of interesting frames, and self time by library and function."""
    tree: dict[tuple, int] = defaultdict(int)
    by_library: Counter = Counter()
    by_function: Counter = Counter()
    threads: Counter = Counter()
    total = argon2 = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [f for f in map(_parse_frame, stack.split(";")) if f[1]]
        if any(p.startswith("argon2") for _, p in frames):
            argon2 += count
        loop_thread = any(p.startswith(("uvicorn/server.py", "asyncio/runners.py")) for _, p in frames)
        threads["event loop thread" if loop_thread else "thread-pool threads"] += count
        path: tuple = ()
        for func, p in frames:
            label = _interesting(func, p)
            if label and (not path or path[-1] != label):
                path = (*path, label)
                tree[path] += count
        if not path:
            rest = "event loop: uvicorn, middleware, routing" if loop_thread else "thread pool: anyio workers"
            tree[(f"(no hotline or notable frame; {rest})",)] += count
        if frames:
            func, p = frames[-1]
            by_library[_library(p)] += count
            by_function[f"{_module(p)}:{func}"] += count
    if not total:
        return {"samples": 0}

    def pct(n: int) -> float:
        return round(100 * n / total, 1)

    kept = {k: v for k, v in tree.items() if v / total >= threshold}

    def order(key: tuple) -> list:
        # Depth first, heavier siblings first.
        return [(-kept.get(key[: i + 1], 0), key[i]) for i in range(len(key))]

    return {
        "samples": total,
        "argon2_pct": pct(argon2),
        "threads_pct": {k: pct(v) for k, v in threads.most_common()},
        "self_time_by_library_pct": {k: pct(v) for k, v in by_library.most_common()},
        "self_time_top_functions_pct": {k: pct(v) for k, v in by_function.most_common(15)},
        "tree": [{"frame": k[-1], "depth": len(k) - 1, "pct": pct(kept[k])} for k in sorted(kept, key=order)],
    }


def write_collapsed(raw: Path, out: Path, keep: float = 0.0005) -> None:
    """The profile as collapsed stacks without line numbers (for flame-graph tools), small stacks dropped."""
    stacks: Counter = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            frames = (f"{func} ({path})" for func, path in map(_parse_frame, stack.split(";")))
            stacks[";".join(frames)] += int(count)
    total = sum(stacks.values()) or 1
    lines = [f"{k} {v}" for k, v in stacks.most_common() if v / total >= keep]
    out.write_text("\n".join(lines) + "\n")


def py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


class Profiler:
    """py-spy recording one process until stopped (SIGINT makes it write its output)."""

    def __init__(self, exe: str, pid: int, out: Path, rate: int) -> None:
        self.out = out
        # --gil: only the thread holding the GIL, i.e. the interpreter time that caps throughput
        # (SQLite's C code and the waits run without the GIL and are not sampled).
        argv = [exe, "record", "--pid", str(pid), "--gil", "--format", "raw", "--output", str(out), "--rate", str(rate)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)  # let it attach

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.out.exists():
            raise SystemExit(f"bench: py-spy wrote no profile:\n{err}")


# --------------------------------------------------------------------------- the run


def intake_requests(start: int, n: int, tokens: list[str]) -> list[dict]:
    """n intake requests, the tokens taking turns (one user per connection, as at a call centre)."""
    return [
        {
            "path": "/api/v1/tickets",
            "body": json.dumps(ticket_body(start + i), ensure_ascii=False),
            "token": tokens[i % len(tokens)],
        }
        for i in range(n)
    ]


def event_requests(ids: list[int], event: str, tokens: list[str]) -> list[dict]:
    body = json.dumps({"event": event})
    return [
        {"path": f"/api/v1/tickets/{t}/transitions", "body": body, "token": tokens[i % len(tokens)]}
        for i, t in enumerate(ids)
    ]


def print_profile(title: str, prof: dict[str, Any]) -> None:
    print(f"\n{title}: {prof['samples']} samples of the GIL holder; argon2 in {prof['argon2_pct']}% of them")
    print("  threads: " + ", ".join(f"{k} {v}%" for k, v in prof["threads_pct"].items()))
    print("  self time by library: " + ", ".join(f"{k} {v}%" for k, v in prof["self_time_by_library_pct"].items()))
    print(
        "  top self time: " + ", ".join(f"{k} {v}%" for k, v in list(prof["self_time_top_functions_pct"].items())[:8])
    )
    print("  inclusive time, hotline's frames and notable library calls (>= 1%):")
    for node in prof["tree"]:
        print(f"    {'  ' * node['depth']}{node['frame']}  {node['pct']}%")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="timed requests per benchmark (default 3000)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument("--warmup", type=int, default=300, help="untimed requests before each (default 300)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="timed rounds per benchmark; the median round is reported (default 1)"
    )
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw", help="load generator (default raw)")
    parser.add_argument(
        "--profile",
        choices=["all", "intake", "none"],
        default="all",
        help="py-spy the server in an extra intake (and sign) run (default all)",
    )
    parser.add_argument("--profile-rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument(
        "--save-stacks",
        action="store_true",
        help="also write the profiles' collapsed stacks to bench/results/{intake,sign}-profile.txt (a few 100 kB)",
    )
    parser.add_argument("--departments", type=int, default=0, help="more departments in the district (default 0)")
    parser.add_argument("--categories", type=int, default=0, help="more category-tree nodes (default 0)")
    parser.add_argument(
        "--communities",
        type=int,
        default=100,
        help="communities the district lists, over ten streets (default 100; 0: no places listed)",
    )
    parser.add_argument("--only", choices=["hotline", "ceiling"], help="run one server's benchmarks only")
    parser.add_argument("--out", type=Path, default=RESULTS / "intake.json", help="the JSON results file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (databases, logs)")
    parser.add_argument("--load-client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load_client:
        load_client_entry()
        return 0

    # A SIGTERM unwinds like an exception, so that the servers are stopped and the temporary directory goes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="hotline-bench-"))
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_before": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "requests": args.requests,
            "concurrency": args.concurrency,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "client": args.client,
            "district": {
                "departments": len(DEPARTMENTS) + args.departments,
                "categories": len(CATEGORIES) + args.categories,
                "communities": args.communities,
            },
            "workers": 1,
            "database": "SQLite (WAL, synchronous=NORMAL)",
        },
        "results": {},
    }
    try:
        run_benchmarks(args, tmp, report)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print_report(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    failed = [k for k, v in report["results"].items() if k.startswith("verify") and not v["ok"]]
    return 1 if failed else 0


def median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median throughput (the upper one of two)."""
    return sorted(rounds, key=lambda r: r["rps"])[len(rounds) // 2]


def run_benchmarks(args: argparse.Namespace, tmp: Path, report: dict[str, Any]) -> None:
    n, w, rounds_wanted = args.requests, args.warmup, args.rounds
    results = report["results"]
    rounds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    errors: dict[str, list[str]] = defaultdict(list)
    hot_created: list[tuple[int, str]] = []
    hot_signed: list[int] = []
    ceiling_created: list[tuple[int, str]] = []
    dispatched_count = 0
    serial = [0]  # numbers the tickets' content

    def intake_batch(count: int, tokens: list[str]) -> list[dict]:
        serial[0] += count
        return intake_requests(serial[0] - count, count, tokens)

    def timed(name: str, server: Server, requests: list[dict], ok: int) -> dict[str, Any]:
        phase = run_load(args, server.port, server.pid, [(name, requests)])[name]
        errors[name] += errors_of(phase, ok)
        return phase

    hot = ceiling = None
    db_path, ceiling_db = tmp / "bench.db", tmp / "ceiling.db"
    spy = py_spy() if args.profile != "none" and args.only != "ceiling" else None
    if args.profile != "none" and args.only != "ceiling" and spy is None:
        print("py-spy not found (pip install py-spy): no profile", file=sys.stderr)
    try:
        if args.only != "ceiling":
            env = {**os.environ, "HOTLINE_DATABASE_URL": f"sqlite:///{db_path}", "HOTLINE_EMBEDDED_SCHEDULER": "false"}
            print(f"set-up in {tmp} ...", flush=True)
            tokens = set_up_district(env, args.concurrency, args.departments, args.categories, args.communities)
            port = free_port()
            argv_hot = [*hotline_command(), "serve", "--port", str(port), "--no-access-log", "--log-level", "warning"]
            hot = Server("hotline serve", argv_hot, env, port, tmp / "hotline-serve.log")
            hot.wait_ready("/api/v1/tickets")
        if args.only != "hotline":
            env = {**os.environ, "CEILING_DATABASE": str(ceiling_db)}
            port = free_port()
            argv_ceiling = [sys.executable, "-m", "uvicorn", "bench.ceiling_app:app", "--port", str(port)]
            argv_ceiling += ["--no-access-log", "--log-level", "warning"]
            ceiling = Server("ceiling app", argv_ceiling, env, port, tmp / "ceiling.log")
            ceiling.wait_ready("/health")

        def ceiling_round(label: str) -> dict[str, Any] | None:
            if ceiling is None:
                return None
            phase = timed("ceiling", ceiling, intake_batch(n, ["none"]), 201)
            ceiling_created.extend(created(phase))
            rounds["ceiling"].append({**figures(phase, 201), "round": label})
            return rounds["ceiling"][-1]

        # Warm-ups (untimed), then the rounds: each server in turn, so that noise from
        # elsewhere on the machine hits both alike; the ratio is taken per round too.
        print(f"warm-up: {w} requests per server ...", flush=True)
        if hot is not None:
            hot_created += created(timed("warmup", hot, intake_batch(w, tokens["agent"]), 201))
        if ceiling is not None:
            ceiling_created.extend(created(timed("warmup", ceiling, intake_batch(w, ["none"]), 201)))
        paired: dict[str, list[float]] = defaultdict(list)
        for r in range(rounds_wanted):
            label = f"intake round {r + 1}"
            print(f"{label}: {n} requests at {args.concurrency} connections, hotline then ceiling ...", flush=True)
            mine = None
            if hot is not None:
                phase = timed("intake", hot, intake_batch(n, tokens["agent"]), 201)
                hot_created += created(phase)
                mine = {**figures(phase, 201), "round": label}
                rounds["intake"].append(mine)
            theirs = ceiling_round(label)
            if mine and theirs:
                paired["intake"].append(mine["rps"] / theirs["rps"])

        if hot is not None:
            ids = [i for i, _ in hot_created]
            print(f"dispatching {len(ids)} tickets (untimed) ...", flush=True)
            phase = timed("dispatch", hot, event_requests(ids, "dispatch", tokens["agent"]), 200)
            results["dispatch_untimed"] = figures(phase, 200)
            dispatched = [i for i, s in zip(ids, phase["status"], strict=True) if s == 200]
            dispatched_count += len(dispatched)
            warm, rest = dispatched[:w], dispatched[w:]
            hot_signed += signed(timed("warmup", hot, event_requests(warm, "sign", tokens["handler"]), 200), warm)
            for r in range(rounds_wanted):
                label = f"sign round {r + 1}"
                batch = rest[r * n : (r + 1) * n]
                print(f"{label}: {len(batch)} signs, then a ceiling round ...", flush=True)
                phase = timed("sign", hot, event_requests(batch, "sign", tokens["handler"]), 200)
                hot_signed += signed(phase, batch)
                mine = {**figures(phase, 200), "round": label}
                rounds["sign"].append(mine)
                theirs = ceiling_round(label)
                if theirs:
                    paired["sign"].append(mine["rps"] / theirs["rps"])
        if ceiling is not None:
            ceiling.stop()

        profiles: dict[str, Any] = {}
        if hot is not None and spy is not None:
            print(f"profiled intake: {n} requests with py-spy on the server ...", flush=True)
            prof = Profiler(spy, hot.pid, tmp / "intake-profile.txt", args.profile_rate)
            phase = timed("profiled intake", hot, intake_batch(n, tokens["agent"]), 201)
            prof.stop()
            profiles["intake"] = {"figures_under_profiler": figures(phase, 201), **summarise_profile(prof.out)}
            new = created(phase)
            hot_created += new
            if args.profile == "all":
                ids = [i for i, _ in new]
                phase = timed("dispatch", hot, event_requests(ids, "dispatch", tokens["agent"]), 200)
                ids = [i for i, s in zip(ids, phase["status"], strict=True) if s == 200]
                dispatched_count += len(ids)
                print(f"profiled sign: {len(ids)} requests with py-spy on the server ...", flush=True)
                prof = Profiler(spy, hot.pid, tmp / "sign-profile.txt", args.profile_rate)
                phase = timed("profiled sign", hot, event_requests(ids, "sign", tokens["handler"]), 200)
                prof.stop()
                profiles["sign"] = {"figures_under_profiler": figures(phase, 200), **summarise_profile(prof.out)}
                hot_signed += signed(phase, ids)
            if args.save_stacks:
                RESULTS.mkdir(parents=True, exist_ok=True)
                for name in profiles:
                    write_collapsed(tmp / f"{name}-profile.txt", RESULTS / f"{name}-profile.txt")
        report["profile"] = profiles
    finally:
        for server in (hot, ceiling):
            if server is not None:
                server.stop()

    for name, runs in rounds.items():
        results[name] = {**median_round(runs), "errors": errors[name][:5], "rounds": runs}
    if hot is not None:
        results["verify_hotline"] = verify_hotline(db_path, hot_created, hot_signed, dispatched_count)
    if ceiling is not None:
        results["verify_ceiling"] = verify_ceiling(ceiling_db, ceiling_created)
    if "ceiling" in results:
        for name in ("intake", "sign"):
            if name in results:
                report[f"ratio_{name}_to_ceiling"] = round(results[name]["rps"] / results["ceiling"]["rps"], 3)
                pairs = sorted(paired[name])
                report[f"ratio_{name}_to_ceiling_per_round"] = [round(x, 3) for x in paired[name]]
                report[f"ratio_{name}_to_ceiling_median_of_rounds"] = round(pairs[len(pairs) // 2], 3)
                # Both servers are CPU-bound on one GIL: the ratio of server CPU per request says nearly
                # the same, and other load on the machine moves it much less than it moves req/s.
                report[f"cpu_ratio_{name}_to_ceiling"] = round(
                    results["ceiling"]["server_cpu_ms_per_request"] / results[name]["server_cpu_ms_per_request"], 3
                )
    all_errors = [e for name in ("warmup", "dispatch", "profiled intake", "profiled sign") for e in errors[name]]
    results["other_errors"] = all_errors[:10]


def print_report(report: dict[str, Any]) -> None:
    s = report["settings"]
    results = report["results"]
    print(
        f"\n{s['rounds']} round(s) of {s['requests']} timed requests after {s['warmup']} warm-up, "
        f"{s['concurrency']} connections, 1 uvicorn worker, {report['machine']['cpus']} CPUs, client: {s['client']}"
    )
    header = (
        f"{'benchmark':<10} {'ok':>6} {'errors':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'server CPU ms/req':>17} {'server cores':>12} {'client cores':>12} {'client share':>12} {'other load':>10}"
    )
    print(header)
    print("-" * len(header))
    for name in ("intake", "sign", "ceiling"):
        r = results.get(name)
        if not r:
            continue
        print(
            f"{name:<10} {r['ok']:>6} {r['requests'] - r['ok']:>6} {r['rps']:>8.1f} {r['p50_ms']:>8.2f} "
            f"{r['p99_ms']:>8.2f} {r['server_cpu_ms_per_request']:>17.3f} {r['server_cores']:>12.2f} "
            f"{r['client_cores']:>12.3f} {100 * r['client_share_of_machine']:>11.1f}% "
            f"{100 * r['other_share_of_machine']:>9.1f}%"
        )
    print(
        "(median round of each; client share and other load: of the whole machine's CPU time during the round;\n"
        " other load = CPU used by neither server nor client, i.e. noise from elsewhere on the machine)\n"
    )
    for name in ("intake", "sign", "ceiling"):
        for err in (results.get(name) or {}).get("errors", []):
            print(f"  {name} error: {err}")
    for err in results.get("other_errors", []):
        print(f"  error (warm-up, dispatch or profiled run): {err}")
    for name in ("intake", "sign"):
        if f"ratio_{name}_to_ceiling" in report:
            rounds = ", ".join(f"{x:.3f}" for x in report[f"ratio_{name}_to_ceiling_per_round"])
            print(
                f"{name} / ceiling = {report[f'ratio_{name}_to_ceiling']:.3f} in req/s (round by round: {rounds}); "
                f"{report[f'cpu_ratio_{name}_to_ceiling']:.3f} by server CPU per request"
            )
    for key in ("verify_hotline", "verify_ceiling"):
        v = results.get(key)
        if v:
            detail = {k: val for k, val in v.items() if k not in ("ok", "problems")}
            print(f"{key}: {'OK' if v['ok'] else 'FAILED'} {detail}")
            for problem in v["problems"]:
                print(f"  - {problem}")
    for name, prof in (report.get("profile") or {}).items():
        if prof.get("samples"):
            f = prof["figures_under_profiler"]
            print_profile(f"profile of {name} (under py-spy: {f['rps']} req/s, p50 {f['p50_ms']} ms)", prof)


if __name__ == "__main__":
    sys.exit(main())
