"""Give a demo database on PostgreSQL years of archived history: ten million tickets from one.

`hotline demo-data` plays half a year of a district's tickets. A district that keeps five
years of history, or a city, holds ten times that, nearly all of it archived. This script
copies the archived tickets of a loaded demo database back in time, inside the server
(`INSERT ... SELECT`), `--copies` times, each copy `--shift` days earlier than the one
before: with the defaults, nine copies of half a year make five years and, from a million
demo tickets, about ten million tickets with their history, assignments, notices, events
for other systems, callbacks, ratings and running totals. The copies keep every column of
the originals; times move back by whole days (so a ticket's working-day figures keep their
shape), ticket numbers take the day they were logged, and the keys that must be unique
(event uids, attachment keys, rating links) are derived anew. Open tickets are not copied:
old history is archived, and no clock of the copies runs (`next_due_at` is left empty: an
open rectification copied years back would be overdue at every sweep). The tamper-evident
chains are not extended over the copies (the copied rows are outside the chains): this is a
database to measure, not to audit.

    HOTLINE_DATABASE_URL=postgresql+psycopg://user@host/demo .venv/bin/python bench/history.py
    HOTLINE_DATABASE_URL=... .venv/bin/python bench/history.py --copies 4 --shift 184

Loads as a restore does: the plain (non-unique) indexes of the tables it writes are dropped
first and built again at the end, and the copying session skips the foreign-key triggers
(`session_replication_role = replica`: every copied row refers to a copied or an original row
by construction). Run it once, on a database just loaded by `hotline demo-data`. Ends with
`VACUUM ANALYZE` of every table it wrote, as a long-running database's autovacuum would have
left them. Prints the rows written per table and the time taken.
"""

import argparse
import os
import time

from sqlalchemy import create_engine, text

# Tables holding a ticket's rows, in an order that copies what a row refers to before it.
TICKET_TABLES = (
    "ticket_events",
    "assignments",
    "callbacks",
    "messages",
    "rating_invitations",
    "appeals",
    "rectifications",
    "approvals",
    "supervision_orders",
    "escalations",
    "notifications",
    "outbox",
    "attachments",
    "calls",
)
# Running counts by day, copied with their day moved back.
DAY_TABLES = ("daily_totals", "surge_counts")
FINAL_STATES = ("archived", "cancelled", "merged")


def _columns(conn, table: str) -> list[tuple[str, str]]:
    return [
        (r[0], r[1])
        for r in conn.execute(
            text(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'public' and table_name = :t order by ordinal_position"
            ),
            {"t": table},
        )
    ]


def _references(conn, table: str) -> dict[str, str]:
    """Foreign-key column -> the table it refers to."""
    rows = conn.execute(
        text(
            "select kcu.column_name, ccu.table_name from information_schema.table_constraints tc "
            "join information_schema.key_column_usage kcu on kcu.constraint_name = tc.constraint_name "
            "join information_schema.constraint_column_usage ccu on ccu.constraint_name = tc.constraint_name "
            "where tc.constraint_type = 'FOREIGN KEY' and tc.table_name = :t"
        ),
        {"t": table},
    )
    return {r[0]: r[1] for r in rows}


def _unique_text(table: str, column: str, k: int) -> str | None:
    """A new value for a column that must stay unique, or None when the column is copied as is."""
    derived = {
        ("tickets", "number"): (
            f"to_char(to_date(left(number, 8), 'YYYYMMDD') - :shift * {k}, 'YYYYMMDD') || substr(number, 9)"
        ),
        ("tickets", "external_id"): f"left(external_id, 58) || '~h{k}'",
        ("callbacks", "external_id"): f"left(external_id, 58) || '~h{k}'",
        ("calls", "call_id"): f"left(call_id, 58) || '~h{k}'",
        ("outbox", "uid"): f"md5(uid || '#{k}')",
        ("attachments", "storage_key"): f"md5(storage_key || '#{k}')",
        ("attachments", "thumbnail_key"): f"md5(thumbnail_key || '#{k}')",
        ("rating_invitations", "token_hash"): f"encode(sha256(convert_to(token_hash || '#{k}', 'UTF8')), 'hex')",
    }
    return derived.get((table, column))


def _select_list(conn, table: str, k: int, offsets: dict[str, int]) -> tuple[str, str]:
    refs = _references(conn, table)
    names, exprs = [], []
    for name, kind in _columns(conn, table):
        names.append(f'"{name}"')
        if name == "next_due_at":
            # The copies are history: no clock of theirs is still running (an open
            # rectification of the original, copied years back, would be overdue at every sweep).
            exprs.append("NULL")
        elif name == "id" and table in offsets:
            exprs.append(f"id + {offsets[table] * k}")
        elif refs.get(name) in offsets:
            exprs.append(f'"{name}" + {offsets[refs[name]] * k}')
        elif kind.startswith("timestamp"):
            exprs.append(f'"{name}" - make_interval(days => :shift * {k})')
        elif kind == "date":
            exprs.append(f'"{name}" - :shift * {k}')
        elif (derived := _unique_text(table, name, k)) is not None:
            exprs.append(derived)
        else:
            exprs.append(f'"{name}"')
    return ", ".join(names), ", ".join(exprs)


