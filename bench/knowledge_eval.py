"""The knowledge base's search judged on a labelled set: callers' questions against the articles
that answer them, next to plain BM25 over the same articles, in the same run.

    .venv/bin/python bench/knowledge_eval.py                          # SQLite
    .venv/bin/python bench/knowledge_eval.py --database postgresql    # a scratch database on the local server

The set: the articles of the demo district, hotline/data/knowledge_demo.jsonl (the import
format of `hotline knowledge import`), and the questions, bench/knowledge/questions.jsonl
(each `{"question", "answer"}` or `{"question", "answers"}`; a null answer means the base
cannot answer it). The questions are split in two halves by their line's
parity: the even lines (0, 2, …) are the dev half that hotline's search was tuned on, the odd
lines the held-out half it never was; every figure is given for both halves and for all.

For each system it reports, on the answerable questions, recall@1, recall@3 and MRR (over the
first 10 results); and the hand-over precision and recall (a hand-over is right when the question
has no answer). hotline hands over as the product does, when
`hotline.knowledge.search.answerable(hits)` says no; plain BM25, when nothing scores at least the
threshold with the best F1 on the dev half. Questions answered wrongly (not handed over, first
result not an expected one) are counted too: an assistant that does not hand over, answers.

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
# The demo district's articles (hotline demo-data loads them too).
ARTICLES = ROOT / "hotline" / "data" / "knowledge_demo.jsonl"
LIMIT = 10
PG_NAME = "hotline_bench_knowledge"

Ranking = list[tuple[str, float]]  # (external_id, score), best first
HALVES = ("dev", "held_out")


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


def half_of(index: int) -> str:
    """The dev half (even lines) or the held-out half (odd lines)."""
    return HALVES[index % 2]


def by_threshold(rankings: list[Ranking], threshold: float) -> list[bool]:
    """Hand over when nothing scores at least `threshold`."""
    return [not r or r[0][1] < threshold for r in rankings]


def handover(questions: list[dict[str, Any]], rankings: list[Ranking], hand_overs: list[bool]) -> dict[str, Any]:
    """Hand-over precision and recall; positives are the unanswerable questions."""
    tp = fp = fn = wrong = 0
    for q, ranking, hands_over in zip(questions, rankings, hand_overs, strict=True):
        unanswerable = not expected(q)
        tp += hands_over and unanswerable
        fp += hands_over and not unanswerable
        fn += unanswerable and not hands_over
        wrong += not hands_over and not unanswerable and ranking[0][0] not in expected(q)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "handed_over_answerable": fp,
        "answered_wrongly": wrong,
    }


def metrics(
    questions: list[dict[str, Any]], rankings: list[Ranking], times: list[float], hand_overs: list[bool]
) -> dict[str, Any]:
    ranks = []
    for q, ranking in zip(questions, rankings, strict=True):
        if want := expected(q):
            found = [i for i, (eid, _) in enumerate(ranking, 1) if eid in want]
            ranks.append(found[0] if found else None)
    n = len(ranks)
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
        "handover": handover(questions, rankings, hand_overs),
        "search_ms_p50": percentile(times, 50) * 1000,
        "search_ms_p95": percentile(times, 95) * 1000,
        "misses_at_3": misses,
    }


def hotline_searcher(
    database: str, tmp: Path, decisions: list[bool]
) -> tuple[Callable[[str], Ranking], Callable[[], None]]:
    """hotline's own search over a fresh database holding the articles; each search appends
    to `decisions` whether answerable() hands it over."""
    from hotline.knowledge.search import answerable, search

    url = f"sqlite:///{tmp / 'knowledge.db'}" if database == "sqlite" else delivery.fresh_postgres(PG_NAME)
    env = {**os.environ, "HOTLINE_DATABASE_URL": url, "HOTLINE_EMBEDDED_SCHEDULER": "false"}
    hotline = intake.hotline_command()
    subprocess.run([*hotline, "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
    start = time.perf_counter()
    subprocess.run([*hotline, "knowledge", "import", str(ARTICLES)], env=env, cwd=ROOT, check=True)
    print(f"imported in {time.perf_counter() - start:.1f} s (the command, start-up included)")
    runtime = delivery.runtime_for(url)

    def run_search(question: str) -> Ranking:
        with runtime.db.session() as session:
            hits = search(session, question, limit=LIMIT)
        decisions.append(not answerable(hits))
        return [(h.external_id, h.confidence) for h in hits]

    return run_search, runtime.db.engine.dispose


def row(name: str, part: str, m: dict[str, Any]) -> str:
    h = m["handover"]
    return (
        f"| {name} | {part} | {m['recall_at_1']:.3f} | {m['recall_at_3']:.3f} | {m['mrr']:.3f} | "
        f"{h['precision']:.2f} / {h['recall']:.2f} | {h['answered_wrongly']} | "
        f"{m['search_ms_p50']:.2f} / {m['search_ms_p95']:.2f} |"
    )


def evaluate(
    questions: list[dict[str, Any]], rankings: list[Ranking], times: list[float], hand_overs: list[bool]
) -> dict[str, Any]:
    """The metrics on all the questions and on each half."""
    out = {"all": metrics(questions, rankings, times, hand_overs)}
    for half in HALVES:
        keep = [i for i in range(len(questions)) if half_of(i) == half]
        out[half] = metrics(*([x[i] for i in keep] for x in (questions, rankings, times, hand_overs)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--misses", action="store_true", help="print the answerable questions missed at 3")
    args = parser.parse_args(argv)

    jieba.setLogLevel(60)
    articles = load(ARTICLES)
    questions = load(DATA / "questions.jsonl")
    dev = [i for i in range(len(questions)) if half_of(i) == "dev"]
    rankings, times = run(bm25_searcher(articles), questions)
    # BM25's hand-over threshold: the best F1 on the dev half.
    threshold = max(
        sorted({r[0][1] for i, r in enumerate(rankings) if r and i in dev}),
        key=lambda t: handover(
            [questions[i] for i in dev], [rankings[i] for i in dev], by_threshold([rankings[i] for i in dev], t)
        )["f1"],
    )
    results: dict[str, dict[str, Any]] = {
        "bm25": evaluate(questions, rankings, times, by_threshold(rankings, threshold))
    }
    results["bm25"]["handover_threshold"] = threshold

    with tempfile.TemporaryDirectory(prefix="hotline-bench-knowledge-") as tmp:
        decisions: list[bool] = []
        search, close = hotline_searcher(args.database, Path(tmp), decisions)
        try:
            search(questions[0]["question"])  # warm-up: connection, caches
            decisions.clear()
            rankings, times = run(search, questions)
            results["hotline"] = evaluate(questions, rankings, times, decisions)
        finally:
            close()

    n_dev = len(dev)
    print(
        f"{len(articles)} articles, {len(questions)} questions ({results['bm25']['all']['unanswerable']} unanswerable);"
    )
    print(f"dev half {n_dev} (even lines), held-out half {len(questions) - n_dev} (odd lines)\n")
    print("| search | questions | recall@1 | recall@3 | MRR | hand-over P / R | answered wrongly | p50 / p95 ms |")
    print("|---|---|---:|---:|---:|---|---:|---:|")
    for name, parts in results.items():
        label = "plain BM25 (jieba + bm25s)" if name == "bm25" else f"hotline ({args.database})"
        for part in ("dev", "held_out", "all"):
            print(row(label, part.replace("_", "-"), parts[part]))
    print(f"\nBM25 hands over under {threshold:.3g} (best F1 on the dev half); hotline when answerable() says no")
    if args.misses:
        for name, parts in results.items():
            for miss in parts["all"]["misses_at_3"]:
                print(f"  {name} miss: {miss['question']}  expected {miss['expected']}  got {miss['got']}")

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
