"""The search index: each article's title, keywords and body as segmented words, written in
the same transaction as the article.

SQLite keeps them in an FTS5 table (`knowledge_index`, rowid = the article's id) ranked by
bm25() with a weight per column; PostgreSQL in a table of one weighted tsvector per article
(`to_tsvector('simple', …)`, the title weighted A, keywords B, body D) under a GIN index,
ranked by ts_rank(). Both tables are made by the migration, outside the models' metadata.
Queries ask for articles that have a term of at least n of several groups (matches()), and
how common a term is (shares(): the index's counts on SQLite, the planner's statistics on
PostgreSQL).
"""

import time
from itertools import combinations

from sqlalchemy import Float, Integer, TextualSelect, text
from sqlmodel import Session

from hotline.knowledge.text import segmented
from hotline.models import Article

# bm25() weights of the FTS5 columns: a word in the title counts most, then the keywords.
TITLE_WEIGHT, KEYWORDS_WEIGHT, BODY_WEIGHT = 10.0, 4.0, 1.0
# shares(): how long what it learns of the index is kept.
STATS_SECONDS = 300
_stats: dict[str, tuple[float, int, dict[str, float]]] = {}


def _fields(article: Article) -> dict[str, object]:
    return {
        "id": article.id,
        "title": segmented(article.title),
        "keywords": segmented(" ".join(article.keywords)),
        "body": segmented(article.body),
    }


def write(session: Session, article: Article) -> None:
    """Put the article's words in the index, in the session's transaction (replacing the old ones)."""
    session.flush()
    write_many(session, [article])


def write_many(session: Session, articles: list[Article]) -> None:
    """Put the words of flushed articles in the index, replacing their old ones: one
    statement for them all (an import writes a thousand at a time)."""
    if not articles:
        return
    connection = session.connection()
    values = [_fields(a) for a in articles]
    if connection.dialect.name == "sqlite":
        connection.execute(text("DELETE FROM knowledge_index WHERE rowid = :id"), [{"id": v["id"]} for v in values])
        connection.execute(
            text("INSERT INTO knowledge_index (rowid, title, keywords, body) VALUES (:id, :title, :keywords, :body)"),
            values,
        )
    else:
        connection.execute(
            text(
                "INSERT INTO knowledge_index (article_id, document) VALUES (:id,"
                " setweight(to_tsvector('simple', :title), 'A') || setweight(to_tsvector('simple', :keywords), 'B')"
                " || setweight(to_tsvector('simple', :body), 'D'))"
                " ON CONFLICT (article_id) DO UPDATE SET document = EXCLUDED.document"
            ),
            values,
        )


def rebuild(db, *, batch: int = 1000) -> int:
    """Every article's words written again (after the segmentation or the word lists
    changed), a batch of articles a transaction; how many."""
    from sqlmodel import select

    done, last = 0, 0
    while True:
        with db.session() as session:
            articles = session.exec(select(Article).where(Article.id > last).order_by(Article.id).limit(batch)).all()
            if not articles:
                break
            write_many(session, list(articles))
            done, last = done + len(articles), articles[-1].id
    with db.session() as session:
        analyze(session)
    return done


