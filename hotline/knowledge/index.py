"""The search index: each article's title, keywords and body as segmented words, written in
the same transaction as the article.

SQLite keeps them in an FTS5 table (`knowledge_index`, rowid = the article's id) ranked by
bm25() with a weight per column; PostgreSQL in a table of one weighted tsvector per article
(`to_tsvector('simple', …)`, the title weighted A, keywords B, body D) under a GIN index,
ranked by ts_rank_cd(). Both tables are made by the migration, outside the models' metadata.
"""

from sqlalchemy import Float, Integer, TextualSelect, text
from sqlmodel import Session

from hotline.knowledge.text import segmented
from hotline.models import Article

# bm25() weights of the FTS5 columns: a word in the title counts most, then the keywords.
TITLE_WEIGHT, KEYWORDS_WEIGHT, BODY_WEIGHT = 10.0, 4.0, 1.0


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


def matches(session: Session, terms: list[str]) -> TextualSelect:
    """The articles whose indexed words contain any of the terms, each with its score
    (higher is better): columns `article_id` and `score`."""
    if session.connection().dialect.name == "sqlite":
        # Each term a quoted string (a phrase where the tokenizer splits it), any of them.
        query = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        sql = text(
            f"SELECT rowid AS article_id, -bm25(knowledge_index, {TITLE_WEIGHT}, {KEYWORDS_WEIGHT}, {BODY_WEIGHT})"
            " AS score FROM knowledge_index WHERE knowledge_index MATCH :q"
        )
    else:
        query = " | ".join("'" + t.replace("\\", "\\\\").replace("'", "''") + "'" for t in terms)
        sql = text(
            "SELECT article_id, ts_rank_cd(document, to_tsquery('simple', :q)) AS score"
            " FROM knowledge_index WHERE document @@ to_tsquery('simple', :q)"
        )
    return sql.bindparams(q=query).columns(article_id=Integer, score=Float)
