"""`hotline import tickets`: a district's history from its previous system, checked, mapped,
loaded whole or not at all, once."""

import csv
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import create_engine, func, make_url, select, text

from hotline import audit, ticket_import
from hotline.config import Settings
from hotline.db import Database
from hotline.directory import create_category
from hotline.errors import Conflict, Invalid
from hotline.indicators import totals
from hotline.indicators.stats import check_totals
from hotline.migrate import upgrade
from hotline.models import Assignment, Callback, DailyTotal, Department, Ticket, TicketCounter, TicketEvent, User
from hotline.runtime import Runtime
from hotline.ticket_import import import_tickets, read_mapping
from hotline.tickets import same_phone
from tests.helpers import build_district, foreign_key_definitions, index_definitions

DATA = Path(__file__).parent / "data"
EXAMPLE = DATA / "import_tickets.csv"
MAPPING = DATA / "import_map.yaml"
HEADER = EXAMPLE.read_text(encoding="utf-8-sig").splitlines()[0].split(",")
SOURCE = "old-system"
NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        return list(csv.reader(file))[1:]


def _write(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as file:
        out = csv.writer(file)
        out.writerow(header)
        out.writerows(rows)
    return path


def _count(runtime, model) -> int:
    with runtime.db.read_session() as session:
        return session.execute(select(func.count()).select_from(model)).scalar()


def _counts(runtime) -> dict[str, int]:
    return {m.__name__: _count(runtime, m) for m in (Ticket, TicketEvent, Assignment, Callback, DailyTotal)}


def _totals(runtime) -> list[tuple]:
    with runtime.db.read_session() as session:
        columns = (DailyTotal.day, DailyTotal.department_id, DailyTotal.metric, DailyTotal.n)
        return sorted(tuple(row) for row in session.execute(select(*columns)))


def _totals_hold(runtime) -> None:
    """The running totals agree with the tickets (and are what a full rebuild makes: the
    import rebuilds only the days its tickets count on); every history chain holds."""
    with runtime.db.read_session() as session:
        assert check_totals(session, runtime, date(2026, 3, 1), date(2026, 3, 31)) == []
        checked, broken = audit.verify(session)
    assert broken is None and checked == _count(runtime, TicketEvent)
    kept = _totals(runtime)
    with runtime.db.session() as session:
        totals.rebuild(session)
    assert _totals(runtime) == kept


def test_example_file_loads_closed_open_and_cancelled_tickets(runtime, district):
    indexes, keys = index_definitions(runtime), foreign_key_definitions(runtime.db)
    report = import_tickets(runtime, EXAMPLE, source=SOURCE, mapping=read_mapping(MAPPING))
    assert (report.rows, report.written, report.rejected) == (4, 4, [])
    assert index_definitions(runtime) == indexes  # built again after the rows (the tables were empty)
    assert len(keys) > 20 and foreign_key_definitions(runtime.db) == keys  # likewise
    with runtime.db.read_session() as s:
        tickets = {t.external_id: t for t in s.execute(select(Ticket)).scalars()}
        housing = s.execute(select(Department).where(Department.code == "housing")).scalar_one()
        closed = tickets["OLD-0001"]
        assert (closed.source, closed.state, closed.close_reason) == (SOURCE, "archived", "imported")
        assert closed.number == "20260302000001"  # our own number, of the day it came in
        assert closed.main_department_id == housing.id and closed.result == "已联系物业修复电梯"
        assert closed.created_at == datetime.fromisoformat("2026-03-02T01:15:00+00:00")
        assert closed.caller_name == "张三"
        # Found by the caller's phone, as every ticket: the keyed hash was filled.
        assert s.execute(select(Ticket.external_id).where(same_phone(s, "138 0013 8000"))).scalars().all() == [
            "OLD-0001"
        ]
        [part] = s.execute(select(Assignment).where(Assignment.ticket_id == closed.id)).scalars()
        assert (part.department_id, part.role, part.status) == (housing.id, "main", "replied")
        assert part.replied_on_time is True and part.handle_by is not None
        [rating] = s.execute(select(Callback).where(Callback.ticket_id == closed.id)).scalars()
        assert (rating.rating, rating.reached, rating.department_id) == (4, True, housing.id)
        # Answered by the centre itself: no department, the reply as the answer.
        answered = tickets["OLD-0002"]
        assert (answered.state, answered.main_department_id, answered.answer) == ("archived", None, "已告知办理流程")
        assert answered.category_id is not None  # 食品安全: the name of a leaf
        # Open in the old system: registered here, for the centre to dispatch again.
        open_ = tickets["OLD-0003"]
        assert (open_.state, open_.main_department_id) == ("registered", None)
        assert open_.source_details == {"old_state": "办理中", "old_department": "住建局"}
        assert tickets["OLD-0004"].state == "cancelled"
        [event] = s.execute(select(TicketEvent).where(TicketEvent.ticket_id == closed.id)).scalars()
        assert (event.event, event.from_state, event.to_state) == ("import", None, "archived")
        assert event.details == {"source": SOURCE, "number": "OLD-0001", "row": 2}
    _totals_hold(runtime)
    assert _count(runtime, DailyTotal) > 0


def test_a_run_broken_off_before_its_totals_is_finished_by_running_it_again(runtime, district, monkeypatch):
    """Every batch written, then the run stops before the running totals (the process killed
    there): running it again finds every row loaded, writes nothing, and counts them."""
    mapping = read_mapping(MAPPING)

    def broken(*_args, **_kwargs):
        raise RuntimeError("killed before the totals")

    with monkeypatch.context() as m:
        m.setattr(totals, "rebuild", broken)
        with pytest.raises(RuntimeError, match="before the totals"):
            import_tickets(runtime, EXAMPLE, source=SOURCE, mapping=mapping)
    assert _counts(runtime)["Ticket"] == 4
    with runtime.db.read_session() as session:
        assert check_totals(session, runtime, date(2026, 3, 1), date(2026, 3, 31)) != []  # short
    again = import_tickets(runtime, EXAMPLE, source=SOURCE, mapping=mapping)
    assert (again.written, again.new, again.loaded_before) == (0, 0, 4)
    _totals_hold(runtime)


def test_unmapped_rows_are_reported_and_nothing_is_loaded(runtime, district):
    report = import_tickets(runtime, EXAMPLE, source=SOURCE)
    assert [(r.row, r.column) for r in report.rejected] == [(4, "category"), (4, "department")]
    assert "物业纠纷" in report.rejected[0].reason and "--map" in report.rejected[0].reason
    assert report.written == 0 and _counts(runtime)["Ticket"] == 0
    # --partial loads the others, and a run with the mapping then adds the one left out.
    assert import_tickets(runtime, EXAMPLE, source=SOURCE, partial=True).written == 3
    again = import_tickets(runtime, EXAMPLE, source=SOURCE, mapping=read_mapping(MAPPING))
    assert (again.written, again.loaded_before) == (1, 3)
    _totals_hold(runtime)


def test_a_second_run_changes_nothing_and_new_rows_load_alone(runtime, district, tmp_path):
    mapping = read_mapping(MAPPING)
    import_tickets(runtime, EXAMPLE, source=SOURCE, mapping=mapping)
    before = _counts(runtime)
    again = import_tickets(runtime, EXAMPLE, source=SOURCE, mapping=mapping)
    assert (again.written, again.new, again.loaded_before, again.rejected) == (0, 0, 4, [])
    assert _counts(runtime) == before
    more = [*_rows(EXAMPLE), ["OLD-0005", "2026-03-09 10:00", "", "", "", "咨询", "0201", "", "", "", "", "", "",
                              "问社保卡补办", "", "待派单", "", ""]]  # fmt: skip
    report = import_tickets(runtime, _write(tmp_path / "more.csv", more), source=SOURCE, mapping=mapping)
    assert (report.written, report.loaded_before) == (1, 4)
    assert _counts(runtime)["Ticket"] == 5
    # Another old system's numbers are its own.
    assert import_tickets(runtime, EXAMPLE, source="other", mapping=mapping).written == 4
    _totals_hold(runtime)


def test_bad_rows_are_reported_by_row_and_column(runtime, district, tmp_path):
    with runtime.db.session() as s:  # two leaves of the same name: the name alone is ambiguous
        create_category(s, runtime, code="0202", name="物业管理", parent="02")
    good = _rows(EXAMPLE)[0]

    def row(**changes: str) -> list[str]:
        out = list(good)
        for column, value in changes.items():
            out[HEADER.index(column)] = value
        return out

    rows = [
        row(工单编号="B1", 受理时间="2026-13-01 09:00"),
        row(工单编号="B2", 诉求类型="闲聊"),
        row(工单编号="B3", 问题分类="物业管理"),
        row(工单编号="B4", 状态="已办结", 办结时间=""),
        row(工单编号="B5", 办结时间="2026-02-01 10:00"),
        row(工单编号="B6", 受理时间="2027-01-01 10:00", 派单时间="", 答复时间="", 办结时间="", 状态="待派单"),
        row(工单编号="B7", 标题="长" * 201),
        row(工单编号="B8", 满意度="还行"),
        row(工单编号="", 诉求内容=""),
        row(工单编号="B9"),
        row(工单编号="B9"),
    ]
    report = import_tickets(runtime, _write(tmp_path / "bad.csv", rows), source=SOURCE)
    assert [(r.row, r.column) for r in report.rejected] == [
        (2, "received_at"),
        (3, "type"),
        (4, "category"),
        (5, "closed_at"),
        (6, "closed_at"),
        (7, "received_at"),
        (8, "title"),
        (9, "rating"),
        (10, "number"),
        (10, "content"),
        (12, "number"),
    ]
    reasons = {(r.row, r.column): r.reason for r in report.rejected}
    assert reasons[(4, "category")] == "'物业管理' names 2 categories (0101, 0202): map it (--map)"
    assert reasons[(6, "closed_at")] == "before the time received"
    assert reasons[(7, "received_at")] == "in the future"
    assert reasons[(12, "number")] == "'B9' is on row 11 already"
    assert report.rejected_rows == 10 and report.new == 1
    assert _counts(runtime)["Ticket"] == 0  # nothing half-loaded
    partial = import_tickets(runtime, tmp_path / "bad.csv", source=SOURCE, partial=True)
    assert partial.written == 1 and _counts(runtime)["Ticket"] == 1


def test_xlsx_with_times_and_numbers_as_cells(runtime, district, tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["number", "received_at", "签收时间", "closed_at", "type", "category", "caller_phone", "content",
                  "department", "state", "reply", "rating", "old remark"])  # fmt: skip
    sheet.append([20250001, datetime(2026, 3, 2, 9, 15), datetime(2026, 3, 2, 10, 0), datetime(2026, 3, 4, 16, 0),
                  "complaint", "0102", 13800138000, "违章搭建", "区城管局", "archived", "已拆除", 5, "x"])  # fmt: skip
    sheet.append([20250002, datetime(2026, 3, 3, 8, 0), None, None, "help", "供水", None, "停水", None, "待派单",
                  None, None, None])  # fmt: skip
    sheet.append([None] * 13)
    book.save(tmp_path / "old.xlsx")
    report = import_tickets(runtime, tmp_path / "old.xlsx", source=SOURCE)
    assert (report.written, report.rejected, report.ignored_columns) == (2, [], ["old remark"])
    with runtime.db.read_session() as s:
        closed = s.execute(select(Ticket).where(Ticket.external_id == "20250001")).scalar_one()
        assert closed.caller_phone == "13800138000" and closed.state == "archived"
        assert closed.closed_at == datetime.fromisoformat("2026-03-04T08:00:00+00:00")
        assert s.execute(select(Callback.rating).where(Callback.ticket_id == closed.id)).scalar() == 5
        part = s.execute(select(Assignment).where(Assignment.ticket_id == closed.id)).scalar_one()
        assert part.signed_on_time is True and part.signed_at == closed.signed_at
    _totals_hold(runtime)


def test_dry_run_writes_nothing(runtime, district):
    report = import_tickets(runtime, EXAMPLE, source=SOURCE, mapping=read_mapping(MAPPING), dry_run=True)
    assert (report.new, report.written) == (4, 0)
    assert _counts(runtime)["Ticket"] == 0


def test_the_file_and_the_source_are_checked_before_any_row(runtime, district, tmp_path):
    with pytest.raises(Invalid, match="lacks the columns.*state"):
        import_tickets(runtime, _write(tmp_path / "h.csv", [], HEADER[:15]), source=SOURCE)
    with pytest.raises(Invalid, match="source"):
        import_tickets(runtime, EXAMPLE, source="hotline")
    with runtime.db.session() as s:  # an integration account sees its source's tickets
        s.add(User(username="city", role="integration", source="city12345", password_hash="-", created_at=NOW))
    with pytest.raises(Conflict, match="city"):
        import_tickets(runtime, EXAMPLE, source="city12345")
    (tmp_path / "gbk.csv").write_bytes(EXAMPLE.read_text(encoding="utf-8-sig").encode("gb18030"))
    with pytest.raises(Invalid, match="--encoding"):
        import_tickets(runtime, tmp_path / "gbk.csv", source=SOURCE)
    assert import_tickets(runtime, tmp_path / "gbk.csv", source=SOURCE, encoding="gb18030", dry_run=True).rows == 4
    csv_map = tmp_path / "map.csv"
    csv_map.write_text("kind,old,ours\ncategories,物业纠纷,0101\ndepartments,住建局,housing\n", encoding="utf-8")
    assert read_mapping(csv_map) == read_mapping(MAPPING)
    unquoted = tmp_path / "unquoted.yaml"
    unquoted.write_text("categories:\n  物业纠纷: 0101\n", encoding="utf-8")
    with pytest.raises(Invalid, match="quotes"):
        read_mapping(unquoted)
    bad_map = tmp_path / "map.yaml"
    bad_map.write_text("departments:\n  住建局: nowhere\n", encoding="utf-8")
    with pytest.raises(Invalid, match="nowhere"):
        import_tickets(runtime, EXAMPLE, source=SOURCE, mapping=read_mapping(bad_map))


def test_the_command(tmp_path):
    """`hotline import tickets` as a district runs it: report, exit status, a second run."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    db = Database(url)
    upgrade(db)
    build_district(Runtime(db, Settings(database_url=url, embedded_scheduler=False)))
    db.dispose()
    env = {**os.environ, "HOTLINE_DATABASE_URL": url}  # HOTLINE_SECRET_KEY passed on

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hotline", *args], env=env, capture_output=True, text=True,
                              timeout=120)  # fmt: skip

    p = run("import", "tickets", str(EXAMPLE), "--report", str(tmp_path / "report.csv"))
    assert p.returncode == 1, p.stderr
    assert "nothing loaded" in p.stdout
    assert _rows(tmp_path / "report.csv")[0][:2] == ["4", "category"]
    p = run("import", "tickets", str(EXAMPLE), "--map", str(MAPPING))
    assert p.returncode == 0, p.stderr
    assert "4 rows: 0 rejected, 0 loaded before, loaded 4 tickets" in p.stdout
    p = run("import", "tickets", str(EXAMPLE), "--map", str(MAPPING), "--dry-run")
    assert p.returncode == 0 and "4 loaded before, 0 to load (a dry run" in p.stdout
    p = run("import", "tickets", str(EXAMPLE), "--map", str(MAPPING))
    assert p.returncode == 0 and "4 loaded before, loaded 0 tickets" in p.stdout
    assert run("audit", "verify").returncode == 0
    p = run("stats", "check", "--from", "2026-03-01", "--to", "2026-03-31")
    assert p.returncode == 0, p.stdout + p.stderr


def test_a_file_too_large_to_hold_is_read_twice(runtime, district, monkeypatch):
    """Past KEEP rows the check holds none, and the writing reads the file again."""
    monkeypatch.setattr(ticket_import, "KEEP", 2)
    report = import_tickets(runtime, EXAMPLE, source=SOURCE, mapping=read_mapping(MAPPING))
    assert (report.written, report.rejected) == (4, [])
    with runtime.db.read_session() as s:
        assert sorted(s.execute(select(Ticket.external_id)).scalars()) == [
            "OLD-0001",
            "OLD-0002",
            "OLD-0003",
            "OLD-0004",
        ]
    _totals_hold(runtime)


def _many(path: Path, n: int) -> Path:
    """N rows like the example's four (closed with a department and rated, answered by the
    centre, open, cancelled), a day apart by four, with numbers of their own; then a number
    given twice and a row with no type (both rejected)."""
    example = _rows(EXAMPLE)
    rows = []
    for i in range(n):
        row = list(example[i % 4])
        row[0] = f"OLD-{i:04d}"
        for column in range(1, 5):  # the times, moved on by a day every four rows
            if row[column]:
                moment = datetime.fromisoformat(row[column]) + timedelta(days=i // 4)
                row[column] = moment.strftime("%Y-%m-%d %H:%M")
        rows.append(row)
    rows.append([*rows[5][:1], *example[0][1:]])
    rows.append([f"OLD-{n:04d}", *example[0][1:5], "", *example[0][6:]])
    return _write(path, rows)


def _another(runtime, name: str, tmp_path: Path) -> Runtime:
    """Another empty database of the same kind as runtime's, with the same district and clock."""
    if runtime.db.is_sqlite:
        url = f"sqlite:///{tmp_path / name}.db"
    else:
        base = make_url(runtime.db.url)
        url = base.set(database=f"{base.database}_{name}").render_as_string(hide_password=False)
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{make_url(url).database}"'))
        admin.dispose()
    db = Database(url)
    upgrade(db)
    rt = Runtime(db, Settings(database_url=url, embedded_scheduler=False))
    rt.clock = runtime.clock
    build_district(rt)
    return rt


