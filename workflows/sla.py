"""SLA clocks, derived from a ticket's own timeline. Pure: no clock, no I/O.

Nothing is counted in place: after every change the clocks are computed again from the
events (when the ticket was submitted, when each email went out, each customer message,
each wait and resolution), the current priority's targets and the calendar. So a
priority change re-targets the clocks over the whole history, a pause is never lost,
and a breach happens once (its event is on the timeline).

Metrics (README, "Processes and SLAs"):

* ``first_reply``: from the submission to the first email an agent sends.
* ``next_reply``: from the oldest customer message not yet answered (after the first
  reply) to the agent's next email; each such cycle is a clock of its own.
* ``resolution``: from the submission to the resolution; a reopening resumes it, and a
  ticket closed without a resolution (closed for lack of information) meets it then.

Every clock counts only while the ticket is open and not in one of the SLA's pauses
(by default while waiting for the customer and while resolved). A target in business
units (``"4 business hours"``, ``"2 business days"``: a business day is the
calendar's opening hours) counts business time; any other counts the wall clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta

from workflows import calendar as cal
from workflows.models import (
    CalendarSnapshot,
    EventType,
    Offset,
    OffsetUnit,
    ProfilePolicy,
    SlaAlert,
    SlaClock,
    SlaMetric,
    SlaPause,
    SlaPolicy,
    SlaState,
    TicketState,
    TimelineEvent,
)
from workflows.records import DueAlert, SlaCycle, SlaSpan

_WALL_SECONDS = {
    OffsetUnit.SECONDS: 1,
    OffsetUnit.MINUTES: 60,
    OffsetUnit.HOURS: 3600,
    OffsetUnit.CALENDAR_DAYS: 86400,
    OffsetUnit.BUSINESS_MINUTES: 60,
    OffsetUnit.BUSINESS_HOURS: 3600,
}
# Events after which the ticket is open and working (not waiting, resolved or closed).
_WORKING = frozenset(
    {
        EventType.SUBMITTED,
        EventType.STARTED,
        EventType.RESUMED,
        EventType.WAIT_ENDED,
        EventType.REOPENED,
        EventType.UNASSIGNED,
        EventType.REQUEUED,
        EventType.ROBOT_REJECTED,
    }
)
ALERT_EVENTS = {
    SlaAlert.WARNING: EventType.SLA_WARNING,
    SlaAlert.BREACHED: EventType.SLA_BREACHED,
}


def target_seconds(offset: Offset, calendar: CalendarSnapshot) -> int:
    """A target as seconds of its own time (business seconds for a business unit)."""
    if offset.unit is OffsetUnit.BUSINESS_DAYS:
        return offset.amount * cal.business_day_seconds(calendar)
    return offset.amount * _WALL_SECONDS[offset.unit]


def elapsed(start: datetime, end: datetime, business: bool, calendar: CalendarSnapshot) -> float:
    if business:
        return cal.business_seconds(start, end, calendar)
    return max((end - start).total_seconds(), 0.0)


def advance(
    start: datetime, seconds: float, business: bool, calendar: CalendarSnapshot
) -> datetime:
    if business:
        return cal.add_business_seconds(start, seconds, calendar)
    return start + timedelta(seconds=max(seconds, 0))


# --------------------------------------------------------------------------- history


def _phase(event: TimelineEvent) -> str | None:
    """The phase an event moves the ticket to, in the words of ``SlaPause``."""
    if event.type in _WORKING:
        return "working"
    if event.type is EventType.WAITING:
        return f"waiting_{event.data.get('reason')}"
    if event.type is EventType.SPLIT:
        return SlaPause.WAITING_SPLIT.value
    if event.type is EventType.RESOLVED:
        return SlaPause.RESOLVED.value
    if event.type is EventType.CLOSED:
        return "closed"
    return None


def _spans(timeline: Iterable[TimelineEvent], pauses: frozenset[SlaPause]) -> list[SlaSpan]:
    paused = {pause.value for pause in pauses} | {"closed"}
    spans: list[SlaSpan] = []
    counting_since: datetime | None = None
    submitted = False
    for event in timeline:
        submitted = submitted or event.type is EventType.SUBMITTED
        phase = _phase(event)
        if phase is None or not submitted:
            continue
        if phase in paused:
            if counting_since is not None:
                spans.append(SlaSpan(counting_since, event.at))
                counting_since = None
        elif counting_since is None:
            counting_since = event.at
    if counting_since is not None:
        spans.append(SlaSpan(counting_since, None))
    return spans


def _cycles(timeline: Iterable[TimelineEvent]) -> Iterator[SlaCycle]:
    """Each metric's cycles, from the events: when it started, was met or stopped."""
    submitted: datetime | None = None
    first_reply: SlaCycle | None = None
    resolution: SlaCycle | None = None
    next_reply: SlaCycle | None = None
    for event in timeline:
        kind = event.type
        if kind is EventType.SUBMITTED and submitted is None:
            submitted = event.at
            first_reply = SlaCycle(SlaMetric.FIRST_REPLY, event.at)
            resolution = SlaCycle(SlaMetric.RESOLUTION, event.at)
            continue
        if submitted is None or first_reply is None or resolution is None:
            continue
        if kind is EventType.EMAIL_SENT:
            if first_reply.met_at is None and first_reply.stopped_at is None:
                first_reply = replace(first_reply, met_at=event.at)
            elif next_reply is not None and next_reply.met_at is None:
                yield replace(next_reply, met_at=event.at)
                next_reply = None
        elif kind is EventType.CUSTOMER_REPLY:
            answered = first_reply.met_at is not None
            if answered and (next_reply is None or next_reply.met_at is not None):
                next_reply = SlaCycle(SlaMetric.NEXT_REPLY, event.at)
        elif kind is EventType.RESOLVED and resolution.met_at is None:
            resolution = replace(resolution, met_at=event.at)
        elif kind is EventType.REOPENED:
            resolution = SlaCycle(SlaMetric.RESOLUTION, resolution.started_at)
        elif kind is EventType.CLOSED:
            if first_reply.met_at is None:
                first_reply = replace(first_reply, stopped_at=event.at)
            if resolution.met_at is None:
                resolution = replace(resolution, met_at=event.at)
            if next_reply is not None and next_reply.met_at is None:
                next_reply = replace(next_reply, stopped_at=event.at)
    if first_reply is not None and resolution is not None:
        yield first_reply
        if next_reply is not None:
            yield next_reply
        yield resolution


