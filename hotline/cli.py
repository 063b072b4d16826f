"""The `hotline` command (docs/commands.md describes its sub-commands)."""

import argparse
import contextlib
import getpass
import os
import signal
import socket
import sys
import time
from collections import Counter
from datetime import date, datetime
from pathlib import Path

from hotline.config import get_settings
from hotline.crypto import SecretKeyError
from hotline.db import Database, utcnow
from hotline.deadlines.calendar import LOCAL_TZ, read_holiday_csv
from hotline.errors import HotlineError
from hotline.models import ROLES


def _database() -> Database:
    settings = get_settings()
    return Database(settings.database_url, echo=settings.sql_echo)


def _runtime(db: Database | None = None):
    from hotline.runtime import Runtime

    return Runtime(db or _database(), get_settings())


def _ready_runtime():
    """A runtime over a migrated database."""
    from hotline.migrate import upgrade

    db = _database()
    upgrade(db)
    return _runtime(db)


def parse_time(text: str) -> datetime:
    """ISO 8601; Asia/Shanghai where no offset is given."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"hotline: {text!r} is not an ISO 8601 time (e.g. 2026-09-30T10:00)") from None
    return value.replace(tzinfo=LOCAL_TZ) if value.tzinfo is None else value


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from hotline.migrate import upgrade

    # Links in citizens' messages lead to where this server listens unless told otherwise;
    # set before the settings are first read (the workers inherit the environment).
    os.environ.setdefault("HOTLINE_PUBLIC_URL", listening_url(args.host, args.port))
    get_settings.cache_clear()
    upgrade(_database())
    from hotline.ops.logs import log_config
    from hotline.ops.metrics import prepare_multiprocess

    prepare_multiprocess(args.workers)
    uvicorn.run(
        "hotline.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        log_config=log_config(get_settings()),
        access_log=args.access_log,
    )


def listening_url(host: str, port: int) -> str:
    """The address a server bound to host:port is reached at (a wildcard host: this machine's name)."""
    if host in ("", "0.0.0.0", "::"):
        host = socket.getfqdn()
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def cmd_db_upgrade(_: argparse.Namespace) -> None:
    from hotline.migrate import upgrade

    upgrade(_database())
    print("database is at the newest migration")


def cmd_backup(args: argparse.Namespace) -> None:
    from hotline.backup import backup

    for line in backup(_database(), Path(args.path), force=args.force).lines():
        print(line)


def cmd_restore(args: argparse.Namespace) -> None:
    from hotline.backup import restore

    db = _database()
    note = restore(db, Path(args.path), force=args.force)
    print(f"restored {args.path} into the configured database")
    if note:
        print(note, file=sys.stderr)


def cmd_users_create(args: argparse.Namespace) -> None:
    """A user whose password (given, typed or generated) follows the policy and must be
    changed at the first sign-in to the pages."""
    from hotline.directory import create_user, generate_password

    rt = _ready_runtime()
    password = args.password
    generated = False
    if password is None:
        if sys.stdin.isatty():
            password = getpass.getpass(f"password for {args.username}: ")
        else:
            password, generated = generate_password(), True
    with rt.db.session() as session:
        user = create_user(
            session,
            username=args.username,
            role=args.role,
            password=password,
            department=args.department,
            display_name=args.name,
            source=args.source,
            now=utcnow(),
        )
    print(f"created user {user.username} ({user.role})")
    if generated:
        print(f"password: {password}")
    if user.must_change_password:
        print("the password must be changed at the first sign-in to the pages")


def cmd_users_token(args: argparse.Namespace) -> None:
    from hotline.directory import issue_token

    rt = _ready_runtime()
    with rt.db.session() as session:
        token = issue_token(session, args.username, now=utcnow())
    print(token)


def cmd_calendar_due(args: argparse.Namespace) -> None:
    from hotline.deadlines import sla
    from hotline.workflow.definition import Limit

    rt = _ready_runtime()
    start = parse_time(args.start)
    limit = Limit(working_days=args.working_days) if args.working_days is not None else Limit(hours=args.hours)
    with rt.db.read_session() as session:
        cal = rt.calendar(session)
    result = sla.due(cal, start, limit)
    print(result.at.astimezone(LOCAL_TZ).isoformat())
    if result.provisional:
        missing = cal.missing_years(start.astimezone(LOCAL_TZ).date(), result.at.astimezone(LOCAL_TZ).date())
        print(
            f"provisional: no holiday data for {', '.join(map(str, missing))}; weekends only "
            "(import the year with `hotline calendar import FILE`)",
            file=sys.stderr,
        )


def cmd_calendar_import(args: argparse.Namespace) -> None:
    from hotline.deadlines.holidays import import_holidays
    from hotline.workflow.engine import SCHEDULER

    text = _csv_text(args.file)
    try:
        overrides, names = read_holiday_csv(text)
    except ValueError as exc:
        raise SystemExit(f"hotline: {args.file}: {exc}") from None
    if not overrides:
        raise SystemExit(f"hotline: {args.file}: no dates: one line per holiday or make-up working day")
    # A year named is replaced whole; which years, the administrator says when the file has several.
    per_year = Counter(day.year for day in overrides)
    years = sorted(set(args.year or per_year))
    if not args.year and len(per_year) > 1:
        found = ", ".join(f"{n} of {y}" for y, n in sorted(per_year.items()))
        raise SystemExit(
            f"hotline: {args.file}: days of several years ({found}); an import replaces each year it names "
            "whole: name the year(s) to replace with --year (a day of another year, such as a holiday "
            "over New Year, is then set alone, the rest of its year kept)"
        )
    if missing := [y for y in years if y not in per_year]:
        raise SystemExit(f"hotline: {args.file}: no day of {', '.join(map(str, missing))} in the file")
    rt = _ready_runtime()
    years, recomputed = import_holidays(
        rt, overrides, source=f"import:{Path(args.file).name}"[:32], actor=SCHEDULER, names=names, years=years
    )
    alone = sorted(day for day in overrides if day.year not in years)
    also = f"; set {len(alone)} day(s) of other years alone ({', '.join(map(str, alone))})" if alone else ""
    print(
        f"imported {len(overrides) - len(alone)} days for {', '.join(map(str, years))} (each replaced whole){also}; "
        f"recomputed the provisional deadlines of {recomputed} tickets"
    )


def _csv_text(path: str) -> str:
    """A CSV file's text (UTF-8, with or without a byte-order mark), or the command's error."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise SystemExit(f"hotline: {path}: not UTF-8 text; save the file as UTF-8 (CSV UTF-8)") from None
    except OSError as exc:
        raise SystemExit(f"hotline: {path}: {exc.strerror or exc}") from None


def cmd_categories_import(args: argparse.Namespace) -> None:
    import csv

    from hotline.directory import CATEGORY_COLUMNS, RowError, import_categories

    reader = csv.DictReader(_csv_text(args.file).splitlines())
    columns = [c.strip() for c in reader.fieldnames or []]
    if "code" not in columns or "name" not in columns or set(columns) - set(CATEGORY_COLUMNS):
        raise SystemExit(
            f"hotline: {args.file}: line 1: the header names the columns: code,name and any of "
            f"parent,department,workflow (found: {','.join(columns) or 'nothing'})"
        )
    reader.fieldnames = columns
    rows = []
    for row in reader:
        if None in row:  # more fields than the header names (a comma in a name, unquoted)
            raise SystemExit(
                f"hotline: {args.file}: line {reader.line_num}: more fields than the header names "
                "(put a name with a comma in double quotes); nothing was imported"
            )
        if any((v or "").strip() for v in row.values()):
            rows.append((reader.line_num, row))
    if not rows:
        raise SystemExit(f"hotline: {args.file}: no category: one line per category under the header")
    rt = _ready_runtime()
    try:
        with rt.db.session() as session:
            created, updated = import_categories(session, rt, rows)
    except RowError as exc:
        raise SystemExit(f"hotline: {args.file}: {exc}; nothing was imported") from None
    print(f"categories: {created} created, {updated} updated")


def cmd_sweep(args: argparse.Namespace) -> None:
    from hotline.scheduler import sweep

    rt = _ready_runtime()
    now = parse_time(args.now) if args.now else utcnow()
    for line in sweep(rt, now=now).lines():
        print(line)


def cmd_scheduler(_: argparse.Namespace) -> None:
    from hotline.ops.logs import configure_logging
    from hotline.scheduler import build_scheduler, stop_scheduler

    rt = _ready_runtime()
    configure_logging(rt.settings)
    print(
        f"scheduler: sweeping every {rt.settings.sweep_interval_seconds:g} s once elected to lead (Ctrl-C to stop)",
        flush=True,
    )
    # SIGTERM (systemd's stop) ends it like Ctrl-C: the lead is given up, not left to expire.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    scheduler = build_scheduler(rt, blocking=True)
    try:
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            scheduler.start()
    finally:
        stop_scheduler(scheduler)


def cmd_demo_data(args: argparse.Namespace) -> None:
    from hotline.demo import load_demo

    rt = _ready_runtime()
    load_demo(rt, tickets=args.tickets, seed=args.seed, out=sys.stdout, workers=args.workers)


def cmd_stats_rebuild(_: argparse.Namespace) -> None:
    from hotline.indicators import totals

    rt = _ready_runtime()
    started = time.monotonic()
    with rt.db.session() as session:
        rows = totals.rebuild(session)  # (which refreshes the planner's view of the table)
    print(f"rebuilt the running totals: {rows:,} rows in {time.monotonic() - started:.1f} s")


def cmd_stats_check(args: argparse.Namespace) -> None:
    from hotline.indicators.stats import check_totals

    rt = _ready_runtime()
    start, end = _parse_day(args.start), _parse_day(args.end)
    with rt.db.read_session() as session:
        differences = check_totals(session, rt, start, end)
    if not differences:
        print(f"the running totals agree with the tickets for {start} to {end}")
        return
    for dept, metric, kept, counted in differences:
        print(f"{dept} {metric}: totals {kept}, tickets {counted}")
    print("run `hotline stats rebuild` to recompute the totals", file=sys.stderr)
    raise SystemExit(1)


def cmd_audit_verify(_: argparse.Namespace) -> None:
    """Both kinds of chain: every ticket's history, and the audit trail; exit 1 naming the
    first row of each that does not match."""
    from hotline import audit, audit_log

    rt = _ready_runtime()
    started = time.monotonic()
    with rt.db.read_session() as session:
        history = audit.verify(session)
    with rt.db.read_session() as session:
        trail = audit_log.verify(session)
    took = time.monotonic() - started
    failed = False
    for (checked, broken), what in ((history, "ticket history"), (trail, "audit trail")):
        if broken is not None:
            print(f"{what}: chain broken after {checked:,} good rows: {broken}", file=sys.stderr)
            failed = True
    if failed:
        raise SystemExit(1)
    print(
        f"every ticket's history chain holds: {history[0]:,} rows; "
        f"the audit trail's chain holds: {trail[0]:,} records; checked in {took:.1f} s"
    )


def cmd_outbox_status(_: argparse.Namespace) -> None:
    from sqlalchemy import func
    from sqlmodel import select

    from hotline.integration.subscriptions import health
    from hotline.models import OutboxMessage, Subscription

    rt = _ready_runtime()
    now = utcnow()
    with rt.db.read_session() as session:
        events = session.exec(select(func.count()).select_from(OutboxMessage)).one()
        subs = session.exec(select(Subscription).order_by(Subscription.id)).all()
        stats = health(session, now)
    print(f"events: {events:,}; subscriptions: {len(subs)}")
    for s in subs:
        h = stats.get(s.id, {})
        rate = h.get("success_rate")
        print(
            f"#{s.id} {s.name} {'on' if s.enabled else 'off'} {s.url}: pending {h.get('pending', 0)},"
            f" dead {h.get('dead', 0)}, delivered 24 h {h.get('delivered', 0)},"
            f" lag {h.get('lag_seconds', 0.0):.0f} s, success {'-' if rate is None else f'{rate:.1%}'}"
            + ("" if s.enabled else f" ({s.disabled_reason})")
        )


def cmd_outbox_deliver(args: argparse.Namespace) -> None:
    from hotline.integration.delivery import Deliverer

    rt = _ready_runtime()
    deliverer = Deliverer(rt)
    if args.watch:
        print(f"delivering webhooks every {rt.settings.delivery_interval_seconds:g} s (Ctrl-C to stop)", flush=True)
    try:
        while True:
            report = deliverer.drain()
            if not args.watch:
                print(report.line())
                return
            if report.delivered or report.failed or report.dead:
                print(report.line(), flush=True)
            time.sleep(rt.settings.delivery_interval_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        deliverer.close()


def cmd_outbox_replay(args: argparse.Namespace) -> None:
    from hotline.integration.delivery import replay

    rt = _ready_runtime()
    start = parse_time(args.start) if args.start else None
    end = parse_time(args.end) if args.end else None
    if not (args.dead or start or end):
        raise SystemExit("hotline: say which events to send again: --dead, or --from and/or --to")
    with rt.db.session() as session:
        n = replay(session, args.subscription, start=start, end=end, dead_only=args.dead, now=utcnow())
    print(f"{n} events queued again for subscription {args.subscription}")


def cmd_keys_new(_: argparse.Namespace) -> None:
    from hotline.crypto import new_secret

    print(new_secret())


def cmd_keys_status(_: argparse.Namespace) -> None:
    from hotline.crypto import count_by_key
    from hotline.migrate import upgrade

    db = _database()
    upgrade(db)
    with db.engine.connect() as connection:
        counts = count_by_key(connection, db.keys)
    for i, key in enumerate(db.keys.keys):
        print(f"key {key.id}{' (seals)' if i == 0 else ''}: {counts.pop(key.id, 0):,} values")
    for kid, n in counts.items():
        print(f"{'in clear' if kid == 'clear' else f'key {kid} (missing!)'}: {n:,} values")


def cmd_keys_rotate(args: argparse.Namespace) -> None:
    from hotline.crypto import rotate
    from hotline.migrate import upgrade

    db = _database()
    upgrade(db)
    with db.engine.connect() as connection:
        rotate(connection, db.keys, wait=args.wait, batch=args.batch, say=print)


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"hotline: {text!r} is not a date (e.g. 2026-11-01)") from None


def cmd_knowledge_reindex(_: argparse.Namespace) -> None:
    from hotline.knowledge.index import rebuild

    runtime = _ready_runtime()
    started = time.monotonic()
    n = rebuild(runtime.db)
    print(f"reindexed {n:,} articles in {time.monotonic() - started:.1f} s")


def cmd_knowledge_import(args: argparse.Namespace) -> None:
    import json

    from hotline.knowledge.articles import MAX_IMPORT, import_rows

    runtime = _ready_runtime()
    totals = {"created": 0, "updated": 0, "unchanged": 0, "errors": 0}

    def error(line: int, field: str, message: str) -> None:
        totals["errors"] += 1
        print(f"line {line}: {field}: {message}", file=sys.stderr)

    def flush(rows: list, lines: list[int]) -> None:
        # One transaction a batch: memory stays flat whatever the file's size.
        with runtime.db.session() as session:
            answer = import_rows(session, rows, None, runtime.now(), indexes=lines)
        for e in answer.pop("errors"):
            error(e["index"], e["field"], e["message"])
        for key, n in answer.items():
            totals[key] += n

    rows: list = []
    lines: list[int] = []
    with open(args.file, encoding="utf-8-sig") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
                lines.append(number)
            except json.JSONDecodeError as exc:
                error(number, "line", f"not JSON: {exc.msg}")
            if len(rows) == MAX_IMPORT:
                flush(rows, lines)
                rows, lines = [], []
    if rows:
        flush(rows, lines)
    if totals["created"] or totals["updated"]:
        from hotline.knowledge.index import analyze

        with runtime.db.session() as session:
            analyze(session)
    print(", ".join(f"{key} {n}" for key, n in totals.items()))
    if totals["errors"]:
        raise SystemExit(1)


def cmd_import_tickets(args: argparse.Namespace) -> None:
    """A district's history from its previous system (hotline.ticket_import)."""
    import csv

    from hotline.ticket_import import import_tickets, read_mapping

    for path in (args.file, args.map):
        if path and not Path(path).is_file():
            raise SystemExit(f"hotline: no file {path}")
    runtime = _ready_runtime()
    mapping = read_mapping(args.map) if args.map else None
    report = import_tickets(
        runtime, args.file, source=args.source, mapping=mapping, dry_run=args.dry_run, partial=args.partial,
        encoding=args.encoding, out=sys.stdout, workers=args.workers,
    )  # fmt: skip
    if report.rejected:
        if args.report:
            with open(args.report, "w", encoding="utf-8-sig", newline="") as file:
                out = csv.writer(file)
                out.writerow(["row", "column", "reason"])
                out.writerows((r.row, r.column, r.reason) for r in report.rejected)
            print(f"{len(report.rejected)} problems written to {args.report}")
        else:
            print("\n".join(map(str, report.rejected)))
    if report.ignored_columns:
        print("columns not taken: " + ", ".join(report.ignored_columns))
    held = bool(report.rejected) and not args.partial
    counted = f"{report.rows:,} rows: {report.rejected_rows:,} rejected, {report.loaded_before:,} loaded before, "
    if args.dry_run:
        print(counted + f"{report.new:,} to load (a dry run: nothing written)")
    elif held:
        print(counted + "nothing loaded: correct the rows reported (or --partial to load the others)")
    else:
        rate = f" ({report.written / report.seconds:,.0f} tickets/s)" if report.written else ""
        print(counted + f"loaded {report.written:,} tickets in {report.seconds:.1f} s{rate}")
    if held:
        raise SystemExit(1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description="12345 hotline ticket workflow engine")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="the web pages and the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--no-access-log", dest="access_log", action="store_false")
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="the database").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply the migrations").set_defaults(func=cmd_db_upgrade)

    back = sub.add_parser("backup", help="a consistent copy of the database, taken while it serves")
    back.add_argument("path", help="the file to write (readable by its owner only)")
    back.add_argument("--force", action="store_true", help="replace the file if it exists")
    back.set_defaults(func=cmd_backup)
    rest = sub.add_parser("restore", help="bring a backup back into the configured database (server stopped)")
    rest.add_argument("path", help="a file `hotline backup` wrote")
    rest.add_argument("--force", action="store_true", help="replace a database that is not empty")
    rest.set_defaults(func=cmd_restore)

    users = sub.add_parser("users", help="users and API tokens").add_subparsers(dest="users_command", required=True)
    create = users.add_parser("create", help="create a user")
    create.add_argument("username")
    create.add_argument("--role", required=True, choices=list(ROLES))
    create.add_argument("--department", help="department code (handlers and leaders)")
    create.add_argument("--source", help="the outside platform of an integration account, e.g. city12345")
    create.add_argument(
        "--password",
        help="asked for when omitted on a terminal; generated otherwise. At least 10 characters of three kinds "
        "(lower case, upper case, digits, others), without the username; changed at the first sign-in",
    )
    create.add_argument("--name", help="display name")
    create.set_defaults(func=cmd_users_create)
    token = users.add_parser("token", help="print a new API token for a user")
    token.add_argument("username")
    token.set_defaults(func=cmd_users_token)

    cal = sub.add_parser("calendar", help="the working-day calendar").add_subparsers(
        dest="calendar_command", required=True
    )
    due = cal.add_parser("due", help="print the deadline for a start time")
    due.add_argument("start", help="ISO 8601; Asia/Shanghai when no offset is given")
    group = due.add_mutually_exclusive_group(required=True)
    group.add_argument("--working-days", type=int)
    group.add_argument("--hours", type=float)
    due.set_defaults(func=cmd_calendar_due)
    imp = cal.add_parser("import", help="load a year's holidays and make-up days from CSV (date,kind[,name])")
    imp.add_argument("file")
    imp.add_argument(
        "--year",
        type=int,
        action="append",
        help="the year to replace whole (repeat for several); needed when the file has days of several years",
    )
    imp.set_defaults(func=cmd_calendar_import)

    categories = sub.add_parser("categories", help="the category tree").add_subparsers(
        dest="categories_command", required=True
    )
    cimp = categories.add_parser(
        "import", help="create or change categories from CSV (code,name[,parent,department,workflow])"
    )
    cimp.add_argument("file", help="CSV (UTF-8) with a header row; a parent may come after its children")
    cimp.set_defaults(func=cmd_categories_import)

    sw = sub.add_parser("sweep", help="one sweep of the scheduler; prints what it did")
    sw.add_argument("--now", help="ISO 8601 time to sweep at (default: now)")
    sw.set_defaults(func=cmd_sweep)

    sub.add_parser(
        "scheduler", help="the scheduler as a process of its own (set HOTLINE_EMBEDDED_SCHEDULER=false for serve)"
    ).set_defaults(func=cmd_scheduler)

    stats = sub.add_parser("stats", help="the running totals behind the indicators").add_subparsers(
        dest="stats_command", required=True
    )
    stats.add_parser("rebuild", help="recompute the running totals from the tickets").set_defaults(
        func=cmd_stats_rebuild
    )
    check = stats.add_parser("check", help="compare the running totals with the tickets (exit 1 if they differ)")
    check.add_argument("--from", dest="start", required=True, help="first day, e.g. 2026-11-01")
    check.add_argument("--to", dest="end", required=True, help="last day")
    check.set_defaults(func=cmd_stats_check)

    audit = sub.add_parser("audit", help="the tamper-evident records").add_subparsers(
        dest="audit_command", required=True
    )
    audit.add_parser(
        "verify", help="check every ticket's history chain; exit 1 naming the first row that does not match"
    ).set_defaults(func=cmd_audit_verify)
    outbox = sub.add_parser("outbox", help="events for other systems and their webhooks").add_subparsers(
        dest="outbox_command", required=True
    )
    outbox.add_parser("status", help="each subscription's backlog, lag, dead events and success rate").set_defaults(
        func=cmd_outbox_status
    )
    deliver = outbox.add_parser("deliver", help="send the webhooks due now, once (or keep going with --watch)")
    deliver.add_argument("--watch", action="store_true", help="keep delivering until stopped")
    deliver.set_defaults(func=cmd_outbox_deliver)
    again = outbox.add_parser("replay", help="send a subscription's events again, with the same webhook-id")
    again.add_argument("--subscription", type=int, required=True, help="the subscription's id")
    again.add_argument("--dead", action="store_true", help="the events that went dead")
    again.add_argument("--from", dest="start", help="events from this time (ISO 8601)")
    again.add_argument("--to", dest="end", help="events until this time")
    again.set_defaults(func=cmd_outbox_replay)

    knowledge = sub.add_parser("knowledge", help="the knowledge base").add_subparsers(
        dest="knowledge_command", required=True
    )
    kimp = knowledge.add_parser("import", help="upsert articles from a JSON Lines file (one article a line)")
    kimp.add_argument("file")
    kimp.set_defaults(func=cmd_knowledge_import)
    knowledge.add_parser(
        "reindex", help="write every article's words into the search index again (after an upgrade)"
    ).set_defaults(func=cmd_knowledge_reindex)

    keys = sub.add_parser("keys", help="the secret keys of the personal data").add_subparsers(
        dest="keys_command", required=True
    )
    keys.add_parser("new", help="print a fresh secret key").set_defaults(func=cmd_keys_new)
    keys.add_parser("status", help="the keys and how many values each seals").set_defaults(func=cmd_keys_status)
    rot = keys.add_parser("rotate", help="a new key seals, every value is sealed again, the old key retires")
    rot.add_argument("--wait", type=float, default=15.0, help="seconds for the servers to read a new key file")
    rot.add_argument("--batch", type=int, default=1000, help="rows a transaction")
    rot.set_defaults(func=cmd_keys_rotate)

    imports = sub.add_parser("import", help="bring data over from another system").add_subparsers(
        dest="import_command", required=True
    )
    timp = imports.add_parser("tickets", help="a district's past tickets from its previous system (CSV or .xlsx)")
    timp.add_argument("file", help="CSV (UTF-8) or .xlsx, a header row naming the columns (docs/commands.md)")
    timp.add_argument("--source", default="legacy", help="the old system's name: with the old number, the key")
    timp.add_argument("--map", help="old category, department, state and type names to ours (YAML or CSV)")
    timp.add_argument("--report", help="write the rejected rows here (CSV) instead of to the output")
    timp.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
    timp.add_argument("--partial", action="store_true", help="load the good rows even when others are rejected")
    timp.add_argument("--encoding", default="utf-8-sig", help="of a CSV file, e.g. gb18030")
    timp.add_argument(
        "--workers", type=int, help="processes checking and building the rows (default: one a core for a large file)"
    )
    timp.set_defaults(func=cmd_import_tickets)

    demo = sub.add_parser("demo-data", help="load a demo district")
    demo.add_argument("--tickets", type=int, default=2000)
    demo.add_argument("--seed", type=int, default=12345)
    demo.add_argument(
        "--workers", type=int, help="processes playing the tickets (default: one a core for a large demo; 0: none)"
    )
    demo.set_defaults(func=cmd_demo_data)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from hotline import audit_log

    audit_log.act_as(audit_log.command_line())
    try:
        args.func(args)
    except HotlineError as exc:
        raise SystemExit(f"hotline: {exc.message}") from None
    except SecretKeyError as exc:
        raise SystemExit(f"hotline: {exc}") from None


if __name__ == "__main__":
    main()
