"""Latency of the busiest pages and of the monthly indicators on a large database.

Serves an existing database (load one first: `hotline demo-data --tickets 1000000`;
`bench/history.py` gives a PostgreSQL one years of archived history) with `hotline serve`,
signs in as demo users over real HTTP, and times GET requests one at a time (latency, not
throughput): p50 and p95 per page. The ticket search is timed by number and by a caller's
whole phone (read from the database: set HOTLINE_SECRET_KEY when the callers are sealed).

    HOTLINE_DATABASE_URL=sqlite:////tmp/demo1m.db python bench/pages.py --requests 200
"""

import argparse
import calendar
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import create_engine, text
from sqlmodel import select

from hotline.db import Database
from hotline.demo.district import DEMO_PASSWORD
from hotline.models import Ticket

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PASSWORD = DEMO_PASSWORD


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(base: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit("server did not start")


def sign_in(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60, follow_redirects=False)
    form = client.get("/login")  # the sign-in form's CSRF token, and its cookie
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    if r.status_code != 303:
        raise SystemExit(f"could not sign in as {username}: {r.status_code}")
    return client


def timed(client: httpx.Client, paths: list[str]) -> dict:
    samples = []
    for path in paths:
        start = time.perf_counter()
        r = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        if r.status_code != 200:
            raise SystemExit(f"GET {path}: {r.status_code}")
    samples.sort()
    return {
        "requests": len(samples),
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 1),
        "max_ms": round(samples[-1], 1),
    }


def _phones(url: str, ticket_ids: list[int]) -> list[str]:
    """The callers' phones of these tickets (the model unseals them), one per ticket that has one."""
    db = Database(url)
    try:
        with db.session() as session:
            return [p for p in session.exec(select(Ticket.caller_phone).where(Ticket.id.in_(ticket_ids))) if p]
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--month", default=None, help="YYYY-MM for the indicators (default: the last full month)")
    parser.add_argument("--label", default="", help="added to the results file's name (e.g. 10m)")
    args = parser.parse_args()
    url = os.environ.get("HOTLINE_DATABASE_URL")
    if not url:
        raise SystemExit("set HOTLINE_DATABASE_URL to a database loaded with `hotline demo-data`")
    engine = create_engine(url)
    with engine.connect() as conn:
        tickets = conn.execute(text("select count(*) from tickets")).scalar_one()
        sample = conn.execute(
            text("select id, number from tickets order by random() limit :n"), {"n": args.requests}
        ).all()
        busiest = conn.execute(
            text(
                "select d.code, count(*) from tickets t join departments d on d.id = t.main_department_id "
                "where t.state in ('dispatched', 'in_progress') group by d.code order by 2 desc limit 1"
            )
        ).first()
    engine.dispose()
    phones = _phones(url, [row.id for row in sample])
    handler = f"{busiest[0]}.handler"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HOTLINE_EMBEDDED_SCHEDULER": "false", "HOTLINE_RATE_LIMIT_PER_MINUTE": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hotline", "serve", "--port", str(port), "--no-access-log", "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_up(base, proc)
        supervisor, dept = sign_in(base, "supervisor1"), sign_in(base, handler)
        n = args.requests
        local_now = datetime.now(ZoneInfo("Asia/Shanghai"))
        month = args.month or (
            f"{local_now.year}-{local_now.month - 1:02d}" if local_now.month > 1 else f"{local_now.year - 1}-12"
        )
        year, mon = map(int, month.split("-"))
        last = calendar.monthrange(year, mon)[1]
        period = f"from={month}-01&to={month}-{last}"
        for client, path in (
            (supervisor, "/supervisor/dashboard"),
            (dept, "/department/inbox"),
            (supervisor, "/performance"),  # compiles the board's templates once
        ):
            client.get(path)  # warm
        results = {
            "supervisor dashboard": timed(supervisor, ["/supervisor/dashboard"] * n),
            f"department inbox ({handler})": timed(dept, ["/department/inbox"] * n),
            "ticket page (random)": timed(supervisor, [f"/tickets/{row.id}" for row in sample]),
            "ticket list, all (supervisor)": timed(supervisor, ["/tickets"] * n),
            f"ticket list, all ({handler})": timed(dept, ["/tickets"] * n),
            "search by number": timed(supervisor, [f"/tickets?q={row.number}" for row in sample]),
            "search by phone": timed(supervisor, [f"/tickets?q={phone}" for phone in phones]),
        }
        token = subprocess.run(
            [sys.executable, "-m", "hotline", "users", "token", "supervisor1"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        api = httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"})
        today = datetime.now(ZoneInfo("Asia/Shanghai")).date()  # the district's today, counted live
        current = f"from={today.replace(day=1)}&to={today}"
        results["indicators API, last month"] = timed(api, [f"/api/v1/stats/departments?{period}"] * n)
        results["indicators API, this month to date"] = timed(api, [f"/api/v1/stats/departments?{current}"] * n)
        results["performance board page, last month"] = timed(supervisor, [f"/performance?{period}"] * n)
        results["performance board page, this month"] = timed(supervisor, [f"/performance?{current}"] * n)
    finally:
        proc.terminate()
        proc.wait(10)
    dialect = url.split(":", 1)[0]
    print(f"{tickets:,} tickets on {dialect}; {args.requests} sequential requests each")
    print(f"{'page':42} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, r in results.items():
        print(f"{name:42} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['max_ms']:8.1f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"pages-{dialect.split('+')[0]}{'-' + args.label if args.label else ''}.json"
    out.write_text(
        json.dumps({"tickets": tickets, "database": dialect, "results": results}, indent=2, ensure_ascii=False)
    )
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
