"""`hotline import tickets FILE`: a district's history brought over from its previous system.

The file (CSV, or the first sheet of an .xlsx workbook) has a header row naming its columns
(COLUMNS: English names or the Chinese ones of most exports); docs/commands.md describes them.
Each row is one old ticket. Its category and department are found by our code, by a mapping
file (`--map`), or by name (a category by the name of a leaf, or its path); its type, state
and rating by their labels or codes.

Two passes over the rows. The first checks every row and reports those it cannot take (row,
column, reason); unless `partial`, one bad row means nothing is written. The second writes the
good rows that are not loaded yet, in bulk with the demo's writer (hotline.demo.writer): one
transaction per batch, a ticket and all its rows always in the same batch. A large file is
checked and built in forked worker processes, as the demo is played (_Crew): each checks its
batches and keeps the records; this process tallies what they found, sets each batch's ids and
numbers (so the rows do not depend on the number of workers), and writes what they build (on
PostgreSQL each worker writes the batches it builds, over a connection of its own). A
file of more than KEEP rows is read twice: checked whole first, then checked again and written
KEEP rows at a time. The old number and
the source system (tickets.external_id and tickets.source) are the key: a row whose ticket is
there already is left as it is, so a second run changes nothing, and a run broken off is
finished by running it again.

What an imported ticket becomes: a closed one (办结, 归档) is archived, with the department that
handled it as its main assignment (dispatched, replied, on time or not by our limits), the reply
and the rating as a callback, so that it counts in the indicators as it did; a cancelled one is
cancelled; an open one, whatever its old state, is registered (已受理) for the centre to dispatch
again, the old department, state and reply kept beside it for the agent. Every ticket's history
starts with an `import` row naming the source and the old number, in its hash chain.
"""

import csv
import json
import multiprocessing
import re
import time
import traceback
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, TextIO

import yaml
from sqlalchemy import func, select

from hotline.crypto import CALLER_HASHES
from hotline.db import collector_paused
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.deadlines.sla import dispatch_deadlines, on_time
from hotline.demo.life import AssignmentRow, CallbackRow
from hotline.demo.writer import COLUMNS as WRITER_COLUMNS
from hotline.demo.writer import Batch, Pipe, Writer, worker_count
from hotline.directory import category_path, places
from hotline.errors import Conflict, Invalid
from hotline.indicators import totals
from hotline.labels import CHANNEL_LABELS, RATING_LABELS, TYPE_LABELS
from hotline.models import (
    CHANNELS,
    INTEGRATION,
    OWN_SOURCE,
    SOURCE_PATTERN,
    TICKET_TYPES,
    Assignment,
    Callback,
    Category,
    Department,
    Ticket,
    User,
)
from hotline.tickets import unknown_place
from hotline.workflow.engine import Actor

# The columns of the file: our name, and the header names taken for it (case and spaces
# ignored). Required: number, received_at, type, content, state.
COLUMNS: dict[str, tuple[str, ...]] = {
    "number": ("工单编号", "编号", "原工单编号"),
    "received_at": ("受理时间", "来电时间", "登记时间"),
    "dispatched_at": ("派单时间",),
    "signed_at": ("签收时间",),
    "replied_at": ("答复时间", "回复时间"),
    "closed_at": ("办结时间", "归档时间", "结案时间"),
    "type": ("诉求类型", "类型", "工单类型"),
    "category": ("问题分类", "分类", "诉求分类"),
    "channel": ("渠道", "来源渠道"),
    "caller_name": ("来电人", "姓名", "联系人"),
    "caller_phone": ("来电号码", "联系电话", "电话"),
    "street": ("街道", "所属街道"),
    "community": ("社区", "所属社区"),
    "address": ("地址", "详细地址", "事发地址"),
    "title": ("标题", "诉求标题"),
    "content": ("诉求内容", "内容", "问题描述"),
    "department": ("承办单位", "承办部门", "责任单位"),
    "state": ("状态", "工单状态", "办理状态"),
    "reply": ("答复内容", "办理结果", "回复内容"),
    "rating": ("满意度", "评价", "回访结果"),
}
REQUIRED = ("number", "received_at", "type", "content", "state")
# Longest values the tables take (a longer one is a bad row, not a failed batch).
LENGTHS = {"number": 64, "title": 200, "street": 50, "community": 50, "address": 200}

# The old system's states, by our state or its usual labels: closed, cancelled, or open.
ARCHIVED, CANCELLED, OPEN = "archived", "cancelled", "open"
STATES = {
    ARCHIVED: ("archived", "closed", "已归档", "归档", "已办结", "办结", "已完成", "完成", "已结案", "结案"),
    CANCELLED: ("cancelled", "已撤销", "撤销", "作废", "已作废", "无效"),
    OPEN: (
        "open", "registered", "dispatched", "returned", "in_progress", "suspended", "replied", "pending_callback",
        "已受理", "待派单", "待签收", "退单待审", "办理中", "已挂起", "待审核", "待回访", "未办结", "处理中",
    ),
}  # fmt: skip
RATING_NAMES = {label: level for level, label in RATING_LABELS.items()}

