"""The ticket state machine: (state, command, now) -> new state + effects. Pure.

Nothing here reads a clock, a setting or the network: the current time, the profile
policy and the calendar are arguments, and the result is a new frozen state plus the
effects (emails, webhooks, child tickets, messages to other tickets) the durable shell
must carry out. Deadlines are never stored by hand: :func:`compute_deadlines` derives
them from the state after every change, so they always match the status.

Decisions where the design leaves room (also in README):

* Resolution message (enate): the ``note`` given with ``resolve``, or the most recent
  note or email on the timeline when nothing from the customer (reply, reopen) and no
  end of a wait came after it. ``spam`` and ``unknown_sender`` need no message.
* Overdue deadlines (a worker that was down): if a status-changing deadline is due, it
  wins and due reminders are dropped (a reminder after the close is pointless); if only
  reminders are due, the latest one is sent once and the earlier ones count as sent.
* A reminder pushed to the next business opening is dropped when that is not before
  the automatic close.
* The support qualification ``undefined_lack_of_info`` is set on entering a customer
  wait for incidents and questions and the previous qualification comes back when the
  wait ends for any reason but the automatic close (the source says "while in this
  status"). An explicit ``qualify`` during the wait sticks.
* The highlight (back in the assignee's inbox) is cleared by the next piece of agent
  work on the ticket: start, assign, wait, resume, note, email or resolve.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from workflows import calendar as cal
from workflows.models import (
    IMMEDIATE_CLOSE_METHODS,
    AnyCommand,
    AssignCommand,
    Assignee,
    AssigneeKind,
    CalendarSnapshot,
    CaseCompletedCommand,
    ChildClosedCommand,
    ChildTicketSpec,
    Command,
    CommandResult,
    CustomerReplyCommand,
    Deadline,
    DeadlineKind,
    EditCommand,
    Effect,
    EmailKind,
    EventType,
    Links,
    MergeCommand,
    MergeIntoEffect,
    MergeReceivedCommand,
    Nature,
    NoteCommand,
    NotifyParentEffect,
    Offset,
    OffsetUnit,
    ProfilePolicy,
    Qualification,
    QualifyCommand,
    RateCommand,
    ReleasePublishedCommand,
    ReopenCommand,
    RequeueCommand,
    Resolution,
    ResolutionMethod,
    ResolveCommand,
    ResumeCommand,
    RobotRejectCommand,
    SendEmailCommand,
    SendEmailEffect,
    SplitCommand,
    StartChildEffect,
    StartCommand,
    Status,
    StatusClock,
    SubmitCommand,
    Survey,
    TicketFields,
    TicketInput,
    TicketState,
    TicketView,
    TimelineEvent,
    UnassignCommand,
    Wait,
    WaitCommand,
    WaitReason,
    WebhookEffect,
)

RejectionCode = Literal["invalid_transition", "missing_fields", "invalid_command", "not_found"]

SUBMIT_REQUIRED_FIELDS = ("title", "description", "category", "primary_contact", "requester")

# Updates answer the whole view up to this many timeline events (a few KiB of history
# each); a longer ticket's view is read by query instead (see CommandResult).
VIEW_IN_ANSWER_MAX_EVENTS = 64
OPEN_STATUSES = frozenset(Status) - {Status.CLOSED}
RESOLVABLE_STATUSES = frozenset({Status.DRAFT, Status.NEW, Status.IN_PROGRESS, Status.WAITING})
MANUAL_RESOLUTION_METHODS = frozenset(
    {
        ResolutionMethod.CUSTOMER_RESPONSE,
        ResolutionMethod.NO_CUSTOMER_RESPONSE,
        ResolutionMethod.REJECTED,
        ResolutionMethod.SPAM,
        ResolutionMethod.UNKNOWN_SENDER,
    }
)
# Waits that end only through their own event, never by ``resume``.
EVENT_ENDED_WAITS = frozenset({WaitReason.SPLIT, WaitReason.CASE})
# Commands that count as agent work on the ticket and so clear the highlight.
AGENT_WORK = (
    AssignCommand,
    StartCommand,
    WaitCommand,
    ResumeCommand,
    NoteCommand,
    SendEmailCommand,
    ResolveCommand,
)
# Events that move a ticket to another status.
STATUS_EVENTS = frozenset(
    {
        EventType.SUBMITTED,
        EventType.STARTED,
        EventType.UNASSIGNED,
        EventType.REQUEUED,
        EventType.ROBOT_REJECTED,
        EventType.WAITING,
        EventType.SPLIT,
        EventType.RESUMED,
        EventType.WAIT_ENDED,
        EventType.RESOLVED,
        EventType.REOPENED,
        EventType.CLOSED,
    }
)
# How many message bodies a merge carries to its target.
MERGE_MESSAGE_LIMIT = 20


class CommandRejected(Exception):
    """A command that is not legal in the ticket's current state, with the reason why."""

    def __init__(
        self,
        reason: str,
        *,
        status: Status,
        code: RejectionCode = "invalid_transition",
        missing: Iterable[str] = (),
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.code: RejectionCode = code
        self.missing = tuple(missing)


@dataclass(frozen=True)
class Decision:
    state: TicketState
    effects: tuple[Effect, ...] = ()


COMMAND_NAMES: dict[type[Command], str] = {
    EditCommand: "edit",
    SubmitCommand: "submit",
    AssignCommand: "assign",
    StartCommand: "start",
    UnassignCommand: "unassign",
    RequeueCommand: "requeue",
    RobotRejectCommand: "robot_reject",
    WaitCommand: "wait",
    ResumeCommand: "resume",
    NoteCommand: "note",
    SendEmailCommand: "send_email",
    CustomerReplyCommand: "customer_reply",
    ResolveCommand: "resolve",
    ReopenCommand: "reopen",
    ReleasePublishedCommand: "release_published",
    CaseCompletedCommand: "case_completed",
    QualifyCommand: "qualify",
    RateCommand: "rate",
    MergeCommand: "merge",
    SplitCommand: "split",
    MergeReceivedCommand: "merge_received",
    ChildClosedCommand: "child_closed",
}

# Which statuses each command may be given in (DESIGN section 3, "allowed from").
ALLOWED_FROM: dict[type[Command], frozenset[Status]] = {
    EditCommand: OPEN_STATUSES,
    SubmitCommand: frozenset({Status.DRAFT}),
    AssignCommand: frozenset({Status.NEW, Status.IN_PROGRESS, Status.WAITING}),
    StartCommand: frozenset({Status.NEW}),
    UnassignCommand: frozenset({Status.NEW, Status.IN_PROGRESS}),
    RequeueCommand: frozenset({Status.IN_PROGRESS}),
    RobotRejectCommand: frozenset({Status.NEW, Status.IN_PROGRESS}),
    WaitCommand: frozenset({Status.IN_PROGRESS}),
    ResumeCommand: frozenset({Status.WAITING}),
    NoteCommand: OPEN_STATUSES,
    SendEmailCommand: OPEN_STATUSES,
    CustomerReplyCommand: OPEN_STATUSES,
    ResolveCommand: RESOLVABLE_STATUSES,
    ReopenCommand: frozenset({Status.RESOLVED}),
    ReleasePublishedCommand: frozenset({Status.WAITING}),
    CaseCompletedCommand: frozenset({Status.WAITING}),
    QualifyCommand: OPEN_STATUSES,
    RateCommand: frozenset({Status.RESOLVED}),
    MergeCommand: OPEN_STATUSES,
    SplitCommand: frozenset({Status.IN_PROGRESS}),
    MergeReceivedCommand: OPEN_STATUSES,
    ChildClosedCommand: OPEN_STATUSES,
}

# Which extra /wait fields each reason needs and accepts.
_WAIT_FIELDS: dict[WaitReason, tuple[str, ...]] = {
    WaitReason.CUSTOMER: ("days", "close_if_no_response"),
    WaitReason.FOLLOW_UP: ("until",),
    WaitReason.RELEASE: ("version",),
    WaitReason.OTHER_TEAM: ("area",),
    WaitReason.CASE: ("case_ref",),
    WaitReason.SPLIT: (),
}
_ALL_WAIT_FIELDS = ("days", "close_if_no_response", "until", "version", "area", "case_ref")


def command_name(command: Command) -> str:
    return COMMAND_NAMES[type(command)]


# --------------------------------------------------------------------------- creation


def missing_submit_fields(fields: TicketFields) -> list[str]:
    return [name for name in SUBMIT_REQUIRED_FIELDS if not getattr(fields, name)]


def new_ticket(
    *,
    ticket_id: str,
    policy: ProfilePolicy,
    calendar: CalendarSnapshot,
    fields: TicketFields,
    now: datetime,
    actor: str,
    submit: bool = False,
    follow_up_of: str | None = None,
    parent: str | None = None,
) -> Decision:
    """The initial state of a ticket, submitted at once when asked and complete."""
    now = now.astimezone(UTC)
    state = TicketState(
        id=ticket_id,
        profile=policy.name,
        fields=fields,
        links=Links(follow_up_of=follow_up_of, parent=parent),
        created_at=now,
        updated_at=now,
    )
    tx = _Transaction(state, now, actor, policy, calendar)
    tx.record(EventType.CREATED, {"title": fields.title, "parent": parent})
    if follow_up_of is not None:
        tx.record(EventType.FOLLOW_UP_CREATED, {"follow_up_of": follow_up_of})
    created = tx.commit(emit_webhook=False)
    if not submit:
        return created
    submitted = decide(created.state, SubmitCommand(actor=actor), now, policy, calendar)
    return Decision(submitted.state, created.effects + submitted.effects)


def opening(ticket: TicketInput, now: datetime) -> Decision:
    """A new ticket's first run: created as of ``ticket.opened_at``, else of ``now``.

    The workflow and the API both call this, so the API's answer to a create is the
    view the workflow holds once it starts.
    """
    return new_ticket(
        ticket_id=ticket.ticket_id,
        policy=ticket.policy,
        calendar=ticket.calendar,
        fields=ticket.fields,
        now=ticket.opened_at or now,
        actor=ticket.actor,
        submit=ticket.submit,
        follow_up_of=ticket.follow_up_of,
        parent=ticket.parent,
    )


# --------------------------------------------------------------------------- commands


def is_requester(requester: str | None, subject: str) -> bool:
    """Whether ``subject`` is the ticket's requester (addresses compare case-insensitively)."""
    return requester is not None and requester.casefold() == subject.casefold()


def check(state: TicketState, command: AnyCommand, now: datetime, policy: ProfilePolicy) -> None:
    """Raise :class:`CommandRejected` unless ``command`` is legal now. Never changes state."""
    if command.requester_only and not is_requester(state.fields.requester, command.actor):
        # Before any other rule: its answer would tell a stranger the ticket's status.
        raise CommandRejected(f"ticket {state.id} not found", status=state.status, code="not_found")
    name = command_name(command)
    if state.status is Status.CLOSED:
        raise CommandRejected(
            f"ticket {state.id} is closed: closed tickets accept no {name!r} "
            "(open a follow-up ticket instead)",
            status=state.status,
        )
    allowed = ALLOWED_FROM[type(command)]
    if state.status not in allowed:
        raise CommandRejected(
            f"{name!r} is not allowed while the ticket is {_describe_status(state)}; "
            f"allowed from: {', '.join(sorted(s.value for s in allowed))}",
            status=state.status,
        )
    _CHECKS.get(type(command), _no_extra_check)(state, command, now, policy)


def decide(
    state: TicketState,
    command: AnyCommand,
    now: datetime,
    policy: ProfilePolicy,
    calendar: CalendarSnapshot,
) -> Decision:
    """Apply a legal command. Raises :class:`CommandRejected` for an illegal one."""
    now = now.astimezone(UTC)
    check(state, command, now, policy)
    tx = _Transaction(state, now, command.actor, policy, calendar)
    if isinstance(command, AGENT_WORK):
        tx.update(highlighted=False)
    _APPLY[type(command)](tx, command)
    return tx.commit()


def reject(
    state: TicketState, command: AnyCommand, error: CommandRejected, now: datetime
) -> Decision:
    """A rejected signal: recorded on the timeline, nothing else changes."""
    event = TimelineEvent(
        seq=_next_seq(state),
        at=now.astimezone(UTC),
        type=EventType.REJECTED_COMMAND,
        actor=command.actor,
        data={"command": command_name(command), "reason": error.reason, "code": error.code},
    )
    return Decision(state.model_copy(update={"timeline": (*state.timeline, event)}))


def system_note(state: TicketState, now: datetime, body: str, **data: Any) -> TicketState:
    """A note by the system (e.g. an email that could not be delivered). No status change."""
    event = TimelineEvent(
        seq=_next_seq(state),
        at=now.astimezone(UTC),
        type=EventType.NOTE,
        actor="system",
        data={"body": body, **data},
    )
    return state.model_copy(update={"timeline": (*state.timeline, event), "updated_at": now})


# --------------------------------------------------------------------------- timers


def next_deadline(state: TicketState) -> Deadline | None:
    return min(state.deadlines, key=lambda d: d.due_at, default=None)


def tick(
    state: TicketState, now: datetime, policy: ProfilePolicy, calendar: CalendarSnapshot
) -> Decision:
    """Fire what is due at ``now``. Returns the state unchanged when nothing is due."""
    now = now.astimezone(UTC)
    due = [d for d in state.deadlines if d.due_at <= now]
    if not due:
        return Decision(state)
    tx = _Transaction(state, now, "system", policy, calendar)
    transition = next((d for d in due if d.kind is not DeadlineKind.REMINDER), None)
    if transition is not None:
        _fire_transition(tx, transition)
    else:
        _send_reminder(tx, due)
    return tx.commit()


def _fire_transition(tx: _Transaction, deadline: Deadline) -> None:
    state = tx.state
    wait = state.wait
    data = {"deadline": deadline.kind.value, "due_at": deadline.due_at.isoformat()}
    if deadline.kind is DeadlineKind.WAIT_END and wait is not None:
        tx.record(EventType.WAIT_ENDED, {**data, "reason": wait.reason.value})
        tx.leave_wait()
        tx.enter(Status.IN_PROGRESS)
        tx.update(highlighted=True)
    elif deadline.kind is DeadlineKind.AUTO_RESOLVE and wait is not None:
        tx.record(EventType.WAIT_ENDED, {**data, "reason": wait.reason.value})
        tx.leave_wait()
        tx.resolve(ResolutionMethod.NO_CUSTOMER_RESPONSE, message_seq=None)
    elif deadline.kind is DeadlineKind.AUTO_CLOSE:
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
        tx.close(data)


def _send_reminder(tx: _Transaction, due: list[Deadline]) -> None:
    state = tx.state
    clock = state.clock
    assert clock is not None, "reminders are only armed on statuses with a clock"
    offsets = _reminder_offsets(state, tx.policy)
    number = clock.reminders_sent + len(due)
    recipients = _customer_recipients(state)
    close = next((d for d in state.deadlines if d.kind is DeadlineKind.AUTO_CLOSE), None)
    template = (
        "validation_reminder" if state.status is Status.RESOLVED else "customer_wait_reminder"
    )
    seq = tx.record(
        EventType.REMINDER_SENT,
        {
            "number": number,
            "total": len(offsets),
            "due_at": due[-1].due_at.isoformat(),
            "skipped": len(due) - 1,
            "to": list(recipients),
            "template": template,
        },
    )
    tx.update(clock=clock.model_copy(update={"reminders_sent": number}))
    if recipients:
        tx.effect(
            SendEmailEffect(
                kind=EmailKind.REMINDER,
                seq=seq,
                to=recipients,
                template=template,
                reminder_number=number,
                reminder_total=len(offsets),
                closes_at=close.due_at if close else None,
            )
        )


# --------------------------------------------------------------------------- deadlines


def compute_deadlines(
    state: TicketState, policy: ProfilePolicy, calendar: CalendarSnapshot
) -> tuple[Deadline, ...]:
    """Every timer the state arms, earliest first. A pure function of the state."""
    timers = policy.timers
    words = _DEADLINE_WORDS[policy.language]
    deadlines: list[Deadline] = []
    wait = state.wait
    if state.status is Status.WAITING and wait is not None:
        if wait.reason is WaitReason.CUSTOMER and timers.customer_wait_close is not None:
            deadlines += _clocked_deadlines(
                state,
                timers.customer_wait_reminders,
                timers.customer_wait_close,
                words["customer_reminder"],
                words["close_no_info"],
                policy,
                calendar,
            )
        elif wait.reason is WaitReason.CUSTOMER and wait.days is not None:
            due = cal.apply_offset(
                wait.since, Offset(amount=wait.days, unit=OffsetUnit.CALENDAR_DAYS), calendar
            )
            if wait.close_if_no_response:
                deadlines.append(
                    Deadline(
                        kind=DeadlineKind.AUTO_RESOLVE, due_at=due, label=words["auto_resolve"]
                    )
                )
            else:
                deadlines.append(
                    Deadline(kind=DeadlineKind.WAIT_END, due_at=due, label=words["wait_end"])
                )
        elif wait.reason is WaitReason.FOLLOW_UP and wait.until is not None:
            deadlines.append(
                Deadline(
                    kind=DeadlineKind.WAIT_END,
                    due_at=wait.until.astimezone(UTC),
                    label=words["follow_up"],
                )
            )
    elif state.status is Status.RESOLVED:
        deadlines += _clocked_deadlines(
            state,
            timers.resolved_reminders,
            timers.resolved_close,
            words["validation_reminder"],
            words["close_resolved"],
            policy,
            calendar,
        )
    return tuple(sorted(deadlines, key=lambda d: d.due_at))


def _clocked_deadlines(
    state: TicketState,
    reminders: tuple[Offset, ...],
    close_after: Offset,
    reminder_label: str,
    close_label: str,
    policy: ProfilePolicy,
    calendar: CalendarSnapshot,
) -> list[Deadline]:
    clock = state.clock
    assert clock is not None, "a clocked status always has a clock"
    close_at = cal.apply_offset(clock.started_at, close_after, calendar)
    deadlines: list[Deadline] = []
    for index, offset in enumerate(reminders):
        if index < clock.reminders_sent:
            continue
        due = cal.apply_offset(clock.started_at, offset, calendar)
        if policy.timers.defer_reminders_to_business_hours:
            due = cal.next_business_opening(due, calendar)
        if due < close_at:
            label = reminder_label.format(number=index + 1, total=len(reminders))
            deadlines.append(Deadline(kind=DeadlineKind.REMINDER, due_at=due, label=label))
    deadlines.append(Deadline(kind=DeadlineKind.AUTO_CLOSE, due_at=close_at, label=close_label))
    return deadlines


def _reminder_offsets(state: TicketState, policy: ProfilePolicy) -> tuple[Offset, ...]:
    if state.status is Status.RESOLVED:
        return policy.timers.resolved_reminders
    return policy.timers.customer_wait_reminders


_DEADLINE_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "customer_reminder": "Reminder {number} of {total} to the customer",
        "validation_reminder": "Validation reminder {number} of {total}",
        "close_no_info": "Close for lack of information",
        "close_resolved": "Close when the feedback window ends",
        "auto_resolve": "Resolve: no customer response",
        "wait_end": "End of wait for more info",
        "follow_up": "Follow-up date",
    },
    "pt-BR": {
        "customer_reminder": "Lembrete {number} de {total} ao cliente",
        "validation_reminder": "Lembrete de validação {number} de {total}",
        "close_no_info": "Fechamento por falta de informação",
        "close_resolved": "Fechamento automático após validação",
        "auto_resolve": "Resolver: sem resposta do cliente",
        "wait_end": "Fim da espera por informações",
        "follow_up": "Data de acompanhamento",
    },
}


