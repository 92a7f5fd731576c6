"""Properties of the lifecycle under random sequences of commands and passing time."""

from __future__ import annotations

import contextlib
import itertools
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.tickets import CALENDAR, Driver
from workflows import lifecycle
from workflows.lifecycle import CommandRejected
from workflows.messages import (
    AssignCommand,
    CaseCompletedCommand,
    ChildClosedCommand,
    CustomerReplyCommand,
    EditCommand,
    MergeCommand,
    NoteCommand,
    QualifyCommand,
    RateCommand,
    ReleasePublishedCommand,
    ReopenCommand,
    RequeueCommand,
    ResolveCommand,
    ResumeCommand,
    RobotRejectCommand,
    SendEmailCommand,
    SplitCommand,
    StartCommand,
    SubmitCommand,
    UnassignCommand,
    WaitCommand,
)
from workflows.models import (
    AssigneeKind,
    BuiltInProfile,
    Command,
    DeadlineKind,
    EventType,
    NewTicket,
    Qualification,
    ResolutionMethod,
    Status,
    TicketState,
    WaitReason,
)

COMMANDS: list[Command] = [
    EditCommand(actor="ana", title="t2"),
    SubmitCommand(actor="ana"),
    AssignCommand(actor="ana", assignee="ana"),
    AssignCommand(actor="ana", assignee="robo", kind=AssigneeKind.ROBOT),
    StartCommand(actor="ana"),
    UnassignCommand(actor="ana"),
    RequeueCommand(actor="ana"),
    RobotRejectCommand(actor="robo", reason="no"),
    WaitCommand(actor="ana", reason=WaitReason.CUSTOMER),
    WaitCommand(actor="ana", reason=WaitReason.CUSTOMER, days=2),
    WaitCommand(actor="ana", reason=WaitReason.CUSTOMER, days=1, close_if_no_response=True),
    WaitCommand(actor="ana", reason=WaitReason.RELEASE, version="v1"),
    WaitCommand(actor="ana", reason=WaitReason.OTHER_TEAM, area="dev"),
    WaitCommand(actor="ana", reason=WaitReason.CASE, case_ref="C1"),
    ResumeCommand(actor="ana"),
    NoteCommand(actor="ana", body="n"),
    SendEmailCommand(actor="ana", body="e"),
    SendEmailCommand(actor="ana", body="e", resolve=True),
    CustomerReplyCommand(actor="c", body="r"),
    CustomerReplyCommand(actor="c", body="r", message_id="<same@x>"),
    ResolveCommand(actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE, note="x"),
    ResolveCommand(actor="ana", method=ResolutionMethod.REJECTED),
    ResolveCommand(actor="ana", method=ResolutionMethod.SPAM),
    ReopenCommand(actor="ana"),
    ReleasePublishedCommand(version="v1"),
    CaseCompletedCommand(),
    QualifyCommand(actor="ana", qualification=Qualification.SOLVED),
    RateCommand(actor="c", score=4),
    MergeCommand(actor="ana", into="T9"),
    SplitCommand(actor="ana", children=(NewTicket(title="c"),)),
    ChildClosedCommand(child="T1-1"),
]

DELAYS = [
    timedelta(minutes=30),
    timedelta(hours=5),
    timedelta(days=1),
    timedelta(days=3),
    timedelta(days=9),
]
profiles = st.sampled_from(list(BuiltInProfile))
drafts = st.booleans()


@st.composite
def lifecycles(draw: st.DrawFn) -> list[TicketState]:
    """A ticket driven by mostly legal commands, with time passing now and then.

    Choosing among the commands legal at each step keeps runs long and varied; one in
    ten steps tries any command, so rejections are exercised too.
    """
    profile = draw(profiles)
    driver = Driver(profile, submit=draw(drafts))
    states = [driver.state]
    for _ in range(draw(st.integers(min_value=0, max_value=40))):
        kind = draw(st.sampled_from(["command"] * 6 + ["time"] * 3 + ["any"]))
        if kind == "time":
            driver.advance(draw(st.sampled_from(DELAYS)))
        else:
            driver.now += timedelta(minutes=1)
            candidates = COMMANDS if kind == "any" else [c for c in COMMANDS if _legal(driver, c)]
            if candidates:
                with contextlib.suppress(CommandRejected):
                    driver.do(draw(st.sampled_from(candidates)))
        states.append(driver.state)
    return states


def _legal(driver: Driver, command: Command) -> bool:
    try:
        lifecycle.check(driver.state, command, driver.now, driver.policy)
    except CommandRejected:
        return False
    return True


property_settings = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@property_settings
@given(lifecycles())
def test_closed_is_terminal(states: list[TicketState]) -> None:
    profile = states[0].profile
    closed = next((s for s in states if s.status is Status.CLOSED), None)
    if closed is None:
        return
    after = states[states.index(closed) :]
    assert all(s == closed for s in after), "nothing changes a closed ticket"
    policy = Driver(profile).policy
    for command in COMMANDS:
        try:
            lifecycle.decide(closed, command, closed.updated_at, policy, CALENDAR)
        except CommandRejected as rejected:
            assert "closed" in rejected.reason
        else:
            raise AssertionError(f"{command!r} accepted on a closed ticket")
    assert (
        lifecycle.tick(closed, closed.updated_at + timedelta(days=400), policy, CALENDAR).state
        == closed
    )


@property_settings
@given(lifecycles())
def test_deadlines_always_match_the_status(states: list[TicketState]) -> None:
    policy = Driver(states[0].profile).policy
    for state in states:
        assert state.deadlines == lifecycle.compute_deadlines(state, policy, CALENDAR)
        kinds = [d.kind for d in state.deadlines]
        wait = state.wait
        if state.status is Status.RESOLVED:
            assert kinds.count(DeadlineKind.AUTO_CLOSE) == 1
            assert kinds[-1] is DeadlineKind.AUTO_CLOSE
        elif (
            state.status is Status.WAITING
            and wait is not None
            and wait.reason is WaitReason.CUSTOMER
        ):
            assert len([k for k in kinds if k is not DeadlineKind.REMINDER]) == 1
        elif (
            state.status is Status.WAITING
            and wait is not None
            and wait.reason is WaitReason.FOLLOW_UP
        ):
            assert kinds == [DeadlineKind.WAIT_END]
        else:
            assert kinds == [], f"{state.status} {wait} must arm nothing"
        assert (state.status is Status.CLOSED) == (state.closed_at is not None)
        assert (state.status is Status.WAITING) == (state.wait is not None)


@property_settings
@given(lifecycles())
def test_no_reminder_after_a_customer_reply(states: list[TicketState]) -> None:
    timeline = states[-1].timeline
    clock_running = False
    for event in timeline:
        if event.type in (EventType.WAITING, EventType.RESOLVED, EventType.EMAIL_SENT):
            clock_running = True
        elif event.type is EventType.CUSTOMER_REPLY:
            clock_running = False
        elif event.type is EventType.REMINDER_SENT:
            assert clock_running, "a reminder went out after the customer replied"


@property_settings
@given(lifecycles())
def test_timeline_sequence_numbers_strictly_increase(states: list[TicketState]) -> None:
    timeline = states[-1].timeline
    assert [e.seq for e in timeline] == list(range(1, len(timeline) + 1))
    assert all(a.at <= b.at for a, b in itertools.pairwise(timeline))
    for before, after in itertools.pairwise(states):
        assert after.timeline[: len(before.timeline)] == before.timeline, (
            "the timeline is append-only"
        )
