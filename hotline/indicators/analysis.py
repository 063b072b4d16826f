"""Analysis (分析研判): volumes and growth, hotspots, repeated requests, hot words, surges."""

from collections import Counter
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict
from sqlalchemy import ARRAY, Integer, String, and_, bindparam, column, func, or_, select, tuple_
from sqlmodel import Session

from hotline import notices
from hotline.db import dialect_insert
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.labels import TYPE_LABELS
from hotline.models import Category, Department, Place, SurgeAlert, SurgeCount, Ticket
from hotline.tickets import same_phone
from hotline.words import stop_words
from hotline.workflow.lines import Lines


class SurgeRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window_hours: float = 24
    min_tickets: int = 5
    factor: float = 3
    baseline_days: int = 28


class HotspotRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_count: int = 10
    factor: float = 2
    baseline_periods: int = 4


class RepeatRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int = 30
    min_count: int = 3


class HotWordRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    top: int = 40
    sample: int = 5000


class AnalysisConfig(BaseModel):
    """workflows/analysis.yaml."""

    model_config = ConfigDict(extra="forbid")
    surge: SurgeRule = SurgeRule()
    hotspot: HotspotRule = HotspotRule()
    repeat: RepeatRule = RepeatRule()
    hot_words: HotWordRule = HotWordRule()


@lru_cache(maxsize=4)
def analysis_config(workflows_dir: str) -> AnalysisConfig:
    path = Path(workflows_dir) / "analysis.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    return AnalysisConfig.model_validate(data or {})


DIMENSIONS = ("type", "category", "department", "street", "community", "hour", "day", "line")


def line_scope(lines: Lines, number: str | None, scope=None):
    """`scope` narrowed to one line's tickets (一个号码; Invalid naming `line` for a number
    not configured); `scope` itself without a number."""
    if not number:
        return scope
    lines.named(number)
    own = Ticket.line == number
    return own if scope is None else and_(scope, own)