# --------------------------------------------------------------------------- views


def status_label(state: TicketState, policy: ProfilePolicy) -> str:
    base = policy.status_labels[state.status]
    if state.status is Status.WAITING and state.wait is not None:
        reason = policy.wait_labels.get(state.wait.reason, state.wait.reason.value)
        return f"{base}: {reason}" if policy.name.value == "enate" else reason
    return base


def view(state: TicketState, policy: ProfilePolicy) -> TicketView:
    fields = state.fields
    return TicketView(
        id=state.id,
        profile=state.profile,
        status=state.status,
        status_label=status_label(state, policy),
        title=fields.title,
        description=fields.description,
        category=fields.category,
        priority=fields.priority,
        nature=fields.nature,
        requester=fields.requester,
        primary_contact=fields.primary_contact,
        contacts=fields.contacts,
        assignee=state.assignee,
        needs_human=state.needs_human,
        highlighted=state.highlighted,
        wait=state.wait,
        resolution=state.resolution,
        qualification=state.qualification,
        survey=state.survey,
        links=state.links,
        deadlines=state.deadlines,
        timeline=state.timeline,
        created_at=state.created_at,
        updated_at=state.updated_at,
        closed_at=state.closed_at,
    )


def acknowledgement(state: TicketState, policy: ProfilePolicy) -> CommandResult:
    """An update's answer: with the whole view while the timeline is short."""
    return CommandResult(
        ticket_id=state.id,
        status=state.status,
        status_label=status_label(state, policy),
        seq=state.timeline[-1].seq if state.timeline else 0,
        updated_at=state.updated_at,
        view=view(state, policy) if len(state.timeline) <= VIEW_IN_ANSWER_MAX_EVENTS else None,
    )


