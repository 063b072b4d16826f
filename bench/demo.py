"""How fast `hotline demo-data` loads: `load_demo` for N tickets, in tickets per second.

    .venv/bin/python bench/demo.py                               # 20,000 and 100,000 on SQLite and PostgreSQL
    .venv/bin/python bench/demo.py --sizes 5000 --db sqlite
    .venv/bin/python bench/demo.py --profile --sizes 20000 --db sqlite   # cProfile's top functions too
    .venv/bin/python bench/demo.py --floor --sizes 100000 --db postgresql  # the load with the play taken away

Each run loads the demo into an empty database: a SQLite file in a temporary directory, or
a scratch PostgreSQL database (`bench_demo` on `--pg-url`'s server) created before and
dropped after. The clock is fixed, so every run plays the same tickets for a seed. The time
is `load_demo`'s whole run (the directory, the tickets, the running totals, the planner's
statistics); tickets per second is N over it. The CPU seconds of the process and of its
worker processes (which play the tickets of a large demo) are printed too: on a machine
shared with other work they move much less than the elapsed time does. On PostgreSQL the
server's CPU for the scratch database (its backends, from /proc: the server must run on this
machine) is printed beside (`server s`), and tickets per CPU second with it counted
(`with server`): the workers write their own rows there, so part of the work is the server's.

`--floor` loads each size twice. The first load keeps what the play of each stretch of days
made (pickled, in a temporary directory); the second, into a new empty database, plays
nothing: each stretch's rows are read back and handed to the writer as the play would have.
Only the second is printed (`... floor`): the time the writer, the server and the finishing
steps take whatever the play costs. Reading the pickles back costs CPU too; it is measured
apart, in one process, and printed below the row (`unpickling`), to take off.
"""

import argparse
import cProfile
import io
import os
import pickle
import pstats
import resource
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

import hotline.demo
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


class ServerCpu:
    """CPU seconds of the PostgreSQL server's processes working for one database (the server
    runs on this machine): its backends, autovacuum workers and the parallel workers of its
    backends, read from /proc by a thread every `every` seconds. A backend's last reading is
    kept when it ends, so what it spent in its last interval is missed (the workers' sessions
    last the whole load). The thread's own CPU is kept apart (`own`), for the caller to take
    off this process's."""

    def __init__(self, database: str | None, every: float = 0.2) -> None:
        self.database, self.every = database, every
        self.ticks: dict[int, int] = {}  # pid -> its utime + stime, last read
        self.start_ticks: dict[int, int] = {}
        self.names: dict[int, list[str] | None] = {}  # pid -> its title's words (None: not the server's)
        self.own = 0.0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _ours(self, pid: int) -> bool:
        words = self.names.get(pid, ())
        if words == ():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as file:
                    title = file.read().decode(errors="replace").replace("\0", " ").split()
            except OSError:
                title = []
            words = self.names[pid] = title if title[:1] == ["postgres:"] else None
        if not words:
            return False
        if self.database in words[2:]:
            return True
        # "parallel worker for PID n": one of our backends' (CREATE INDEX uses them)
        return "parallel" in words and words[-1].isdigit() and int(words[-1]) in self.start_ticks | self.ticks

    def _read(self) -> dict[int, int]:
        found = {}
        for name in os.listdir("/proc"):
            if name.isdigit() and self._ours(pid := int(name)):
                try:
                    with open(f"/proc/{pid}/stat") as file:
                        fields = file.read().rsplit(")", 1)[1].split()
                    found[pid] = int(fields[11]) + int(fields[12])  # utime, stime
                except OSError:
                    pass
        return found

    def _run(self) -> None:
        started = time.thread_time()
        while not self.stopping.wait(self.every):
            self.ticks.update(self._read())
        self.ticks.update(self._read())
        self.own = time.thread_time() - started

    def __enter__(self) -> "ServerCpu":
        if self.database is not None:
            self.start_ticks = self._read()
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.database is not None:
            self.stopping.set()
            self.thread.join()

    @property
    def seconds(self) -> float:
        spent = sum(t - self.start_ticks.get(pid, 0) for pid, t in self.ticks.items())
        return spent / os.sysconf("SC_CLK_TCK")


