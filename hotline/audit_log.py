"""The security audit trail (安全审计): sign-ins, sign-outs and every administrative change,
with who, when, from where, what, and the changed fields before and after.

How a change is recorded: a listener on every session's flush looks at the rows of the
audited tables (AUDITED) that the flush inserts, updates or deletes, and writes one record
for each, on the same connection, so in the same transaction: no change without its
record, no record without its change. The API, the pages, the command line and the
scheduler all change these tables through the same services, and all are covered once,
whatever path they took. A service may give the changes of one kind a clearer name for the
rest of its transaction (`name`); a change that touches no audited row (ending a user's
web sessions, a sign-in) is recorded explicitly (`record`).

Who and from where: a request's address is taken when it arrives (`RequestContext`), its
user when the token or the session cookie names one (`identify`); the command line records
its OS user (`act_as`); anything else is the system.

Secrets (password hashes, token hashes, subscription secrets) are never written: "set" or
"changed" stands in their place. Long texts are cut to MAX_TEXT characters.

One hash chain for the whole table (the records are few): each record's chain is the
SHA-256 of the previous record's chain and its own content. The one row of `audit_head`
holds the last link and the count; a writer locks it first (SELECT … FOR UPDATE on
PostgreSQL; SQLite's writers are one at a time already), so concurrent writers append one
after another and the chain stays linear. `verify` recomputes the chain in id order and
names the first record that does not match; a record removed from the middle breaks the
next one, one removed from the end no longer matches the head.

The application never deletes audit records (retention is the operator's: docs/security.md).
"""

import getpass
import json
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import event, func, insert, inspect, or_, update
from sqlmodel import Session, select

from hotline.appends import kept_through_savepoints
from hotline.audit import GENESIS, link
from hotline.db import dialect_insert, utcnow
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.models import (
    ApiToken,
    Article,
    AuditHead,
    AuditRecord,
    CalendarDay,
    CalendarYear,
    Category,
    Department,
    Place,
    RoutingRule,
    Subscription,
    User,
)

MAX_TEXT = 200
MAX_NAME = 64
# Fields whose values are never written, only that they were set or changed.
SECRETS = frozenset({"password_hash", "token_hash", "secret", "previous_secret"})
# Fields whose changes are bookkeeping, not an administrator's decision.
IGNORED = frozenset({"id", "created_at", "updated_at", "expiry_warned_for", "notices_read_before"})
OUTCOMES = ("ok", "failed", "refused")

# session.info keys: the chain's head as this transaction left it; the names given to changes.
_HEAD = "hotline.audit_log.head"
_NAMES = "hotline.audit_log.names"
_PENDING = "hotline.audit_log.pending"


@dataclass(frozen=True)
class Person:
    """Who acts, when it is not a user of the application (the command line, the system)."""

    id: int | None
    username: str
    role: str


SYSTEM = Person(None, "system", "system")


@dataclass
class Who:
    """The actor and address of the work under way (a request, a command)."""

    address: str | None = None
    actor: Any = None  # anything with id, username and role (hotline.workflow.engine.Actor)


_who: ContextVar[Who | None] = ContextVar("hotline_audit_who", default=None)


def identify(actor: Any) -> None:
    """The request under way is this user's (called where a token or a session names one)."""
    who = _who.get()
    if who is not None:
        who.actor = actor


def act_as(actor: Any, address: str | None = None) -> None:
    """The rest of this context (a command) acts as `actor`."""
    _who.set(Who(address=address, actor=actor))


def command_line() -> Person:
    """The command line's actor: its OS user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (a container)
        user = "unknown"
    return Person(None, f"cli:{user}"[:MAX_NAME], "cli")


class RequestContext:
    """ASGI middleware: each request starts with its client's address and no user."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        token = _who.set(Who(address=client[0] if client else None))
        try:
            await self.app(scope, receive, send)
        finally:
            _who.reset(token)


# --------------------------------------------------------------------------- writing