# Who the history says imported the ticket.
IMPORTER = Actor(None, "import", "system")
# Tickets a batch: built together, written in one transaction.
BATCH = 2_500
# The rows held from the check to the writing; a larger file is read twice.
KEEP = 200_000
_LOOKUP_CHUNK = 1_000
_BLANK = re.compile(r"\s+")

# The ticket columns the import fills: the demo writer's, and where the ticket came from.
_TICKETS = (*WRITER_COLUMNS["tickets"][: -len(CALLER_HASHES)], "source", "source_details", *CALLER_HASHES)
_DEFAULTS = {
    "urgency": "normal", "confidential": False, "anonymous": False, "reply_wanted": True, "version": 1,
    "dispatch_count": 0, "designated": False, "rehandle_count": 0, "deadlines_provisional": False,
    "extension_days": 0, "suspended_seconds": 0.0, "escalation_step": 0,
}  # fmt: skip
_CHILDREN = tuple(attribute for _, attribute in Batch.CHILDREN)


class ImportedTicket:
    """An imported ticket's row and its rows, as the writer takes them (by attribute): what the
    import sets, over the defaults of the rest, class attributes (a dataclass setting all 80
    took three times as long). The children the import never makes are empty."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)
        self.assignments, self.callbacks, self.events = [], [], []


for _column in _TICKETS[: -len(CALLER_HASHES)]:
    setattr(ImportedTicket, _column, _DEFAULTS.get(_column))
for _attribute in (*_CHILDREN, "notices"):
    setattr(ImportedTicket, _attribute, ())
ImportedTicket.escalations = MappingProxyType({})


@dataclass(frozen=True)
class Rejection:
    """A row the import cannot take: its row in the file (the header is row 1), the column, why."""

    row: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.column}: {self.reason}"


@dataclass
class Report:
    """What an import did (or, a dry run, would do): rows read, new, loaded before, written."""

    rows: int = 0
    new: int = 0
    loaded_before: int = 0
    written: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rejected_rows(self) -> int:
        return len({r.row for r in self.rejected})


@lru_cache(maxsize=65536)
def _key(text: str) -> str:
    return _BLANK.sub("", str(text)).lower()


def _text(value: Any) -> str:
    """A cell as text, blank as "" (a whole number read from Excel without its ".0")."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


# --- the mapping file ---------------------------------------------------------------------------

MAP_KINDS = ("categories", "departments", "states", "types")


def read_mapping(path: str | Path) -> dict[str, dict[str, str]]:
    """Old names to ours, by kind: YAML (`categories: {旧名称: 0101}`…) or CSV (kind,old,ours)."""
    path = Path(path)
    mapping: dict[str, dict[str, str]] = {kind: {} for kind in MAP_KINDS}
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as file:
            for line, row in enumerate(csv.reader(file), start=1):
                if not row or not "".join(row).strip() or (line == 1 and _key(row[0]) == "kind"):
                    continue
                if len(row) != 3 or _key(row[0]) not in mapping:
                    raise Invalid(f"{path.name} line {line}: expected kind,old,ours with kind one of {MAP_KINDS}")
                mapping[_key(row[0])][_key(row[1])] = row[2].strip()
        return mapping
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict) or set(raw) - set(MAP_KINDS):
        raise Invalid(f"{path.name}: expected the keys {', '.join(MAP_KINDS)}, each old name: ours")
    for kind, pairs in raw.items():
        if not isinstance(pairs, dict):
            raise Invalid(f"{path.name}: {kind}: expected old name: ours")
        for old, ours in pairs.items():
            if not isinstance(ours, str):  # YAML reads 0101 as a number
                raise Invalid(f'{path.name}: {kind}: {old}: write our code in quotes ("0101"), not {ours!r}')
            mapping[kind][_key(str(old))] = ours.strip()
    return mapping


# --- reading the file ---------------------------------------------------------------------------


def _read(path: Path, encoding: str) -> Iterator[tuple]:
    """The file's rows as tuples, the header first."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True, data_only=True)
        try:
            yield from book.worksheets[0].iter_rows(values_only=True)
        finally:
            book.close()
        return
    with path.open(encoding=encoding, newline="") as file:
        read = 0
        try:
            for row in csv.reader(file):
                read += 1
                yield tuple(row)
        except UnicodeDecodeError:
            raise Invalid(
                f"{path.name} is not {encoding} after row {read}: give its encoding (--encoding gb18030)", field="file"
            ) from None


def _header(cells: tuple) -> tuple[list[tuple[str, int]], list[str]]:
    """Where each of our columns is, and the file's columns not taken."""
    names = {_key(name): column for column, aliases in COLUMNS.items() for name in (column, *aliases)}
    where: dict[str, int] = {}
    ignored = []
    for i, cell in enumerate(cells):
        column = names.get(_key(_text(cell)))
        if column is None or column in where:
            if _text(cell):
                ignored.append(_text(cell))
            continue
        where[column] = i
    missing = [c for c in REQUIRED if c not in where]
    if missing:
        raise Invalid(
            "the header row lacks the columns " + ", ".join(f"{c} ({COLUMNS[c][0]})" for c in missing), field="header"
        )
    return list(where.items()), ignored


