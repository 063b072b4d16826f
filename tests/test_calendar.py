"""Tests for hotline.deadlines.calendar: working days, working seconds, office hours, holiday CSV."""

from __future__ import annotations

import random
import time as walltime
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from hotline.deadlines.calendar import (
    LOCAL_TZ,
    Due,
    OfficeHours,
    WorkCalendar,
    load_holiday_csv,
)

L = LOCAL_TZ
HOUR = 3600.0
DAY = 86400.0

# Fictional 2027 data used by the tests (not the official notice).
FAKE_2027 = {
    date(2027, 1, 1): False,  # Friday, New Year's Day
    date(2027, 1, 4): False,  # Monday, bridge day off
    date(2027, 1, 9): True,  # Saturday, make-up working day
}


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar.from_chinese_calendar()


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=L)


def eod(y: int, m: int, d: int) -> datetime:
    """Local 23:59:59 of a day, in UTC."""
    return datetime(y, m, d, 23, 59, 59, tzinfo=L).astimezone(UTC)


def brute_nth_working_day(c: WorkCalendar, start_day: date, n: int) -> date:
    """Reference: walk day by day (次日起算)."""
    d = start_day
    if n == 0:
        while not c.is_working_day(d):
            d += timedelta(days=1)
        return d
    left = n
    while left:
        d += timedelta(days=1)
        if c.is_working_day(d):
            left -= 1
    return d


def brute_working_seconds(c: WorkCalendar, a: datetime, b: datetime) -> float:
    """Reference: sum the working part of [a, b) day by day."""
    sign = 1.0
    if b < a:
        a, b, sign = b, a, -1.0
    total = 0.0
    cur = a.astimezone(L)
    end = b.astimezone(L)
    while cur < end:
        nxt = datetime.combine(cur.date() + timedelta(days=1), time(), L)
        piece_end = min(nxt, end)
        if c.is_working_day(cur.date()):
            total += (piece_end - cur).total_seconds()
        cur = piece_end
    return sign * total


# ------------------------------------------------------------- day rules


def test_default_rule_mon_to_fri_without_overrides() -> None:
    c = WorkCalendar({}, [])
    assert c.is_working_day(date(2030, 3, 4))  # Monday
    assert c.is_working_day(date(2030, 3, 8))  # Friday
    assert not c.is_working_day(date(2030, 3, 9))  # Saturday
    assert not c.is_working_day(date(2030, 3, 10))  # Sunday


def test_chinese_calendar_holidays_and_makeup_days(cal: WorkCalendar) -> None:
    assert not cal.is_working_day(date(2026, 10, 1))
    assert not cal.is_working_day(date(2026, 10, 7))  # Wednesday, holiday
    assert cal.is_working_day(date(2026, 9, 20))  # Sunday, make-up
    assert cal.is_working_day(date(2026, 10, 10))  # Saturday, make-up
    assert cal.is_covered(date(2026, 1, 1))
    assert cal.is_covered(date(2004, 1, 1))
    assert not cal.is_covered(date(2027, 1, 1))
    assert cal.covered_years == frozenset(range(2004, 2027))


def test_from_chinese_calendar_years_limits_coverage_and_overrides() -> None:
    c = WorkCalendar.from_chinese_calendar(years=[2026, 2031])
    assert c.covered_years == frozenset({2026})
    assert not c.is_working_day(date(2026, 10, 1))
    # 2025-10-01 is a National Day holiday, but 2025 was not requested.
    assert c.is_working_day(date(2025, 10, 1))
    assert not c.is_covered(date(2025, 10, 1))


def test_missing_years(cal: WorkCalendar) -> None:
    assert cal.missing_years(date(2025, 6, 1), date(2028, 1, 1)) == [2027, 2028]
    assert cal.missing_years(date(2026, 1, 1), date(2026, 12, 31)) == []


def test_override_keys_must_be_dates_not_datetimes() -> None:
    with pytest.raises(TypeError):
        WorkCalendar({local(2026, 1, 1): False}, [2026])


def test_office_hours_must_start_before_end() -> None:
    with pytest.raises(ValueError):
        OfficeHours(time(18, 0), time(9, 0))


# --------------------------------------------------------- add_working_days