def status_line(state: TicketState, policy: ProfilePolicy, calendar: CalendarSnapshot) -> str:
    """One line for the Web UI's current details: status, assignee, next deadline."""
    parts = [f"**{status_label(state, policy)}**"]
    if state.assignee is not None:
        parts.append(f"assignee: {state.assignee.id} ({state.assignee.kind.value})")
    if state.highlighted:
        parts.append("highlighted")
    deadline = next_deadline(state)
    if deadline is not None:
        local = cal.to_local(deadline.due_at, calendar)
        parts.append(f"next: {deadline.label} at {local:%Y-%m-%d %H:%M} {calendar.timezone}")
    return " · ".join(parts)


# --------------------------------------------------------------------------- internals


class _Transaction:
    """Collects one decision's changes; :meth:`commit` enforces the invariants."""

    def __init__(
        self,
        state: TicketState,
        now: datetime,
        actor: str,
        policy: ProfilePolicy,
        calendar: CalendarSnapshot,
    ) -> None:
        self.before = state
        self.state = state
        self.now = now
        self.actor = actor
        self.policy = policy
        self.calendar = calendar
        self.events: list[TimelineEvent] = []
        self.effects: list[Effect] = []

    def update(self, **changes: Any) -> None:
        self.state = self.state.model_copy(update=changes)

    def record(
        self, type_: EventType, data: dict[str, Any] | None = None, actor: str | None = None
    ) -> int:
        seq = _next_seq(self.before) + len(self.events)
        clean = {k: v for k, v in (data or {}).items() if v is not None}
        self.events.append(
            TimelineEvent(seq=seq, at=self.now, type=type_, actor=actor or self.actor, data=clean)
        )
        return seq

    def effect(self, effect: Effect) -> None:
        self.effects.append(effect)

    def enter(self, status: Status, wait: Wait | None = None) -> None:
        clocked = status is Status.RESOLVED or (
            status is Status.WAITING and wait is not None and wait.reason is WaitReason.CUSTOMER
        )
        self.update(
            status=status,
            wait=wait,
            clock=StatusClock(started_at=self.now) if clocked else None,
        )

    def leave_wait(self) -> None:
        """Restore what a customer wait changed (support's automatic qualification)."""
        wait = self.state.wait
        if (
            wait is not None
            and wait.reason is WaitReason.CUSTOMER
            and self.policy.qualification_enabled
            and self.state.qualification != wait.qualification_before
        ):
            self.update(qualification=wait.qualification_before)
        self.update(wait=None)

    def resolve(
        self,
        method: ResolutionMethod,
        *,
        message_seq: int | None,
        data: dict[str, Any] | None = None,
    ) -> None:
        if self.state.status is Status.WAITING:
            self.leave_wait()
        self.update(resolution=Resolution(method=method, at=self.now, message_seq=message_seq))
        self.record(
            EventType.RESOLVED, {"method": method.value, "message_seq": message_seq, **(data or {})}
        )
        if method in IMMEDIATE_CLOSE_METHODS:
            self.close({"method": method.value})
        else:
            self.enter(Status.RESOLVED)

    def close(self, data: dict[str, Any]) -> None:
        self.update(
            status=Status.CLOSED, wait=None, clock=None, closed_at=self.now, highlighted=False
        )
        self.record(EventType.CLOSED, data)
        if self.state.links.parent is not None:
            self.effect(NotifyParentEffect(parent_id=self.state.links.parent))

    def restart_clock(self) -> None:
        if self.state.clock is not None:
            self.update(clock=StatusClock(started_at=self.now))

    def start_work(self) -> None:
        """new -> in_progress; an unassigned ticket goes to the actor."""
        if self.state.assignee is None:
            self.update(
                assignee=Assignee(id=self.actor, kind=AssigneeKind.HUMAN), needs_human=False
            )
        self.enter(Status.IN_PROGRESS)
        self.record(
            EventType.STARTED, {"assignee": self.state.assignee.id if self.state.assignee else None}
        )

    def commit(self, *, emit_webhook: bool = True) -> Decision:
        if not self.events and not self.effects:
            return Decision(self.before)  # a no-op (duplicate delivery): nothing changes
        state = self.state.model_copy(
            update={
                "timeline": (*self.before.timeline, *self.events),
                "updated_at": self.now,
            }
        )
        state = state.model_copy(
            update={"deadlines": compute_deadlines(state, self.policy, self.calendar)}
        )
        effects = list(self.effects)
        if emit_webhook and state.status is not self.before.status and self.events:
            # Named after the event that moved the status (the last one that can), not
            # after whatever was recorded last (an automatic qualification, say).
            cause = next(
                (e for e in reversed(self.events) if e.type in STATUS_EVENTS), self.events[-1]
            )
            effects.append(
                WebhookEffect(
                    seq=cause.seq,
                    event=cause.type.value,
                    from_status=self.before.status,
                    to_status=state.status,
                )
            )
        return Decision(state, tuple(effects))


