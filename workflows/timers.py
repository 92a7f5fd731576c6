"""Every timer a ticket can arm, as one table keyed by deadline kind. Pure.

A timer is declared once, in :data:`TIMERS`: when the state arms it (``arm``), what
firing it does (``fire``) and whether firing changes the status. Deadlines are never
stored by hand: :func:`compute_deadlines` derives them from the state after every
change, so they always match the status. Labels come from the profile's policy
(``deadline_labels``, by the keys in :data:`LABEL_KEYS`).

Decisions (also in README):

* Overdue deadlines (a worker that was down): if a status-changing deadline is due, it
  wins and due reminders are dropped (a reminder after the close is pointless); if only
  reminders are due, the latest one is sent once and the earlier ones count as sent.
* A reminder pushed to the next business opening is dropped when that is not before
  the automatic close.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from workflows import calendar as cal
from workflows import sla
from workflows.models import (
    DEADLINE_LABELS,
    AssigneeKind,
    CalendarSnapshot,
    Deadline,
    DeadlineKind,
    EmailKind,
    EventType,
    Offset,
    OffsetUnit,
    ProfilePolicy,
    Qualification,
    Resolution,
    ResolutionMethod,
    SendEmailEffect,
    SlaAlert,
    SlaAlertEffect,
    Status,
    TicketState,
    WaitReason,
    WebhookEffect,
)
from workflows.records import ArmRule, StatusClock, TimerSpec
from workflows.transaction import Transaction, as_utc, customer_recipients, thread_of

# Every label key a timer uses; a profile's ``deadline_labels`` must name them all.
LABEL_KEYS = (
    "customer_reminder",
    "validation_reminder",
    "close_no_info",
    "close_resolved",
    "auto_resolve",
    "wait_end",
    "follow_up",
    "sla_warning",
    "sla_breached",
    "first_reply",
    "next_reply",
    "resolution",
)


def label(policy: ProfilePolicy, key: str, **values: int | str) -> str:
    text = policy.deadline_labels.get(key) or DEADLINE_LABELS["en"][key]
    return text.format(**values) if values else text


def status_clock(state: TicketState, policy: ProfilePolicy) -> StatusClock | None:
    timers = policy.timers
    wait = state.wait
    if (
        state.status is Status.WAITING
        and wait is not None
        and wait.reason is WaitReason.CUSTOMER
        and timers.customer_wait_close is not None
    ):
        return StatusClock(
            timers.customer_wait_reminders,
            timers.customer_wait_close,
            "customer_reminder",
            "close_no_info",
            "customer_wait_reminder",
        )
    if state.status is Status.RESOLVED:
        rated = state.survey is not None and timers.stop_validation_reminders_when_rated
        return StatusClock(
            () if rated else timers.resolved_reminders,
            timers.resolved_close,
            "validation_reminder",
            "close_resolved",
            "validation_reminder",
        )
    return None


def _close_at(
    state: TicketState, clock: StatusClock, calendar: CalendarSnapshot
) -> datetime | None:
    if state.clock is None:
        return None
    return cal.apply_offset(state.clock.started_at, clock.close_after, calendar)


# ----- arming


def _arm_reminders(
    state: TicketState, policy: ProfilePolicy, calendar: CalendarSnapshot
) -> Iterable[Deadline]:
    clock = status_clock(state, policy)
    close_at = _close_at(state, clock, calendar) if clock else None
    if clock is None or close_at is None or state.clock is None:
        return
    total = len(clock.reminders)
    for index, offset in enumerate(clock.reminders):
        if index < state.clock.reminders_sent:
            continue
        due = cal.apply_offset(state.clock.started_at, offset, calendar)
        if policy.timers.defer_reminders_to_business_hours:
            due = cal.next_business_opening(due, calendar)
        if due < close_at:
            text = label(policy, clock.reminder_label, number=index + 1, total=total)
            yield Deadline(kind=DeadlineKind.REMINDER, due_at=due, label=text)


def _arm_auto_close(
    state: TicketState, policy: ProfilePolicy, calendar: CalendarSnapshot
) -> Iterable[Deadline]:
    clock = status_clock(state, policy)
    close_at = _close_at(state, clock, calendar) if clock else None
    if clock is not None and close_at is not None:
        yield Deadline(
            kind=DeadlineKind.AUTO_CLOSE, due_at=close_at, label=label(policy, clock.close_label)
        )


def _timed_customer_wait_end(state: TicketState, calendar: CalendarSnapshot) -> datetime | None:
    """Enate's customer wait: ``days`` calendar days after the wait command."""
    wait = state.wait
    if state.status is not Status.WAITING or wait is None or wait.reason is not WaitReason.CUSTOMER:
        return None
    if wait.days is None:
        return None
    return cal.apply_offset(
        wait.since, Offset(amount=wait.days, unit=OffsetUnit.CALENDAR_DAYS), calendar
    )


