"""SLA clocks in the pure core: tables of known answers, and properties checked against
a business-time count done independently here (quarter-hour by quarter-hour)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.tickets import COMPLETE_FIELDS, Driver
from workflows import sla
from workflows.messages import (
    AssignCommand,
    CustomerReplyCommand,
    EditCommand,
    NoteCommand,
    ResolveCommand,
    SendEmailCommand,
    WaitCommand,
)
from workflows.models import (
    BuiltInProfile,
    CalendarSnapshot,
    DeadlineKind,
    EventType,
    Priority,
    ProfilePolicy,
    ResolutionMethod,
    SlaAlertEffect,
    SlaClock,
    SlaMetric,
    SlaPolicy,
    SlaState,
    TicketState,
    WaitReason,
    WebhookEffect,
)
from workflows.policy import SUPPORT

SAO_PAULO = CalendarSnapshot(
    timezone="America/Sao_Paulo",
    opens_at=time(8),
    closes_at=time(18),
    holidays=(date(2026, 12, 25),),
)
NEW_YORK = CalendarSnapshot(
    timezone="America/New_York",
    opens_at=time(9),
    closes_at=time(17),
    holidays=(date(2026, 11, 26),),  # Thanksgiving
)
CUSTOMER = COMPLETE_FIELDS.requester or ""


def sla_policy(
    first_reply: str = "4 business hours",
    next_reply: str = "2 business hours",
    resolution: str = "2 business days",
    *,
    urgent: str | None = None,
    warn_at: float | None = 0.75,
) -> ProfilePolicy:
    """Support with SLA targets; ``urgent`` changes the first reply's for that priority."""
    return SUPPORT.model_copy(
        update={
            "sla": SlaPolicy.model_validate(
                {
                    "targets": {
                        SlaMetric.FIRST_REPLY: {
                            Priority.NORMAL: first_reply,
                            Priority.URGENT: urgent or first_reply,
                        },
                        SlaMetric.NEXT_REPLY: {p: next_reply for p in Priority},
                        SlaMetric.RESOLUTION: {p: resolution for p in Priority},
                    },
                    "warn_at": warn_at,
                    "supervisors": ["lead@example.com"],
                }
            )
        }
    )


def local(
    calendar: CalendarSnapshot, year: int, month: int, day: int, hour: int, minute: int = 0
) -> datetime:
    """A wall-clock time in the calendar's zone, as UTC."""
    wall = datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(calendar.timezone))
    return wall.astimezone(UTC)


def desk(
    opened: datetime, policy: ProfilePolicy | None = None, calendar: CalendarSnapshot = SAO_PAULO
) -> Driver:
    return Driver(
        BuiltInProfile.SUPPORT, policy=policy or sla_policy(), calendar=calendar, now=opened
    )


def clock(state: TicketState, metric: SlaMetric) -> SlaClock:
    return next(c for c in state.sla if c.metric is metric)


def reply(driver: Driver) -> None:
    driver.do(SendEmailCommand(actor="ana", body="Looking into it."))


def customer_writes(driver: Driver) -> None:
    driver.do(CustomerReplyCommand(actor=CUSTOMER, body="Any news?"))


# --------------------------------------------------------------------------- tables


@pytest.mark.parametrize(
    ("opened", "target_at"),
    [
        # Friday 13:00: five hours left that day.
        (local(SAO_PAULO, 2026, 11, 27, 13), local(SAO_PAULO, 2026, 11, 27, 17)),
        # Friday 16:00: two hours on Friday, two on Monday.
        (local(SAO_PAULO, 2026, 11, 27, 16), local(SAO_PAULO, 2026, 11, 30, 10)),
        # Saturday: nothing counts until Monday's opening.
        (local(SAO_PAULO, 2026, 11, 28, 11), local(SAO_PAULO, 2026, 11, 30, 12)),
        # Thursday 24 December 16:00: Christmas is a holiday, then the weekend.
        (local(SAO_PAULO, 2026, 12, 24, 16), local(SAO_PAULO, 2026, 12, 28, 10)),
        # Before opening: counts from 08:00.
        (local(SAO_PAULO, 2026, 11, 30, 6), local(SAO_PAULO, 2026, 11, 30, 12)),
    ],
)
def test_first_reply_target_in_business_hours(opened: datetime, target_at: datetime) -> None:
    first = clock(desk(opened).state, SlaMetric.FIRST_REPLY)
    assert first.state is SlaState.RUNNING
    assert first.target_at == target_at
    assert first.remaining_seconds == 4 * 3600