def _next_seq(state: TicketState) -> int:
    return state.timeline[-1].seq + 1 if state.timeline else 1


def _describe_status(state: TicketState) -> str:
    if state.status is Status.WAITING and state.wait is not None:
        return f"waiting ({state.wait.reason.value})"
    return state.status.value


def _customer_recipients(state: TicketState) -> tuple[str, ...]:
    fields = state.fields
    ordered = [fields.primary_contact, fields.requester]
    return tuple(dict.fromkeys(addr for addr in ordered if addr))


def _reject(
    state: TicketState, reason: str, code: RejectionCode = "invalid_transition"
) -> CommandRejected:
    return CommandRejected(reason, status=state.status, code=code)


# ----- per-command checks (beyond "allowed from")

_Check = Callable[[TicketState, Any, datetime, ProfilePolicy], None]
_Apply = Callable[["_Transaction", Any], None]


def _no_extra_check(state: TicketState, command: Any, now: datetime, policy: ProfilePolicy) -> None:
    return None


def _check_submit(
    state: TicketState, command: SubmitCommand, now: datetime, policy: ProfilePolicy
) -> None:
    missing = missing_submit_fields(state.fields)
    if missing:
        raise CommandRejected(
            f"cannot submit: missing {', '.join(missing)}",
            status=state.status,
            code="missing_fields",
            missing=missing,
        )