def _recorded(timeline: Iterable[TimelineEvent]) -> dict[tuple[EventType, str, str], datetime]:
    """The alerts on the timeline, by (event type, metric, cycle start)."""
    found: dict[tuple[EventType, str, str], datetime] = {}
    for event in timeline:
        if event.type in (EventType.SLA_WARNING, EventType.SLA_BREACHED):
            key = (event.type, str(event.data.get("metric")), str(event.data.get("started_at")))
            found.setdefault(key, event.at)
    return found


# --------------------------------------------------------------------------- clocks


def clocks(
    state: TicketState, policy: ProfilePolicy, calendar: CalendarSnapshot, as_of: datetime
) -> tuple[SlaClock, ...]:
    """The ticket's SLA clocks as of ``as_of`` (its last change), one per metric that
    has started and has a target for the ticket's priority. The latest ``next_reply``
    cycle stands for that metric."""
    sla = policy.sla
    if sla is None:
        return ()
    spans = _spans(state.timeline, sla.pause_while)
    recorded = _recorded(state.timeline)
    latest: dict[SlaMetric, SlaCycle] = {}
    for cycle in _cycles(state.timeline):
        latest[cycle.metric] = cycle
    found = []
    for cycle in latest.values():
        target = sla.target(cycle.metric, state.fields.priority)
        if target is not None:
            found.append(_clock(cycle, target, sla, spans, recorded, calendar, as_of))
    return tuple(found)


