"""Working-day calendar for hotline deadlines (时限).

Deadlines are counted either in Chinese working days or in natural hours.
Public holidays are days off; make-up working days (调休, often a Saturday or
Sunday) are working days. For a year without official holiday data the
calendar falls back to "Monday to Friday are working days" and flags every
deadline computed through such a year as provisional; it never refuses to
compute a deadline.

All inputs must be timezone-aware datetimes (any zone); all outputs are aware
datetimes in UTC. Days are local days in Asia/Shanghai. That zone has had a
fixed UTC+8 offset since 1991, so every local day is exactly 24 hours long and
wall-clock arithmetic inside a local day equals elapsed time.

Implementation note: the number of working days before a given day is
computed in O(log k) (k = number of overrides) from a closed formula for
Monday-to-Friday days plus a prefix sum over the overrides that change the
default. Finding the n-th working day is a bounded binary search over that
count, so cost does not grow with n. What a local day contributes (its count,
its midnight, the deadlines counted from it) is cached per calendar: every
ticket event recomputes several clocks, and the demo loader plays millions.
"""

from __future__ import annotations

import csv
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from operator import index
from types import MappingProxyType
from zoneinfo import ZoneInfo

__all__ = [
    "LOCAL_TZ",
    "Due",
    "OfficeHours",
    "WorkCalendar",
    "load_holiday_csv",
    "read_holiday_csv",
    "local_iso",
]

LOCAL_TZ = ZoneInfo("Asia/Shanghai")

_DAY_US = 86_400 * 1_000_000
_MIDNIGHT = time(0, 0)
_END_OF_DAY = time(23, 59, 59)
_MIN_YEAR = date.min.year
_MAX_ORDINAL = date.max.toordinal()
_MAX_YEAR = date.max.year


@dataclass(frozen=True)
class Due:
    """A computed deadline."""

    at: datetime
    """Aware datetime in UTC."""
    provisional: bool
    """True when any day counted lay in a year without holiday data."""


@dataclass(frozen=True)
class OfficeHours:
    """Daily office hours in local (Asia/Shanghai) wall-clock time, [start, end)."""

    start: time = time(8, 30)
    end: time = time(17, 30)

    def __post_init__(self) -> None:
        """Validate that the times are naive and start precedes end."""
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("office hours are local wall-clock times; pass naive times")
        if not self.start < self.end:
            raise ValueError(f"office hours start {self.start} must be before end {self.end}")


def _require_aware(t: datetime, name: str) -> None:
    """Raise unless t is a timezone-aware datetime."""
    if t.__class__ is datetime and t.tzinfo is UTC:  # the common case, cheaply
        return
    if not isinstance(t, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(t).__name__}")
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {t.isoformat()}")


def _weekdays_before(o: int) -> int:
    """Number of Monday-to-Friday days with proleptic ordinal < o."""
    # Ordinal 1 (0001-01-01) is a Monday, so index o - 1 has weekday (o - 1) % 7.
    weeks, rest = divmod(o - 1, 7)
    return 5 * weeks + min(rest, 5)


def _kth_weekday(k: int) -> int:
    """Ordinal of the k-th (0-based, counted from ordinal 1) Monday-to-Friday day."""
    weeks, rest = divmod(k, 5)
    return 7 * weeks + rest + 1


# The local offset (microseconds) of each UTC day when it is the same all that day, else None.
_OFFSETS: dict[int, int | None] = {}


def _offset_of(utc_ordinal: int) -> int | None:
    if not 1 < utc_ordinal < _MAX_ORDINAL:
        return None
    start = datetime.combine(date.fromordinal(utc_ordinal), _MIDNIGHT, UTC)
    ends = (start, start + timedelta(days=1) - timedelta(microseconds=1))
    first, last = (t.astimezone(LOCAL_TZ).utcoffset() for t in ends)
    offset = _OFFSETS[utc_ordinal] = first // timedelta(microseconds=1) if first == last else None
    return offset