def _time(value: Any) -> datetime:
    """A time as the old system wrote it (text, or a workbook's time; Asia/Shanghai unless it
    says otherwise), in UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        moment = datetime.fromisoformat(value.replace("/", "-") if "/" in value else value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_TZ)
    return moment.astimezone(UTC)


# --- what the district has ------------------------------------------------------------------------


@dataclass
class Known:
    """The district's categories, departments, places and workflows, and the mapping file,
    read once: each row is checked against them in Python."""

    categories: dict[str, Any]  # code -> category
    by_name: dict[str, list[Any]]  # a leaf's name, or a category's path (a/b), -> categories
    departments: dict[str, Any]  # code -> department
    department_names: dict[str, list[Any]]
    places: dict[str, list[str]]
    mapping: dict[str, dict[str, str]]
    # A category's id -> the workflow it or its nearest ancestor names (None: by the type).
    category_workflows: dict[int, str | None] = field(default_factory=dict)

    @classmethod
    def read(cls, session, mapping: dict[str, dict[str, str]]) -> "Known":
        cats = {c.id: c for c in session.execute(select(Category)).scalars()}
        parents = {c.parent_id for c in cats.values()}
        by_name: dict[str, list[Any]] = {}
        for c in cats.values():
            path = category_path(c.id, cats.get)
            names = {"/".join(p.name for p in path)}
            if c.id not in parents:
                names.add(c.name)
            for name in names:
                by_name.setdefault(_key(name), []).append(c)
        depts = list(session.execute(select(Department)).scalars())
        department_names: dict[str, list[Any]] = {}
        for d in depts:
            department_names.setdefault(_key(d.name), []).append(d)
        known = cls(
            categories={c.code: c for c in cats.values()},
            by_name=by_name,
            departments={d.code: d for d in depts},
            department_names=department_names,
            places=places(session),
            mapping=mapping,
        )
        for kind, lookup in (("category", known.categories), ("department", known.departments)):
            for old, ours in mapping[f"{kind[:-1]}ies" if kind == "category" else f"{kind}s"].items():
                if ours not in lookup:
                    raise Invalid(f"the mapping file maps the {kind} {old!r} to {ours!r}: no {kind} has that code")
        for kind, allowed in (("states", (ARCHIVED, CANCELLED, OPEN)), ("types", TICKET_TYPES)):
            for old, ours in mapping[kind].items():
                if ours not in allowed:
                    raise Invalid(f"the mapping file maps the {kind[:-1]} {old!r} to {ours!r}: one of {allowed}")
        known.category_workflows = {
            c.id: next((p.workflow for p in reversed(category_path(c.id, cats.get)) if p.workflow), None)
            for c in cats.values()
        }
        return known

    def category(self, text: str) -> tuple[Any, str | None]:
        if text in self.categories:
            return self.categories[text], None
        mapped = self.mapping["categories"].get(_key(text))
        if mapped is not None:
            return self.categories[mapped], None
        found = self.by_name.get(_key(text), [])
        if len(found) == 1:
            return found[0], None
        if found:
            codes = ", ".join(sorted(c.code for c in found))
            return None, f"{text!r} names {len(found)} categories ({codes}): map it (--map)"
        return None, f"no category has the code or name {text!r}: map it (--map)"

    def department(self, text: str) -> tuple[Any, str | None]:
        if text in self.departments:
            return self.departments[text], None
        mapped = self.mapping["departments"].get(_key(text))
        if mapped is not None:
            return self.departments[mapped], None
        found = self.department_names.get(_key(text), [])
        if len(found) == 1:
            return found[0], None
        if found:
            return None, f"{text!r} names {len(found)} departments: map it (--map)"
        return None, f"no department has the code or name {text!r}: map it (--map)"


_TYPES = {**{t: t for t in TICKET_TYPES}, **{label: t for t, label in TYPE_LABELS.items()}}
_CHANNELS = {**{c: c for c in CHANNELS}, **{label: c for c, label in CHANNEL_LABELS.items()}}
_STATES = {_key(name): state for state, names in STATES.items() for name in names}


@dataclass(slots=True)
class Record:
    """A row as checked: our values."""

    row: int
    number: str
    received_at: datetime
    dispatched_at: datetime | None
    signed_at: datetime | None
    replied_at: datetime | None
    closed_at: datetime | None
    type: str
    category: Any
    channel: str
    caller_name: str | None
    caller_phone: str | None
    street: str | None
    community: str | None
    address: str | None
    title: str
    content: str
    department: Any
    state: str
    reply: str | None
    rating: int | None
    old: dict[str, str]  # what the old system said that the ticket keeps as it was


def _values(where: list[tuple[str, int]], cells: tuple) -> tuple[dict[str, str], dict[str, Any]]:
    """A row's cells by our column names, as text (blank: ""), and the cells that were not
    text (an .xlsx workbook's times and numbers)."""
    values = dict.fromkeys(COLUMNS, "")
    typed: dict[str, Any] = {}
    n = len(cells)
    for column, i in where:
        if i < n:
            cell = cells[i]
            if cell.__class__ is str:
                values[column] = cell.strip()
            elif cell is not None:
                values[column], typed[column] = _text(cell), cell
    return values, typed


def check(
    known: Known, where: list[tuple[str, int]], row: int, cells: tuple, now: datetime
) -> Record | list[Rejection]:
    """One row of the file: our values, or every reason it cannot be taken."""
    values, typed = _values(where, cells)
    errors: list[Rejection] = []

    def bad(column: str, reason: str) -> None:
        errors.append(Rejection(row, column, reason))

    for column in REQUIRED:
        if not values[column]:
            bad(column, "empty")
    for column, limit in LENGTHS.items():
        if len(values[column]) > limit:
            bad(column, f"longer than {limit} characters")
    times: dict[str, datetime | None] = {}
    for column in ("received_at", "dispatched_at", "signed_at", "replied_at", "closed_at"):
        times[column] = None
        if values[column]:
            try:
                times[column] = _time(typed.get(column, values[column]))
            except (ValueError, TypeError):
                bad(column, f"{values[column]!r} is not a time (e.g. 2025-03-01 09:30)")
                continue
            if times[column] > now:
                bad(column, "in the future")
            elif times["received_at"] is not None and times[column] < times["received_at"]:
                bad(column, "before the time received")
    ticket_type = _TYPES.get(values["type"]) or known.mapping["types"].get(_key(values["type"]))
    if values["type"] and ticket_type is None:
        bad("type", f"{values['type']!r} is not a type ({', '.join(TYPE_LABELS.values())}) nor mapped")
    state = _STATES.get(_key(values["state"])) or known.mapping["states"].get(_key(values["state"]))
    if values["state"] and state is None:
        bad("state", f"{values['state']!r} is not a state we know (已办结, 已撤销, 办理中…) nor mapped")
    if state in (ARCHIVED, CANCELLED) and times["closed_at"] is None and "closed_at" not in {e.column for e in errors}:
        bad("closed_at", "a closed ticket needs the time it was closed")
    category = department = None
    if values["category"]:
        category, why = known.category(values["category"])
        if why:
            bad("category", why)
    if values["department"]:
        department, why = known.department(values["department"])
        if why:
            bad("department", why)
    channel = "phone"
    if values["channel"]:
        channel = _CHANNELS.get(values["channel"])
        if channel is None:
            bad("channel", f"{values['channel']!r} is not a channel ({', '.join(CHANNEL_LABELS.values())})")
    rating = None
    if values["rating"]:
        rating = RATING_NAMES.get(values["rating"])
        if rating is None and values["rating"] in {"1", "2", "3", "4", "5"}:
            rating = int(values["rating"])
        if rating is None:
            bad("rating", f"{values['rating']!r} is not a rating ({', '.join(RATING_LABELS.values())} or 1 to 5)")
        elif state != ARCHIVED:
            rating = None  # an open or cancelled ticket's rating stays beside it (old)
    if errors:
        return errors
    content = values["content"]
    place = {"street": values["street"] or None, "community": values["community"] or None}
    old = {f"old_{k}": v for k, v in unknown_place(known.places, place).items()}
    old["old_state"] = values["state"]
    if state != ARCHIVED:
        for column in ("department", "reply", "rating"):
            if values[column]:
                old[f"old_{column}"] = values[column]
        department = None
    return Record(
        row=row, number=values["number"], received_at=times["received_at"], dispatched_at=times["dispatched_at"],
        signed_at=times["signed_at"], replied_at=times["replied_at"], closed_at=times["closed_at"],
        type=ticket_type, category=category,
        channel=channel, caller_name=values["caller_name"] or None, caller_phone=values["caller_phone"] or None,
        street=place.get("street"), community=place.get("community"), address=values["address"] or None,
        title=values["title"] or content.splitlines()[0][:40], content=content, department=department,
        state=state, reply=values["reply"] or None, rating=rating, old=old,
    )  # fmt: skip


# --- the import -----------------------------------------------------------------------------------


def _loaded(db, source: str, numbers: list[str]) -> set[str]:
    """The old numbers of `source` loaded already."""
    found: set[str] = set()
    with db.engine.connect() as connection:
        # A first import (no ticket of the source yet) asks nothing more.
        if connection.execute(select(Ticket.id).where(Ticket.source == source).limit(1)).first() is None:
            return found
        for i in range(0, len(numbers), _LOOKUP_CHUNK):
            chunk = numbers[i : i + _LOOKUP_CHUNK]
            found.update(
                connection.execute(
                    select(Ticket.external_id).where(Ticket.source == source, Ticket.external_id.in_(chunk))
                ).scalars()
            )
    return found


def check_source(session, source: str) -> None:
    """The source system's name: a source's pattern, neither ours nor an integration account's
    (such an account sees its source's tickets)."""
    if not re.fullmatch(SOURCE_PATTERN, source) or source == OWN_SOURCE:
        raise Invalid(
            f"{source!r} cannot name the source: lowercase letters, digits, '-' and '_', not {OWN_SOURCE!r}",
            field="source",
        )
    account = session.execute(select(User.username).where(User.role == INTEGRATION, User.source == source)).scalar()
    if account is not None:
        raise Conflict(f"the integration account {account!r} has the source {source!r}: name the old system otherwise")


class _File:
    """The file's rows, pass after pass, KEEP at a time (a larger file is read twice: once to
    check it, once to write it)."""

    def __init__(self, path: Path, encoding: str) -> None:
        self.path, self.encoding = path, encoding
        rows = _read(path, encoding)
        try:
            header = next(rows, None)
        finally:
            rows.close()
        if header is None:
            raise Invalid(f"{path.name} is empty", field="file")
        self.where, self.ignored = _header(header)

    def segments(self) -> Iterator[tuple[list[tuple[int, tuple]], bool]]:
        """The rows that are not blank (a blank line, a sheet's empty rows), with their row in
        the file, KEEP at a time; and whether the segment is the file's last."""
        rows = _read(self.path, self.encoding)
        next(rows)
        segment: list[tuple[int, tuple]] = []
        for number, cells in enumerate(rows, start=2):
            if not any(cells):
                continue
            if len(segment) == KEEP:
                yield segment, False
                segment = []
            segment.append((number, cells))
        yield segment, True


@lru_cache(maxsize=4096)
def _json(items: tuple[tuple[str, str], ...]) -> str:
    """What the old system said, as the JSON column stores it (the same few forms, mostly)."""
    return json.dumps(dict(items), ensure_ascii=False)


def _ticket(record: Record, known: Known, runtime, cal, ids: dict[str, int], ticket_id: int, number: str,
            source: str, now: datetime) -> Any:  # fmt: skip
    """The rows of one imported ticket, as the writer takes them."""
    category = record.category
    # The line by the channel (a merged line's own channel), as intake picks it.
    line = runtime.workflows.lines.pick(channel=record.channel)
    category_workflow = known.category_workflows.get(category.id) if category else None
    wf = runtime.workflows.choose(record.type, category_workflow, line.workflow)
    state = wf.initial if record.state == OPEN else record.state
    tk = ImportedTicket(
        id=ticket_id, number=number, external_id=record.number, source=source, workflow=wf.name,
        type=record.type, category_id=category.id if category else None, channel=record.channel,
        caller_name=record.caller_name, caller_phone=record.caller_phone, title=record.title,
        content=record.content, street=record.street, community=record.community, address=record.address,
        state=state, created_at=record.received_at, updated_at=now, line=line.number,
        source_details=_json(tuple(record.old.items())),
    )  # fmt: skip
    department = record.department
    if record.state == ARCHIVED:
        tk.closed_at = record.closed_at
        tk.close_reason = "imported"
        replied = record.replied_at or record.closed_at
        if department is None:
            tk.answer = record.reply
        else:
            dispatched = record.dispatched_at or record.received_at
            sign_by, handle_by = dispatch_deadlines(cal, wf, tk, dispatched)
            tk.main_department_id, tk.dispatch_count, tk.result = department.id, 1, record.reply
            signed = record.signed_at
            tk.dispatched_at, tk.signed_at, tk.replied_at = dispatched, signed, replied
            tk.sign_by, tk.handle_by, tk.handle_started_at = sign_by, handle_by, dispatched
            ids["assignments"] += 1
            tk.assignments.append(
                AssignmentRow(
                    id=ids["assignments"], ticket_id=ticket_id, department_id=department.id, role="main",
                    status="replied", dispatched_at=dispatched, replied_at=replied, result=record.reply,
                    signed_at=signed, signed_on_time=None if signed is None else on_time(sign_by, signed),
                    sign_by=sign_by, handle_by=handle_by, first_replied_at=replied,
                    replied_on_time=on_time(handle_by, replied), returned=False, rehandles=0,
                )
            )  # fmt: skip
        if record.rating is not None:
            ids["callbacks"] += 1
            tk.callbacks.append(
                CallbackRow(
                    id=ids["callbacks"], ticket_id=ticket_id, attempt=1, reached=True, rating=record.rating,
                    source="import", at=record.closed_at, department_id=department.id if department else None,
                )
            )  # fmt: skip
    elif record.state == CANCELLED:
        tk.closed_at, tk.close_reason = record.closed_at, "cancelled"
    details = {"source": source, "number": record.number, "row": record.row}
    tk.events.append(("import", IMPORTER, None, state, now, details))
    return tk


def import_tickets(runtime, path: str | Path, *, source: str, mapping: dict[str, dict[str, str]] | None = None,
                   dry_run: bool = False, partial: bool = False, encoding: str = "utf-8-sig",
                   out: TextIO | None = None, workers: int | None = None) -> Report:  # fmt: skip
    """Check the file, then (unless dry_run, or rows were rejected and not partial) load the
    tickets not loaded before; rebuild the running totals and the planner's statistics.

    The rows are checked and built by `workers` processes (by default one a core, at most 4,
    for a large file; 0: this process does it) and written by this one (on PostgreSQL, by the
    workers themselves); the tickets written are the same whatever their number."""
    if workers is not None and workers < 0:
        raise Invalid("the number of workers cannot be negative", field="workers")
    with collector_paused():
        return _import(runtime, Path(path), source, mapping, dry_run, partial, encoding, out, workers)


# Worker processes checking the rows and building the tickets (`worker_count`), from this
# many rows (fewer are done in the importing process).
_PARALLEL_FROM = 10_000
_PROGRESS_EVERY = 10_000
_TABLES = ("tickets", *(table for table, _ in Batch.CHILDREN))


def _workers(rows: int) -> int:
    return worker_count(rows, _PARALLEL_FROM)


def _import(runtime, path: Path, source: str, mapping: dict[str, dict[str, str]] | None, dry_run: bool,
            partial: bool, encoding: str, out: TextIO | None, workers: int | None) -> Report:  # fmt: skip
    started = time.monotonic()
    now = runtime.now()
    with runtime.db.read_session() as session:
        check_source(session, source)
        known = Known.read(session, mapping or {kind: {} for kind in MAP_KINDS})
        cal = runtime.calendar(session)
    file = _File(path, encoding)
    report = Report(ignored_columns=file.ignored)
    # The writer is set up first (it writes nothing before every row is checked), so that the
    # workers that check the rows can build them too.
    writer = None if dry_run else Writer(runtime, {"tickets": _TICKETS})
    makers = None if writer is None else {name: writer.row_maker(name) for name in _TABLES}
    sqlite = runtime.db.is_sqlite

    def crew_for(rows: list[tuple[int, tuple]]) -> _Crew:
        job = _Job(rows, file.where, known, now, runtime, cal, source, makers, sqlite)
        job.writer = writer if writer is not None and writer.parallel else None
        return _Crew(job, _workers(len(rows)) if workers is None else workers)

    crew: _Crew | None = None
    try:
        seen: dict[str, int] = {}  # each good row's number -> its row
        rejected: set[int] = set()
        checked: list[list] | None = None
        for segment, (rows, last) in enumerate(file.segments()):
            crew = crew_for(rows)
            checked = _tally(crew, report, seen, rejected)
            if not (last and segment == 0):  # a file read twice: its rows are checked again
                crew.close()
                crew = checked = None
        loaded = _loaded(runtime.db, source, list(seen))
        report.loaded_before = len(loaded)
        report.new = len(seen) - len(loaded)
        del seen
        if dry_run or (rejected and not partial) or (report.new == 0 and not report.loaded_before):
            report.seconds = time.monotonic() - started
            return report
        counted = None
        if report.new:
            report.written, counted = _write(writer, crew, checked, file, crew_for, rejected, loaded, out)
    finally:
        if crew is not None:
            crew.close()
        if writer is not None:
            writer.close()
    if report.loaded_before:
        # A run broken off may have written batches (whole ones), or all of them, without
        # counting them in the running totals: the days of every ticket of the source are
        # counted again, also by a run that finds every row loaded (running it again is the
        # cure for a run broken off, whenever it broke).
        counted = _widened(counted, _source_instants(runtime.db, source))
    # The planner's view of the new rows, before the totals' queries read them; also after a
    # run that wrote nothing: the one broken off before it may not have come here.
    runtime.db.refresh_statistics(after_bulk=True)
    if counted is not None:  # the tickets were written in bulk, past the gateway
        with runtime.db.session() as session:
            totals.rebuild(session, days=(totals.local_day(counted[0]), totals.local_day(counted[1])))
    report.seconds = time.monotonic() - started
    return report


def _source_instants(db, source: str) -> tuple[datetime, datetime] | None:
    """The first and last instants the tickets of `source` count at in the running totals
    (their assignments' dispatch, deadline and reply, their callbacks), as _Job.build has them."""
    ours = select(Ticket.id).where(Ticket.source == source)
    found = []
    with db.engine.connect() as connection:
        for column in (Assignment.dispatched_at, Assignment.handle_by, Assignment.first_replied_at):
            found += connection.execute(
                select(func.min(column), func.max(column)).where(Assignment.ticket_id.in_(ours))
            ).one()
        found += connection.execute(
            select(func.min(Callback.at), func.max(Callback.at)).where(Callback.ticket_id.in_(ours))
        ).one()
    found = [t for t in found if t is not None]
    return (min(found), max(found)) if found else None


def _widened(a: tuple | None, b: tuple | None) -> tuple | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), max(a[1], b[1])


