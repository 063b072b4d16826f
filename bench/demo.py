"""How fast `hotline demo-data` loads: `load_demo` for N tickets, in tickets per second.

    .venv/bin/python bench/demo.py                               # 20,000 and 100,000 on SQLite and PostgreSQL
    .venv/bin/python bench/demo.py --sizes 5000 --db sqlite
    .venv/bin/python bench/demo.py --profile --sizes 20000 --db sqlite   # cProfile's top functions too

Each run loads the demo into an empty database: a SQLite file in a temporary directory, or
a scratch PostgreSQL database (`bench_demo` on `--pg-url`'s server) created before and
dropped after. The clock is fixed, so every run plays the same tickets for a seed. The time
is `load_demo`'s whole run (the directory, the tickets, the running totals, the planner's
statistics); tickets per second is N over it. The CPU seconds of the process and of its
worker processes (which play the tickets of a large demo) are printed too: on a machine
shared with other work they move much less than the elapsed time does.
"""

import argparse
import cProfile
import io
import pstats
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from hotline.config import Settings
from hotline.db import Database
from hotline.demo import load_demo
from hotline.migrate import upgrade
from hotline.runtime import Runtime

NOW = datetime(2026, 11, 27, 2, 30, tzinfo=UTC)  # a Friday morning in Asia/Shanghai
PG_DB = "bench_demo"


def _runtime(url: str) -> Runtime:
    db = Database(url)
    upgrade(db)
    runtime = Runtime(db, Settings(database_url=url, embedded_scheduler=False))
    runtime.clock = lambda: NOW
    return runtime


def _pg_admin(base_url: str):
    return create_engine(base_url, isolation_level="AUTOCOMMIT")


def _recreate_pg(base_url: str, name: str | None = None) -> str:
    """A scratch database `name` (this script's PG_DB unless named) on the server, made afresh."""
    name = name or PG_DB
    admin = _pg_admin(base_url)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base_url.rsplit("/", 1)[0] + "/" + name


def _drop_pg(base_url: str, name: str | None = None) -> None:
    admin = _pg_admin(base_url)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name or PG_DB}" WITH (FORCE)'))
    admin.dispose()


def _cpu() -> tuple[float, float]:
    """CPU seconds of this process, and of its children that ended (the loader's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def run(url: str, size: int, seed: int, profile: bool, workers: int | None = None) -> tuple[float, float, float]:
    """Load `size` demo tickets into the empty database at `url`; return the seconds taken,
    the CPU seconds this process and its workers used meanwhile (steadier on a shared
    machine), and the workers' share of them."""
    runtime = _runtime(url)
    profiler = cProfile.Profile() if profile else None
    started, cpu = time.perf_counter(), _cpu()
    try:
        if profiler is not None:
            profiler.enable()
        load_demo(runtime, tickets=size, seed=seed, out=io.StringIO(), workers=workers)
        if profiler is not None:
            profiler.disable()
        own, children = _cpu()
        return time.perf_counter() - started, own - cpu[0] + children - cpu[1], children - cpu[1]
    finally:
        runtime.db.dispose()
        if profiler is not None:
            pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(25)


def main() -> None:
    """Time the demo loader for each size and database, and print tickets per second."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,100000", help="ticket counts, comma-separated")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--pg-db", default=PG_DB, help="the scratch database's name (default %(default)s)")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions of each run")
    parser.add_argument("--workers", type=int, help="the loader's worker processes (default: its own choice)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    print(
        f"{'database':<11} {'tickets':>9} {'seconds':>8} {'tickets/s':>10} {'CPU s':>7} {'workers':>8} "
        f"{'tickets/CPU s':>14}"
    )
    for name in databases:
        for size in sizes:
            if name == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    seconds, cpu, workers = run(
                        f"sqlite:///{Path(tmp) / 'demo.db'}", size, args.seed, args.profile, args.workers
                    )
            else:
                try:
                    seconds, cpu, workers = run(
                        _recreate_pg(args.pg_url, args.pg_db), size, args.seed, args.profile, args.workers
                    )
                finally:
                    _drop_pg(args.pg_url, args.pg_db)
            print(
                f"{name:<11} {size:>9,} {seconds:>8.1f} {size / seconds:>10,.0f} {cpu:>7.1f} {workers:>8.1f} "
                f"{size / cpu:>14,.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
