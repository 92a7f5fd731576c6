"""The ticket state machine: (state, command, now) -> new state + effects. Pure.

Nothing here reads a clock, a setting or the network: the current time, the profile
policy and the calendar are arguments, and the result is a new frozen state plus the
effects (emails, webhooks, child tickets, messages to other tickets) the durable shell
must carry out.

The rules live in three tables, each declared once: commands in
:mod:`workflows.commands`, timers in :mod:`workflows.timers`, and what each reader
sees in :mod:`workflows.audiences` (event types carry their audience). This module is
the door to them: :func:`check` and :func:`decide` for commands, :func:`tick` for
clock ticks, :func:`view` and :func:`customer_view` for readers, and the rules the API
asks before it starts anything (:func:`check_follow_up`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workflows import audiences, timers
from workflows import calendar as cal
from workflows.addresses import same_address
from workflows.audiences import customer_view, label_of
from workflows.commands import (
    AGENT_WORK,
    ALLOWED_FROM,
    COMMAND_NAMES,
    SPECS,
    SUBMIT_REQUIRED_FIELDS,
    missing_submit_fields,
    spec_of,
)
from workflows.messages import SubmitCommand
from workflows.models import (
    CalendarSnapshot,
    Command,
    CommandResult,
    CustomerView,
    Deadline,
    EmailKind,
    EventType,
    Links,
    OpeningMessage,
    ProfilePolicy,
    SendEmailEffect,
    Status,
    TicketFields,
    TicketInput,
    TicketState,
    TicketView,
    TimelineEvent,
)
from workflows.records import Decision
from workflows.texts import MAX_TIMELINE_EVENTS
from workflows.transaction import (
    OPEN_STATUSES,
    RESOLVABLE_STATUSES,
    STATUS_EVENTS,
    CommandRejected,
    Transaction,
    derived,
    describe_status,
    next_seq,
)

__all__ = [
    "AGENT_WORK",
    "ALLOWED_FROM",
    "COMMAND_NAMES",
    "OPEN_STATUSES",
    "RESOLVABLE_STATUSES",
    "STATUS_EVENTS",
    "SUBMIT_REQUIRED_FIELDS",
    "VIEW_IN_ANSWER_MAX_EVENTS",
    "CommandRejected",
    "Decision",
    "acknowledgement",
    "check",
    "check_follow_up",
    "command_name",
    "compute_deadlines",
    "customer_view",
    "decide",
    "is_requester",
    "missing_submit_fields",
    "new_ticket",
    "next_deadline",
    "opening",
    "rederive",
    "reject",
    "status_label",
    "status_line",
    "system_note",
    "tick",
    "view",
    "view_for",
]

# Updates answer the whole view up to this many timeline events and bytes of event texts
# (it goes into history); a longer ticket's view is read by query instead.
VIEW_IN_ANSWER_MAX_EVENTS = 64
VIEW_IN_ANSWER_MAX_BYTES = 200_000
# How many keyed commands a ticket remembers (Temporal itself remembers an update id
# for the run only; this survives continue-as-new). About 70 bytes each.
IDEMPOTENCY_MEMORY = 200

compute_deadlines = timers.compute_deadlines


def rederive(state: TicketState, policy: ProfilePolicy, calendar: CalendarSnapshot) -> TicketState:
    """The state's deadlines and SLA clocks again, as of its last change (after the
    calendar changed)."""
    return derived(state, policy, calendar, timers.compute_deadlines, as_of=state.updated_at)


def command_name(command: Command) -> str:
    return COMMAND_NAMES[type(command)]


def _transaction(
    state: TicketState,
    now: datetime,
    actor: str,
    policy: ProfilePolicy,
    calendar: CalendarSnapshot,
) -> Transaction:
    return Transaction(state, now, actor, policy, calendar, timers.compute_deadlines)


# --------------------------------------------------------------------------- creation


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
    opening_message: OpeningMessage | None = None,
) -> Decision:
    """The initial state of a ticket, submitted at once when asked and complete.

    A ticket an email opened records where it came from and what came with it on its
    ``created`` event, and acknowledges it when the profile asks and a person wrote.
    """
    now = now.astimezone(UTC)
    state = TicketState(
        id=ticket_id,
        profile=policy.name,
        fields=fields,
        links=Links(follow_up_of=follow_up_of, parent=parent),
        created_at=now,
        updated_at=now,
    )
    tx = _transaction(state, now, actor, policy, calendar)
    seq = tx.record(
        EventType.CREATED, {"title": fields.title, "parent": parent} | _opened_by(opening_message)
    )
    if opening_message is not None and opening_message.sender:
        tx.update(seen_message_ids=(opening_message.message_id,))
        if policy.acknowledge_new_tickets and opening_message.acknowledge:
            tx.effect(
                SendEmailEffect(
                    kind=EmailKind.ACKNOWLEDGEMENT,
                    seq=seq,
                    to=(opening_message.sender,),
                    template="acknowledgement",
                    thread=(opening_message.message_id,),
                )
            )
    if follow_up_of is not None:
        tx.record(EventType.FOLLOW_UP_CREATED, {"follow_up_of": follow_up_of})
    created = tx.commit(emit_webhook=False)
    if not submit:
        return created
    submitted = decide(created.state, SubmitCommand(actor=actor), now, policy, calendar)
    return Decision(submitted.state, created.effects + submitted.effects)


def _opened_by(message: OpeningMessage | None) -> dict[str, Any]:
    if message is None:
        return {}
    return {
        "message_id": message.message_id,
        "from": message.sender,
        "attachments": [a.model_dump(mode="json") for a in message.attachments] or None,
        "raw_ref": message.raw_ref.sha256 if message.raw_ref else None,
        "full_body_ref": message.full_body_ref.sha256 if message.full_body_ref else None,
    }


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
        opening_message=ticket.opening_message,
    )


def check_follow_up(original: TicketView) -> None:
    """A follow-up ticket is opened from a closed ticket only (an open one takes replies)."""
    if original.status is not Status.CLOSED:
        raise CommandRejected(
            "follow-ups are opened from closed tickets; this one is open (reply to it instead)",
            status=original.status,
        )


# --------------------------------------------------------------------------- commands


def is_requester(requester: str | None, subject: str) -> bool:
    """Whether ``subject`` is the ticket's requester (``workflows.addresses`` compares)."""
    return same_address(requester, subject)