def _clock(
    cycle: SlaCycle,
    target: Offset,
    sla: SlaPolicy,
    spans: list[SlaSpan],
    recorded: dict[tuple[EventType, str, str], datetime],
    calendar: CalendarSnapshot,
    as_of: datetime,
) -> SlaClock:
    business = target.unit.business
    total = target_seconds(target, calendar)
    open_cycle = cycle.met_at is None and cycle.stopped_at is None
    end = cycle.met_at or cycle.stopped_at or as_of
    spent = 0.0
    breached_at: datetime | None = None
    running_since: datetime | None = None
    spent_before_running = 0.0
    for span in spans:
        start = max(span.start, cycle.started_at)
        stop = min(span.end or as_of, end)
        if span.end is None and open_cycle:
            running_since, spent_before_running = start, spent
        if stop <= start:
            continue
        part = elapsed(start, stop, business, calendar)
        if breached_at is None and spent + part >= total:
            breached_at = advance(start, total - spent, business, calendar)
        spent += part
    cycle_key = cycle.started_at.isoformat()
    notified = recorded.get((EventType.SLA_BREACHED, cycle.metric.value, cycle_key))
    if breached_at is None or (notified is not None and notified < breached_at):
        # A breach told is a fact, even if a lower priority would not have had it.
        breached_at = notified
    if cycle.met_at is not None:
        state = SlaState.MET
    elif cycle.stopped_at is not None:
        state = SlaState.STOPPED
    else:
        state = SlaState.RUNNING if running_since is not None else SlaState.PAUSED
    target_at = warning_at = None
    if running_since is not None:
        # From where the clock last started to run, so the instants stay the same from
        # one change of the ticket to the next (a moving timer would be re-armed).
        left = total - spent_before_running
        target_at = advance(running_since, left, business, calendar) if left > 0 else breached_at
        if sla.warn_at is not None:
            warn_left = total * sla.warn_at - spent_before_running
            warning_at = advance(running_since, max(warn_left, 0.0), business, calendar)
    return SlaClock(
        metric=cycle.metric,
        target_at=target_at,
        warning_at=warning_at,
        paused=state is SlaState.PAUSED,
        remaining_seconds=round(total - spent),
        breached_at=breached_at,
        state=state,
        started_at=cycle.started_at,
        met_at=cycle.met_at,
        target=target.describe(),
        target_seconds=total,
        business_time=business,
        as_of=as_of,
    )


# --------------------------------------------------------------------------- alerts


def alerts(state: TicketState, sla: SlaPolicy | None) -> list[DueAlert]:
    """The warnings and breaches the running clocks still owe, at their exact times
    (a due time in the past: owed now). Each is owed once per clock cycle."""
    if sla is None:
        return []
    recorded = _recorded(state.timeline)
    owed = []
    for clock in state.sla:
        if clock.state is not SlaState.RUNNING or clock.target_at is None:
            continue
        key = (clock.metric.value, clock.started_at.isoformat())
        if (EventType.SLA_BREACHED, *key) in recorded:
            continue
        owed.append(DueAlert(SlaAlert.BREACHED, clock, clock.target_at))
        if clock.warning_at is not None and (EventType.SLA_WARNING, *key) not in recorded:
            owed.append(DueAlert(SlaAlert.WARNING, clock, clock.warning_at))
    return owed


def remaining_at(clock: SlaClock, now: datetime, calendar: CalendarSnapshot) -> float:
    """A clock's remaining seconds at ``now`` (in its own time: business seconds for a
    business target), for readers between the ticket's changes. Only a running clock
    moves; a breached one counts how far it is past (negative)."""
    if clock.state is not SlaState.RUNNING or clock.target_at is None:
        return float(clock.remaining_seconds)
    if now <= clock.target_at:
        return elapsed(now, clock.target_at, clock.business_time, calendar)
    return -elapsed(clock.target_at, now, clock.business_time, calendar)


def due_at(state: TicketState) -> datetime | None:
    """When the first running clock runs out, if none has yet (``TicketSlaDueAt``)."""
    return min(
        (
            clock.target_at
            for clock in state.sla
            if clock.state is SlaState.RUNNING
            and clock.target_at is not None
            and clock.breached_at is None
        ),
        default=None,
    )