def test_add_working_days_skips_national_day_and_counts_makeup_saturday(
    cal: WorkCalendar,
) -> None:
    due = cal.add_working_days(local(2026, 9, 30, 10, 0), 3)
    assert due == Due(eod(2026, 10, 10), False)
    assert due.at.tzinfo is UTC
    assert due.at == datetime(2026, 10, 10, 15, 59, 59, tzinfo=UTC)


def test_add_working_days_friday_evening_plus_one_is_monday(cal: WorkCalendar) -> None:
    due = cal.add_working_days(local(2026, 11, 27, 19, 0), 1)
    assert due == Due(eod(2026, 11, 30), False)


def test_add_working_days_counting_starts_next_day_even_early_morning(
    cal: WorkCalendar,
) -> None:
    # 00:05 Tuesday: Tuesday itself is not counted.
    assert cal.add_working_days(local(2026, 11, 24, 0, 5), 1).at == eod(2026, 11, 25)


def test_add_working_days_start_on_holiday(cal: WorkCalendar) -> None:
    due = cal.add_working_days(local(2026, 10, 3, 9, 0), 1)
    assert due == Due(eod(2026, 10, 8), False)
    assert cal.add_working_days(local(2026, 10, 3, 9, 0), 3).at == eod(2026, 10, 10)


def test_add_working_days_zero_is_end_of_start_day_or_next_working_day(
    cal: WorkCalendar,
) -> None:
    assert cal.add_working_days(local(2026, 11, 24, 10, 0), 0).at == eod(2026, 11, 24)
    assert cal.add_working_days(local(2026, 10, 2, 10, 0), 0).at == eod(2026, 10, 8)


def test_add_working_days_uses_local_date_of_input_in_other_zone(
    cal: WorkCalendar,
) -> None:
    # 2026-11-27 20:00 UTC is Saturday 04:00 in Shanghai: counting starts Sunday.
    start = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
    assert cal.add_working_days(start, 1).at == eod(2026, 11, 30)
    ny = datetime(2026, 9, 29, 22, 0, tzinfo=ZoneInfo("America/New_York"))  # Sep 30 10:00 local
    assert cal.add_working_days(ny, 3).at == eod(2026, 10, 10)


def test_add_working_days_into_2027_without_data_is_provisional_mon_to_fri(
    cal: WorkCalendar,
) -> None:
    # Dec 31 (Thu), Jan 1 (Fri, fallback working), Jan 4, 5, 6.
    due = cal.add_working_days(local(2026, 12, 30, 10, 0), 5)
    assert due == Due(eod(2027, 1, 6), True)


def test_add_working_days_with_2027_data_loaded_is_final_and_moves_around_holiday(
    cal: WorkCalendar,
) -> None:
    c2027 = cal.extended(FAKE_2027, [2027])
    assert c2027.is_covered(date(2027, 6, 1))
    # Dec 31, (Jan 1 and Jan 4 off), Jan 5, 6, 7, 8.
    due = c2027.add_working_days(local(2026, 12, 30, 10, 0), 5)
    assert due == Due(eod(2027, 1, 8), False)
    # The make-up Saturday Jan 9 counts.
    assert c2027.add_working_days(local(2026, 12, 30, 10, 0), 6) == Due(eod(2027, 1, 9), False)
    # The original calendar is unchanged.
    assert cal.add_working_days(local(2026, 12, 30, 10, 0), 5).provisional


def test_add_working_days_within_covered_year_is_not_provisional_near_uncovered(
    cal: WorkCalendar,
) -> None:
    assert not cal.add_working_days(local(2026, 12, 28, 10, 0), 3).provisional  # ends Dec 31


def test_add_working_days_matches_day_by_day_reference(cal: WorkCalendar) -> None:
    rng = random.Random(12345)
    c2027 = cal.extended(FAKE_2027, [2027])
    for c in (cal, c2027, WorkCalendar({}, [])):
        for _ in range(400):
            start_day = date(2003, 6, 1) + timedelta(days=rng.randrange(0, 9000))
            n = rng.choice([0, 1, 2, 3, 5, 10, 15, 20, 60, rng.randrange(0, 400)])
            start = local(start_day.year, start_day.month, start_day.day, rng.randrange(24))
            expected = brute_nth_working_day(c, start_day, n)
            due = c.add_working_days(start, n)
            assert due.at == eod(expected.year, expected.month, expected.day), (
                start,
                n,
            )
            first = start_day if n == 0 else start_day + timedelta(days=1)
            assert due.provisional == bool(c.missing_years(first, expected)), (start, n)


