"""How fast `hotline import tickets` loads a district's history, in tickets per second.

    .venv/bin/python bench/import.py                               # 100,000 rows, CSV and .xlsx, SQLite and PostgreSQL
    .venv/bin/python bench/import.py --rows 20000 --db sqlite --formats csv
    .venv/bin/python bench/import.py --profile --rows 20000 --db sqlite --formats csv --workers 0

Each run loads the demo district's directory (departments, categories, streets; no tickets)
into an empty database, a SQLite file in a temporary directory or a scratch PostgreSQL
database (`bench_import` on `--pg-url`'s server, dropped after), then imports a generated
file of N old tickets as a previous system would export them: Chinese headers, types, states
and ratings; categories by name (a tenth by an old name the mapping file maps), departments
by name; 85% closed with a reply (two thirds of those rated), 3% cancelled, the rest open.
The time is `import_tickets`'s whole run: both passes over the file (the check, then the
writing), the running totals rebuilt, the planner's statistics refreshed. A second run of the
same file is timed too (it must load nothing). The CPU seconds are the importing process's
and its workers' (`--workers`, as the command's option; by default one a core for 10,000 rows
or more); PostgreSQL's, for the scratch database, beside (`server s`, as bench/demo.py reads
them from /proc; `with server`: tickets per CPU second, the server's counted). cProfile
(`--profile`) sees the importing process only, so profile with `--workers 0` to see the
check and the building. PostgreSQL needs HOTLINE_SECRET_KEY (or
HOTLINE_KEY_FILE), as every command does there: `hotline keys new` makes one.
"""

import argparse
import cProfile
import csv
import io
import os
import pstats
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from hotline.config import Settings
from hotline.db import Database
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.demo import load_demo
from hotline.demo.district import DEPARTMENTS, LEAVES, STREETS
from hotline.labels import RATING_LABELS, TYPE_LABELS
from hotline.migrate import upgrade
from hotline.models import Ticket
from hotline.runtime import Runtime
from hotline.ticket_import import import_tickets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo import ServerCpu, _drop_pg, _recreate_pg  # noqa: E402  (bench/demo.py: the scratch databases, the server's CPU)

NOW = datetime(2026, 11, 27, 2, 30, tzinfo=UTC)  # a Friday morning in Asia/Shanghai
PG_DB = "bench_import"
SORT = "tottime"
HEADER = (
    "工单编号", "受理时间", "派单时间", "答复时间", "办结时间", "诉求类型", "问题分类", "来电人", "来电号码", "街道",
    "社区", "地址", "标题", "诉求内容", "承办单位", "状态", "答复内容", "满意度",
)  # fmt: skip
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"


def _local(at: datetime) -> str:
    """As the old system wrote times: Asia/Shanghai wall time, no offset."""
    return at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S")


def rows(n: int, seed: int) -> tuple[list[tuple], dict[str, dict[str, str]]]:
    """N old tickets over the two years before NOW, and the mapping file's content."""
    rng = random.Random(seed)
    names = {code: name for code, name, _ in DEPARTMENTS}
    old_names = {leaf.code: f"旧-{leaf.name}" for leaf in LEAVES[::10]}
    out = []
    start = NOW - timedelta(days=730)
    # An export lists the tickets in the order they came in.
    moments = sorted(rng.randrange(715 * 86400) for _ in range(n))
    for i, moment in enumerate(moments):
        leaf = rng.choice(LEAVES)
        street = rng.choice(STREETS)
        received = start + timedelta(seconds=moment)
        title, content = rng.choice(leaf.problems or leaf.questions)
        r = rng.random()
        state = "已办结" if r < 0.85 else "已撤销" if r < 0.88 else rng.choice(("办理中", "待签收", "待回访"))
        closed = state in ("已办结", "已撤销")
        dispatched = received + timedelta(minutes=rng.randrange(10, 240))
        replied = dispatched + timedelta(hours=rng.randrange(2, 24 * 9))
        done = replied + timedelta(hours=rng.randrange(1, 72))
        department = names.get(leaf.department, leaf.department) if state != "已撤销" else ""
        out.append((
            f"QS{i + 1:08d}",
            _local(received),
            _local(dispatched) if department else "",
            _local(replied) if state == "已办结" else "",
            _local(done) if closed else "",
            rng.choice(list(TYPE_LABELS.values())[:5]),
            old_names.get(leaf.code, leaf.name),
            rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.6 else ""),
            f"13{rng.randrange(10**9):09d}",
            street.name,
            rng.choice(street.communities),
            f"{rng.choice(street.roads)}{rng.randrange(1, 300)}号",
            title,
            content,
            department,
            state,
            "经核实，已按规定处理并答复来电人" if state == "已办结" else "",
            RATING_LABELS[rng.choice((5, 5, 4, 4, 4, 3, 2, 1))] if state == "已办结" and rng.random() < 0.67 else "",
        ))  # fmt: skip
    mapping = {kind: {} for kind in ("categories", "departments", "states", "types")}
    mapping["categories"] = {old: code for code, old in old_names.items()}
    return out, mapping