# Recent answers of _local_parts: the same deadlines are looked at again and again.
_PARTS: dict[datetime, tuple[int, int]] = {}
_PARTS_KEPT = 1 << 16


def _local_parts(t: datetime) -> tuple[int, int]:
    """Return (local day ordinal, microseconds since local midnight) of an aware datetime."""
    hit = _PARTS.get(t)
    if hit is None:
        if len(_PARTS) >= _PARTS_KEPT:
            _PARTS.clear()
        hit = _PARTS[t] = _compute_local_parts(t)
    return hit


def _compute_local_parts(t: datetime) -> tuple[int, int]:
    if t.tzinfo is UTC:
        # From the UTC wall clock and the day's offset, without a zone conversion.
        o = t.toordinal()
        offset = _OFFSETS[o] if o in _OFFSETS else _offset_of(o)
        if offset is not None:
            us = ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond + offset
            day, us = divmod(us, _DAY_US)
            return o + day, us
    lt = t.astimezone(LOCAL_TZ)
    us = ((lt.hour * 60 + lt.minute) * 60 + lt.second) * 1_000_000 + lt.microsecond
    return lt.toordinal(), us


def _clock_us(at: time) -> int:
    """Microseconds from midnight to a wall-clock time."""
    return ((at.hour * 60 + at.minute) * 60 + at.second) * 1_000_000 + at.microsecond


def _local_instant(o: int, at: time) -> datetime:
    """Aware UTC datetime for local wall-clock time `at` on the day with ordinal o."""
    try:
        d = date.fromordinal(o)
    except (ValueError, OverflowError) as exc:
        raise OverflowError("deadline falls outside the supported date range") from exc
    return datetime.combine(d, at, LOCAL_TZ).astimezone(UTC)


