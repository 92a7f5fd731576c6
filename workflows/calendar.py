"""Business-day arithmetic over a calendar snapshot. Pure: no clock, no I/O.

Rules (DESIGN section 5):

* "N business days after T" is the same local wall-clock time on the Nth work day after
  T's local date that is not a holiday. If that wall-clock time does not exist on the
  target day (a DST gap), the instant is taken as if the clock had not jumped yet,
  which lands just after the gap; on an ambiguous time (DST fold) the first one counts.
* The business opening at or after T is T itself when T falls inside business hours on
  a business day, otherwise the opening time of the next business day (possibly today).
* Every function takes and returns timezone-aware datetimes; results are in UTC.

Zone objects come from :mod:`workflows.zones`, which the workflow imports through the
sandbox; this arithmetic runs inside it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from workflows.models import CalendarSnapshot, Offset, OffsetUnit
from workflows.zones import zone

# A calendar with no work day at all would make every search loop forever.
_MAX_SEARCH_DAYS = 3660


def to_local(moment: datetime, calendar: CalendarSnapshot) -> datetime:
    return moment.astimezone(zone(calendar.timezone))


def _from_local(day: date, wall: datetime, calendar: CalendarSnapshot) -> datetime:
    local = datetime.combine(
        day, wall.timetz().replace(tzinfo=None), tzinfo=zone(calendar.timezone)
    )
    return local.astimezone(UTC)


def is_business_day(day: date, calendar: CalendarSnapshot) -> bool:
    return day.isoweekday() in calendar.work_days and day not in _holiday_set(calendar)


@lru_cache(maxsize=64)
def _holiday_set_cached(holidays: tuple[date, ...]) -> frozenset[date]:
    return frozenset(holidays)


def _holiday_set(calendar: CalendarSnapshot) -> frozenset[date]:
    return _holiday_set_cached(calendar.holidays)


def next_business_day(day: date, calendar: CalendarSnapshot) -> date:
    """The first business day strictly after ``day``."""
    candidate = day
    for _ in range(_MAX_SEARCH_DAYS):
        candidate += timedelta(days=1)
        if is_business_day(candidate, calendar):
            return candidate
    raise ValueError("the calendar has no business day in ten years")


def add_business_days(start: datetime, days: int, calendar: CalendarSnapshot) -> datetime:
    local = to_local(start, calendar)
    day = local.date()
    for _ in range(days):
        day = next_business_day(day, calendar)
    return _from_local(day, local, calendar)


def is_business_time(moment: datetime, calendar: CalendarSnapshot) -> bool:
    local = to_local(moment, calendar)
    return (
        is_business_day(local.date(), calendar)
        and calendar.opens_at <= local.time() < calendar.closes_at
    )


def next_business_opening(moment: datetime, calendar: CalendarSnapshot) -> datetime:
    """``moment`` if it is business time, else the next opening of a business day."""
    if is_business_time(moment, calendar):
        return moment.astimezone(UTC)
    local = to_local(moment, calendar)
    day = local.date()
    if not (is_business_day(day, calendar) and local.time() < calendar.opens_at):
        day = next_business_day(day, calendar)
    opening = datetime.combine(day, calendar.opens_at, tzinfo=zone(calendar.timezone))
    return opening.astimezone(UTC)


def apply_offset(start: datetime, offset: Offset, calendar: CalendarSnapshot) -> datetime:
    """``start`` moved forward by ``offset``. Calendar days keep the local wall-clock time."""
    match offset.unit:
        case OffsetUnit.SECONDS:
            return (start + timedelta(seconds=offset.amount)).astimezone(UTC)
        case OffsetUnit.MINUTES:
            return (start + timedelta(minutes=offset.amount)).astimezone(UTC)
        case OffsetUnit.HOURS:
            return (start + timedelta(hours=offset.amount)).astimezone(UTC)
        case OffsetUnit.CALENDAR_DAYS:
            local = to_local(start, calendar)
            return _from_local(local.date() + timedelta(days=offset.amount), local, calendar)
        case OffsetUnit.BUSINESS_DAYS:
            return add_business_days(start, offset.amount, calendar)
        case OffsetUnit.BUSINESS_HOURS:
            return add_business_seconds(start, offset.amount * 3600, calendar)
        case OffsetUnit.BUSINESS_MINUTES:
            return add_business_seconds(start, offset.amount * 60, calendar)
    raise ValueError(f"unknown offset unit {offset.unit!r}")


def business_day_seconds(calendar: CalendarSnapshot) -> int:
    """How long a business day is (opening to closing), in seconds."""
    opens = calendar.opens_at.hour * 3600 + calendar.opens_at.minute * 60
    closes = calendar.closes_at.hour * 3600 + calendar.closes_at.minute * 60
    return closes - opens


def _business_window(day: date, calendar: CalendarSnapshot) -> tuple[datetime, datetime]:
    """A business day's opening and closing instants (UTC)."""
    tz = zone(calendar.timezone)
    opens = datetime.combine(day, calendar.opens_at, tzinfo=tz).astimezone(UTC)
    closes = datetime.combine(day, calendar.closes_at, tzinfo=tz).astimezone(UTC)
    return opens, closes


def business_seconds(start: datetime, end: datetime, calendar: CalendarSnapshot) -> float:
    """The business time between ``start`` and ``end``, in seconds (0 if reversed)."""
    if end <= start:
        return 0.0
    total = 0.0
    day = to_local(start, calendar).date()
    last = to_local(end, calendar).date()
    while day <= last:
        if is_business_day(day, calendar):
            opens, closes = _business_window(day, calendar)
            overlap = (min(closes, end) - max(opens, start)).total_seconds()
            if overlap > 0:
                total += overlap
        day += timedelta(days=1)
    return total


def add_business_seconds(start: datetime, seconds: float, calendar: CalendarSnapshot) -> datetime:
    """The instant ``seconds`` of business time after ``start`` (``start`` itself for 0)."""
    if seconds <= 0:
        return start.astimezone(UTC)
    remaining = float(seconds)
    day = to_local(start, calendar).date()
    for _ in range(_MAX_SEARCH_DAYS * 10):
        if is_business_day(day, calendar):
            opens, closes = _business_window(day, calendar)
            begin = max(opens, start)
            available = (closes - begin).total_seconds()
            if available > 0:
                if remaining <= available:
                    return begin + timedelta(seconds=remaining)
                remaining -= available
        day += timedelta(days=1)
    raise ValueError("the calendar has no business time in a hundred years")