def plain(value: Any) -> Any:
    """A value as JSON keeps it: times and days as ISO text, long texts cut."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def canonical(row: dict[str, Any]) -> bytes:
    """A record's content as the bytes its hash is taken of (the same as written and as read
    back from either database)."""
    fields = [
        row["at"].isoformat(timespec="microseconds"),
        row["actor_id"],
        row["actor_name"],
        row["actor_role"],
        row["address"],
        row["action"],
        row["target_type"],
        row["target_id"],
        row["target_label"],
        row["outcome"],
        row["before"],
        row["after"],
    ]
    return json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def _row(
    action: str,
    *,
    target_type: str,
    target_id: Any = None,
    target_label: str | None = None,
    outcome: str = "ok",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor: Any = None,
    address: str | None = None,
) -> dict[str, Any]:
    who = _who.get() or Who()
    actor = actor or who.actor or SYSTEM
    return {
        "at": utcnow(),
        "actor_id": actor.id,
        "actor_name": (actor.username or "")[:MAX_NAME],
        "actor_role": (actor.role or "")[:16],
        "address": ((address or who.address) or "")[:64] or None,
        "action": action,
        "target_type": target_type,
        "target_id": None if target_id is None else str(target_id)[:64],
        "target_label": None if target_label is None else str(target_label)[:MAX_TEXT],
        "outcome": outcome,
        "before": plain(before) if before else None,
        "after": plain(after) if after else None,
    }


def _lock_head(session: Session) -> tuple[str, int]:
    """The chain's last link and length, the head row locked until the transaction ends
    (created when missing: a database emptied by hand)."""
    query = select(AuditHead.chain, AuditHead.records).where(AuditHead.id == 1).with_for_update()
    found = session.execute(query).first()
    if found is None:
        insert_ = dialect_insert(session.get_bind().dialect.name)(AuditHead)
        session.execute(insert_.values(id=1, chain=GENESIS, records=0).on_conflict_do_nothing(index_elements=["id"]))
        found = session.execute(query).first()
    return found[0], found[1]


def _append(session: Session, rows: list[dict[str, Any]]) -> None:
    """Seal the rows into the chain and write them, and the head after them."""
    if not rows:
        return
    with session.no_autoflush:
        previous, count = session.info.get(_HEAD) or _lock_head(session)
    for row in rows:
        row["chain"] = previous = link(previous, canonical(row))
    connection = session.connection()
    connection.execute(insert(AuditRecord.__table__), rows)
    count += len(rows)
    connection.execute(update(AuditHead.__table__).where(AuditHead.id == 1).values(chain=previous, records=count))
    session.info[_HEAD] = (previous, count)


def record(session: Session, action: str, **fields: Any) -> None:
    """Record one action in the session's transaction (see _row for the fields)."""
    _append(session, [_row(action, **fields)])


def record_user(session: Session, action: str, user: Any, **fields: Any) -> None:
    """Record an action on a user's account (`user`: anything with id and username)."""
    record(session, action, target_type="user", target_id=user.id, target_label=user.username, **fields)


def name(session: Session, kind: str, action: str) -> None:
    """Record this transaction's changes of `kind` (user, department…) as `action`
    (user.reset_password) rather than kind.update."""
    session.info.setdefault(_NAMES, {})[kind] = action


# ------------------------------------------------------------------- what is audited


def _user_label(session: Session, user_id: int | None) -> str | None:
    user = session.get(User, user_id) if user_id else None
    return user.username if user else None


AUDITED: dict[type, tuple[str, Any]] = {
    Department: ("department", lambda s, o: f"{o.code} {o.name}"),
    User: ("user", lambda s, o: o.username),
    ApiToken: ("api_token", lambda s, o: _user_label(s, o.user_id)),
    Category: ("category", lambda s, o: f"{o.code} {o.name}"),
    RoutingRule: ("routing_rule", lambda s, o: f"#{o.id}"),
    Place: ("place", lambda s, o: "/".join(p for p in (o.street, o.community) if p)),
    CalendarDay: ("calendar_day", lambda s, o: o.day.isoformat()),
    CalendarYear: ("calendar_year", lambda s, o: str(o.year)),
    Subscription: ("subscription", lambda s, o: o.name),
    Article: ("article", lambda s, o: o.title),
}


def _columns(obj: Any) -> list[str]:
    return [a.key for a in inspect(obj).mapper.column_attrs if a.key not in IGNORED]