class WorkCalendar:
    """Chinese working-day calendar with per-date overrides and provisional fallback.

    Instances are immutable after construction and safe to share between threads.
    """

    __slots__ = (
        "_covered",
        "_days",
        "_dues",
        "_instants",
        "_jth",
        "_office_us",
        "_runs",
        "_delta_keys",
        "_delta_max",
        "_delta_min",
        "_delta_prefix",
        "_overrides",
        "office_hours",
    )

    def __init__(
        self,
        overrides: Mapping[date, bool],
        covered_years: Iterable[int],
        office_hours: OfficeHours = OfficeHours(),
    ) -> None:
        """Build a calendar from date overrides (True = working, False = day off)."""
        cleaned: dict[date, bool] = {}
        for d, working in overrides.items():
            if isinstance(d, datetime) or not isinstance(d, date):
                raise TypeError(f"override keys must be dates, got {d!r}")
            cleaned[d] = bool(working)
        covered: set[int] = set()
        for y in covered_years:
            y = index(y)
            if not _MIN_YEAR <= y <= _MAX_YEAR:
                raise ValueError(f"covered year out of range: {y}")
            covered.add(y)
        if not isinstance(office_hours, OfficeHours):
            raise TypeError("office_hours must be an OfficeHours instance")

        self._overrides: dict[date, bool] = cleaned
        self._covered: frozenset[int] = frozenset(covered)
        self.office_hours: OfficeHours = office_hours

        # Only overrides that differ from the Monday-to-Friday default shift the count.
        effective: list[tuple[int, int]] = []
        for d, working in cleaned.items():
            weekday = d.weekday() < 5
            if working and not weekday:
                effective.append((d.toordinal(), 1))
            elif not working and weekday:
                effective.append((d.toordinal(), -1))
        effective.sort()
        keys = [o for o, _ in effective]
        prefix = [0]
        for _, delta in effective:
            prefix.append(prefix[-1] + delta)
        self._delta_keys: list[int] = keys
        self._delta_prefix: list[int] = prefix
        self._delta_min: int = min(prefix)
        self._delta_max: int = max(prefix)
        # Caches of pure functions of a day (the calendar never changes once built).
        self._days: dict[int, tuple[int, bool]] = {}
        self._jth: dict[int, int] = {}
        self._instants: dict[tuple[int, time], datetime] = {}
        self._dues: dict[tuple[int, int], Due] = {}
        self._office_us = tuple(_clock_us(at) for at in (office_hours.start, office_hours.end))
        # Runs of consecutive covered years, as ordinal ranges: (first days, last days).
        runs: list[tuple[int, int]] = []
        for y in sorted(covered):
            if runs and date.fromordinal(runs[-1][1]).year == y - 1:
                runs[-1] = (runs[-1][0], date(y, 12, 31).toordinal())
            else:
                runs.append((date(y, 1, 1).toordinal(), date(y, 12, 31).toordinal()))
        self._runs = ([lo for lo, _ in runs], [hi for _, hi in runs])

    @classmethod
    def from_chinese_calendar(
        cls,
        years: Iterable[int] | None = None,
        office_hours: OfficeHours = OfficeHours(),
    ) -> WorkCalendar:
        """Build a calendar from the bundled `chinese_calendar` data (optionally limited to `years`)."""
        import chinese_calendar

        first = min(chinese_calendar.holidays).year
        last = max(chinese_calendar.holidays).year
        covered = set(range(first, last + 1))
        if years is not None:
            covered &= {index(y) for y in years}
        overrides: dict[date, bool] = {}
        for d in chinese_calendar.holidays:
            if d.year in covered:
                overrides[d] = False
        for d in chinese_calendar.workdays:
            if d.year in covered:
                overrides[d] = True
        return cls(overrides, covered, office_hours)

    def extended(self, overrides: Mapping[date, bool], covered_years: Iterable[int]) -> WorkCalendar:
        """Return a new calendar with extra overrides (winning over existing ones) and covered years."""
        merged = dict(self._overrides)
        merged.update(overrides)
        return WorkCalendar(merged, self._covered | set(covered_years), self.office_hours)

    @property
    def overrides(self) -> Mapping[date, bool]:
        """Read-only view of the date overrides."""
        return MappingProxyType(self._overrides)

    @property
    def covered_years(self) -> frozenset[int]:
        """Years whose official holiday data is loaded."""
        return self._covered

    # ----------------------------------------------------------------- days

    def is_working_day(self, d: date) -> bool:
        """Whether the local date d is a working day."""
        if isinstance(d, datetime):
            raise TypeError("is_working_day takes a date; convert the datetime to a local date first")
        working = self._overrides.get(d)
        if working is not None:
            return working
        return d.weekday() < 5

    def is_covered(self, d: date) -> bool:
        """Whether official holiday data is loaded for d's year."""
        return d.year in self._covered

    def missing_years(self, start: date, end: date) -> list[int]:
        """Years in [start.year, end.year] without holiday data."""
        return [y for y in range(start.year, end.year + 1) if y not in self._covered]

    def _is_working_ord(self, o: int) -> bool:
        """Whether the day with ordinal o is a working day."""
        return self._day(o)[1]

    def _day(self, o: int) -> tuple[int, bool]:
        """(working days before day o, whether o is a working day), cached."""
        hit = self._days.get(o)
        if hit is None:
            hit = self._days[o] = (self._working_before(o), self.is_working_day(date.fromordinal(o)))
        return hit

    def _instant(self, o: int, at: time) -> datetime:
        """_local_instant, cached."""
        key = (o, at)
        hit = self._instants.get(key)
        if hit is None:
            hit = self._instants[key] = _local_instant(o, at)
        return hit

    def _working_before(self, o: int) -> int:
        """Number of working days with ordinal < o (absolute, counted from ordinal 1)."""
        return _weekdays_before(o) + self._delta_prefix[bisect_left(self._delta_keys, o)]

    def _jth_working(self, j: int) -> int:
        """Ordinal of the working day that has exactly j working days before it."""
        hit = self._jth.get(j)
        if hit is None:
            hit = self._jth[j] = self._search_jth(j)
        return hit

    def _search_jth(self, j: int) -> int:
        # The override delta is bounded by [delta_min, delta_max], which brackets the answer.
        lo = _kth_weekday(j - self._delta_max)
        hi = _kth_weekday(j - self._delta_min)
        target = j + 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self._working_before(mid + 1) >= target:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _provisional(self, first: int, last: int) -> bool:
        """Whether any year touched by the ordinal range [first, last] lacks holiday data."""
        if first > last:
            first, last = last, first
        run = bisect_right(self._runs[0], first) - 1
        if run >= 0 and last <= self._runs[1][run]:
            return False  # inside a run of covered years
        y1 = date.fromordinal(max(first, 1)).year
        try:
            y2 = date.fromordinal(last).year
        except (ValueError, OverflowError):
            y2 = _MAX_YEAR
        covered = self._covered
        return any(y not in covered for y in range(y1, y2 + 1))

    # ------------------------------------------------------------ deadlines

    def add_working_days(self, start: datetime, n: int) -> Due:
        """Deadline at local 23:59:59 of the n-th working day after start's local date (次日起算)."""
        _require_aware(start, "start")
        n = index(n)
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        o = _local_parts(start)[0]
        key = (o, n)
        hit = self._dues.get(key)
        if hit is not None:
            return hit
        if n == 0:
            day = self._jth_working(self._working_before(o))
            first = o
        else:
            day = self._jth_working(self._working_before(o + 1) + n - 1)
            first = o + 1
        hit = self._dues[key] = Due(self._instant(day, _END_OF_DAY), self._provisional(first, day))
        return hit

    def add_working_days_from(self, start: datetime, n: int) -> datetime:
        """Convenience: add_working_days(start, n).at."""
        return self.add_working_days(start, n).at

    def add_hours(self, start: datetime, hours: float) -> Due:
        """Deadline start + hours of natural time (never provisional)."""
        _require_aware(start, "start")
        return Due((start + timedelta(hours=hours)).astimezone(UTC), False)

    def _position_us(self, o: int, us: int) -> int:
        """Working microseconds from the absolute epoch to local day o at offset us."""
        before, working = self._day(o)
        return before * _DAY_US + us if working else before * _DAY_US

    def working_seconds_between(self, a: datetime, b: datetime) -> float:
        """Seconds of [a, b) that fall on working days (whole local days); negative if b < a."""
        _require_aware(a, "a")
        _require_aware(b, "b")
        oa, ua = _local_parts(a)
        ob, ub = _local_parts(b)
        return (self._position_us(ob, ub) - self._position_us(oa, ua)) / 1_000_000

    def add_working_seconds(self, start: datetime, seconds: float) -> Due:
        """Earliest instant b >= start with working_seconds_between(start, b) == seconds.

        Negative seconds walk backwards (a clock that was already overdue stays overdue).
        """
        _require_aware(start, "start")
        s_us = round(seconds * 1_000_000)
        o, us = _local_parts(start)
        base, working = self._day(o)
        offset = us if working else 0
        k, rest = divmod(offset + s_us, _DAY_US)
        if rest == 0:
            # Exactly at a day boundary: the earliest such instant is the end of the
            # previous working day, not the start of the next one.
            day = self._jth_working(base + k - 1)
            at = self._instant(day + 1, _MIDNIGHT)
        else:
            day = self._jth_working(base + k)
            at = self._instant(day, _MIDNIGHT) + timedelta(microseconds=rest)
        start_utc = start.astimezone(UTC)
        if s_us >= 0 and at < start_utc:
            at = start_utc
        last = _local_parts(at)[0]
        return Due(at, self._provisional(o, last))

    def next_office_time(self, t: datetime) -> datetime:
        """t if within office hours on a working day, else the next office-hours start (UTC)."""
        _require_aware(t, "t")
        o, clock = _local_parts(t)
        hours = self.office_hours
        if self._is_working_ord(o):
            if self._office_us[0] <= clock < self._office_us[1]:
                return t.astimezone(UTC)
            if clock < self._office_us[0]:
                return self._instant(o, hours.start)
        day = self._jth_working(self._working_before(o + 1))
        return self._instant(day, hours.start)