TABLES = ("tickets", *TICKET_TABLES, *DAY_TABLES)


def _drop_plain_indexes(conn) -> None:
    """Drop the plain indexes of the tables written, their definitions kept in the database
    until they are built again: a run that stops half-way leaves them for `--finish`."""
    conn.execute(text("create table if not exists bench_history_indexes (name text primary key, definition text)"))
    conn.execute(
        text(
            "insert into bench_history_indexes select indexname, indexdef from pg_indexes "
            "where schemaname = 'public' and tablename = any(:tables) and indexdef not like 'CREATE UNIQUE%' "
            "on conflict do nothing"
        ),
        {"tables": list(TABLES)},
    )
    for (name,) in conn.execute(text("select name from bench_history_indexes")).all():
        conn.execute(text(f'drop index if exists "{name}"'))


def _copy(conn, copies: int, shift: int) -> dict[str, int]:
    span = conn.execute(text("select max(created_at) - min(created_at) from tickets")).scalar_one()
    if span.days >= shift:
        raise SystemExit(f"the tickets span {span.days} days: --shift must be more than that")
    # Strides: copy k of a row with id i gets id i + k * stride, past every original id.
    offsets = {
        t: conn.execute(text(f"select coalesce(max(id), 0) + 1 from {t}")).scalar_one()
        for t in ("tickets", *TICKET_TABLES)
    }
    conn.execute(
        text(
            "create temp table aged as select t.id from tickets t left join tickets m on m.id = t.master_id "
            "where t.state = any(:final) and (t.master_id is null or m.state = any(:final))"
        ),
        {"final": list(FINAL_STATES)},
    )
    conn.execute(text("alter table aged add primary key (id)"))
    aged = conn.execute(text("select count(*) from aged")).scalar_one()
    print(f"{aged:,} archived tickets to copy {copies} times, {shift} days apart")
    _drop_plain_indexes(conn)
    conn.execute(text("set session_replication_role = replica"))
    first_day = {t: conn.execute(text(f"select min(day) from {t}")).scalar_one() for t in DAY_TABLES}
    written: dict[str, int] = {}
    for k in range(1, copies + 1):
        for table in TABLES:
            names, exprs = _select_list(conn, table, k, offsets)
            if table == "tickets":
                where = "where id in (select id from aged)"
            elif table in DAY_TABLES:
                if first_day[table] is None:
                    continue
                where = f"where day >= '{first_day[table]}' on conflict do nothing"
            else:
                where = "where ticket_id in (select id from aged)"
            t0 = time.monotonic()
            n = conn.execute(
                text(f"insert into {table} ({names}) select {exprs} from {table} {where}"), {"shift": shift}
            ).rowcount
            written[table] = written.get(table, 0) + n
            print(f"  copy {k}: {table:20} {n:>10,} rows in {time.monotonic() - t0:6.1f} s", flush=True)
    conn.execute(text("set session_replication_role = origin"))
    return written


def _finish(conn) -> None:
    """The sequences past the copies, the dropped indexes built again, every table analysed."""
    for table in ("tickets", *TICKET_TABLES):
        conn.execute(text(f"select setval(pg_get_serial_sequence('{table}', 'id'), (select max(id) from {table}))"))
    conn.execute(text("set maintenance_work_mem = '512MB'"))
    t0 = time.monotonic()
    definitions = conn.execute(text("select definition from bench_history_indexes")).scalars().all()
    for definition in definitions:
        conn.execute(text(definition.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1)))
    conn.execute(text("drop table bench_history_indexes"))
    print(f"{len(definitions)} indexes built again: {time.monotonic() - t0:.1f} s", flush=True)
    t0 = time.monotonic()
    for table in TABLES:
        conn.execute(text(f"vacuum analyze {table}"))
    print(f"vacuum analyze: {time.monotonic() - t0:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=9)
    parser.add_argument("--shift", type=int, default=184, help="days between copies (more than the demo's span)")
    parser.add_argument("--finish", action="store_true", help="copy nothing: finish a run that was stopped")
    args = parser.parse_args()
    url = os.environ.get("HOTLINE_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        raise SystemExit("set HOTLINE_DATABASE_URL to a PostgreSQL database loaded with `hotline demo-data`")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    started = time.monotonic()
    with engine.connect() as conn:
        conn.execute(text("set synchronous_commit = off"))
        written = {} if args.finish else _copy(conn, args.copies, args.shift)
        _finish(conn)
        total = conn.execute(text("select count(*) from tickets")).scalar_one()
    engine.dispose()
    print(f"{total:,} tickets now; {sum(written.values()):,} rows written in {time.monotonic() - started:.0f} s")
    for table, n in written.items():
        print(f"  {table:20} {n:>12,}")


if __name__ == "__main__":
    main()