def test_add_working_days_large_n_terminates_quickly_and_is_exact(
    cal: WorkCalendar,
) -> None:
    start = local(2026, 1, 5, 9, 0)
    t0 = walltime.perf_counter()
    due = cal.add_working_days(start, 10_000)
    assert walltime.perf_counter() - t0 < 0.05
    assert due.provisional
    expected = brute_nth_working_day(cal, date(2026, 1, 5), 10_000)
    assert due.at == eod(expected.year, expected.month, expected.day)


def test_add_working_days_is_fast_for_typical_n(cal: WorkCalendar) -> None:
    start = local(2026, 9, 30, 10, 0)
    t0 = walltime.perf_counter()
    for _ in range(5000):
        cal.add_working_days(start, 60)
    per_call = (walltime.perf_counter() - t0) / 5000
    assert per_call < 200e-6  # generous; typically ~10 microseconds


def test_add_working_days_rejects_negative_n(cal: WorkCalendar) -> None:
    with pytest.raises(ValueError):
        cal.add_working_days(local(2026, 1, 5, 9, 0), -1)


def test_add_working_days_from_returns_datetime(cal: WorkCalendar) -> None:
    assert cal.add_working_days_from(local(2026, 9, 30, 10, 0), 3) == eod(2026, 10, 10)


# ----------------------------------------------------------------- add_hours


def test_add_hours_is_natural_time_in_utc(cal: WorkCalendar) -> None:
    due = cal.add_hours(local(2026, 10, 1, 22, 0), 2.5)
    assert due == Due(datetime(2026, 10, 1, 16, 30, tzinfo=UTC), False)
    assert due.at.tzinfo is UTC
    # Natural time ignores holidays, even in years without data.
    assert cal.add_hours(local(2027, 1, 1, 0, 0), 48) == Due(local(2027, 1, 3, 0, 0), False)


# ------------------------------------------------- working seconds / suspend


def test_working_seconds_between_skips_holidays(cal: WorkCalendar) -> None:
    a = local(2026, 9, 30, 12, 0)
    b = local(2026, 10, 8, 12, 0)
    assert cal.working_seconds_between(a, b) == 24 * HOUR
    assert cal.working_seconds_between(b, a) == -24 * HOUR
    assert cal.working_seconds_between(a, a) == 0.0


def test_working_seconds_between_counts_makeup_day_whole(cal: WorkCalendar) -> None:
    a = local(2026, 10, 10, 0, 0)
    b = local(2026, 10, 12, 0, 0)
    assert cal.working_seconds_between(a, b) == DAY


def test_working_seconds_between_matches_reference(cal: WorkCalendar) -> None:
    rng = random.Random(7)
    base = local(2025, 12, 1, 0, 0)
    for _ in range(300):
        a = base + timedelta(seconds=rng.randrange(0, 500 * 86400))
        b = a + timedelta(seconds=rng.randrange(-40 * 86400, 40 * 86400))
        assert cal.working_seconds_between(a, b) == pytest.approx(brute_working_seconds(cal, a, b), abs=1e-6)


def test_suspend_across_national_day_then_resume_round_trips(cal: WorkCalendar) -> None:
    due = cal.add_working_days(local(2026, 9, 28, 9, 0), 4).at  # Sep 29, 30, Oct 8, 9
    assert due == eod(2026, 10, 9)
    suspended = local(2026, 9, 29, 15, 0)
    left = cal.working_seconds_between(suspended, due)
    assert left == 9 * HOUR + 3 * DAY - 1  # Sep 29 rest, Sep 30, Oct 8, Oct 9 minus 1 s
    resumed = local(2026, 10, 5, 12, 0)  # resumed during the holiday
    new_due = cal.add_working_seconds(resumed, left)
    # Counting starts Oct 8 00:00: Oct 8, 9, 10 (make-up Sat) then 8:59:59 into Mon Oct 12.
    assert new_due == Due(local(2026, 10, 12, 8, 59, 59).astimezone(UTC), False)
    assert cal.working_seconds_between(resumed, new_due.at) == left