def _dropped(rt: Runtime) -> None:
    rt.db.dispose()
    if not rt.db.is_sqlite:
        url = make_url(rt.db.url)
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        admin.dispose()


def _loaded_rows(rt: Runtime) -> dict[str, list]:
    """Every row an import writes, the personal data opened."""
    with rt.db.read_session() as s:
        tables = {
            "tickets": select(
                Ticket.id, Ticket.number, Ticket.external_id, Ticket.state, Ticket.category_id,
                Ticket.main_department_id, Ticket.caller_name, Ticket.caller_phone, Ticket.created_at,
                Ticket.closed_at, Ticket.sign_by, Ticket.handle_by, Ticket.source_details,
            ).order_by(Ticket.id),
            "events": select(
                TicketEvent.id, TicketEvent.ticket_id, TicketEvent.event, TicketEvent.to_state, TicketEvent.at,
                TicketEvent.details, TicketEvent.chain,
            ).order_by(TicketEvent.id),
            "assignments": select(
                Assignment.id, Assignment.ticket_id, Assignment.department_id, Assignment.sign_by,
                Assignment.handle_by, Assignment.replied_on_time,
            ).order_by(Assignment.id),
            "callbacks": select(Callback.id, Callback.ticket_id, Callback.rating, Callback.at).order_by(Callback.id),
            "counters": select(TicketCounter.day, TicketCounter.value).order_by(TicketCounter.day),
        }  # fmt: skip
        return {name: [tuple(row) for row in s.execute(query)] for name, query in tables.items()} | {
            "totals": _totals(rt)
        }