def _arm_wait_end(
    state: TicketState, policy: ProfilePolicy, calendar: CalendarSnapshot
) -> Iterable[Deadline]:
    wait = state.wait
    if state.status is not Status.WAITING or wait is None:
        return
    if policy.timers.customer_wait_close is None and not wait.close_if_no_response:
        due = _timed_customer_wait_end(state, calendar)
        if due is not None:
            yield Deadline(kind=DeadlineKind.WAIT_END, due_at=due, label=label(policy, "wait_end"))
    if wait.reason is WaitReason.FOLLOW_UP and wait.until is not None:
        yield Deadline(
            kind=DeadlineKind.WAIT_END,
            due_at=as_utc(wait.until),
            label=label(policy, "follow_up"),
        )


def _arm_auto_resolve(
    state: TicketState, policy: ProfilePolicy, calendar: CalendarSnapshot
) -> Iterable[Deadline]:
    wait = state.wait
    if wait is None or not wait.close_if_no_response or policy.timers.customer_wait_close:
        return
    due = _timed_customer_wait_end(state, calendar)
    if due is not None:
        yield Deadline(
            kind=DeadlineKind.AUTO_RESOLVE, due_at=due, label=label(policy, "auto_resolve")
        )


# ----- firing


def _fire_reminders(tx: Transaction, due: list[Deadline]) -> None:
    """The latest due reminder goes out once; earlier ones still due count as sent."""
    state = tx.state
    clock = status_clock(state, tx.policy)
    assert clock is not None and state.clock is not None, "reminders belong to a status clock"
    number = state.clock.reminders_sent + len(due)
    recipients = customer_recipients(state)
    close = next((d for d in state.deadlines if d.kind is DeadlineKind.AUTO_CLOSE), None)
    total = len(clock.reminders)
    seq = tx.record(
        EventType.REMINDER_SENT,
        {
            "number": number,
            "total": total,
            "due_at": due[-1].due_at.isoformat(),
            "skipped": len(due) - 1,
            "to": list(recipients),
            "template": clock.reminder_template,
        },
    )
    tx.update(clock=state.clock.model_copy(update={"reminders_sent": number}))
    if recipients:
        tx.effect(
            SendEmailEffect(
                kind=EmailKind.REMINDER,
                seq=seq,
                to=recipients,
                template=clock.reminder_template,
                reminder_number=number,
                reminder_total=total,
                closes_at=close.due_at if close else None,
                thread=thread_of(tx.state),
            )
        )


def _fired(deadline: Deadline) -> dict[str, str]:
    return {"deadline": deadline.kind.value, "due_at": deadline.due_at.isoformat()}


def _fire_wait_end(tx: Transaction, due: list[Deadline]) -> None:
    wait = tx.state.wait
    if wait is None:
        return
    tx.record(EventType.WAIT_ENDED, {**_fired(due[0]), "reason": wait.reason.value})
    tx.leave_wait()
    tx.enter(Status.IN_PROGRESS)
    tx.update(highlighted=True)


def _fire_auto_resolve(tx: Transaction, due: list[Deadline]) -> None:
    wait = tx.state.wait
    if wait is None:
        return
    tx.record(EventType.WAIT_ENDED, {**_fired(due[0]), "reason": wait.reason.value})
    tx.leave_wait()
    tx.resolve(ResolutionMethod.NO_CUSTOMER_RESPONSE, message_seq=None)


def _fire_auto_close(tx: Transaction, due: list[Deadline]) -> None:
    state = tx.state
    if state.status is Status.WAITING:
        # Support: closed for lack of information, whatever the nature.
        if state.qualification is not Qualification.UNDEFINED_LACK_OF_INFO:
            tx.update(qualification=Qualification.UNDEFINED_LACK_OF_INFO)
            tx.record(
                EventType.QUALIFIED,
                {"qualification": Qualification.UNDEFINED_LACK_OF_INFO.value, "auto": True},
            )
        tx.update(wait=None)
        tx.update(
            resolution=Resolution(
                method=ResolutionMethod.NO_CUSTOMER_RESPONSE, at=tx.now, message_seq=None
            )
        )
    tx.close(_fired(due[0]))


