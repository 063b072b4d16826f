"""The merged lines' figures (一个号码) on a large demo database, in process.

Loads a demo district (`--tickets`, 100,000 by default) into a new SQLite database in a
temporary directory (or uses `--database URL`, loaded already), then times, best of
`--rounds`, for the last 30 days: the volume per line, the indicators of every department
from the running totals, the same for one line counted live (a merged line's, then
12345's), and the call analysis.

    HOTLINE_SECRET_KEY=… .venv/bin/python bench/lines.py --tickets 100000
"""

import argparse
import io
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from hotline.config import Settings
from hotline.db import Database
from hotline.demo import load_demo
from hotline.indicators import analysis, operations, stats
from hotline.indicators.periods import bounds, local_today
from hotline.migrate import upgrade
from hotline.runtime import Runtime


def best(rounds: int, fn) -> tuple[float, object]:
    times, out = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - start) * 1000)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--database", help="a database loaded with the demo already")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{Path(tmp) / 'lines.db'}"
        db = Database(url)
        rt = Runtime(db, Settings(database_url=url, embedded_scheduler=False))
        if not args.database:
            upgrade(db)
            start = time.perf_counter()
            load_demo(rt, tickets=args.tickets, out=io.StringIO())
            print(f"demo: {args.tickets:,} tickets loaded in {time.perf_counter() - start:.0f} s")
        today = local_today(rt.now())
        first = today - timedelta(days=29)
        lo, hi = bounds(first, today)
        lines = rt.workflows.lines
        merged = next(x.number for x in lines.all if x is not lines.default)
        with db.read_session() as s:
            rows = [
                ("volume by line", lambda: analysis.volume(s, "line", lo, hi, None, lines)),
                ("indicators, running totals", lambda: stats.department_stats(s, rt, first, today)),
                (f"indicators of {merged} (live)", lambda: stats.department_stats(s, rt, first, today, merged)),
                (
                    f"indicators of {lines.default.number} (live)",
                    lambda: stats.department_stats(s, rt, first, today, lines.default.number),
                ),
                ("call analysis", lambda: operations.call_analysis(s, lines, lo, hi)),
                (f"call analysis of {merged}", lambda: operations.call_analysis(s, lines, lo, hi, merged)),
            ]
            print(f"the 30 days {first} to {today}:")
            for label, fn in rows:
                ms, out = best(args.rounds, fn)
                extra = ""
                if label == "volume by line":
                    extra = ", ".join(f"{r['key']} {r['count']}" for r in out)
                elif label.startswith("call analysis"):
                    extra = f"{out['calls']} calls, {out['with_ticket']} with a ticket"
                elif label.startswith("indicators"):
                    extra = f"{sum(r['dispatched'] for r in out['departments'])} dispatched"
                print(f"  {label:<34} {ms:8.1f} ms   {extra}")
        db.dispose()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