def test_add_working_seconds_starting_on_non_working_day_starts_next_working_midnight(
    cal: WorkCalendar,
) -> None:
    due = cal.add_working_seconds(local(2026, 11, 28, 15, 0), HOUR)  # Saturday
    assert due.at == local(2026, 11, 30, 1, 0)


def test_add_working_seconds_ending_on_day_boundary_is_end_of_working_day(
    cal: WorkCalendar,
) -> None:
    due = cal.add_working_seconds(local(2026, 11, 27, 12, 0), 12 * HOUR)  # Friday noon
    assert due.at == local(2026, 11, 28, 0, 0)  # end of Friday, not Monday 00:00


def test_add_working_seconds_zero_returns_start(cal: WorkCalendar) -> None:
    sat = local(2026, 11, 28, 15, 0)
    assert cal.add_working_seconds(sat, 0).at == sat
    assert cal.add_working_seconds(sat, 0).at.tzinfo is UTC


def test_add_working_seconds_negative_walks_back_for_overdue_clock(
    cal: WorkCalendar,
) -> None:
    start = local(2026, 11, 30, 1, 0)  # Monday 01:00
    due = cal.add_working_seconds(start, -2 * HOUR)
    assert due.at == local(2026, 11, 27, 23, 0)  # Friday 23:00
    assert cal.working_seconds_between(due.at, start) == 2 * HOUR


def test_add_working_seconds_round_trips_randomly(cal: WorkCalendar) -> None:
    rng = random.Random(99)
    base = local(2025, 9, 1, 0, 0)
    for _ in range(300):
        start = base + timedelta(seconds=rng.randrange(0, 400 * 86400))
        secs = float(rng.randrange(-20 * 86400, 40 * 86400))
        due = cal.add_working_seconds(start, secs)
        assert cal.working_seconds_between(start, due.at) == secs, (start, secs)


def test_add_working_seconds_into_2027_is_provisional(cal: WorkCalendar) -> None:
    assert cal.add_working_seconds(local(2026, 12, 31, 12, 0), DAY).provisional
    assert not cal.add_working_seconds(local(2026, 12, 30, 12, 0), DAY / 4).provisional


# ----------------------------------------------------------- office hours


def test_next_office_time_at_night_is_next_morning(cal: WorkCalendar) -> None:
    assert cal.next_office_time(local(2026, 11, 24, 20, 0)) == local(2026, 11, 25, 8, 30)


def test_next_office_time_at_closing_time_is_next_morning(cal: WorkCalendar) -> None:
    assert cal.next_office_time(local(2026, 11, 24, 17, 30)) == local(2026, 11, 25, 8, 30)


def test_next_office_time_at_weekend_is_monday_morning(cal: WorkCalendar) -> None:
    assert cal.next_office_time(local(2026, 11, 28, 10, 0)) == local(2026, 11, 30, 8, 30)


def test_next_office_time_during_holiday_is_first_working_morning(
    cal: WorkCalendar,
) -> None:
    assert cal.next_office_time(local(2026, 9, 30, 18, 0)) == local(2026, 10, 8, 8, 30)


def test_next_office_time_during_office_hours_is_unchanged(cal: WorkCalendar) -> None:
    t = local(2026, 11, 24, 10, 15, 30)
    out = cal.next_office_time(t)
    assert out == t
    assert out.tzinfo is UTC
    assert cal.next_office_time(local(2026, 10, 10, 10, 0)) == local(2026, 10, 10, 10, 0)


def test_next_office_time_before_opening_is_same_day(cal: WorkCalendar) -> None:
    out = cal.next_office_time(local(2026, 11, 24, 7, 0))
    assert out == local(2026, 11, 24, 8, 30)
    assert out.tzinfo is UTC


def test_next_office_time_custom_hours_and_foreign_zone() -> None:
    c = WorkCalendar({}, [], OfficeHours(time(9, 0), time(12, 0)))
    # 2030-03-04 03:30 UTC = Monday 11:30 Shanghai: inside office hours.
    assert c.next_office_time(datetime(2030, 3, 4, 3, 30, tzinfo=UTC)) == local(2030, 3, 4, 11, 30)
    # 05:00 UTC = 13:00 Shanghai: after closing.
    assert c.next_office_time(datetime(2030, 3, 4, 5, 0, tzinfo=UTC)) == local(2030, 3, 5, 9, 0)


# ------------------------------------------------------------ naive inputs


