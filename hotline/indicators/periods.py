"""Periods of local days: what the indicators, the analysis and the reports count over.

`parse` is the one reading of the period a page or an API call asks for (a month, an ISO
week, or a range from/to), with the same rules and the same errors everywhere: a 422 that
names the parameter, in English for the API and in Chinese on the pages.
"""

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import Query

from hotline.deadlines.calendar import LOCAL_TZ
from hotline.errors import Invalid
from hotline.inputs import check_day

MAX_DAYS = 366 * 3  # the longest range a query may ask for


@dataclass(frozen=True)
class Period:
    """A span of local days [start, end] and how to name it."""

    start: date
    end: date
    kind: str = "range"  # daily | weekly | monthly | range
    # A week or month still running: `end` is today, not the end of the week or month.
    partial: bool = False

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """The period as UTC instants [from, to)."""
        return bounds(self.start, self.end)

    @property
    def label(self) -> str:
        s, e = self.start, self.end
        if self.partial and self.kind == "monthly":
            return f"{s.year}年{s.month}月（截至{e.day}日）"
        if self.partial and self.kind == "weekly":
            year, week, _ = s.isocalendar()
            return f"{year}年第{week}周（{s.month}月{s.day}日至{e.month}月{e.day}日）"
        if self.kind == "daily":
            return f"{s.year}年{s.month}月{s.day}日"
        if self.kind == "weekly":
            year, week, _ = s.isocalendar()
            return f"{year}年第{week}周（{s.month}月{s.day}日—{e.month}月{e.day}日）"
        if self.kind == "monthly":
            return f"{s.year}年{s.month}月"
        if s == e:
            return f"{s.year}年{s.month}月{s.day}日"
        if s.year == e.year:
            return f"{s.year}年{s.month}月{s.day}日至{e.month}月{e.day}日"
        return f"{s.year}年{s.month}月{s.day}日至{e.year}年{e.month}月{e.day}日"

    @property
    def plain_label(self) -> str:
        """The label without brackets, to go inside a title's brackets."""
        return self.label.replace("（", "，").replace("）", "")

    @property
    def iso(self) -> str:
        return self.start.isoformat() if self.start == self.end else f"{self.start.isoformat()}_{self.end.isoformat()}"

    @property
    def range_query(self) -> str:
        """The query string that asks for these days."""
        return f"from={self.start.isoformat()}&to={self.end.isoformat()}"

    @property
    def query(self) -> str:
        """The query string that asks for this period again: a month as a month, a week as a week."""
        if self.kind == "monthly":
            return f"month={self.start:%Y-%m}"
        if self.kind == "weekly":
            return f"week={iso_week(self.start)}"
        return self.range_query


def bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The local days [start, end] as UTC instants [from, to)."""
    return (
        datetime.combine(start, time(0), LOCAL_TZ),
        datetime.combine(end + timedelta(days=1), time(0), LOCAL_TZ),
    )


def local_today(now: datetime) -> date:
    return now.astimezone(LOCAL_TZ).date()


def iso_week(day: date) -> str:
    """The ISO week of a day as a query gives it: 2026-W45."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def month_end(day: date) -> date:
    first_next = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first_next - timedelta(days=1)


def period_of(kind: str, day: date) -> Period:
    """The day, ISO week or month that contains `day`."""
    if kind == "daily":
        return Period(day, day, kind)
    if kind == "weekly":
        monday = day - timedelta(days=day.weekday())
        return Period(monday, monday + timedelta(days=6), kind)
    if kind == "monthly":
        return Period(day.replace(day=1), month_end(day), kind)
    raise ValueError(kind)


def last_ended(kind: str, today: date) -> Period:
    """The latest period of the kind that is over by the start of `today`."""
    current = period_of(kind, today)
    return period_of(kind, current.start - timedelta(days=1))


# --- the period a query asks for --------------------------------------------------------------

MonthQuery = Annotated[str | None, Query(description="a month, YYYY-MM", max_length=16)]
WeekQuery = Annotated[str | None, Query(description="an ISO week, YYYY-Www", max_length=16)]
FromQuery = Annotated[str | None, Query(alias="from", description="the first day, YYYY-MM-DD", max_length=16)]
ToQuery = Annotated[str | None, Query(alias="to", description="the last day, YYYY-MM-DD", max_length=16)]


def _day(text: str, field: str) -> date:
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return check_day(date.fromisoformat(text), field)
    except ValueError:
        pass
    raise Invalid(f"not a date (YYYY-MM-DD): {text!r}", field=field, zh=f"日期格式不正确：{text}")


def _month(text: str) -> date:
    m = re.fullmatch(r"(\d{4})-(\d{2})", text)
    try:
        if m:
            return check_day(date(int(m.group(1)), int(m.group(2)), 1), "month")
    except ValueError:
        pass
    raise Invalid(f"no such month (YYYY-MM): {text!r}", field="month", zh=f"没有这个月份：{text}")


def _monday(text: str) -> date:
    m = re.fullmatch(r"(\d{4})-W(\d{2})", text)
    try:
        if m:
            return check_day(date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1), "week")
    except ValueError:
        pass
    raise Invalid(f"no such week (YYYY-Www): {text!r}", field="week", zh=f"没有这一周：{text}")


def parse(
    today: date, *, month: str | None = None, week: str | None = None, start: str | None = None, end: str | None = None
) -> Period:
    """The period a query asks for: from/to, else a week, else a month (this month by default).

    From alone runs to today; to alone starts on the first of this month. A week or month
    still running ends today, and so does a range; a period that starts after today, a
    range that ends before it starts or spans more than three years is refused (Invalid).
    """
    if start or end:
        lo = _day(start, "from") if start else today.replace(day=1)
        hi = _day(end, "to") if end else today
        if end and hi < lo:
            raise Invalid("'to' is before 'from'", field="to", zh="结束日期早于开始日期")
        if lo > today:
            raise Invalid("the period has not begun", field="from", zh="所选时段尚未开始")
        if (hi - lo).days > MAX_DAYS:
            raise Invalid("a period spans at most three years", field="from", zh="统计时段最长三年")
        return Period(lo, min(hi, today))
    if week:
        field, period = "week", period_of("weekly", _monday(week))
    else:
        field, period = "month", period_of("monthly", _month(month) if month else today)
    if period.start > today:
        raise Invalid("the period has not begun", field=field, zh="所选时段尚未开始")
    if period.end >= today:
        return Period(period.start, today, period.kind, partial=period.end > today)
    return period