def check(state: TicketState, command: Command, now: datetime, policy: ProfilePolicy) -> None:
    """Raise :class:`CommandRejected` unless ``command`` is legal now. Never changes state."""
    spec = spec_of(command)
    if command.requester_only:
        if not is_requester(state.fields.requester, command.actor):
            # Before any other rule: its answer would tell a stranger the ticket's status.
            raise CommandRejected(
                f"ticket {state.id} not found", status=state.status, code="not_found"
            )
        if not spec.requester_may:
            raise CommandRejected(
                f"a requester may not send {spec.words}", status=state.status, code="forbidden"
            )
    first_use = _first_use_of_key(state, command)
    if first_use is not None and first_use != command.request_digest:
        raise CommandRejected(
            "this Idempotency-Key was already used on this ticket for another command or "
            "body; use a new key for a new request",
            status=state.status,
            code="idempotency_key_reused",
        )
    if state.status is Status.CLOSED:
        raise CommandRejected(
            f"ticket {state.id} is closed: closed tickets accept no {spec.words} "
            "(open a follow-up ticket instead)",
            status=state.status,
        )
    if len(state.timeline) >= MAX_TIMELINE_EVENTS and not spec.internal:
        raise CommandRejected(
            f"ticket {state.id} holds {len(state.timeline)} events, the most a ticket may "
            "hold; open a follow-up ticket for what comes next",
            status=state.status,
        )
    if state.status not in spec.allowed_from:
        raise CommandRejected(
            f"{spec.words} is not allowed while the ticket is {describe_status(state)}; "
            f"allowed from: {', '.join(sorted(s.value for s in spec.allowed_from))}",
            status=state.status,
        )
    if spec.check is not None:
        spec.check(state, command, now, policy)


