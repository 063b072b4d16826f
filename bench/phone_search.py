"""How fast a ticket is found by its caller's phone, at N demo tickets, on SQLite and PostgreSQL.

    .venv/bin/python bench/phone_search.py                      # 100,000 tickets, both databases
    .venv/bin/python bench/phone_search.py --tickets 20000 --db sqlite

Loads the demo (`load_demo`, as bench/demo.py does) into an empty database, takes --queries
phones of its callers at random, and times, for each, as an agent: ticket search by the whole
phone (`tickets.search`, q=the phone), by its last four digits, and the intake's repeat check
(`tickets.recent_tickets`). Prints the median and the 90th percentile in milliseconds.

It uses only what every version of hotline has, so the same script measures another checkout:
run it with that checkout's Python (its own .venv, whose `hotline` is that checkout's code).
PostgreSQL needs HOTLINE_SECRET_KEY (or HOTLINE_KEY_FILE) where the code seals the callers.
"""

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlmodel import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo  # noqa: E402  (bench/demo.py)
from demo import NOW, _drop_pg, _recreate_pg, _runtime  # noqa: E402

from hotline.demo import load_demo  # noqa: E402
from hotline.models import Ticket  # noqa: E402
from hotline.tickets import recent_tickets, search  # noqa: E402
from hotline.workflow.engine import Actor  # noqa: E402

AGENT = Actor(None, "agent", "agent")
demo.PG_DB = "bench_phone_search"  # a scratch database of its own


def _time(runtime, queries: list[str], lookup: Callable) -> tuple[float, float, float]:
    """Median and 90th percentile in ms, and the mean number of tickets found."""
    seconds, found = [], []
    for q in queries:
        with runtime.db.read_session() as session:
            start = time.perf_counter()
            found.append(lookup(session, q))
            seconds.append(time.perf_counter() - start)
    seconds.sort()
    return statistics.median(seconds) * 1000, seconds[int(len(seconds) * 0.9)] * 1000, statistics.mean(found)


def measure(url: str, size: int, n: int, seed: int) -> dict[str, tuple[float, float, float]]:
    runtime = _runtime(url)
    try:
        load_demo(runtime, tickets=size, seed=seed, out=open("/dev/null", "w"))  # noqa: SIM115
        with runtime.db.read_session() as session:
            phones = session.exec(select(Ticket.caller_phone).where(Ticket.caller_phone.is_not(None))).all()
        queries = random.Random(seed).sample(sorted(set(phones)), n)

        def whole(session, q):
            return search(session, AGENT, states=None, department=None, overdue=None, q=q, now=NOW, page=1,
                          page_size=20)[1]  # fmt: skip

        def tail(session, q):
            return whole(session, q[-4:])

        def repeat(session, q):
            found = recent_tickets(session, phone=q, street="", community="", address="", now=NOW)
            return len(found["by_phone"])

        return {
            name: _time(runtime, queries, fn) for name, fn in (("whole", whole), ("tail4", tail), ("repeat", repeat))
        }
    finally:
        runtime.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args()
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    print(f"{'database':<11} {'tickets':>9} {'lookup':<7} {'p50 ms':>8} {'p90 ms':>8} {'found':>7}")
    for name in databases:
        if name == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                figures = measure(f"sqlite:///{Path(tmp) / 'demo.db'}", args.tickets, args.queries, args.seed)
        else:
            try:
                figures = measure(_recreate_pg(args.pg_url), args.tickets, args.queries, args.seed)
            finally:
                _drop_pg(args.pg_url)
        for lookup, (p50, p90, found) in figures.items():
            print(f"{name:<11} {args.tickets:>9,} {lookup:<7} {p50:>8.2f} {p90:>8.2f} {found:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