# ----- SLA warnings and breaches (workflows.sla decides what is owed, and when)

_SLA_DEADLINES = {
    SlaAlert.WARNING: DeadlineKind.SLA_WARNING,
    SlaAlert.BREACHED: DeadlineKind.SLA_BREACH,
}


def _arm_sla(alert: SlaAlert) -> ArmRule:
    def arm(
        state: TicketState, policy: ProfilePolicy, calendar: CalendarSnapshot
    ) -> Iterable[Deadline]:
        for owed in sla.alerts(state, policy.sla):
            if owed.alert is alert:
                metric = label(policy, owed.clock.metric.value)
                yield Deadline(
                    kind=_SLA_DEADLINES[alert],
                    due_at=owed.due_at,
                    label=label(policy, alert.value, metric=metric),
                )

    return arm


def _fire_sla(tx: Transaction, due: list[Deadline]) -> None:
    """Record what the clocks owe now (a breach makes its warning moot) and tell of it:
    the assignee or the supervisors by email, and the webhooks."""
    state = tx.state
    owed = [a for a in sla.alerts(state, tx.policy.sla) if a.due_at <= tx.now]
    breached = {a.clock.metric for a in owed if a.alert is SlaAlert.BREACHED}
    assignee = state.assignee
    agent = assignee.id if assignee is not None and assignee.kind is AssigneeKind.HUMAN else None
    supervisors = tx.policy.sla.supervisors if tx.policy.sla else ()
    for alert in owed:
        if alert.alert is SlaAlert.WARNING and alert.clock.metric in breached:
            continue
        clock = alert.clock
        seq = tx.record(
            sla.ALERT_EVENTS[alert.alert],
            {
                "metric": clock.metric.value,
                "started_at": clock.started_at.isoformat(),
                "due_at": alert.due_at.isoformat(),
                "target": clock.target,
                "priority": state.fields.priority.value,
                "to": agent or (list(supervisors) or None),
            },
            actor="system",
        )
        tx.effect(
            WebhookEffect(
                seq=seq,
                event=alert.alert.value,
                from_status=state.status,
                to_status=state.status,
                sla=clock,
            )
        )
        tx.effect(
            SlaAlertEffect(
                seq=seq, alert=alert.alert, clock=clock, agent=agent, supervisors=supervisors
            )
        )


TIMERS: tuple[TimerSpec, ...] = (
    TimerSpec(DeadlineKind.REMINDER, _arm_reminders, _fire_reminders, changes_status=False),
    TimerSpec(DeadlineKind.AUTO_CLOSE, _arm_auto_close, _fire_auto_close, changes_status=True),
    TimerSpec(DeadlineKind.WAIT_END, _arm_wait_end, _fire_wait_end, changes_status=True),
    TimerSpec(
        DeadlineKind.AUTO_RESOLVE, _arm_auto_resolve, _fire_auto_resolve, changes_status=True
    ),
    TimerSpec(
        DeadlineKind.SLA_WARNING, _arm_sla(SlaAlert.WARNING), _fire_sla, changes_status=False
    ),
    TimerSpec(
        DeadlineKind.SLA_BREACH, _arm_sla(SlaAlert.BREACHED), _fire_sla, changes_status=False
    ),
)
SLA_KINDS = frozenset(_SLA_DEADLINES.values())
BY_KIND: dict[DeadlineKind, TimerSpec] = {timer.kind: timer for timer in TIMERS}


def compute_deadlines(
    state: TicketState, policy: ProfilePolicy, calendar: CalendarSnapshot
) -> tuple[Deadline, ...]:
    """Every timer the state arms, earliest first. A pure function of the state."""
    deadlines = [d for timer in TIMERS for d in timer.arm(state, policy, calendar)]
    return tuple(sorted(deadlines, key=lambda d: d.due_at))


def fire_due(tx: Transaction, due: list[Deadline]) -> None:
    """Fire what is due: SLA alerts first (they happened before what a transition does),
    then the first status-changing deadline, else the reminders."""
    alerts = [d for d in due if d.kind in SLA_KINDS]
    if alerts:
        _fire_sla(tx, alerts)
    transition = next((d for d in due if BY_KIND[d.kind].changes_status), None)
    if transition is not None:
        BY_KIND[transition.kind].fire(tx, [transition])
        return
    reminders = [d for d in due if d.kind is DeadlineKind.REMINDER]
    if reminders:
        BY_KIND[DeadlineKind.REMINDER].fire(tx, reminders)