# ------------------------------------------------------------------ CSV data

_HOLIDAY_WORDS = frozenset({"holiday", "休", "放假", "假"})
_WORKDAY_WORDS = frozenset({"workday", "makeup", "make-up", "班", "上班", "调休"})
_DATE_RE = re.compile(r"(\d{4})([-/])(\d{1,2})\2(\d{1,2})")


def _parse_kind(raw: str, lineno: int) -> bool:
    """Map a kind word to True (working day) or False (day off)."""
    word = raw.strip().lower()
    if word in _HOLIDAY_WORDS:
        return False
    if word in _WORKDAY_WORDS:
        return True
    raise ValueError(f"line {lineno}: bad kind {raw!r}; expected holiday/休/放假/假 or workday/makeup/班/上班/调休")


def _parse_date(raw: str, lineno: int) -> date:
    """Parse 2027-01-01 or 2027/1/1."""
    m = _DATE_RE.fullmatch(raw.strip())
    if m is None:
        raise ValueError(f"line {lineno}: bad date {raw!r}; expected YYYY-MM-DD or YYYY/M/D")
    try:
        return date(int(m.group(1)), int(m.group(3)), int(m.group(4)))
    except ValueError as exc:
        raise ValueError(f"line {lineno}: bad date {raw!r}: {exc}") from None