def _tally(crew: "_Crew", report: Report, seen: dict[str, int], rejected: set[int]) -> list[list]:
    """Count a segment's rows as the crew checks them, batch by batch: the rejected ones in
    the report (and a number on an earlier row), the good ones' numbers in `seen`."""
    checked = []
    for items in crew.checked():
        checked.append(items)
        report.rows += len(items)
        for item in items:
            if item.__class__ is list:
                report.rejected += item
                rejected.add(item[0].row)
                continue
            row, number = item[0], item[1]
            first = seen.setdefault(number, row)
            if first != row:
                report.rejected.append(Rejection(row, "number", f"{number!r} is on row {first} already"))
                rejected.add(row)
    return checked


def _write(writer: Writer, crew: "_Crew | None", checked: list[list] | None, file: _File, crew_for,
           rejected: set[int], loaded: set[str], out: TextIO | None) -> tuple[int, tuple | None]:  # fmt: skip
    """Write the tickets of the good rows not loaded yet: how many, and the first and last
    instants they count at in the running totals (None: they count nowhere). `crew` holds the
    file's rows checked, or (None) the file is read again, KEEP rows at a time."""
    written = 0
    instants: list[datetime] = []
    # Into empty tables (a district's first import) the indexes and foreign keys are made after the rows.
    ids, counters = writer.start(defer=True)
    ticket_id = ids.pop("tickets")

    def write(crew: _Crew, checked: list[list]) -> None:
        nonlocal ticket_id, written
        plans, ticket_id = _plans(checked, rejected, loaded, ticket_id, ids, counters)
        # Without workers, the writer writes in a thread while this process builds the next batch.
        pipe = Pipe(writer) if crew.workers == 0 else None
        try:
            for built in crew.build(plans):
                if built.written is not None:  # a worker wrote it
                    writer.add(built.written)
                elif pipe is None:
                    writer.write(built)
                else:
                    pipe.put(built)
                before, written = written, written + built.tickets
                if built.instants is not None:
                    instants.extend(built.instants)
                    instants[:] = [min(instants), max(instants)]
                if out is not None and written // _PROGRESS_EVERY > before // _PROGRESS_EVERY:
                    out.write(f"  {written:,} tickets\n")
                    out.flush()
            if pipe is not None:
                pipe, closing = None, pipe
                closing.close()
        finally:
            if pipe is not None:
                with suppress(BaseException):  # the first error is the one raised
                    pipe.close()

    if crew is not None:
        write(crew, checked)
    else:
        for rows, _ in file.segments():
            again = crew_for(rows)
            try:
                checked = []
                for items in again.checked():
                    for item in items:
                        if item.__class__ is list and item[0].row not in rejected:
                            raise Conflict(f"{file.path.name} changed while it was imported (row {item[0].row})")
                    checked.append(items)
                write(again, checked)
            finally:
                again.close()
    return written, (instants[0], instants[1]) if instants else None