def local_part(session: Session, column, part: str):
    """The local (Asia/Shanghai) hour or day of a stored UTC time, in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        local = func.timezone("Asia/Shanghai", column)
        return func.to_char(local, "HH24" if part == "hour" else "YYYY-MM-DD")
    return func.strftime("%H" if part == "hour" else "%Y-%m-%d", column, "+8 hours")


def _key(session: Session, by: str):
    if by == "type":
        return (Ticket.type,)
    if by == "category":
        return (Ticket.category_id,)
    if by == "department":
        return (Ticket.main_department_id,)
    if by == "street":
        return (Ticket.street,)
    if by == "line":
        return (Ticket.line,)
    if by == "community":
        return (Ticket.street, Ticket.community)
    return (local_part(session, Ticket.created_at, by),)


def _counts(session: Session, by: str, lo: datetime, hi: datetime, scope=None) -> Counter:
    keys = _key(session, by)
    stmt = select(*keys, func.count()).where(Ticket.created_at >= lo, Ticket.created_at < hi)
    if scope is not None:
        stmt = stmt.where(scope)
    stmt = stmt.group_by(*keys)
    out: Counter = Counter()
    for *key, count in session.execute(stmt):
        out[tuple(key) if len(key) > 1 else key[0]] = int(count)
    return out


def _labeller(session: Session, by: str):
    if by == "category":
        names = dict(session.execute(select(Category.id, Category.name)).all())
        return lambda k: names.get(k, "未分类")
    if by == "department":
        names = dict(session.execute(select(Department.id, Department.name)).all())
        return lambda k: names.get(k, "未派单")
    if by == "type":
        return lambda k: TYPE_LABELS.get(k, k)
    if by == "community":
        return lambda k: "".join(p for p in k if p) or "未填写"
    if by == "hour":
        return lambda k: f"{k}时"
    return lambda k: k or "未填写"


def _every(by: str, lo: datetime, hi: datetime) -> list[str]:
    """Every key of a time series over [lo, hi), as local_part names them ("00".."23" for an
    hour, "YYYY-MM-DD" for a local day); nothing for another dimension."""
    if by == "hour":
        return [f"{h:02d}" for h in range(24)]
    if by != "day" or hi <= lo:
        return []
    first = lo.astimezone(LOCAL_TZ).date()
    last = (hi - timedelta(microseconds=1)).astimezone(LOCAL_TZ).date()
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def volume(
    session: Session, by: str, lo: datetime, hi: datetime, scope=None, lines: Lines | None = None
) -> list[dict[str, Any]]:
    """Tickets per key in [lo, hi), with the previous period of the same length and the growth
    (by line: labelled with the `lines` configured)."""
    current = _counts(session, by, lo, hi, scope)
    previous = _counts(session, by, lo - (hi - lo), lo, scope)
    label = lines.label if by == "line" and lines is not None else _labeller(session, by)
    keys = set(current) | (set(previous) if by not in ("day",) else set())
    # A time series has every hour and every day of the period, with 0 where nothing came in:
    # a chart's axis without a quiet Sunday would join the days around it.
    keys |= set(_every(by, lo, hi))
    rows = []
    for key in keys:
        now_count, before = current.get(key, 0), previous.get(key, 0)
        rows.append(
            {
                "key": list(key) if isinstance(key, tuple) else key,
                "label": label(key),
                "count": now_count,
                "previous": before,
                "growth": round((now_count - before) / before, 4) if before else None,
            }
        )
    if by in ("hour", "day"):
        rows.sort(key=lambda r: str(r["key"]))
    else:
        rows.sort(key=lambda r: (-r["count"], str(r["key"])))
    return rows


def hotspots(session: Session, runtime, by: str, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
    """Categories or places whose volume jumps against their own recent baseline."""
    rule = analysis_config(str(runtime.settings.workflows_dir)).hotspot
    length = hi - lo
    current = _counts(session, by, lo, hi)
    baseline: Counter = Counter()
    for i in range(1, rule.baseline_periods + 1):
        baseline.update(_counts(session, by, lo - i * length, hi - i * length))
    label = _labeller(session, by)
    out = []
    for key, count in current.items():
        mean = baseline.get(key, 0) / rule.baseline_periods
        if count >= rule.min_count and count >= rule.factor * max(mean, 1):
            out.append(
                {
                    "key": list(key) if isinstance(key, tuple) else key,
                    "label": label(key),
                    "count": count,
                    "baseline": round(mean, 2),
                    "ratio": round(count / max(mean, 1), 2),
                }
            )
    out.sort(key=lambda r: -r["ratio"])
    return out


def repeated_requests(session: Session, runtime, now: datetime, scope=None) -> list[dict[str, Any]]:
    """The same phone, or the same address, about the same category, N times or more in
    the days up to `now`."""
    rule = analysis_config(str(runtime.settings.workflows_dir)).repeat
    since = now - timedelta(days=rule.days)
    out = []
    for kind, keys in (
        # The phone is sealed: its keyed hash groups, the newest ticket's phone is shown.
        ("phone", (Ticket.caller_phone_hash,)),
        ("address", (Ticket.street, Ticket.community, Ticket.address)),
    ):
        present = and_(*[k.is_not(None) for k in keys], *[k != "" for k in keys])
        stmt = (
            select(*keys, Ticket.category_id, func.count(), func.max(Ticket.created_at), func.max(Ticket.id))
            .where(Ticket.created_at >= since, Ticket.created_at <= now, present)
            .group_by(*keys, Ticket.category_id)
            .having(func.count() >= rule.min_count)
            # SQLite would walk the phone index over the whole table to group; the time
            # window is far more selective.
            .with_hint(Ticket, "INDEXED BY ix_tickets_created_at", "sqlite")
        )
        if scope is not None:
            stmt = stmt.where(scope)
        for *key, category_id, count, last, newest in session.execute(stmt.limit(500)):
            out.append(
                {"kind": kind, "key": key, "category_id": category_id, "count": int(count), "last": last, "id": newest}
            )
    phones = [r["id"] for r in out if r["kind"] == "phone"]
    if phones:
        found = dict(session.execute(select(Ticket.id, Ticket.caller_phone).where(Ticket.id.in_(phones))).all())
        for row in out:
            if row["kind"] == "phone":
                row["key"] = [found[row["id"]]]
    for row in out:
        del row["id"]
    names = dict(session.execute(select(Category.id, Category.name)).all())
    for row in out:
        row["category"] = names.get(row["category_id"], "未分类")
    out.sort(key=lambda r: -r["count"])
    return out


def repeats_of(session: Session, runtime, ticket: Ticket) -> list[tuple[int, str]]:
    """Other tickets of the same caller or address about the same category lately."""
    rule = analysis_config(str(runtime.settings.workflows_dir)).repeat
    since = ticket.created_at - timedelta(days=rule.days)
    same = []
    if ticket.caller_phone:
        same.append(same_phone(session, ticket.caller_phone))
    if ticket.address and ticket.street:
        same.append(and_(Ticket.street == ticket.street, Ticket.address == ticket.address))
    if not same:
        return []
    stmt = (
        select(Ticket.id, Ticket.number)
        .where(
            or_(*same),
            Ticket.category_id == ticket.category_id,
            Ticket.id != ticket.id,
            Ticket.created_at >= since,
            Ticket.created_at <= ticket.created_at + timedelta(days=rule.days),
        )
        .order_by(Ticket.id.desc())
        .limit(20)
    )
    return [(i, n) for i, n in session.execute(stmt)]


_KNOWN_WORDS: set[str] = set()


def _learn_places(session: Session) -> None:
    """Teach the segmenter the district's streets and communities, so that 滨江街道 stays one
    word instead of 滨江街 and 道 (jieba keeps the words for the process: each is taught once)."""
    import jieba

    names = set()
    for street, community in session.execute(select(Place.street, Place.community)):
        names.add(street)
        if community:
            names.add(community)
    for name in names - _KNOWN_WORDS:
        jieba.add_word(name, freq=max(jieba.suggest_freq(name), 1000))
        _KNOWN_WORDS.add(name)


def hot_words(session: Session, runtime, lo: datetime, hi: datetime, scope=None) -> list[tuple[str, int]]:
    """The words most tickets of the period mention (jieba segmentation, the district's place
    names kept whole, stop words left out)."""
    import jieba

    _learn_places(session)
    rule = analysis_config(str(runtime.settings.workflows_dir)).hot_words
    stmt = select(Ticket.title, Ticket.content).where(Ticket.created_at >= lo, Ticket.created_at < hi)
    if scope is not None:
        stmt = stmt.where(scope)
    counts: Counter = Counter()
    for title, content in session.execute(stmt.order_by(Ticket.id.desc()).limit(rule.sample)):
        # Each ticket counts a word once: the figure is how many tickets mention it.
        words = {w.strip() for w in jieba.lcut(f"{title}\n{content}")}
        for word in words:
            if len(word) >= 2 and word not in stop_words() and not word.isdigit() and not word.isascii():
                counts[word] += 1
    return counts.most_common(rule.top)


def _count_days(session: Session, since: date, until: date) -> None:
    """Count the tickets of the local days in [since, until) per category and community into
    `surge_counts`, from the day after the last one counted: each day once, in one grouped
    read of that day's intake (the created_at index)."""
    last = session.execute(select(func.max(SurgeCount.day))).scalar_one()
    day = since if last is None or last < since else last + timedelta(days=1)
    insert = dialect_insert(session.get_bind().dialect.name)(SurgeCount.__table__).on_conflict_do_nothing()
    keys = (func.coalesce(Ticket.category_id, 0), func.coalesce(Ticket.street, ""), Ticket.community)
    while day < until:
        lo = datetime.combine(day, time.min, LOCAL_TZ)
        rows = session.execute(
            select(*keys, func.count())
            .where(Ticket.created_at >= lo, Ticket.created_at < lo + timedelta(days=1), Ticket.community.is_not(None))
            .group_by(*keys)
            .with_hint(Ticket, "INDEXED BY ix_tickets_created_at", "sqlite")
        ).all()
        if rows:
            session.execute(
                insert, [{"day": day, "category_id": c, "street": s, "community": m, "n": n} for c, s, m, n in rows]
            )
        day += timedelta(days=1)


