"""`hotline import tickets FILE`: a district's history brought over from its previous system.

The file (CSV, or the first sheet of an .xlsx workbook) has a header row naming its columns
(COLUMNS: English names or the Chinese ones of most exports); docs/commands.md describes them.
Each row is one old ticket. Its category and department are found by our code, by a mapping
file (`--map`), or by name (a category by the name of a leaf, or its path); its type, state
and rating by their labels or codes.

Two passes over the file. The first checks every row and reports those it cannot take (row,
column, reason); unless `partial`, one bad row means nothing is written. The second writes the
good rows that are not loaded yet, in bulk with the demo's writer (hotline.demo.writer): one
transaction per batch, a ticket and all its rows always in the same batch. The old number and
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
import os
import re
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field, make_dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, TextIO

import yaml
from sqlalchemy import select

from hotline.crypto import CALLER_HASHES
from hotline.db import collector_paused
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.deadlines.sla import dispatch_deadlines, on_time
from hotline.demo.life import AssignmentRow, CallbackRow
from hotline.demo.writer import COLUMNS as WRITER_COLUMNS
from hotline.demo.writer import Batch, Pipe, Writer
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
# The good rows held from the check to the writing; a larger file is read twice.
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
ImportedTicket = make_dataclass(
    "ImportedTicket",
    [(c, Any, _DEFAULTS.get(c)) for c in _TICKETS[: -len(CALLER_HASHES)]]
    + [(a, list, field(default_factory=list)) for a in (*_CHILDREN, "events", "notices")]
    + [("escalations", dict, field(default_factory=dict))],
    slots=True,
    kw_only=True,
)


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


class _Rows:
    """The file's checked rows, pass after pass."""

    def __init__(self, path: Path, encoding: str, known: Known, now: datetime) -> None:
        self.path, self.encoding, self.known, self.now = path, encoding, known, now
        rows = _read(path, encoding)
        try:
            header = next(rows, None)
        finally:
            rows.close()
        if header is None:
            raise Invalid(f"{path.name} is empty", field="file")
        self.where, self.ignored = _header(header)

    def __iter__(self) -> Iterator[Record | list[Rejection]]:
        rows = _read(self.path, self.encoding)
        next(rows)
        seen: dict[str, int] = {}
        for number, cells in enumerate(rows, start=2):
            if not any(cells):  # a blank line, a sheet's empty rows
                continue
            checked = check(self.known, self.where, number, cells, self.now)
            if isinstance(checked, Record):
                first = seen.setdefault(checked.number, number)
                if first != number:
                    checked = [Rejection(number, "number", f"{checked.number!r} is on row {first} already")]
            yield checked

    def again(self, rejected: set[int]) -> Iterator[Record]:
        """The good rows, read a second time (a file too large to hold)."""
        for checked in self:
            if isinstance(checked, Record):
                yield checked
            elif checked[0].row not in rejected:
                raise Conflict(f"{self.path.name} changed while it was imported (row {checked[0].row})")


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

    The rows are built by `workers` processes (by default one a core, at most 4, for a large
    file; 0: this process builds them) and written by this one; the tickets written are the
    same whatever their number."""
    if workers is not None and workers < 0:
        raise Invalid("the number of workers cannot be negative", field="workers")
    with collector_paused():
        return _import(runtime, Path(path), source, mapping, dry_run, partial, encoding, out, workers)


def _import(runtime, path: Path, source: str, mapping: dict[str, dict[str, str]] | None, dry_run: bool,
            partial: bool, encoding: str, out: TextIO | None, workers: int | None) -> Report:  # fmt: skip
    started = time.monotonic()
    now = runtime.now()
    with runtime.db.read_session() as session:
        check_source(session, source)
        known = Known.read(session, mapping or {kind: {} for kind in MAP_KINDS})
        cal = runtime.calendar(session)
    rows = _Rows(path, encoding, known, now)
    report = Report(ignored_columns=rows.ignored)
    rejected: set[int] = set()
    good: list[str] = []
    kept: list[Record] | None = []  # the good rows, unless there are too many to hold
    for checked in rows:
        report.rows += 1
        if isinstance(checked, Record):
            good.append(checked.number)
            if kept is not None:
                kept.append(checked)
                if len(kept) > KEEP:
                    kept = None
        else:
            report.rejected += checked
            rejected.add(checked[0].row)
    loaded = _loaded(runtime.db, source, good)
    report.loaded_before = len(loaded)
    report.new = len(good) - len(loaded)
    if dry_run or (rejected and not partial) or report.new == 0:
        report.seconds = time.monotonic() - started
        return report
    del good, loaded
    records = kept if kept is not None else rows.again(rejected)
    if workers is None:
        workers = _workers(report.new)
    report.written, counted = _write(runtime, records, known, cal, source, now, out, workers)
    if counted is not None:  # the tickets were written in bulk, past the gateway
        with runtime.db.session() as session:
            totals.rebuild(session, days=(totals.local_day(counted[0]), totals.local_day(counted[1])))
    runtime.db.refresh_statistics(after_bulk=True)
    report.seconds = time.monotonic() - started
    return report


# Worker processes building the rows: one a core, at most _MAX_WORKERS, from _PARALLEL_FROM
# new tickets (fewer are built in the importing process: forking would cost more than it saves).
_PARALLEL_FROM = 10_000
_MAX_WORKERS = 4
_PROGRESS_EVERY = 10_000


def _workers(n: int) -> int:
    return 0 if n < _PARALLEL_FROM else max(1, min(os.cpu_count() or 1, _MAX_WORKERS))


def _segments(good: Iterable[Record]) -> Iterator[list[Record]]:
    """The good rows, KEEP at a time (all of them when they are held already)."""
    if isinstance(good, list):
        yield good
        return
    segment: list[Record] = []
    for record in good:
        segment.append(record)
        if len(segment) == KEEP:
            yield segment
            segment = []
    if segment:
        yield segment


class _Built:
    """A batch of tickets built, as rows ready for the writer (hotline.demo.writer.Writer.write),
    and the first and last instants they count at in the running totals."""

    __slots__ = ("rows", "counters", "tickets", "instants")

    def __init__(self, batch: Batch, tickets: int, instants: tuple[datetime, datetime] | None) -> None:
        self.rows, self.counters, self.tickets, self.instants = batch.rows, batch.counters, tickets, instants


class _Builder:
    """Builds the rows of a stretch of new tickets, a batch at a time. What each batch starts
    from is set here first (its first ticket id and the first id of its other rows, the day
    counters of its tickets' numbers), so that a batch is built on its own, and the same rows
    come out whether one process builds the batches or several (forked after this is set up:
    they share it)."""

    def __init__(self, records: list[Record], known: Known, runtime, cal, source: str, now: datetime,
                 makers: dict[str, Any], sqlite: bool, ids: dict[str, int], ticket_id: int,
                 counters: dict[str, int]) -> None:  # fmt: skip
        self.records, self.known, self.runtime, self.cal = records, known, runtime, cal
        self.source, self.now, self.makers, self.sqlite = source, now, makers, sqlite
        self.numbers: list[str] = []
        # Per batch: its first record, the ticket id its tickets follow, the ids its other rows
        # follow, and the counters of its tickets' days after it.
        self.batches: list[tuple[int, int, dict[str, int], dict[str, int]]] = []
        ids = dict(ids)
        for start in range(0, len(records), BATCH):
            chunk = records[start : start + BATCH]
            days: dict[str, int] = {}
            self.batches.append((start, ticket_id, dict(ids), days))
            for record in chunk:
                day = record.received_at.astimezone(LOCAL_TZ).strftime("%Y%m%d")
                counters[day] = days[day] = counters.get(day, 0) + 1
                self.numbers.append(f"{day}{days[day]:06d}")
                assignments, callbacks = _children(record)
                ids["assignments"] += assignments
                ids["callbacks"] += callbacks
            ticket_id += len(chunk)
            ids["ticket_events"] += len(chunk)  # each ticket's import row
        self.end = ticket_id, dict(ids)

    def build(self, index: int) -> _Built:
        start, ticket_id, ids, counters = self.batches[index]
        batch = Batch(self.sqlite, dict(ids), self.makers)
        batch.counters = counters
        records = self.records[start : start + BATCH]
        instants: list[datetime] = []
        for record, number in zip(records, self.numbers[start : start + BATCH], strict=True):
            ticket_id += 1
            tk = _ticket(record, self.known, self.runtime, self.cal, batch.ids, ticket_id, number, self.source,
                         self.now)  # fmt: skip
            batch.add(tk)
            for part in tk.assignments:
                instants.extend(t for t in (part.dispatched_at, part.handle_by, part.first_replied_at) if t)
            instants.extend(callback.at for callback in tk.callbacks)
        following = self.batches[index + 1][2] if index + 1 < len(self.batches) else self.end[1]
        if any(batch.ids[name] != following[name] for name in following):
            raise RuntimeError("hotline.ticket_import: a batch's rows did not take the ids reserved for them")
        return _Built(batch, len(records), (min(instants), max(instants)) if instants else None)


def _children(record: Record) -> tuple[int, int]:
    """The assignments and the callbacks of a checked row's ticket (as _ticket makes them)."""
    return int(record.department is not None), int(record.rating is not None)


# The builder the forked workers build with (set before they fork).
_BUILDER: _Builder | None = None


def _build(index: int) -> _Built:
    return _BUILDER.build(index)


def _write(runtime, good: Iterable[Record], known: Known, cal, source: str, now: datetime,
           out: TextIO | None, workers: int) -> tuple[int, tuple[datetime, datetime] | None]:  # fmt: skip
    """Write the tickets not loaded yet: how many, and the first and last instants they count
    at in the running totals (None: they count nowhere)."""
    global _BUILDER
    writer = Writer(runtime, {"tickets": _TICKETS})
    makers = {name: writer.row_maker(name) for name in ("tickets", *(table for table, _ in Batch.CHILDREN))}
    pipe = None
    written = 0
    instants: list[datetime] = []

    def done(built: _Built) -> None:
        nonlocal written
        before, written = written, written + built.tickets
        if built.instants is not None:
            instants.extend(built.instants)
            instants[:] = [min(instants), max(instants)]
        if out is not None and written // _PROGRESS_EVERY > before // _PROGRESS_EVERY:
            out.write(f"  {written:,} tickets\n")
            out.flush()

    try:
        # Into empty tables (a district's first import) the indexes are built after the rows,
        # and nothing can be loaded already.
        ids, counters = writer.start(defer_indexes=True)
        ticket_id = ids.pop("tickets")
        first_load = ticket_id == 0
        if workers == 0:
            pipe = Pipe(writer)  # the writer writes while this process builds the next batch
        for segment in _segments(good):
            if not first_load:
                loaded = _loaded(runtime.db, source, [r.number for r in segment])
                segment = [r for r in segment if r.number not in loaded]
            builder = _Builder(segment, known, runtime, cal, source, now, makers, writer.sqlite, ids, ticket_id,
                               counters)  # fmt: skip
            ticket_id, ids = builder.end
            if workers == 0:
                for index in range(len(builder.batches)):
                    built = builder.build(index)
                    pipe.put(built)
                    done(built)
                continue
            _BUILDER = builder
            try:
                # fork: the workers inherit the builder (the rows checked, the directory, the
                # calendar, the keys) as it is; they only build, this process writes.
                with multiprocessing.get_context("fork").Pool(workers) as pool:
                    waiting: deque = deque()
                    for index in range(len(builder.batches)):
                        waiting.append(pool.apply_async(_build, (index,)))
                        if len(waiting) > workers + 1:  # a few batches ahead of the writer, no more
                            built = waiting.popleft().get()
                            writer.write(built)
                            done(built)
                    while waiting:
                        built = waiting.popleft().get()
                        writer.write(built)
                        done(built)
            finally:
                _BUILDER = None
        if pipe is not None:
            pipe.close()
            pipe = None
    finally:
        if pipe is not None:
            with suppress(BaseException):  # the first error is the one raised
                pipe.close()
        writer.close()
    return written, (instants[0], instants[1]) if instants else None