def _check_robot_reject(
    state: TicketState, command: RobotRejectCommand, now: datetime, policy: ProfilePolicy
) -> None:
    if state.assignee is None or state.assignee.kind is not AssigneeKind.ROBOT:
        raise _reject(state, "robot_reject needs a ticket assigned to a robot")


def _check_wait(
    state: TicketState, command: WaitCommand, now: datetime, policy: ProfilePolicy
) -> None:
    reason = command.reason
    if reason is WaitReason.SPLIT:
        raise _reject(
            state,
            "a split wait starts with the split command, which creates the child tickets",
            "invalid_command",
        )
    if reason not in policy.wait_reasons:
        allowed = ", ".join(sorted(r.value for r in policy.wait_reasons - {WaitReason.SPLIT}))
        raise _reject(
            state,
            f"the {policy.name.value} profile has no {reason.value!r} wait; use one of: {allowed}",
            "invalid_command",
        )
    accepted = _WAIT_FIELDS[reason]
    given = [
        name
        for name in _ALL_WAIT_FIELDS
        if name not in accepted and getattr(command, name) not in (None, False)
    ]
    if given:
        raise _reject(
            state, f"a {reason.value!r} wait does not take: {', '.join(given)}", "invalid_command"
        )
    if reason is WaitReason.CUSTOMER:
        if policy.timers.customer_wait_close is None and command.days is None:
            raise _reject(
                state,
                "a customer wait needs 'days' (how many days to wait for the answer)",
                "invalid_command",
            )
        if policy.timers.customer_wait_close is not None and (
            command.days is not None or command.close_if_no_response
        ):
            raise _reject(
                state,
                f"the {policy.name.value} profile times customer waits itself; "
                "'days' and 'close_if_no_response' are not accepted",
                "invalid_command",
            )
    if reason is WaitReason.FOLLOW_UP:
        if command.until is None:
            raise _reject(
                state,
                "a follow-up wait needs 'until' (the date and time to come back)",
                "invalid_command",
            )
        if command.until <= now:
            raise _reject(
                state,
                f"'until' must be in the future (now is {now.isoformat()})",
                "invalid_command",
            )
    required = {
        WaitReason.RELEASE: "version",
        WaitReason.OTHER_TEAM: "area",
        WaitReason.CASE: "case_ref",
    }.get(reason)
    if required is not None and not getattr(command, required):
        raise _reject(state, f"a {reason.value!r} wait needs {required!r}", "invalid_command")