def _shown(key: str, value: Any, secret: str) -> Any:
    return secret if key in SECRETS and value is not None else value


def _snapshot(obj: Any, secret: str) -> dict[str, Any]:
    """The loaded fields of a row (never loading more: a deleted row cannot be read)."""
    loaded = inspect(obj).dict
    return {k: _shown(k, loaded[k], secret) for k in _columns(obj) if k in loaded and loaded[k] is not None}


def _changes(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields an update changed: before and after."""
    state = inspect(obj)
    before, after = {}, {}
    for key in _columns(obj):
        history = state.attrs[key].history
        if not history.added and not history.deleted:
            continue
        old = history.deleted[0] if history.deleted else None
        new = history.added[0] if history.added else None
        if old == new and key not in SECRETS:
            continue
        before[key], after[key] = _shown(key, old, "(secret)"), _shown(key, new, "changed")
    return before, after


def _target_id(obj: Any) -> Any:
    state = inspect(obj)
    keys = [state.mapper.get_property_by_column(c).key for c in state.mapper.primary_key]
    return state.dict.get(keys[0]) if len(keys) == 1 else None


@dataclass
class _Change:
    """What a transaction did to one audited row so far: its flushes merged into one."""

    kind: str
    operation: str  # create | update | delete
    target_id: Any
    label: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def merge(self, later: "_Change") -> "_Change | None":
        """This change followed by a later one of the same row; None when nothing is left
        (created and deleted again, or changed back)."""
        if self.operation == "create":
            if later.operation == "delete":
                return None
            return _Change(self.kind, "create", self.target_id, later.label, None, {**self.after, **later.after})
        before = {**(later.before or {}), **(self.before or {})}  # the earliest value of each field
        if later.operation == "delete":
            return _Change(self.kind, "delete", self.target_id, self.label, before, None)
        after = {**(self.after or {}), **later.after}
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        if not changed:
            return None
        return _Change(
            self.kind,
            "update",
            self.target_id,
            later.label,
            {k: before[k] for k in changed if k in before},
            {k: after.get(k) for k in changed},
        )


def _flushed(session: Session) -> Iterator[_Change]:
    """What this flush did to audited rows: inserted, updated or deleted."""
    for operation, objects in (("create", session.new), ("update", session.dirty), ("delete", session.deleted)):
        for obj in list(objects):
            audited = AUDITED.get(type(obj))
            if audited is None:
                continue
            kind, label = audited
            if operation == "create":
                before, after = None, _snapshot(obj, "set")
            elif operation == "delete":
                before, after = _snapshot(obj, "(secret)"), None
            else:
                before, after = _changes(obj)
                if not after:
                    continue
            yield _Change(kind, operation, _target_id(obj), label(session, obj), before, after)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context) -> None:
    """Remember what the flush changed (merged with the transaction's earlier flushes):
    recorded once, at commit."""
    pending: dict[tuple[str, Any], _Change] = session.info.setdefault(_PENDING, {})
    with session.no_autoflush:
        for change in _flushed(session):
            key = (change.kind, change.target_id)
            earlier = pending.pop(key, None)
            merged = earlier.merge(change) if earlier else change
            if merged is not None:
                pending[key] = merged


def _rows_of(changes: list[_Change], names: dict[str, str]) -> list[dict[str, Any]]:
    """A record for each change; the days of the calendar together, in one."""
    days = [c for c in changes if c.kind == "calendar_day"]
    rows = [
        _row(
            names.get(c.kind, f"{c.kind}.{c.operation}"),
            target_type=c.kind,
            target_id=c.target_id,
            target_label=c.label,
            before=c.before,
            after=c.after,
        )
        for c in changes
        if c.kind != "calendar_day"
    ]
    if days:
        labels = sorted(c.label for c in days)
        rows.append(
            _row(
                names.get("calendar_day", "calendar_day.update"),
                target_type="calendar_day",
                target_label=labels[0] if len(labels) == 1 else f"{labels[0]}…{labels[-1]}",
                before={c.label: c.before for c in days if c.before} or None,
                after={c.label: c.after for c in days if c.after} or None,
            )
        )
    return rows


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    """Write the transaction's records, after its last flush, before it commits (the
    outer transaction: a savepoint's changes are written with it)."""
    if session.in_nested_transaction():
        return
    session.flush()
    pending = session.info.pop(_PENDING, None)
    if pending:
        _append(session, _rows_of(list(pending.values()), session.info.get(_NAMES, {})))


# A savepoint keeps what was pending when it began: rolled back, so is that.
kept_through_savepoints(_PENDING, dict)


@event.listens_for(Session, "after_soft_rollback")
def _back_to_savepoint(session: Session, previous_transaction) -> None:
    # The head is read again (still locked by the outer transaction): the savepoint's writes are gone.
    if previous_transaction.nested:
        session.info.pop(_HEAD, None)


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction) -> None:
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_HEAD, None)
        session.info.pop(_NAMES, None)


