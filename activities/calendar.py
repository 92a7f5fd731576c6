"""Calendar snapshots: the holiday list resolved outside the workflow, passed in as data."""

from __future__ import annotations

from datetime import date

import holidays
from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.models import CalendarRequest, CalendarSnapshot
from workflows.zones import zone


def build_calendar_snapshot(request: CalendarRequest) -> CalendarSnapshot:
    """Holidays of the configured country and subdivision, ``years_ahead`` years on.

    Raises ``ValueError`` for an unknown country, subdivision or time zone.
    """
    try:
        zone(request.timezone)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"unknown time zone {request.timezone!r}") from exc
    last_year = request.from_year + request.years_ahead
    days: tuple[date, ...] = ()
    if request.country:
        years = range(request.from_year, last_year + 1)
        try:
            table = holidays.country_holidays(
                request.country, subdiv=request.subdivision, years=years
            )
        except RuntimeError as exc:  # holidays' "not available" error derives from it
            raise ValueError(
                f"no holiday calendar for country {request.country!r}"
                f" and subdivision {request.subdivision!r}"
            ) from exc
        days = tuple(table.keys())
    return CalendarSnapshot(
        timezone=request.timezone,
        work_days=request.work_days,
        opens_at=request.opens_at,
        closes_at=request.closes_at,
        holidays=tuple(sorted({*days, *request.closed_dates})),
        country=request.country,
        subdivision=request.subdivision,
        closed_dates=request.closed_dates,
        valid_until=date(last_year, 12, 31),
    )


class CalendarActivities:
    """Refreshes a running ticket's calendar before its holiday list runs out."""

    @activity.defn(name="build_calendar_snapshot")
    async def build_snapshot(self, request: CalendarRequest) -> CalendarSnapshot:
        try:
            return build_calendar_snapshot(request)
        except ValueError as exc:
            raise ApplicationError(str(exc), type="InvalidCalendar", non_retryable=True) from exc