def _check_resume(
    state: TicketState, command: ResumeCommand, now: datetime, policy: ProfilePolicy
) -> None:
    if state.wait is not None and state.wait.reason in EVENT_ENDED_WAITS:
        ends = (
            "all child tickets close"
            if state.wait.reason is WaitReason.SPLIT
            else "the case is completed"
        )
        raise _reject(
            state,
            f"a {state.wait.reason.value!r} wait cannot be resumed by hand; it ends when {ends}",
        )


def _check_send_email(
    state: TicketState, command: SendEmailCommand, now: datetime, policy: ProfilePolicy
) -> None:
    if not (command.to or _customer_recipients(state)):
        raise _reject(
            state,
            "no recipient: give 'to' or set the ticket's primary contact or requester",
            "invalid_command",
        )
    if command.resolve:
        if state.status not in RESOLVABLE_STATUSES:
            raise _reject(
                state, f"cannot send and resolve while the ticket is {_describe_status(state)}"
            )
        _check_method(state, command.method or ResolutionMethod.CUSTOMER_RESPONSE, policy)
    elif command.method is not None:
        raise _reject(state, "'method' goes with 'resolve': true", "invalid_command")


def _check_method(state: TicketState, method: ResolutionMethod, policy: ProfilePolicy) -> None:
    if method not in MANUAL_RESOLUTION_METHODS:
        via = {
            ResolutionMethod.MERGED: "the merge command",
            ResolutionMethod.SPLIT_COMPLETED: "split command (resolved once every child closes)",
            ResolutionMethod.CASE_COMPLETED: "the case/complete command",
        }[method]
        raise _reject(
            state, f"method {method.value!r} is set by {via}, not by resolve", "invalid_command"
        )
    if method not in policy.resolution_methods:
        raise _reject(
            state,
            f"the {policy.name.value} profile does not allow {method.value!r}: it would close "
            "the ticket by hand, and closing is always automatic here",
        )


def _check_resolve(
    state: TicketState, command: ResolveCommand, now: datetime, policy: ProfilePolicy
) -> None:
    _check_method(state, command.method, policy)
    if (
        policy.require_resolution_message
        and command.method not in IMMEDIATE_CLOSE_METHODS
        and command.note is None
        and _resolution_message_seq(state) is None
    ):
        raise _reject(
            state,
            "add a resolution note or send a resolution email before resolving "
            "(or pass 'note' with the resolve command)",
        )


def _check_release(
    state: TicketState, command: ReleasePublishedCommand, now: datetime, policy: ProfilePolicy
) -> None:
    wait = state.wait
    if wait is None or wait.reason is not WaitReason.RELEASE:
        raise _reject(state, f"the ticket is {_describe_status(state)}, not waiting for a release")
    if wait.version != command.version:
        raise _reject(
            state, f"the ticket waits for release {wait.version!r}, not {command.version!r}"
        )


def _check_case(
    state: TicketState, command: CaseCompletedCommand, now: datetime, policy: ProfilePolicy
) -> None:
    if state.wait is None or state.wait.reason is not WaitReason.CASE:
        raise _reject(state, f"the ticket is {_describe_status(state)}, not waiting for a case")


def _check_qualify(
    state: TicketState, command: QualifyCommand, now: datetime, policy: ProfilePolicy
) -> None:
    if not policy.qualification_enabled:
        raise _reject(
            state, f"the {policy.name.value} profile has no qualification", "invalid_command"
        )


def _check_merge(
    state: TicketState, command: MergeCommand, now: datetime, policy: ProfilePolicy
) -> None:
    if command.into == state.id:
        raise _reject(state, "a ticket cannot be merged into itself", "invalid_command")


def _check_split(
    state: TicketState, command: SplitCommand, now: datetime, policy: ProfilePolicy
) -> None:
    if not policy.split_enabled:
        raise _reject(
            state, f"the {policy.name.value} profile does not split tickets", "invalid_command"
        )


_CHECKS: dict[type[Command], _Check] = {
    SubmitCommand: _check_submit,
    RobotRejectCommand: _check_robot_reject,
    WaitCommand: _check_wait,
    ResumeCommand: _check_resume,
    SendEmailCommand: _check_send_email,
    ResolveCommand: _check_resolve,
    ReleasePublishedCommand: _check_release,
    CaseCompletedCommand: _check_case,
    QualifyCommand: _check_qualify,
    MergeCommand: _check_merge,
    SplitCommand: _check_split,
}


# ----- per-command effects


def _apply_edit(tx: _Transaction, command: EditCommand) -> None:
    changes = command.model_dump(exclude={"actor"}, exclude_none=True)
    if "contacts" in changes:
        changes["contacts"] = tuple(changes["contacts"])
    fields = tx.state.fields.model_copy(update=changes)
    tx.update(fields=fields)
    tx.record(EventType.EDITED, {"changed": sorted(changes)})


def _apply_submit(tx: _Transaction, command: SubmitCommand) -> None:
    tx.record(EventType.NOTE, {"body": tx.state.fields.description, "submission": True})
    tx.enter(Status.NEW)
    tx.record(EventType.SUBMITTED)


