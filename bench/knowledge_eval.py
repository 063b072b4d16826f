"""The knowledge base's search judged on a labelled set: callers' questions against the articles
that answer them, next to plain BM25 over the same articles, in the same run.

    .venv/bin/python bench/knowledge_eval.py                          # SQLite
    .venv/bin/python bench/knowledge_eval.py --database postgresql    # a scratch database on the local server

The set is bench/knowledge/: articles.jsonl (the import format of `hotline knowledge import`)
and questions.jsonl (each `{"question", "answer"}` or `{"question", "answers"}`; a null answer
means the base cannot answer it). For each system it reports, on the answerable questions,
recall@1, recall@3 and MRR (over the first 10 results); and, treating "no result, or a best
score under a threshold" as a hand-over, the hand-over precision and recall (a hand-over is right
when the question has no answer) at a few thresholds and at the threshold with the best F1 on
this very set (an optimistic choice: it is tuned on what it is scored on). Questions answered
wrongly above the threshold are counted too: an assistant that does not hand over, answers.

Plain BM25: `bm25s` over jieba's `cut_for_search` tokens of title, keywords and body.
hotline: the articles imported with `hotline knowledge import` into a fresh database
(migrated with `hotline db upgrade`), then `hotline.knowledge.search.search(session, question,
limit=10)` per question, timed (a session
opened per question, as a request would). The PostgreSQL database (`hotline_bench_knowledge`) is
left for inspection and dropped at the next run. Prints a table; writes bench/results/knowledge-eval.json.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import bm25s
import delivery  # bench/delivery.py: scratch PostgreSQL database, runtime
import intake  # bench/intake.py: the hotline command
import jieba

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DATA = BENCH / "knowledge"
LIMIT = 10
PG_NAME = "hotline_bench_knowledge"

Ranking = list[tuple[str, float]]  # (external_id, score), best first


def load(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def expected(question: dict[str, Any]) -> set[str]:
    """The articles any of which answers the question; empty when the base cannot answer it."""
    if "answers" in question:
        return set(question["answers"])
    return {question["answer"]} if question["answer"] else set()


def tokens(text: str) -> list[str]:
    return [t for t in jieba.cut_for_search(text) if any(c.isalnum() for c in t)]


def bm25_searcher(articles: list[dict[str, Any]]) -> Callable[[str], Ranking]:
    ids = [a["external_id"] for a in articles]
    retriever = bm25s.BM25()
    retriever.index([tokens(" ".join([a["title"], *a["keywords"], a["body"]])) for a in articles], show_progress=False)

    def search(question: str) -> Ranking:
        scores = retriever.get_scores(tokens(question))
        best = scores.argsort()[::-1][:LIMIT]
        return [(ids[i], float(scores[i])) for i in best if scores[i] > 0]

    return search


def run(search: Callable[[str], Ranking], questions: list[dict[str, Any]]) -> tuple[list[Ranking], list[float]]:
    rankings, times = [], []
    for q in questions:
        start = time.perf_counter()
        rankings.append(search(q["question"]))
        times.append(time.perf_counter() - start)
    return rankings, times


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def handover(questions: list[dict[str, Any]], rankings: list[Ranking], threshold: float) -> dict[str, Any]:
    """Hand over when nothing scores at least `threshold`; positives are the unanswerable questions."""
    tp = fp = fn = wrong = 0
    for q, ranking in zip(questions, rankings, strict=True):
        hands_over = not ranking or ranking[0][1] < threshold
        unanswerable = not expected(q)
        tp += hands_over and unanswerable
        fp += hands_over and not unanswerable
        fn += unanswerable and not hands_over
        wrong += not hands_over and not unanswerable and ranking[0][0] not in expected(q)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "threshold": threshold,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "handed_over_answerable": fp,
        "answered_wrongly": wrong,
    }


def metrics(questions: list[dict[str, Any]], rankings: list[Ranking], times: list[float]) -> dict[str, Any]:
    ranks = []
    for q, ranking in zip(questions, rankings, strict=True):
        if want := expected(q):
            found = [i for i, (eid, _) in enumerate(ranking, 1) if eid in want]
            ranks.append(found[0] if found else None)
    n = len(ranks)
    best = [r[0][1] for r in rankings if r]
    # Thresholds: the best-score deciles, and every observed best score for the best F1.
    curve = [handover(questions, rankings, percentile(best, p)) for p in (10, 20, 30, 40, 50, 60)]
    best_f1 = max((handover(questions, rankings, t) for t in sorted(set(best))), key=lambda h: h["f1"])
    misses = [
        {"question": q["question"], "expected": sorted(expected(q)), "got": [eid for eid, _ in r[:3]]}
        for q, r in zip(questions, rankings, strict=True)
        if expected(q) and not any(eid in expected(q) for eid, _ in r[:3])
    ]
    return {
        "answerable": n,
        "unanswerable": len(questions) - n,
        "recall_at_1": sum(r == 1 for r in ranks if r) / n,
        "recall_at_3": sum(r <= 3 for r in ranks if r) / n,
        "mrr": sum(1 / r for r in ranks if r) / n,
        "handover_curve": curve,
        "handover_best_f1": best_f1,
        "search_ms_p50": percentile(times, 50) * 1000,
        "search_ms_p95": percentile(times, 95) * 1000,
        "misses_at_3": misses,
    }


def hotline_searcher(database: str, tmp: Path) -> tuple[Callable[[str], Ranking], Callable[[], None]] | None:
    """hotline's own search over a fresh database holding the articles; None when it does not exist yet."""
    try:
        from hotline.knowledge.search import search
    except ImportError:
        return None
    url = f"sqlite:///{tmp / 'knowledge.db'}" if database == "sqlite" else delivery.fresh_postgres(PG_NAME)
    env = {**os.environ, "HOTLINE_DATABASE_URL": url, "HOTLINE_EMBEDDED_SCHEDULER": "false"}
    hotline = intake.hotline_command()
    subprocess.run([*hotline, "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
    start = time.perf_counter()
    subprocess.run([*hotline, "knowledge", "import", str(DATA / "articles.jsonl")], env=env, cwd=ROOT, check=True)
    print(f"imported in {time.perf_counter() - start:.1f} s (the command, start-up included)")
    runtime = delivery.runtime_for(url)

    def field(result: Any, name: str) -> Any:
        return result[name] if isinstance(result, dict) else getattr(result, name)

    def run_search(question: str) -> Ranking:
        with runtime.db.session() as session:
            return [(field(r, "external_id"), float(field(r, "score"))) for r in search(session, question, limit=LIMIT)]

    return run_search, runtime.db.engine.dispose


def row(name: str, m: dict[str, Any]) -> str:
    h = m["handover_best_f1"]
    return (
        f"| {name} | {m['recall_at_1']:.3f} | {m['recall_at_3']:.3f} | {m['mrr']:.3f} | "
        f"{h['precision']:.2f} / {h['recall']:.2f} at {h['threshold']:.3g} ({h['answered_wrongly']} wrong) | "
        f"{m['search_ms_p50']:.2f} / {m['search_ms_p95']:.2f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--misses", action="store_true", help="print the answerable questions missed at 3")
    args = parser.parse_args(argv)

    jieba.setLogLevel(60)
    articles = load(DATA / "articles.jsonl")
    questions = load(DATA / "questions.jsonl")
    results: dict[str, dict[str, Any]] = {"bm25": metrics(questions, *run(bm25_searcher(articles), questions))}

    with tempfile.TemporaryDirectory(prefix="hotline-bench-knowledge-") as tmp:
        made = hotline_searcher(args.database, Path(tmp))
        if made is None:
            print("hotline search: not available")
        else:
            search, close = made
            try:
                search(questions[0]["question"])  # warm-up: connection, caches
                results["hotline"] = metrics(questions, *run(search, questions))
            finally:
                close()

    print(f"{len(articles)} articles, {len(questions)} questions ({results['bm25']['unanswerable']} unanswerable)\n")
    print("| search | recall@1 | recall@3 | MRR | hand-over P / R at best-F1 threshold | p50 / p95 ms |")
    print("|---|---:|---:|---:|---|---:|")
    for name, m in results.items():
        print(row("plain BM25 (jieba + bm25s)" if name == "bm25" else f"hotline ({args.database})", m))
    for name, m in results.items():
        print(f"\n{name}: hand-over by threshold (best-score deciles)")
        print("| threshold | precision | recall | F1 | answerable handed over | answered wrongly |")
        print("|---:|---:|---:|---:|---:|---:|")
        for h in m["handover_curve"]:
            print(
                f"| {h['threshold']:.3g} | {h['precision']:.2f} | {h['recall']:.2f} | {h['f1']:.2f} | "
                f"{h['handed_over_answerable']} | {h['answered_wrongly']} |"
            )
        if args.misses:
            for miss in m["misses_at_3"]:
                print(f"  miss: {miss['question']}  expected {miss['expected']}  got {miss['got']}")

    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "database": args.database,
        "articles": len(articles),
        "questions": len(questions),
        "bm25s": bm25s.__version__,
        "python": sys.version.split()[0],
        "results": results,
    }
    out = BENCH / "results" / "knowledge-eval.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