class Plays:
    """--floor: while `keep`, each stretch's play is pickled into `directory` as it is played
    (in the worker that played it: the workers are forked after this is set); while
    `replay`, a stretch is read back from there instead of played."""

    def __init__(self, directory: Path, mode: str) -> None:
        self.directory, self.mode = directory, mode
        self.original = hotline.demo._Player.play

    def __enter__(self) -> "Plays":
        directory, original = self.directory, self.original

        def keep(player, index: int):
            played = original(player, index)
            with open(directory / f"{index}.pickle", "wb") as file:
                pickle.dump(played, file, protocol=pickle.HIGHEST_PROTOCOL)
            return played

        def replay(player, index: int):
            with open(directory / f"{index}.pickle", "rb") as file:
                return pickle.load(file)

        hotline.demo._Player.play = keep if self.mode == "keep" else replay
        return self

    def __exit__(self, *exc) -> None:
        hotline.demo._Player.play = self.original


def unpickling(directory: Path) -> float:
    """CPU seconds to read back every kept stretch, in this process."""
    started = time.process_time()
    for path in directory.glob("*.pickle"):
        with open(path, "rb") as file:
            pickle.load(file)
    return time.process_time() - started


def run(url: str, size: int, seed: int, profile: bool, workers: int | None = None) -> tuple[float, float, float, float]:
    """Load `size` demo tickets into the empty database at `url`; return the seconds taken,
    the CPU seconds this process and its workers used meanwhile (steadier on a shared
    machine), the workers' share of them, and the PostgreSQL server's CPU seconds for it."""
    runtime = _runtime(url)
    profiler = cProfile.Profile() if profile else None
    started, cpu = time.perf_counter(), _cpu()
    try:
        with ServerCpu(None if runtime.db.is_sqlite else url.rsplit("/", 1)[1]) as server:
            if profiler is not None:
                profiler.enable()
            load_demo(runtime, tickets=size, seed=seed, out=io.StringIO(), workers=workers)
            if profiler is not None:
                profiler.disable()
        own, children = _cpu()
        own -= server.own
        return time.perf_counter() - started, own - cpu[0] + children - cpu[1], children - cpu[1], server.seconds
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
    parser.add_argument("--floor", action="store_true", help="load twice, and time the second with the play taken away")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    print(
        f"{'database':<11} {'tickets':>9} {'seconds':>8} {'tickets/s':>10} {'CPU s':>7} {'workers':>8} "
        f"{'tickets/CPU s':>14} {'server s':>9} {'with server':>12} {'load':>5}"
    )
    for name in databases:
        for size in sizes:
            with tempfile.TemporaryDirectory() as kept:
                modes = ("keep", "replay") if args.floor else (None,)
                for mode in modes:
                    seconds, cpu, workers, server = _run_on(name, size, args, Path(kept), mode)
                    if mode == "keep":
                        continue
                    label = f"{name} floor" if mode else name
                    # tickets per CPU second of the process and its workers, then with the server's too
                    print(
                        f"{label:<11} {size:>9,} {seconds:>8.1f} {size / seconds:>10,.0f} {cpu:>7.1f} "
                        f"{workers:>8.1f} {size / cpu:>14,.0f} {server:>9.1f} {size / (cpu + server):>12,.0f} "
                        f"{os.getloadavg()[0]:>5.1f}",
                        flush=True,
                    )
                if args.floor:
                    print(f"  unpickling the {size:,} tickets' rows: {unpickling(Path(kept)):.1f} CPU s", flush=True)


def _run_on(name: str, size: int, args, kept: Path, mode: str | None) -> tuple[float, float, float, float]:
    """One load of `size` tickets into a new empty database of the kind `name`."""
    with Plays(kept, mode) if mode else nullcontext():
        if name == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                return run(f"sqlite:///{Path(tmp) / 'demo.db'}", size, args.seed, args.profile, args.workers)
        try:
            return run(_recreate_pg(args.pg_url, args.pg_db), size, args.seed, args.profile, args.workers)
        finally:
            _drop_pg(args.pg_url, args.pg_db)


if __name__ == "__main__":
    main()