def test_the_same_file_gives_the_same_tickets_in_one_process_or_several(runtime, district, tmp_path, monkeypatch):
    """Checked and built by this process, by two workers, by two workers a segment of the file
    at a time (read twice): the same rows, to their ids, numbers and hash chains; the rows
    loaded before left out, the rejected ones reported alike."""
    monkeypatch.setattr(ticket_import, "BATCH", 6)  # batches in each worker
    mapping = read_mapping(MAPPING)
    first = _write(tmp_path / "first.csv", _rows(_many(tmp_path / "all.csv", 40))[:9])
    every = tmp_path / "all.csv"

    def loaded(rt: Runtime, workers: int) -> tuple:
        import_tickets(rt, first, source=SOURCE, mapping=mapping, workers=0)  # loaded before
        report = import_tickets(rt, every, source=SOURCE, mapping=mapping, partial=True, workers=workers)
        with rt.db.read_session() as session:
            assert audit.verify(session)[1] is None
        seen = (report.rows, report.new, report.loaded_before, report.written, report.rejected)
        return seen, _loaded_rows(rt)

    alone = loaded(runtime, 0)
    (rows, new, before, written, rejected), tables = alone
    assert (rows, new, before, written) == (42, 31, 9, 31)
    assert [(r.row, r.column) for r in rejected] == [(42, "number"), (43, "type")]
    assert len(tables["tickets"]) == 40 and len(tables["assignments"]) == 10 and len(tables["callbacks"]) == 10
    for name, workers, keep in (("two", 2, None), ("segments", 2, 15)):
        if keep is not None:
            monkeypatch.setattr(ticket_import, "KEEP", keep)
        rt = _another(runtime, name, tmp_path)
        try:
            assert loaded(rt, workers) == alone, name
        finally:
            _dropped(rt)