def _plans(checked: list[list], skip: set[int], loaded: set[str], ticket_id: int, ids: dict[str, int],
           counters: dict[str, int]) -> tuple[list[tuple], int]:  # fmt: skip
    """What each batch of checked rows writes, set before any is built, so that each is built
    on its own: the rows it takes (not rejected, not loaded before), the ticket id its tickets
    follow, the ids its other rows follow and those the next batch's follow, and the counters
    of its days before it (its tickets' numbers follow them). `ids` and `counters` are moved
    past the batches; and the last ticket id is returned."""
    plans = []
    for index, items in enumerate(checked):
        picks: list[int] = []
        starts: dict[str, int] = {}
        first, before = ticket_id, dict(ids)
        for i, item in enumerate(items):
            if item.__class__ is list:
                continue
            row, number, day, assignments, callbacks = item
            if row in skip or number in loaded:
                continue
            picks.append(i)
            count = counters.get(day, 0)
            starts.setdefault(day, count)
            counters[day] = count + 1
            ids["ticket_events"] += 1  # its import row
            ids["assignments"] += assignments
            ids["callbacks"] += callbacks
            ticket_id += 1
        if picks:
            plans.append((index, picks, first, before, dict(ids), starts))
    return plans, ticket_id


class _Built:
    """A batch of tickets built, as rows ready for the writer (hotline.demo.writer.Writer.write),
    and the first and last instants they count at in the running totals; or, once a worker
    wrote it itself, what it wrote (`rows` None, `written` the rows by table)."""

    __slots__ = ("rows", "counters", "tickets", "instants", "written")

    def __init__(self, batch: Batch, tickets: int, instants: tuple[datetime, datetime] | None) -> None:
        self.rows, self.counters, self.tickets, self.instants = batch.rows, batch.counters, tickets, instants
        self.written: dict[str, int] | None = None