def _apply_assign(tx: _Transaction, command: AssignCommand) -> None:
    previous = tx.state.assignee
    assignee = Assignee(id=command.assignee, kind=command.kind)
    tx.update(
        assignee=assignee, needs_human=tx.state.needs_human and command.kind is AssigneeKind.ROBOT
    )
    tx.record(
        EventType.ASSIGNED,
        {
            "assignee": assignee.id,
            "kind": assignee.kind.value,
            "previous": previous.id if previous else None,
        },
    )
    if tx.policy.assign_starts_work and tx.state.status is Status.NEW:
        tx.enter(Status.IN_PROGRESS)
        tx.record(EventType.STARTED, {"assignee": assignee.id})


def _apply_start(tx: _Transaction, command: StartCommand) -> None:
    tx.start_work()


def _apply_unassign(tx: _Transaction, command: UnassignCommand) -> None:
    previous = tx.state.assignee
    target = Assignee(id=command.to, kind=command.to_kind) if command.to else None
    tx.update(assignee=target)
    tx.enter(Status.NEW)
    tx.record(
        EventType.UNASSIGNED, {"previous": previous.id if previous else None, "to": command.to}
    )


def _apply_requeue(tx: _Transaction, command: RequeueCommand) -> None:
    tx.enter(Status.NEW)
    tx.record(EventType.REQUEUED)


def _apply_robot_reject(tx: _Transaction, command: RobotRejectCommand) -> None:
    robot = tx.state.assignee
    tx.update(assignee=None, needs_human=True)
    tx.enter(Status.NEW)
    tx.record(
        EventType.ROBOT_REJECTED, {"robot": robot.id if robot else None, "reason": command.reason}
    )


def _apply_wait(tx: _Transaction, command: WaitCommand) -> None:
    state = tx.state
    qualification_before = state.qualification
    wait = Wait(
        reason=command.reason,
        since=tx.now,
        days=command.days,
        close_if_no_response=command.close_if_no_response,
        until=command.until.astimezone(UTC) if command.until else None,
        version=command.version,
        area=command.area,
        case_ref=command.case_ref,
        qualification_before=qualification_before,
    )
    tx.enter(Status.WAITING, wait)
    tx.record(
        EventType.WAITING,
        command.model_dump(mode="json", exclude={"actor"}, exclude_defaults=True)
        | {"reason": command.reason.value},
    )
    if (
        command.reason is WaitReason.CUSTOMER
        and tx.policy.qualification_enabled
        and state.fields.nature in (Nature.INCIDENT, Nature.QUESTION)
        and state.qualification is not Qualification.UNDEFINED_LACK_OF_INFO
    ):
        tx.update(qualification=Qualification.UNDEFINED_LACK_OF_INFO)
        tx.record(
            EventType.QUALIFIED,
            {"qualification": Qualification.UNDEFINED_LACK_OF_INFO.value, "auto": True},
        )


def _apply_resume(tx: _Transaction, command: ResumeCommand) -> None:
    reason = tx.state.wait.reason.value if tx.state.wait else None
    tx.leave_wait()
    tx.enter(Status.IN_PROGRESS)
    tx.record(EventType.RESUMED, {"reason": reason})


def _start_on_agent_activity(tx: _Transaction) -> None:
    if tx.policy.agent_activity_starts_work and tx.state.status is Status.NEW:
        tx.start_work()


def _apply_note(tx: _Transaction, command: NoteCommand) -> None:
    tx.record(EventType.NOTE, {"body": command.body, "resolution": command.resolution or None})
    _start_on_agent_activity(tx)


def _apply_send_email(tx: _Transaction, command: SendEmailCommand) -> None:
    state = tx.state
    fields = state.fields
    if state.status is Status.DRAFT and not (fields.title or fields.description):
        tx.update(
            fields=fields.model_copy(update={"title": command.subject, "description": command.body})
        )
        tx.record(EventType.EDITED, {"changed": ["description", "title"], "from_email": True})
    recipients = tuple(command.to) if command.to else _customer_recipients(state)
    subject = command.subject or f"Re: {tx.state.fields.title or state.id}"
    seq = tx.record(
        EventType.EMAIL_SENT, {"to": list(recipients), "subject": subject, "body": command.body}
    )
    tx.effect(
        SendEmailEffect(
            kind=EmailKind.AGENT, seq=seq, to=recipients, subject=subject, body=command.body
        )
    )
    if tx.policy.timers.restart_clocks_on_email:
        tx.restart_clock()
    _start_on_agent_activity(tx)
    if command.resolve:
        tx.resolve(command.method or ResolutionMethod.CUSTOMER_RESPONSE, message_seq=seq)


def _apply_customer_reply(tx: _Transaction, command: CustomerReplyCommand) -> None:
    state = tx.state
    if command.message_id and command.message_id in state.seen_message_ids:
        return  # the same inbound email delivered twice: no second effect
    if command.message_id:
        tx.update(seen_message_ids=(*state.seen_message_ids, command.message_id))
    sender = command.from_address
    if command.as_requester:
        sender = state.fields.requester
        tx.actor = sender or tx.actor
    tx.record(
        EventType.CUSTOMER_REPLY,
        {
            "body": command.body,
            "subject": command.subject,
            "message_id": command.message_id,
            "from": sender,
        },
    )
    tx.update(highlighted=True)
    if (
        state.status is Status.WAITING
        and state.wait is not None
        and state.wait.reason is WaitReason.CUSTOMER
    ):
        tx.leave_wait()
        tx.enter(Status.IN_PROGRESS)
        tx.record(
            EventType.WAIT_ENDED, {"reason": WaitReason.CUSTOMER.value, "by": "customer_reply"}
        )
    elif state.status is Status.RESOLVED:
        tx.update(resolution=None)
        tx.enter(Status.IN_PROGRESS)
        tx.record(EventType.REOPENED, {"by": "customer_reply"})


def _apply_resolve(tx: _Transaction, command: ResolveCommand) -> None:
    message_seq = _resolution_message_seq(tx.state)
    if command.note is not None:
        message_seq = tx.record(EventType.NOTE, {"body": command.note, "resolution": True})
    tx.resolve(command.method, message_seq=message_seq)


