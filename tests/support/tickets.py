"""Builders that drive the pure lifecycle into each status, the way users would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workflows import lifecycle
from workflows.messages import (
    AssignCommand,
    ResolveCommand,
    SplitCommand,
    StartCommand,
    WaitCommand,
)
from workflows.models import (
    BuiltInProfile,
    CalendarSnapshot,
    Command,
    Nature,
    NewTicket,
    ProfileName,
    ProfilePolicy,
    ResolutionMethod,
    TicketFields,
    TicketState,
    WaitReason,
)
from workflows.policy import policy_for

# Monday 23 November 2026, 10:00 in São Paulo.
T0 = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
CALENDAR = CalendarSnapshot(holidays=(datetime(2026, 12, 25).date(),))

COMPLETE_FIELDS = TicketFields(
    title="Printer on fire",
    description="The printer on floor 2 is on fire.",
    category="hardware",
    nature=Nature.INCIDENT,
    requester="cliente@example.com",
    primary_contact="cliente@example.com",
)


class Driver:
    """A ticket pushed through the lifecycle by hand, as the workflow would."""

    def __init__(
        self,
        profile: ProfileName,
        *,
        submit: bool = True,
        fields: TicketFields = COMPLETE_FIELDS,
        policy: ProfilePolicy | None = None,
        calendar: CalendarSnapshot = CALENDAR,
        now: datetime = T0,
    ) -> None:
        self.policy: ProfilePolicy = policy or policy_for(profile)
        self.calendar = calendar
        self.now = now
        self.effects: list[object] = []
        decision = lifecycle.new_ticket(
            ticket_id="T1",
            policy=self.policy,
            calendar=calendar,
            fields=fields,
            now=self.now,
            actor="ana",
            submit=submit,
        )
        self.state: TicketState = decision.state
        self.effects.extend(decision.effects)

    def do(self, command: Command) -> TicketState:
        decision = lifecycle.decide(self.state, command, self.now, self.policy, self.calendar)
        self.state = decision.state
        self.effects.extend(decision.effects)
        return self.state

    def advance(self, delta: timedelta) -> TicketState:
        """Let time pass, firing every deadline on the way in order."""
        target = self.now + delta
        while (
            deadline := lifecycle.next_deadline(self.state)
        ) is not None and deadline.due_at <= target:
            # An overdue deadline (owed since before the last command) fires now.
            self.now = max(self.now, deadline.due_at)
            decision = lifecycle.tick(self.state, self.now, self.policy, self.calendar)
            self.state = decision.state
            self.effects.extend(decision.effects)
        self.now = target
        return self.state

    def in_progress(self) -> Driver:
        if self.policy.assign_starts_work:
            self.do(AssignCommand(actor="ana", assignee="ana"))
        else:
            self.do(StartCommand(actor="ana"))
        return self


def state_named(profile: ProfileName, name: str) -> TicketState:
    """A ticket of ``profile`` in the state the table calls ``name``."""
    if name == "draft":
        return Driver(profile, submit=False).state
    driver = Driver(profile)
    if name == "new":
        return driver.state
    driver.in_progress()
    if name == "in_progress":
        return driver.state
    if name.startswith("w_"):
        return driver.do(_wait_for(profile, name[2:], driver.now))
    driver.do(ResolveCommand(actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE, note="Fixed."))
    if name == "resolved":
        return driver.state
    assert name == "closed"
    return driver.advance(timedelta(days=30))


def _wait_for(profile: ProfileName, reason: str, now: datetime) -> Command:
    if reason == "customer":
        days = 3 if profile is BuiltInProfile.ENATE else None
        return WaitCommand(actor="ana", reason=WaitReason.CUSTOMER, days=days)
    if reason == "follow_up":
        return WaitCommand(actor="ana", reason=WaitReason.FOLLOW_UP, until=now + timedelta(days=2))
    if reason == "release":
        return WaitCommand(actor="ana", reason=WaitReason.RELEASE, version="v1")
    if reason == "other_team":
        return WaitCommand(actor="ana", reason=WaitReason.OTHER_TEAM, area="development")
    if reason == "case":
        return WaitCommand(actor="ana", reason=WaitReason.CASE, case_ref="CASE-7")
    assert reason == "split"
    return SplitCommand(
        actor="ana", children=(NewTicket(title="Part A"), NewTicket(title="Part B"))
    )