def matches(
    session: Session, groups: list[list[str]], *, at_least: int = 1, headings_only: bool = False, at_most: int
) -> TextualSelect:
    """The articles whose indexed words contain a term of at least `at_least` of the groups
    (each group: the terms of one thing the question says), each with its score (higher is
    better): columns `article_id` and `score`. `headings_only`: in the title or keywords.
    At most `at_most` articles are scored: when more match, the first the index finds (the
    ranking's cost stays bounded in a large base; the caller asks for the telling words
    first)."""
    chosen = [g for g in groups if g]
    everything = [[list(dict.fromkeys(t for g in chosen for t in g))]]
    combos = everything if at_least <= 1 else [list(c) for c in combinations(chosen, at_least)]
    if session.connection().dialect.name == "sqlite":
        query = " OR ".join("(" + " AND ".join("(" + _fts_any(g) + ")" for g in combo) + ")" for combo in combos)
        if headings_only:
            query = "{title keywords} : (" + query + ")"
        sql = text(
            f"SELECT rowid AS article_id, -bm25(knowledge_index, {TITLE_WEIGHT}, {KEYWORDS_WEIGHT}, {BODY_WEIGHT})"
            " AS score FROM knowledge_index WHERE knowledge_index MATCH :q LIMIT :n"
        )
    else:
        weights = "AB" if headings_only else ""
        query = " | ".join(
            "(" + " & ".join("(" + _tsquery_any(g, weights) + ")" for g in combo) + ")" for combo in combos
        )
        # Ranked by the terms alone, with ts_rank (ts_rank_cd costs ten times more a row).
        sql = text(
            "SELECT article_id, ts_rank(document, to_tsquery('simple', :r)) AS score FROM"
            " (SELECT article_id, document FROM knowledge_index WHERE document @@ to_tsquery('simple', :q)"
            " LIMIT :n) AS matched"
        ).bindparams(r=_tsquery_any([t for g in chosen for t in dict.fromkeys(g)], weights))
    return sql.bindparams(q=query, n=at_most).columns(article_id=Integer, score=Float)


def analyze(session: Session) -> None:
    """Bring the database's statistics of the articles and the index up to date (after a
    large import: the planner's choices, and shares() on PostgreSQL, depend on them)."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        connection.execute(text("ANALYZE articles"))
    else:
        connection.execute(text("ANALYZE articles, knowledge_index"))
    _stats.pop(str(connection.engine.url), None)


def shares(session: Session, terms: list[str], up_to: float) -> tuple[int, dict[str, float]]:
    """About how many articles the index holds, and what share of them has each term (0 to
    1; a share over `up_to` may be given as just over it), for telling the terms of every
    other guide (办理, 电话) from the telling ones. What it learns is kept for STATS_SECONDS.

    SQLite: the articles counted, and those that have the term, counted up to just over
    `up_to` of them (the index reads no further). PostgreSQL: the planner's statistics of the index (its
    size, its most common words and their frequencies, as ANALYZE samples them); a word not
    among them is taken for rarer than the rarest of them (half its share), not for absent."""
    connection = session.connection()
    key = str(connection.engine.url)
    now = time.monotonic()
    cached = _stats.get(key)
    if cached is None or cached[0] < now:
        if connection.dialect.name == "sqlite":
            total = connection.execute(text("SELECT count(*) FROM articles")).scalar_one()
            cached = (now + STATS_SECONDS, int(total), {})
        else:
            row = connection.execute(
                text(
                    "SELECT c.reltuples, s.most_common_elems::text::text[], s.most_common_elem_freqs"
                    " FROM pg_class c LEFT JOIN pg_stats s ON s.tablename = c.relname"
                    " AND s.schemaname = current_schema() AND s.attname = 'document'"
                    " WHERE c.oid = to_regclass('knowledge_index')"
                )
            ).first()
            total = max(int(row[0]), 0) if row else 0
            freqs = dict(zip(row[1], row[2], strict=False)) if row and row[1] else {}
            cached = (now + STATS_SECONDS, total, freqs)
        _stats[key] = cached
    _, total, known = cached
    if connection.dialect.name != "sqlite":
        rare = min(known.values(), default=0.01) / 2
        return total, {t: float(known.get(t, rare)) for t in terms}
    for t in terms:
        if t not in known:
            found = connection.execute(
                text("SELECT count(*) FROM (SELECT 1 FROM knowledge_index WHERE knowledge_index MATCH :q LIMIT :n)"),
                {"q": _fts_any([t]), "n": int(total * up_to) + 1},
            ).scalar_one()
            known[t] = found / total if total else 0.0
    return total, {t: known[t] for t in terms}


def _fts_any(terms: list[str]) -> str:
    # Each term a quoted string (a phrase where the tokenizer splits it), any of them.
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def _tsquery_any(terms: list[str], weights: str = "") -> str:
    suffix = f":{weights}" if weights else ""
    return " | ".join("'" + t.replace("\\", "\\\\").replace("'", "''") + "'" + suffix for t in terms)