def write_file(path: Path, data: list[tuple]) -> None:
    if path.suffix == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(HEADER)
            writer.writerows(data)
        return
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("工单")
    sheet.append(HEADER)
    for row in data:
        sheet.append(row)
    book.save(path)


def _runtime(url: str) -> Runtime:
    db = Database(url)
    upgrade(db)
    runtime = Runtime(db, Settings(database_url=url, embedded_scheduler=False))
    runtime.clock = lambda: NOW
    load_demo(runtime, tickets=0, out=io.StringIO())
    return runtime


def _children_cpu() -> float:
    """CPU seconds of the worker processes ended (and waited for) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(url: str, file: Path, mapping, profile: bool, workers: int | None) -> tuple[int, float, float, float, float]:
    """Import `file` into the database at `url`, then again: tickets written, seconds and CPU
    seconds of the first run (this process's and its workers'), seconds of the second, and
    the PostgreSQL server's CPU seconds for the first."""
    runtime = _runtime(url)
    profiler = cProfile.Profile(time.thread_time) if profile else None
    try:
        started, cpu = time.perf_counter(), time.process_time() + _children_cpu()
        with ServerCpu(None if runtime.db.is_sqlite else url.rsplit("/", 1)[1]) as server:
            if profiler is not None:
                profiler.enable()
            report = import_tickets(runtime, file, source="qingshan-old", mapping=mapping, workers=workers)
            if profiler is not None:
                profiler.disable()
        seconds = time.perf_counter() - started
        cpu = time.process_time() + _children_cpu() - cpu - server.own
        assert not report.rejected, report.rejected[:5]
        again = import_tickets(runtime, file, source="qingshan-old", mapping=mapping)
        assert again.written == 0 and again.loaded_before == report.written, again
        with runtime.db.read_session() as session:
            assert session.execute(select(func.count()).select_from(Ticket)).scalar() == report.written
        return report.written, seconds, cpu, again.seconds, server.seconds
    finally:
        runtime.db.dispose()
        if profiler is not None:
            pstats.Stats(profiler, stream=sys.stdout).sort_stats(SORT).print_stats(30)


def main() -> None:
    """Generate the files, time the import on each database, print tickets per second."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--formats", default="csv,xlsx", help="csv, xlsx or both, comma-separated")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--pg-db", default=PG_DB, help="the scratch database's name (default %(default)s)")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions of each run")
    parser.add_argument("--workers", type=int, help="processes building the rows (default: the import's own choice)")
    args = parser.parse_args()
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    data, mapping = rows(args.rows, args.seed)
    print(f"{'database':<11} {'file':<5} {'tickets':>9} {'seconds':>8} {'tickets/s':>10} {'CPU s':>7} "
          f"{'tickets/CPU s':>14} {'again s':>8} {'server s':>9} {'with server':>12} {'load':>5}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.formats.split(","):
            file = Path(tmp) / f"tickets.{kind}"
            write_file(file, data)
            for name in databases:
                if name == "sqlite":
                    url = f"sqlite:///{Path(tmp) / 'import.db'}"
                    for leftover in Path(tmp).glob("import.db*"):
                        leftover.unlink()
                else:
                    url = _recreate_pg(args.pg_url, args.pg_db)
                try:
                    n, seconds, cpu, again, server = run(url, file, mapping, args.profile, args.workers)
                finally:
                    if name == "postgresql":
                        _drop_pg(args.pg_url, args.pg_db)
                print(
                    f"{name:<11} {kind:<5} {n:>9,} {seconds:>8.1f} {n / seconds:>10,.0f} {cpu:>7.1f} "
                    f"{n / cpu:>14,.0f} {again:>8.1f} {server:>9.1f} {n / (cpu + server):>12,.0f} "
                    f"{os.getloadavg()[0]:>5.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