def _baselines(session: Session, keys: list[tuple], since: date, until: date) -> dict[tuple, int]:
    """Tickets per (category id, street, community) key on the local days in [since, until),
    from the daily counts (a few rows per key on their index)."""
    # The counts keep no category as 0 and no street as '': a key without a street (None)
    # and one with an empty one ('') read the same counts, asked for once.
    asked: dict[tuple, list[tuple]] = {}
    for c, s, m in keys:
        asked.setdefault((c or 0, s or "", m), []).append((c, s, m))
    stored = list(asked)
    out: dict[tuple, int] = {}
    if not stored:
        return out
    days = (SurgeCount.day >= since, SurgeCount.day < until)
    if session.get_bind().dialect.name == "postgresql":
        # The keys as three arrays unnested into a relation joined to the counts: a lookup of
        # each key on the counts' index. PostgreSQL runs a list of row values (`IN`) as one
        # filter of every key tested on every row of the period: 150 ms for 335 keys over the
        # four weeks of a district's counts (70,000 rows), 16 ms this way.
        wanted = (
            func.unnest(
                bindparam("categories", [k[0] for k in stored], type_=ARRAY(Integer)),
                bindparam("streets", [k[1] for k in stored], type_=ARRAY(String)),
                bindparam("communities", [k[2] for k in stored], type_=ARRAY(String)),
            )
            .table_valued(column("c", Integer), column("s", String), column("m", String), name="wanted")
            .render_derived()
        )
        query = (
            select(wanted.c.c, wanted.c.s, wanted.c.m, func.sum(SurgeCount.n))
            .select_from(wanted)
            .join(
                SurgeCount,
                and_(
                    SurgeCount.street == wanted.c.s,
                    SurgeCount.community == wanted.c.m,
                    SurgeCount.category_id == wanted.c.c,
                    *days,
                ),
            )
            .group_by(wanted.c.c, wanted.c.s, wanted.c.m)
        )
        queries = [query]
    else:
        key = tuple_(SurgeCount.category_id, SurgeCount.street, SurgeCount.community)
        queries = [
            select(SurgeCount.category_id, SurgeCount.street, SurgeCount.community, func.sum(SurgeCount.n))
            .where(key.in_(stored[chunk : chunk + 500]), *days)
            .group_by(SurgeCount.category_id, SurgeCount.street, SurgeCount.community)
            for chunk in range(0, len(stored), 500)
        ]
    for query in queries:
        for c, s, m, n in session.execute(query):
            for key in asked[(c, s, m)]:
                out[key] = int(n)
    return out


