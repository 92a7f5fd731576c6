from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from activities.calendar import build_calendar_snapshot
from workflows import calendar as cal
from workflows.models import (
    CalendarRequest,
    CalendarSnapshot,
    Offset,
    OffsetUnit,
)

SP = ZoneInfo("America/Sao_Paulo")
NY = ZoneInfo("America/New_York")
BR = CalendarSnapshot(holidays=(date(2026, 12, 25), date(2027, 1, 1)))
NEW_YORK = CalendarSnapshot(timezone="America/New_York")


def sp(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SP)


def test_business_days_skip_the_weekend() -> None:
    friday = sp(2026, 11, 27, 10, 0)
    assert cal.add_business_days(friday, 1, BR) == sp(2026, 11, 30, 10, 0)
    assert cal.add_business_days(friday, 2, BR) == sp(2026, 12, 1, 10, 0)


def test_business_days_skip_holidays() -> None:
    # Thursday 24 Dec + 1 business day skips Christmas (Friday) and the weekend.
    assert cal.add_business_days(sp(2026, 12, 24, 9, 0), 1, BR) == sp(2026, 12, 28, 9, 0)


def test_business_days_from_a_weekend_count_from_monday() -> None:
    saturday = sp(2026, 11, 28, 15, 0)
    assert cal.add_business_days(saturday, 1, BR) == sp(2026, 11, 30, 15, 0)


def test_results_are_utc() -> None:
    result = cal.add_business_days(sp(2026, 11, 23, 10, 0), 2, BR)
    assert result.tzinfo is UTC
    assert result == datetime(2026, 11, 25, 13, 0, tzinfo=UTC)


def test_business_days_across_spring_forward_keep_the_wall_clock() -> None:
    # Friday 12 March 2027 10:00 EST; DST starts Sunday 14 March. Tuesday is 10:00 EDT.
    start = datetime(2027, 3, 12, 10, 0, tzinfo=NY)
    due = cal.add_business_days(start, 2, NEW_YORK)
    assert due == datetime(2027, 3, 16, 14, 0, tzinfo=UTC)
    assert due - start == timedelta(days=4, hours=-1)


def test_business_days_across_fall_back_keep_the_wall_clock() -> None:
    start = datetime(2027, 11, 5, 10, 0, tzinfo=NY)  # Friday, EDT
    due = cal.add_business_days(start, 1, NEW_YORK)  # Monday, EST
    assert due == datetime(2027, 11, 8, 15, 0, tzinfo=UTC)


def test_wall_clock_inside_a_dst_gap_lands_after_it() -> None:
    weekend = CalendarSnapshot(timezone="America/New_York", work_days=(1, 2, 3, 4, 5, 6, 7))
    start = datetime(2027, 3, 13, 2, 30, tzinfo=NY)  # Saturday 02:30 EST
    due = cal.add_business_days(start, 1, weekend)  # Sunday 02:30 does not exist
    assert due.astimezone(NY).hour == 3


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (sp(2026, 11, 23, 10, 0), sp(2026, 11, 23, 10, 0)),  # inside hours
        (sp(2026, 11, 23, 7, 0), sp(2026, 11, 23, 8, 0)),  # before opening
        (sp(2026, 11, 23, 18, 30), sp(2026, 11, 24, 8, 0)),  # after closing
        (sp(2026, 11, 23, 18, 0), sp(2026, 11, 24, 8, 0)),  # closing time is closed
        (sp(2026, 11, 27, 19, 0), sp(2026, 11, 30, 8, 0)),  # Friday night
        (sp(2026, 12, 24, 18, 30), sp(2026, 12, 28, 8, 0)),  # before Christmas
    ],
)
def test_next_business_opening(moment: datetime, expected: datetime) -> None:
    assert cal.next_business_opening(moment, BR) == expected


def test_calendar_days_keep_local_time_across_dst() -> None:
    start = datetime(2027, 3, 13, 9, 0, tzinfo=NY)
    due = cal.apply_offset(start, Offset(amount=2, unit=OffsetUnit.CALENDAR_DAYS), NEW_YORK)
    assert due.astimezone(NY) == datetime(2027, 3, 15, 9, 0, tzinfo=NY)


def test_snapshot_holds_brazilian_national_holidays() -> None:
    snapshot = build_calendar_snapshot(
        CalendarRequest(
            timezone="America/Sao_Paulo",
            work_days=(1, 2, 3, 4, 5),
            opens_at=time(8),
            closes_at=time(18),
            country="BR",
            subdivision=None,
            from_year=2026,
            years_ahead=2,
        )
    )
    assert date(2026, 12, 25) in snapshot.holidays
    assert date(2027, 9, 7) in snapshot.holidays  # Independence Day
    assert snapshot.valid_until == date(2028, 12, 31)


def test_snapshot_refuses_an_unknown_country() -> None:
    request = CalendarRequest(
        timezone="UTC",
        work_days=(1,),
        opens_at=time(8),
        closes_at=time(18),
        country="XX",
        subdivision=None,
        from_year=2026,
    )
    with pytest.raises(ValueError, match="no holiday calendar"):
        build_calendar_snapshot(request)


moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(SP)
)


@given(moments, st.integers(min_value=1, max_value=30))
def test_business_days_land_on_a_business_day_at_the_same_wall_clock(
    start: datetime, days: int
) -> None:
    due = cal.add_business_days(start, days, BR)
    local = due.astimezone(SP)
    assert cal.is_business_day(local.date(), BR)
    assert local.time().replace(microsecond=0) == start.time().replace(microsecond=0)
    assert due > start


@given(moments)
def test_next_opening_is_business_time_and_not_earlier(moment: datetime) -> None:
    opening = cal.next_business_opening(moment, BR)
    assert opening >= moment
    assert cal.is_business_time(opening, BR)