# --------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class Break:
    """The first audit record that does not match its chain, or a trail whose end does not
    match its head."""

    row_id: int | None
    expected: str
    found: str | None

    def __str__(self) -> str:
        if self.row_id is None:
            return (
                f"the audit trail's end does not match its head (expected {self.expected[:16]}…, "
                f"found {(self.found or 'nothing')[:16]}…): records were removed from its end"
            )
        return (
            f"audit record {self.row_id} does not match its chain "
            f"(expected {self.expected[:16]}…, found {(self.found or 'nothing')[:16]}…)"
        )


def _records(session: Session, batch: int) -> Iterator[AuditRecord]:
    after = 0
    while True:
        rows = session.exec(
            select(AuditRecord).where(AuditRecord.id > after).order_by(AuditRecord.id).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].id
        session.expunge_all()


def _content(row: AuditRecord) -> dict[str, Any]:
    return {c: getattr(row, c) for c in AuditRecord.model_fields if c not in ("id", "chain")}


def verify(session: Session, *, batch: int = 5000) -> tuple[int, Break | None]:
    """Recompute the chain: how many records were checked, and the first that does not match
    (None when all do and the last one is the head's)."""
    previous, checked = GENESIS, 0
    for row in _records(session, batch):
        expected = link(previous, canonical(_content(row)))
        if row.chain != expected:
            return checked, Break(row.id, expected, row.chain)
        previous = expected
        checked += 1
    head = session.get(AuditHead, 1)
    head_chain, head_count = (head.chain, head.records) if head else (GENESIS, 0)
    if (head_chain, head_count) != (previous, checked):
        return checked, Break(None, head_chain, previous)
    return checked, None


# --------------------------------------------------------------------------- reading

# What the pages call each kind of target and each operation.
KINDS = {
    "login": "登录",
    "logout": "退出登录",
    "user": "用户",
    "api_token": "API 令牌",
    "department": "单位",
    "category": "分类",
    "routing_rule": "派单规则",
    "place": "街道社区",
    "calendar_day": "节假日",
    "calendar_year": "节假日年度",
    "district": "区县设置",
    "subscription": "对接订阅",
    "article": "知识库文章",
}
OPERATIONS = {
    "create": "新建",
    "update": "修改",
    "delete": "删除",
    "activate": "启用",
    "deactivate": "停用",
    "reset_password": "重置密码",
    "change_password": "修改密码",
    "end_sessions": "结束会话",
    "unlock": "解除登录限制",
}
OUTCOME_LABELS = {"ok": "成功", "failed": "失败", "refused": "拒绝（尝试过频）"}
# What the pages call the fields of a record's before and after (the exports keep the keys).
FIELD_LABELS = {
    "active": "启用",
    "enabled": "启用",
    "body": "正文",
    "category": "分类",
    "category_id": "分类（内部编号）",
    "code": "编码",
    "street": "街道",
    "community": "社区",
    "created_by_id": "创建人（内部编号）",
    "department": "单位",
    "department_id": "单位（内部编号）",
    "parent": "上级",
    "parent_id": "上级（内部编号）",
    "display_name": "姓名",
    "username": "用户名",
    "user_id": "用户（内部编号）",
    "role": "角色",
    "must_change_password": "须修改密码",
    "password_hash": "密码（摘要）",
    "token_hash": "令牌（摘要）",
    "secret": "签名密钥",
    "name": "名称",
    "title": "标题",
    "keywords": "关键字",
    "kind": "类别",
    "external_id": "外部编号",
    "org_code": "统一社会信用代码",
    "priority": "优先级",
    "public": "对外公开",
    "region": "适用地区",
    "region_code": "行政区划代码",
    "source": "来源",
    "status": "状态",
    "topics": "订阅事件",
    "url": "地址",
    "valid_from": "生效日期",
    "valid_until": "失效日期",
    "version": "版本",
    "year": "年度",
    "loaded_at": "导入时间",
    "workflow": "流程",
    "phone": "电话",
    "revoked_at": "撤销时间",
    "day": "日期",
    "working": "工作日",
    "disabled_reason": "停用原因",
    "previous_secret": "原签名密钥",
    "previous_secret_until": "原签名密钥有效至",
    "updated_by_id": "修改人（内部编号）",
    "source_ticket_id": "来源工单（内部编号）",
}
# What stands in a secret's place (_shown), as the pages say it.
SECRET_WORDS = {"(secret)": "（保密）", "changed": "已修改", "set": "已设置"}
MAX_FILTER = 64