def check_surges(session: Session, runtime, now: datetime) -> list[SurgeAlert]:
    """Raise an alert for each new surge; keep an open one up to date; close one that is over.

    Bounded by recent intake, not by the table: the window's tickets are counted from the
    created_at index, and each community's usual count comes from the daily counts of the
    `baseline_days` whole local days before the window (`surge_counts`)."""
    rule = analysis_config(str(runtime.settings.workflows_dir)).surge
    window = timedelta(hours=rule.window_hours)
    keys = (Ticket.category_id, Ticket.street, Ticket.community)
    recent = {
        (c, s, m): int(n)
        for c, s, m, n in session.execute(
            select(*keys, func.count())
            .where(Ticket.created_at > now - window, Ticket.created_at <= now, Ticket.community.is_not(None))
            .group_by(*keys)
            .having(func.count() >= rule.min_tickets)
        )
    }
    open_alerts = {
        (a.category_id, a.street, a.community): a
        for a in session.execute(select(SurgeAlert).where(SurgeAlert.status == "open")).scalars()
    }
    until = (now - window).astimezone(LOCAL_TZ).date()
    since = until - timedelta(days=rule.baseline_days)
    if recent:
        _count_days(session, since, until)
    usual = _baselines(session, list(recent), since, until)
    raised = []
    for key, count in recent.items():
        category_id, street, community = key
        before = usual.get(key, 0)
        windows = rule.baseline_days * 24 / rule.window_hours
        baseline = before / windows
        surging = count >= rule.factor * max(baseline, 1 / windows) and count >= rule.min_tickets
        alert = open_alerts.pop(key, None)
        if alert is not None:
            alert.count, alert.peak, alert.updated_at = count, max(alert.peak, count), now
            continue
        if not surging:
            continue
        alert = SurgeAlert(
            category_id=category_id,
            street=street,
            community=community,
            count=count,
            peak=count,
            baseline=round(baseline, 3),
            window_hours=rule.window_hours,
            created_at=now,
            updated_at=now,
        )
        session.add(alert)
        session.flush()
        name = session.get(Category, category_id).name if category_id else "未分类"
        notices.send(
            session,
            role="supervisor",
            kind="surge",
            title=f"突发聚集预警：{street or ''}{community or ''} · {name}",
            body=f"近 {rule.window_hours:g} 小时内同类诉求 {count} 件，约为该社区平时的 "
            f"{count / max(baseline, 1 / windows):.0f} 倍，请关注研判。",
            at=now,
        )
        raised.append(alert)
    for alert in open_alerts.values():  # no longer above the threshold: the surge is over
        alert.status, alert.closed_at, alert.updated_at = "closed", now, now
    return raised


def local_text(value: datetime | None) -> str:
    return value.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if value else ""