def test_a_dst_change_moves_the_wall_clock_not_the_business_time() -> None:
    """New York leaves daylight time on Sunday 1 November 2026: Friday 16:00 EDT plus two
    business hours is Monday 10:00 EST, 15:00 UTC (not 14:00)."""
    driver = desk(
        local(NEW_YORK, 2026, 10, 30, 16), sla_policy(first_reply="2 business hours"), NEW_YORK
    )
    assert clock(driver.state, SlaMetric.FIRST_REPLY).target_at == datetime(
        2026, 11, 2, 15, 0, tzinfo=UTC
    )


def test_two_zones_same_wall_clock_different_instants() -> None:
    opened = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 11:00 São Paulo, 09:00 New York
    in_sao_paulo = clock(desk(opened).state, SlaMetric.FIRST_REPLY)
    in_new_york = clock(desk(opened, calendar=NEW_YORK).state, SlaMetric.FIRST_REPLY)
    assert in_sao_paulo.target_at == local(SAO_PAULO, 2026, 12, 1, 15)
    assert in_new_york.target_at == local(NEW_YORK, 2026, 12, 1, 13)


def test_a_wall_clock_target_ignores_business_hours() -> None:
    driver = desk(local(SAO_PAULO, 2026, 11, 27, 17), sla_policy(first_reply="4 hours"))
    first = clock(driver.state, SlaMetric.FIRST_REPLY)
    assert first.business_time is False
    assert first.target_at == local(SAO_PAULO, 2026, 11, 27, 21)


def test_waiting_for_the_customer_pauses_and_their_answer_resumes() -> None:
    driver = desk(local(SAO_PAULO, 2026, 11, 30, 10))  # Monday
    driver.do(AssignCommand(actor="ana", assignee="ana"))
    reply(driver)
    driver.now = local(SAO_PAULO, 2026, 11, 30, 12)
    driver.do(WaitCommand(actor="ana", reason=WaitReason.CUSTOMER))
    paused = clock(driver.state, SlaMetric.RESOLUTION)
    assert paused.paused and paused.state is SlaState.PAUSED and paused.target_at is None
    assert paused.remaining_seconds == 18 * 3600
    driver.advance(timedelta(days=2))  # Wednesday 12:00: nothing is owed while paused
    assert not [e for e in driver.state.timeline if e.type is EventType.SLA_BREACHED]
    customer_writes(driver)
    resumed = clock(driver.state, SlaMetric.RESOLUTION)
    assert resumed.state is SlaState.RUNNING and resumed.remaining_seconds == 18 * 3600
    # Wednesday 12:00 plus 18 business hours: 6 on Wednesday, 10 on Thursday, 2 on Friday.
    assert resumed.target_at == local(SAO_PAULO, 2026, 12, 4, 10)


def test_resolving_meets_and_reopening_resumes_the_resolution_clock() -> None:
    driver = desk(local(SAO_PAULO, 2026, 11, 30, 8))
    driver.do(AssignCommand(actor="ana", assignee="ana"))
    reply(driver)
    driver.now = local(SAO_PAULO, 2026, 11, 30, 13)
    driver.do(ResolveCommand(actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE))
    met = clock(driver.state, SlaMetric.RESOLUTION)
    assert met.state is SlaState.MET and met.met_at == driver.now
    assert met.remaining_seconds == 15 * 3600
    driver.now = local(SAO_PAULO, 2026, 12, 1, 9)  # the customer says it is not fixed
    customer_writes(driver)
    assert driver.state.status.value == "in_progress"
    resumed = clock(driver.state, SlaMetric.RESOLUTION)
    assert resumed.state is SlaState.RUNNING and resumed.met_at is None
    assert resumed.remaining_seconds == 15 * 3600  # the resolved time did not count
    assert resumed.target_at == local(SAO_PAULO, 2026, 12, 2, 14)