def shown_value(key: str, value: Any) -> Any:
    """A before/after value as the pages show it: a secret's stand-in in words."""
    return SECRET_WORDS.get(value, value) if key in SECRETS and isinstance(value, str) else value


def field_label(key: str) -> str:
    """A before/after field as the pages name it (the key itself where it has no name: a
    calendar day's date, say)."""
    return FIELD_LABELS.get(key, key)


def action_label(action: str) -> str:
    kind, _, operation = action.partition(".")
    return KINDS.get(kind, kind) + (OPERATIONS.get(operation, operation) if operation else "")


@dataclass(frozen=True)
class Filters:
    """Which records to show: a time range (from `since`, before `until`), the actor's name,
    the kind of action (its first part: user, login…), the target's id or words of its name,
    the outcome; None or empty: any."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    kind: str | None = None
    target: str | None = None
    outcome: str | None = None

    @classmethod
    def of(
        cls,
        since: date | None = None,
        until: date | None = None,
        actor: str | None = None,
        kind: str | None = None,
        target: str | None = None,
        outcome: str | None = None,
    ) -> "Filters":
        """The filters from local days (both included) and the rest as given, blanks as none."""

        def start(day: date | None) -> datetime | None:
            return datetime.combine(day, datetime.min.time(), LOCAL_TZ) if day else None

        return cls(
            since=start(since),
            until=start(until + timedelta(days=1) if until else None),
            actor=(actor or "").strip() or None,
            kind=kind or None,
            target=(target or "").strip() or None,
            outcome=outcome or None,
        )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(query, filters: Filters):
    if filters.since is not None:
        query = query.where(AuditRecord.at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditRecord.at < filters.until)
    if filters.actor:
        query = query.where(func.lower(AuditRecord.actor_name) == filters.actor.strip().lower())
    if filters.kind:
        query = query.where(or_(AuditRecord.action == filters.kind, AuditRecord.action.startswith(f"{filters.kind}.")))
    if filters.target:
        target = filters.target.strip()
        query = query.where(
            or_(AuditRecord.target_id == target, AuditRecord.target_label.ilike(_like(target), escape="\\"))
        )
    if filters.outcome:
        query = query.where(AuditRecord.outcome == filters.outcome)
    return query


def search(session: Session, filters: Filters, *, page: int = 1, page_size: int = 50) -> tuple[list[AuditRecord], int]:
    """The records that pass the filters, newest first, one page of them; and how many pass."""
    total = session.execute(_where(select(func.count()).select_from(AuditRecord), filters)).scalar_one()
    rows = session.exec(
        _where(select(AuditRecord), filters)
        .order_by(AuditRecord.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return list(rows), total


def record_out(row: AuditRecord) -> dict[str, Any]:
    """A record as the API gives it."""
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "actor": {"id": row.actor_id, "name": row.actor_name, "role": row.actor_role},
        "address": row.address,
        "action": row.action,
        "target": {"type": row.target_type, "id": row.target_id, "label": row.target_label},
        "outcome": row.outcome,
        "before": row.before,
        "after": row.after,
    }