def decide(
    state: TicketState,
    command: Command,
    now: datetime,
    policy: ProfilePolicy,
    calendar: CalendarSnapshot,
) -> Decision:
    """Apply a legal command. Raises :class:`CommandRejected` for an illegal one."""
    now = now.astimezone(UTC)
    if command.request_digest is not None and (
        _first_use_of_key(state, command) == command.request_digest
    ):
        # Applied already, in an earlier run (within a run Temporal answers a repeated
        # update id itself): the retry gets the ticket as it is, nothing applies twice.
        return Decision(state)
    check(state, command, now, policy)
    spec = spec_of(command)
    tx = _transaction(state, now, command.actor, policy, calendar)
    if spec.agent_work:
        tx.update(highlighted=False)
    spec.apply(tx, command)
    if command.key_digest is not None and command.request_digest is not None:
        remembered = (*tx.state.idempotency_keys, (command.key_digest, command.request_digest))
        tx.update(idempotency_keys=remembered[-IDEMPOTENCY_MEMORY:])
    return tx.commit()


def _first_use_of_key(state: TicketState, command: Command) -> str | None:
    """What the command's key was first used for on this ticket (a request digest)."""
    if command.key_digest is None:
        return None
    return next((used for key, used in state.idempotency_keys if key == command.key_digest), None)


def reject(state: TicketState, command: Command, error: CommandRejected, now: datetime) -> Decision:
    """A rejected signal: recorded on the timeline, nothing else changes."""
    event = TimelineEvent(
        seq=next_seq(state),
        at=now.astimezone(UTC),
        type=EventType.REJECTED_COMMAND,
        actor=command.actor,
        data={"command": command_name(command), "reason": error.reason, "code": error.code},
    )
    return Decision(state.model_copy(update={"timeline": (*state.timeline, event)}))


def system_note(state: TicketState, now: datetime, body: str, **data: Any) -> TicketState:
    """A note by the system (e.g. an email that could not be delivered). No status change."""
    event = TimelineEvent(
        seq=next_seq(state),
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
    tx = _transaction(state, now, "system", policy, calendar)
    timers.fire_due(tx, due)
    return tx.commit()


# --------------------------------------------------------------------------- views


def status_label(state: TicketState, policy: ProfilePolicy) -> str:
    return label_of(state.status, state.wait.reason if state.wait else None, policy)


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
        requester_kind=fields.requester_kind,
        primary_contact=fields.primary_contact,
        contacts=fields.contacts,
        description_ref=fields.description_ref,
        assignee=state.assignee,
        needs_human=state.needs_human,
        highlighted=state.highlighted,
        wait=state.wait,
        resolution=state.resolution,
        qualification=state.qualification,
        survey=state.survey,
        links=state.links,
        deadlines=state.deadlines,
        sla=state.sla,
        timeline=state.timeline,
        created_at=state.created_at,
        updated_at=state.updated_at,
        closed_at=state.closed_at,
    )


def view_for(
    state_view: TicketView, policy: ProfilePolicy, *, requester: bool
) -> TicketView | CustomerView:
    """What a reader gets: the customer view for a requester, the whole view for staff."""
    return audiences.customer_view(state_view, policy) if requester else state_view


def offered(view: TicketView, policy: ProfilePolicy, *, requester: bool = False) -> tuple[str, ...]:
    """The commands a reader is offered on this ticket now (the console's forms for
    staff, the customer page's for its requester): allowed from the ticket's status,
    and by the command's ``offer`` rule, in the order of ``SPECS``."""
    found = []
    for spec in SPECS:
        if spec.internal or view.status not in spec.allowed_from:
            continue
        if spec.offer is not None:
            if not spec.offer(view, policy, requester):
                continue
        elif requester and not spec.requester_may:
            continue
        found.append(spec.name)
    return tuple(found)


def acknowledgement(state: TicketState, policy: ProfilePolicy) -> CommandResult:
    """An update's answer: with the whole view while the timeline is short."""
    return CommandResult(
        ticket_id=state.id,
        status=state.status,
        status_label=status_label(state, policy),
        seq=state.timeline[-1].seq if state.timeline else 0,
        updated_at=state.updated_at,
        view=view(state, policy) if _view_fits_an_answer(state) else None,
    )


def _view_fits_an_answer(state: TicketState) -> bool:
    if len(state.timeline) > VIEW_IN_ANSWER_MAX_EVENTS:
        return False
    text_bytes = sum(
        len(value.encode())
        for event in state.timeline
        for value in event.data.values()
        if isinstance(value, str)
    )
    return text_bytes <= VIEW_IN_ANSWER_MAX_BYTES


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