def test_first_reply_is_met_by_an_email_and_a_note_does_not_count() -> None:
    driver = desk(local(SAO_PAULO, 2026, 11, 30, 9))
    driver.now += timedelta(hours=1)
    driver.do(NoteCommand(actor="ana", body="Internal: checking"))
    assert clock(driver.state, SlaMetric.FIRST_REPLY).state is SlaState.RUNNING
    driver.now += timedelta(hours=1)
    reply(driver)
    first = clock(driver.state, SlaMetric.FIRST_REPLY)
    assert first.state is SlaState.MET and first.remaining_seconds == 2 * 3600


def test_next_reply_counts_from_the_oldest_unanswered_message() -> None:
    driver = desk(local(SAO_PAULO, 2026, 11, 30, 9))
    reply(driver)
    assert not [c for c in driver.state.sla if c.metric is SlaMetric.NEXT_REPLY]
    driver.now = local(SAO_PAULO, 2026, 11, 30, 10)
    customer_writes(driver)
    driver.now = local(SAO_PAULO, 2026, 11, 30, 11)
    customer_writes(driver)  # a second message does not restart it
    waiting = clock(driver.state, SlaMetric.NEXT_REPLY)
    assert waiting.started_at == local(SAO_PAULO, 2026, 11, 30, 10)
    assert waiting.target_at == local(SAO_PAULO, 2026, 11, 30, 12)
    driver.now = local(SAO_PAULO, 2026, 11, 30, 11, 30)
    reply(driver)
    answered = clock(driver.state, SlaMetric.NEXT_REPLY)
    assert answered.state is SlaState.MET and answered.remaining_seconds == 30 * 60


def test_warning_then_breach_once_each_with_email_and_webhook() -> None:
    driver = desk(local(SAO_PAULO, 2026, 11, 30, 8))
    driver.do(AssignCommand(actor="ana", assignee="ana"))
    driver.advance(timedelta(hours=3, minutes=30))
    warnings = [e for e in driver.state.timeline if e.type is EventType.SLA_WARNING]
    assert [(e.at, e.data["metric"]) for e in warnings] == [
        (local(SAO_PAULO, 2026, 11, 30, 11), "first_reply")
    ]
    driver.advance(timedelta(days=10))
    breaches = Counter(
        e.data["metric"] for e in driver.state.timeline if e.type is EventType.SLA_BREACHED
    )
    assert breaches == {"first_reply": 1, "resolution": 1}
    first = clock(driver.state, SlaMetric.FIRST_REPLY)
    assert first.breached_at == local(SAO_PAULO, 2026, 11, 30, 12)
    assert first.remaining_seconds < 0
    alerts = [e for e in driver.effects if isinstance(e, SlaAlertEffect)]
    assert {(a.alert.value, a.clock.metric.value, a.agent) for a in alerts} >= {
        ("sla_warning", "first_reply", "ana"),
        ("sla_breached", "first_reply", "ana"),
    }
    hooks = [e for e in driver.effects if isinstance(e, WebhookEffect) and e.sla is not None]
    assert sorted(h.event for h in hooks) == sorted(
        ["sla_warning", "sla_breached", "sla_warning", "sla_breached"]
    )
    assert not [d for d in driver.state.deadlines if d.kind is DeadlineKind.SLA_BREACH]


def test_an_unassigned_ticket_tells_the_supervisors() -> None:
    driver = desk(local(SAO_PAULO, 2026, 11, 30, 8))
    driver.advance(timedelta(hours=5))
    breach = next(
        e
        for e in driver.effects
        if isinstance(e, SlaAlertEffect) and e.alert.value == "sla_breached"
    )
    assert breach.agent is None and breach.supervisors == ("lead@example.com",)