class _Job:
    """The rows of a segment of the file, what they are checked against and how their tickets
    are built: what the workers share (forked after it is set up)."""

    def __init__(self, rows: list[tuple[int, tuple]], where: list[tuple[str, int]], known: Known, now: datetime,
                 runtime, cal, source: str, makers: dict[str, Any] | None, sqlite: bool) -> None:  # fmt: skip
        self.rows, self.where, self.known, self.now = rows, where, known, now
        self.runtime, self.cal, self.source, self.makers, self.sqlite = runtime, cal, source, makers, sqlite
        self.batches = -(-len(rows) // BATCH)
        # The writer the workers write their batches with (PostgreSQL); None: they hand them over.
        self.writer: Writer | None = None

    def check(self, index: int) -> tuple[list[Record | None], list]:
        """A batch of rows checked: the records (None for a row rejected), and what the
        importing process needs of each: the reasons it was rejected, or its row, the old
        number, the day its number is of, and its ticket's assignments and callbacks."""
        records: list[Record | None] = []
        items: list = []
        known, where, now = self.known, self.where, self.now
        for row, cells in self.rows[index * BATCH : (index + 1) * BATCH]:
            checked = check(known, where, row, cells, now)
            if checked.__class__ is list:
                records.append(None)
                items.append(checked)
                continue
            records.append(checked)
            day = checked.received_at.astimezone(LOCAL_TZ).strftime("%Y%m%d")
            # What _ticket makes of it: an assignment for a closed ticket's department (none
            # is kept for another), a callback for its rating (likewise).
            children = int(checked.department is not None), int(checked.rating is not None)
            items.append((row, checked.number, day, *children))
        return records, items

    def build(self, records: list[Record | None], items: list, plan: tuple) -> _Built:
        """A batch's tickets as its plan (_plans) has them."""
        _, picks, ticket_id, ids, following, counters = plan
        batch = Batch(self.sqlite, dict(ids), self.makers)
        batch.counters = counters = dict(counters)
        instants: list[datetime] = []
        for i in picks:
            record, day = records[i], items[i][2]
            counters[day] += 1
            ticket_id += 1
            tk = _ticket(record, self.known, self.runtime, self.cal, batch.ids, ticket_id, f"{day}{counters[day]:06d}",
                         self.source, self.now)  # fmt: skip
            batch.add(tk)
            for part in tk.assignments:
                instants.extend(t for t in (part.dispatched_at, part.handle_by, part.first_replied_at) if t)
            instants.extend(callback.at for callback in tk.callbacks)
        if batch.ids != following:
            raise RuntimeError("hotline.ticket_import: a batch's rows did not take the ids reserved for them")
        return _Built(batch, len(picks), (min(instants), max(instants)) if instants else None)


# The job the forked workers do (set while they fork).
_JOB: _Job | None = None


class _Failure:
    """A worker's error, as its traceback (an exception may not pickle)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _work(k: int, workers: int, conn) -> None:
    """A worker: checks the job's batches k, k + workers…, hands what it found of each to the
    importing process, keeps the records; then builds those batches it is told to, in order,
    and hands them over, or (the job's writer set: PostgreSQL) writes each itself, one
    transaction a batch over a connection of its own, and tells what it wrote. Batches of
    several workers commit in any order: their ids and numbers were set before, and a run
    broken off leaves whole batches, which the next run finds loaded."""
    job = _JOB
    writer = None
    try:
        kept = {}
        for index in range(k, job.batches, workers):
            records, items = kept[index] = job.check(index)
            conn.send(items)
        for plan in conn.recv():
            records, items = kept.pop(plan[0])
            built = job.build(records, items, plan)
            if job.writer is not None:
                if writer is None:
                    writer = job.writer
                    writer.reopen()
                writer.write_here(built)
            conn.send(built)
    except EOFError:  # the importing process writes nothing (or it failed): done
        pass
    except BaseException:
        with suppress(BaseException):
            conn.send(_Failure(traceback.format_exc()))
    finally:
        if writer is not None:
            with suppress(BaseException):
                writer.release()
        conn.close()


class _Crew:
    """Checks and builds a job's batches: in `workers` forked processes (batch i in worker i
    mod workers), or with none in this one; hands the results over in the batches' order."""

    def __init__(self, job: _Job, workers: int) -> None:
        global _JOB
        self.job, self.workers = job, min(workers, job.batches)
        self.kept: dict[int, tuple[list, list]] = {}  # without workers: the batches checked
        self.conns: list = []
        self.processes: list = []
        if not self.workers:
            return
        context = multiprocessing.get_context("fork")
        _JOB = job
        try:
            for k in range(self.workers):
                ours, theirs = context.Pipe()
                process = context.Process(target=_work, args=(k, self.workers, theirs), name="import", daemon=True)
                self.conns.append(ours)
                process.start()
                self.processes.append(process)
                theirs.close()
        except BaseException:
            self.close()
            raise
        finally:
            _JOB = None

    def _receive(self, index: int) -> Any:
        try:
            message = self.conns[index % self.workers].recv()
        except EOFError:
            raise RuntimeError("hotline.ticket_import: a worker ended before its rows were done") from None
        if isinstance(message, _Failure):
            raise RuntimeError(f"hotline.ticket_import: a worker failed:\n{message.text}")
        return message

    def checked(self) -> Iterator[list]:
        """Each batch's rows as checked (_Job.check's items)."""
        for index in range(self.job.batches):
            if self.workers:
                yield self._receive(index)
            else:
                self.kept[index] = records, items = self.job.check(index)
                yield items

    def build(self, plans: list[tuple]) -> Iterator[_Built]:
        """The batches planned, built (after checked)."""
        if not self.workers:
            for plan in plans:
                yield self.job.build(*self.kept.pop(plan[0]), plan)
            return
        theirs: list[list] = [[] for _ in self.conns]
        for plan in plans:
            theirs[plan[0] % self.workers].append(plan)
        for conn, mine in zip(self.conns, theirs, strict=True):
            conn.send(mine)
        for plan in plans:
            yield self._receive(plan[0])

    def close(self) -> None:
        """Let the workers go (a worker still busy is stopped) and wait for them."""
        self.kept.clear()
        for conn in self.conns:
            conn.close()
        for process in self.processes:
            process.join(1)
            if process.is_alive():
                process.terminate()
                process.join()
        self.conns, self.processes = [], []
