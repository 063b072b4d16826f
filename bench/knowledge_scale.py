"""The knowledge base at scale: `hotline knowledge import` of a large generated corpus
(bench/knowledge_corpus.py), then searches timed over it.

    .venv/bin/python bench/knowledge_scale.py                          # SQLite, 100,000 articles
    .venv/bin/python bench/knowledge_scale.py --database postgresql    # scratch database hotline_bench_kb
    .venv/bin/python bench/knowledge_scale.py --articles 20000 --queries 200

Steps, on a fresh database (`hotline db upgrade`): the corpus written as a JSON Lines file;
`hotline knowledge import FILE` timed (the command, start-up included: articles/s); the same
file imported again (every row unchanged: the upsert's checking alone); then searches, one
session each as a request would, after a warm-up: the 318 callers' questions of
bench/knowledge/questions.jsonl and generated questions about the corpus's matters
(`knowledge_corpus.queries`), `search(session, q, limit=10)` as the staff search does, and
the public side's search (`public_only=True`) over the same questions. Writes
bench/results/knowledge-scale-{database}.json.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import delivery  # bench/delivery.py: scratch PostgreSQL database, runtime
import intake  # bench/intake.py: the hotline command
import knowledge_corpus
from knowledge_eval import DATA, load, percentile

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PG_NAME = "hotline_bench_kb"


def timed_command(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, done.stdout.strip().splitlines()[-1]


def timings(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(values, 50) * 1000,
        "p95_ms": percentile(values, 95) * 1000,
        "p99_ms": percentile(values, 99) * 1000,
        "max_ms": max(values) * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="generated questions, besides the 318 callers' ones")
    args = parser.parse_args(argv)

    from hotline.knowledge.search import search

    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "database": args.database,
        "articles": args.articles,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory(prefix="hotline-bench-kb-") as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        with corpus.open("w", encoding="utf-8") as f:
            for article in knowledge_corpus.articles(args.articles):
                f.write(json.dumps(article, ensure_ascii=False) + "\n")
        report["corpus_mb"] = round(corpus.stat().st_size / 1e6, 1)
        url = f"sqlite:///{Path(tmp) / 'kb.db'}" if args.database == "sqlite" else delivery.fresh_postgres(PG_NAME)
        env = {**os.environ, "HOTLINE_DATABASE_URL": url, "HOTLINE_EMBEDDED_SCHEDULER": "false"}
        hotline = intake.hotline_command()
        subprocess.run([*hotline, "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)

        seconds, summary = timed_command([*hotline, "knowledge", "import", str(corpus)], env)
        report["import"] = {"seconds": seconds, "articles_per_s": args.articles / seconds, "summary": summary}
        print(f"import: {args.articles} articles in {seconds:.1f} s ({args.articles / seconds:.0f}/s): {summary}")
        seconds, summary = timed_command([*hotline, "knowledge", "import", str(corpus)], env)
        report["reimport_unchanged"] = {
            "seconds": seconds,
            "articles_per_s": args.articles / seconds,
            "summary": summary,
        }
        print(f"again, unchanged: {seconds:.1f} s ({args.articles / seconds:.0f}/s): {summary}")

        questions = [q["question"] for q in load(DATA / "questions.jsonl")] + knowledge_corpus.queries(args.queries)
        runtime = delivery.runtime_for(url)
        try:
            for public_only in (False, True):
                with runtime.db.session() as session:
                    search(session, questions[0], limit=10, public_only=public_only)  # warm-up
                times, empty = [], 0
                for q in questions:
                    start = time.perf_counter()
                    with runtime.db.session() as session:
                        hits = search(session, q, limit=10, public_only=public_only)
                    times.append(time.perf_counter() - start)
                    empty += not hits
                name = "search_public" if public_only else "search_staff"
                report[name] = {"queries": len(questions), "no_result": empty, **timings(times)}
                t = report[name]
                print(
                    f"{name}: {len(questions)} questions, p50 {t['p50_ms']:.1f} ms, p95 {t['p95_ms']:.1f} ms,"
                    f" p99 {t['p99_ms']:.1f} ms, max {t['max_ms']:.1f} ms"
                )
        finally:
            runtime.db.engine.dispose()

    out = BENCH / "results" / f"knowledge-scale-{args.database}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