def test_a_priority_change_retargets_from_the_history() -> None:
    policy = sla_policy(first_reply="8 business hours", urgent="1 business hour")
    driver = desk(local(SAO_PAULO, 2026, 11, 30, 9), policy)
    driver.now = local(SAO_PAULO, 2026, 11, 30, 9, 30)
    driver.do(EditCommand(actor="ana", priority=Priority.URGENT))
    first = clock(driver.state, SlaMetric.FIRST_REPLY)
    assert first.target_at == local(SAO_PAULO, 2026, 11, 30, 10)
    assert first.remaining_seconds == 30 * 60
    driver.now = local(SAO_PAULO, 2026, 11, 30, 9, 45)
    driver.do(EditCommand(actor="ana", priority=Priority.NORMAL))
    driver.now = local(SAO_PAULO, 2026, 11, 30, 11)
    # Raised again after an hour and a half on the clock: breached since 10:00, owed now.
    driver.do(EditCommand(actor="ana", priority=Priority.URGENT))
    owed = [d for d in driver.state.deadlines if d.kind is DeadlineKind.SLA_BREACH]
    assert (owed[0].due_at, owed[0].label) == (
        local(SAO_PAULO, 2026, 11, 30, 10),
        "SLA violado: primeira resposta",
    )
    driver.advance(timedelta(seconds=1))
    breaches = [e for e in driver.state.timeline if e.type is EventType.SLA_BREACHED]
    assert len(breaches) == 1 and breaches[0].at == local(SAO_PAULO, 2026, 11, 30, 11)
    assert clock(driver.state, SlaMetric.FIRST_REPLY).breached_at == local(
        SAO_PAULO, 2026, 11, 30, 10
    )


def test_a_ticket_closed_unanswered_stops_its_reply_clock() -> None:
    driver = desk(local(SAO_PAULO, 2026, 11, 30, 9))
    driver.do(AssignCommand(actor="ana", assignee="ana"))
    driver.do(ResolveCommand(actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE))
    driver.advance(timedelta(days=30))
    assert driver.state.status.value == "closed"
    assert clock(driver.state, SlaMetric.FIRST_REPLY).state is SlaState.STOPPED
    assert clock(driver.state, SlaMetric.RESOLUTION).state is SlaState.MET
    assert not driver.state.deadlines


def test_no_sla_no_clocks() -> None:
    driver = Driver(BuiltInProfile.SUPPORT)
    assert driver.state.sla == ()
    assert not [d for d in driver.state.deadlines if d.kind.value.startswith("sla")]


# --------------------------------------------------------------------------- properties

QUARTER = timedelta(minutes=15)
PROPERTY_POLICY = sla_policy("6 business hours", "3 business hours", "3 business days")
# New York, from Wednesday 28 October 2026: the runs cross the end of daylight time.
PROPERTY_START = local(NEW_YORK, 2026, 10, 28, 7)

actions = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.integers(min_value=1, max_value=40)),
        st.tuples(
            st.sampled_from(["wait", "customer", "email", "resolve", "urgent", "normal"]),
            st.just(0),
        ),
    ),
    max_size=14,
)


def _business(moment: datetime, calendar: CalendarSnapshot) -> bool:
    wall = moment.astimezone(ZoneInfo(calendar.timezone))
    return (
        wall.isoweekday() in calendar.work_days
        and wall.date() not in calendar.holidays
        and calendar.opens_at <= wall.time() < calendar.closes_at
    )


class Model:
    """What the test itself knows of the ticket: when it was paused, replied, resolved."""

    def __init__(self, opened: datetime) -> None:
        self.opened = opened
        self.paused_since: datetime | None = None
        self.pauses: list[tuple[datetime, datetime]] = []
        self.first_reply_at: datetime | None = None
        self.resolved_at: datetime | None = None

    def pause(self, at: datetime) -> None:
        self.paused_since = at

    def resume(self, at: datetime) -> None:
        if self.paused_since is not None:
            self.pauses.append((self.paused_since, at))
            self.paused_since = None

    def paused(self, moment: datetime) -> bool:
        if self.paused_since is not None and moment >= self.paused_since:
            return True
        return any(start <= moment < end for start, end in self.pauses)

    def business_seconds(self, start: datetime, end: datetime) -> int:
        counted = 0
        moment = start
        while moment < end:
            if _business(moment, NEW_YORK) and not self.paused(moment):
                counted += int(QUARTER.total_seconds())
            moment += QUARTER
        return counted