def test_naive_datetime_raises_value_error(cal: WorkCalendar) -> None:
    naive = datetime(2026, 9, 30, 10, 0)
    aware = local(2026, 9, 30, 10, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.add_working_days(naive, 1)
    with pytest.raises(ValueError):
        cal.add_hours(naive, 1)
    with pytest.raises(ValueError):
        cal.working_seconds_between(naive, aware)
    with pytest.raises(ValueError):
        cal.working_seconds_between(aware, naive)
    with pytest.raises(ValueError):
        cal.add_working_seconds(naive, 10)
    with pytest.raises(ValueError):
        cal.next_office_time(naive)


def test_fixed_offset_inputs_are_accepted(cal: WorkCalendar) -> None:
    plus8 = timezone(timedelta(hours=8))
    start = datetime(2026, 9, 30, 10, 0, tzinfo=plus8)
    assert cal.add_working_days(start, 3).at == eod(2026, 10, 10)


# --------------------------------------------------------------------- CSV


def test_load_holiday_csv_parses_iso_slash_dates_and_chinese_kinds() -> None:
    text = (
        "\ufeffdate,kind,name\n"
        "# 2027 notice (fictional)\n"
        "\n"
        "2027-01-01,holiday,元旦\n"
        "2027/1/4,休,\n"
        "2027/01/09,班,元旦调休\n"
        '2027-02-06, 上班 ,"Spring Festival, make-up"\n'
        "2027-02-08,放假\n"
        "2027-02-09,假\n"
        "2027-02-20,调休\n"
        "2027-02-21,WORKDAY\n"
        "  # indented comment\n"
    )
    assert load_holiday_csv(text) == {
        date(2027, 1, 1): False,
        date(2027, 1, 4): False,
        date(2027, 1, 9): True,
        date(2027, 2, 6): True,
        date(2027, 2, 8): False,
        date(2027, 2, 9): False,
        date(2027, 2, 20): True,
        date(2027, 2, 21): True,
    }


def test_load_holiday_csv_accepts_makeup_for_make_up_working_days() -> None:
    text = "date,kind,name\n2027-02-06,makeup,春节调休\n2027-02-07,Make-Up\n2027-02-08,holiday\n"
    assert load_holiday_csv(text) == {date(2027, 2, 6): True, date(2027, 2, 7): True, date(2027, 2, 8): False}


def test_load_holiday_csv_header_without_name_and_empty_body() -> None:
    assert load_holiday_csv("date,kind\n") == {}
    assert load_holiday_csv("date,kind\n2027-01-01,holiday\n") == {date(2027, 1, 1): False}


def test_load_holiday_csv_feeds_calendar(cal: WorkCalendar) -> None:
    overrides = load_holiday_csv("date,kind\n2027-01-01,holiday\n2027-01-04,休\n2027-01-09,班\n")
    c = cal.extended(overrides, [2027])
    assert c.add_working_days(local(2026, 12, 30, 10, 0), 5) == Due(eod(2027, 1, 8), False)


@pytest.mark.parametrize(
    ("text", "line", "value"),
    [
        ("date,kind\n2027-01-01,holiday\n2027-13-01,holiday\n", 3, "2027-13-01"),
        ("date,kind\n\n# c\n20270101,holiday\n", 4, "20270101"),
        ("date,kind\n2027-01-01,vacation\n", 2, "vacation"),
        ("date,kind\n2027-02-30,holiday\n", 2, "2027-02-30"),
        ("date,kind\n2027-01-01\n", 2, "2027-01-01"),
        ("date,kind\n2027-01-01,holiday,extra\n", 2, "extra"),
        ("date,kind,name\n2027-01-01,holiday,x,y\n", 2, "y"),
        ("date,kind\n2027-01-01,holiday\n2027/1/1,班\n", 3, "2027/1/1"),
        ("day,type\n2027-01-01,holiday\n", 1, "day,type"),
        ("# only a comment\n2027-01-01,holiday\n", 2, "2027-01-01"),
    ],
)
def test_load_holiday_csv_bad_row_names_line_and_value(text: str, line: int, value: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        load_holiday_csv(text)
    message = str(excinfo.value)
    assert f"line {line}" in message
    assert value in message


def test_load_holiday_csv_missing_header_raises() -> None:
    with pytest.raises(ValueError, match="header"):
        load_holiday_csv("\n# nothing here\n")