def _apply_reopen(tx: _Transaction, command: ReopenCommand) -> None:
    tx.update(resolution=None)
    tx.enter(Status.IN_PROGRESS)
    tx.record(EventType.REOPENED)


def _apply_release(tx: _Transaction, command: ReleasePublishedCommand) -> None:
    tx.record(EventType.RELEASE_PUBLISHED, {"version": command.version})
    tx.resolve(
        ResolutionMethod.CUSTOMER_RESPONSE, message_seq=None, data={"release": command.version}
    )


def _apply_case(tx: _Transaction, command: CaseCompletedCommand) -> None:
    case_ref = tx.state.wait.case_ref if tx.state.wait else None
    tx.record(EventType.CASE_COMPLETED, {"case_ref": case_ref, "note": command.note})
    tx.resolve(ResolutionMethod.CASE_COMPLETED, message_seq=None)


def _apply_qualify(tx: _Transaction, command: QualifyCommand) -> None:
    tx.update(qualification=command.qualification)
    wait = tx.state.wait
    if wait is not None and wait.reason is WaitReason.CUSTOMER:
        # An explicit choice outlives the wait that would otherwise restore the old one.
        tx.update(wait=wait.model_copy(update={"qualification_before": command.qualification}))
    tx.record(EventType.QUALIFIED, {"qualification": command.qualification.value})


def _apply_rate(tx: _Transaction, command: RateCommand) -> None:
    tx.update(survey=Survey(score=command.score, comment=command.comment, at=tx.now))
    tx.record(EventType.RATED, {"score": command.score, "comment": command.comment})


def _message_bodies(state: TicketState) -> tuple[str, ...]:
    kinds = {EventType.NOTE, EventType.EMAIL_SENT, EventType.CUSTOMER_REPLY}
    bodies = [str(e.data["body"]) for e in state.timeline if e.type in kinds and e.data.get("body")]
    return tuple(bodies[-MERGE_MESSAGE_LIMIT:])


def _apply_merge(tx: _Transaction, command: MergeCommand) -> None:
    state = tx.state
    content = MergeReceivedCommand(
        actor=tx.actor,
        source=state.id,
        title=state.fields.title,
        description=state.fields.description,
        messages=_message_bodies(state),
    )
    tx.update(links=state.links.model_copy(update={"merged_into": command.into}))
    tx.effect(MergeIntoEffect(target_id=command.into, content=content))
    tx.resolve(ResolutionMethod.MERGED, message_seq=None, data={"into": command.into})


def _apply_split(tx: _Transaction, command: SplitCommand) -> None:
    state = tx.state
    first = len(state.links.children) + 1
    child_ids = tuple(f"{state.id}-{first + i}" for i in range(len(command.children)))
    tx.update(
        links=state.links.model_copy(update={"children": (*state.links.children, *child_ids)}),
        open_children=(*state.open_children, *child_ids),
    )
    tx.enter(Status.WAITING, Wait(reason=WaitReason.SPLIT, since=tx.now))
    tx.record(EventType.SPLIT, {"children": list(child_ids)})
    for child_id, spec in zip(child_ids, command.children, strict=True):
        tx.effect(StartChildEffect(child_id=child_id, spec=_inherit(spec, state.fields)))


def _inherit(spec: ChildTicketSpec, parent: TicketFields) -> ChildTicketSpec:
    """A child takes what it does not say from its parent, so it can be submitted."""
    return spec.model_copy(
        update={
            "description": spec.description or parent.description or spec.title,
            "category": spec.category or parent.category,
            "nature": spec.nature or parent.nature,
            "requester": spec.requester or parent.requester,
            "primary_contact": spec.primary_contact or parent.primary_contact,
        }
    )


def _apply_merge_received(tx: _Transaction, command: MergeReceivedCommand) -> None:
    tx.record(
        EventType.MERGED,
        {
            "from": command.source,
            "title": command.title,
            "description": command.description,
            "messages": list(command.messages),
        },
    )
    tx.update(highlighted=True)


def _apply_child_closed(tx: _Transaction, command: ChildClosedCommand) -> None:
    state = tx.state
    if command.child not in state.open_children:
        return  # a repeated report, or a child of an earlier split: nothing to do
    remaining = tuple(c for c in state.open_children if c != command.child)
    tx.update(open_children=remaining)
    tx.record(
        EventType.NOTE, {"body": f"Child ticket {command.child} closed", "child": command.child}
    )
    wait = state.wait
    if (
        not remaining
        and state.status is Status.WAITING
        and wait is not None
        and wait.reason is WaitReason.SPLIT
    ):
        tx.resolve(ResolutionMethod.SPLIT_COMPLETED, message_seq=None)


def _resolution_message_seq(state: TicketState) -> int | None:
    for event in reversed(state.timeline):
        if event.type in (EventType.NOTE, EventType.EMAIL_SENT) and not event.data.get(
            "submission"
        ):
            return event.seq
        if event.type in (EventType.CUSTOMER_REPLY, EventType.REOPENED, EventType.WAIT_ENDED):
            return None
    return None


_APPLY: dict[type[Command], _Apply] = {
    EditCommand: _apply_edit,
    SubmitCommand: _apply_submit,
    AssignCommand: _apply_assign,
    StartCommand: _apply_start,
    UnassignCommand: _apply_unassign,
    RequeueCommand: _apply_requeue,
    RobotRejectCommand: _apply_robot_reject,
    WaitCommand: _apply_wait,
    ResumeCommand: _apply_resume,
    NoteCommand: _apply_note,
    SendEmailCommand: _apply_send_email,
    CustomerReplyCommand: _apply_customer_reply,
    ResolveCommand: _apply_resolve,
    ReopenCommand: _apply_reopen,
    ReleasePublishedCommand: _apply_release,
    CaseCompletedCommand: _apply_case,
    QualifyCommand: _apply_qualify,
    RateCommand: _apply_rate,
    MergeCommand: _apply_merge,
    SplitCommand: _apply_split,
    MergeReceivedCommand: _apply_merge_received,
    ChildClosedCommand: _apply_child_closed,
}