def _run(steps: list[tuple[str, int]]) -> tuple[Driver, Model, list[TicketState]]:
    driver = desk(PROPERTY_START, PROPERTY_POLICY, NEW_YORK)
    driver.do(AssignCommand(actor="ana", assignee="ana"))
    model = Model(PROPERTY_START)
    seen = [driver.state]
    for name, amount in steps:
        status = driver.state.status.value
        if name == "advance":
            driver.advance(QUARTER * amount)
            seen.append(driver.state)
            continue
        if name == "wait" and status == "in_progress":
            driver.do(WaitCommand(actor="ana", reason=WaitReason.CUSTOMER))
            model.pause(driver.now)
        elif name == "customer" and status in ("waiting", "resolved", "in_progress"):
            customer_writes(driver)
            model.resume(driver.now)
            model.resolved_at = None
        elif name == "email" and status == "in_progress":
            reply(driver)
            model.first_reply_at = model.first_reply_at or driver.now
        elif name == "resolve" and status == "in_progress":
            driver.do(ResolveCommand(actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE))
            model.pause(driver.now)
            model.resolved_at = driver.now
        elif name in ("urgent", "normal"):
            driver.do(EditCommand(actor="ana", priority=Priority(name)))
        seen.append(driver.state)
    return driver, model, seen


@settings(max_examples=80, deadline=None)
@given(actions)
def test_remaining_is_the_target_less_the_business_time_elapsed(
    steps: list[tuple[str, int]],
) -> None:
    driver, model, _ = _run(steps)
    state = driver.state
    as_of = state.updated_at
    resolution = clock(state, SlaMetric.RESOLUTION)
    end = model.resolved_at or as_of
    assert resolution.remaining_seconds == resolution.target_seconds - model.business_seconds(
        model.opened, end
    )
    first = clock(state, SlaMetric.FIRST_REPLY)
    end = model.first_reply_at or as_of
    assert first.remaining_seconds == first.target_seconds - model.business_seconds(
        model.opened, end
    )


@settings(max_examples=80, deadline=None)
@given(actions, st.integers(min_value=1, max_value=500))
def test_a_paused_clock_never_advances(steps: list[tuple[str, int]], later: int) -> None:
    driver, _, _ = _run(steps)
    for paused in (c for c in driver.state.sla if c.paused):
        after = sla.clocks(
            driver.state, driver.policy, driver.calendar, driver.now + QUARTER * later
        )
        again = next(c for c in after if c.metric is paused.metric)
        assert again.paused and again.remaining_seconds == paused.remaining_seconds


@settings(max_examples=80, deadline=None)
@given(actions)
def test_a_breach_happens_once_per_clock(steps: list[tuple[str, int]]) -> None:
    driver, _, seen = _run(steps)
    driver.advance(timedelta(days=20))
    told = Counter(
        (e.data["metric"], e.data["started_at"])
        for e in driver.state.timeline
        if e.type is EventType.SLA_BREACHED
    )
    assert all(count == 1 for count in told.values())
    for state in seen:
        for running in (c for c in state.sla if c.state is SlaState.RUNNING):
            # A running clock that ran out says when; one with time left has not.
            assert (running.breached_at is not None) == (running.remaining_seconds <= 0)


def test_the_due_times_stay_put_from_one_change_to_the_next() -> None:
    """A moving due time would re-arm the ticket's timer at every command."""
    driver = desk(datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC))
    before = driver.state.deadlines
    for minutes in (7, 19, 33):
        driver.now += timedelta(minutes=minutes, microseconds=333)
        driver.do(NoteCommand(actor="ana", body=f"Still looking ({minutes})"))
        assert driver.state.deadlines == before