def test_a_run_broken_off_in_a_writing_worker_leaves_whole_batches_and_is_finished_again(
    runtime, district, tmp_path, monkeypatch
):
    """On PostgreSQL the workers write their own batches, committed in any order: one that fails
    (here the server refuses a ticket) stops the import with the batches written whole, and
    running it again loads the rest, each ticket once, numbered after the counters."""
    if runtime.db.is_sqlite:
        pytest.skip("SQLite's workers hand their batches to the one writer")
    monkeypatch.setattr(ticket_import, "BATCH", 6)
    mapping = read_mapping(MAPPING)
    every = _many(tmp_path / "all.csv", 40)
    with runtime.db.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION refuse_old_0020() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.external_id = 'OLD-0020' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$"
            )
        )
        conn.execute(
            text("CREATE TRIGGER refuse BEFORE INSERT ON tickets FOR EACH ROW EXECUTE FUNCTION refuse_old_0020()")
        )
    try:
        with pytest.raises(RuntimeError, match="a worker failed"):
            import_tickets(runtime, every, source=SOURCE, mapping=mapping, partial=True, workers=2)
    finally:
        with runtime.db.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER refuse ON tickets"))
            conn.execute(text("DROP FUNCTION refuse_old_0020()"))
    with runtime.db.read_session() as s:
        loaded = set(s.execute(select(Ticket.external_id)).scalars())
        assert s.execute(select(func.count()).select_from(TicketEvent)).scalar() == len(loaded)
    batches = {i // 6 for i in range(40) if f"OLD-{i:04d}" in loaded}  # the file's rows, six a batch
    assert loaded == {f"OLD-{i:04d}" for i in range(40) if i // 6 in batches}  # whole batches, or none
    assert 20 // 6 not in batches and batches
    report = import_tickets(runtime, every, source=SOURCE, mapping=mapping, partial=True, workers=2)
    assert (report.loaded_before, report.written) == (len(loaded), 40 - len(loaded))
    with runtime.db.read_session() as s:
        tickets = s.execute(select(Ticket.external_id, Ticket.number)).all()
        counters = dict(s.execute(select(TicketCounter.day, TicketCounter.value)).all())
        assert audit.verify(s)[1] is None
    assert sorted(t[0] for t in tickets) == [f"OLD-{i:04d}" for i in range(40)]
    numbers = [t[1] for t in tickets]
    assert len(set(numbers)) == 40
    for day, value in counters.items():  # each day's counter is its greatest number
        assert value == max(int(n[8:]) for n in numbers if n[:8] == day)
    _totals_hold(runtime)