def local_iso(value: datetime | None) -> str | None:
    """A stored time as ISO 8601 in Asia/Shanghai, as the API shows times (None stays None)."""
    return value.astimezone(LOCAL_TZ).isoformat() if value else None


def load_holiday_csv(text: str) -> dict[date, bool]:
    """Parse a holiday notice CSV (`date,kind[,name]`) into date -> is-working-day overrides."""
    return read_holiday_csv(text)[0]


# The longest name of a holiday (calendar_days.name).
MAX_HOLIDAY_NAME = 50


def read_holiday_csv(text: str, year: int | None = None) -> tuple[dict[date, bool], dict[date, str]]:
    """Parse a holiday notice CSV (`date,kind[,name]`): the is-working-day overrides, and the
    names given (元旦, 春节…). With `year`, a day of another year is refused. ValueError
    names the line."""
    header: list[str] | None = None
    result: dict[date, bool] = {}
    names: dict[date, str] = {}
    seen_on: dict[date, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if lineno == 1:
            line = line.removeprefix("\ufeff")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = [f.strip() for f in next(csv.reader([line]))]
        if header is None:
            columns = [f.lower() for f in fields]
            if columns not in (["date", "kind"], ["date", "kind", "name"]):
                raise ValueError(f"line {lineno}: bad header {stripped!r}; expected 'date,kind' or 'date,kind,name'")
            header = columns
            continue
        if not 2 <= len(fields) <= len(header):
            raise ValueError(
                f"line {lineno}: expected {'2 or 3' if len(header) == 3 else '2'} fields, "
                f"got {len(fields)} in {stripped!r}"
            )
        day = _parse_date(fields[0], lineno)
        working = _parse_kind(fields[1], lineno)
        if year is not None and day.year != year:
            raise ValueError(f"line {lineno}: date {day.isoformat()} is not in {year}")
        if day in result and result[day] != working:
            raise ValueError(f"line {lineno}: date {fields[0]!r} conflicts with line {seen_on[day]}")
        result[day] = working
        seen_on.setdefault(day, lineno)
        if len(fields) > 2 and fields[2]:
            if len(fields[2]) > MAX_HOLIDAY_NAME:
                raise ValueError(f"line {lineno}: name longer than {MAX_HOLIDAY_NAME} characters")
            names[day] = fields[2]
    if header is None:
        raise ValueError("line 1: missing header 'date,kind[,name]'")
    return result, names
