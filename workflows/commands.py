"""Every command, declared once: where it is allowed, its rules, its spec.

Each block below is one command: its check (what makes it illegal beyond the statuses
it is allowed from), its effect on a :class:`~workflows.transaction.Transaction`, and
one :class:`~workflows.records.CommandSpec` line naming it and its argument model (in
:mod:`workflows.messages`, data passed through the sandbox), saying from which statuses
it is allowed, whether it counts as agent work (clears the highlight), whether a
requester may send it, and which events it records (each event type carries its fixed
audience, :class:`~workflows.models.EventType`). Everything else is derived from
:data:`SPECS`: the registries below, the workflow's Updates, validators and Signals
(:mod:`workflows.ticket`), and the API's command routes and bodies.

Decisions where the design leaves room (also in README):

* Resolution message (enate): the ``note`` given with ``resolve``, or the most recent
  note or email on the timeline when nothing from the customer (reply, reopen) and no
  end of a wait came after it. ``spam`` and ``unknown_sender`` need no message.
* The support qualification ``undefined_lack_of_info`` is set on entering a customer
  wait for incidents and questions and the previous qualification comes back when the
  wait ends for any reason but the automatic close (the source says "while in this
  status"). An explicit ``qualify`` during the wait sticks.
* The highlight (back in the assignee's inbox) is cleared by the next piece of agent
  work on the ticket: start, assign, wait, resume, note, email or resolve.
* Split children take their parent's profile; a child id the client chose is kept, the
  others are ``<parent>-<n>`` (shortened with a digest when that would pass 64
  characters, so a child id is always valid).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from workflows.audiences import reviews_qualification, speaks_for_the_customer
from workflows.messages import (
    AssignCommand,
    AutoReplyReceivedCommand,
    BounceReceivedCommand,
    CaseCompletedCommand,
    ChildClosedCommand,
    CustomerReplyCommand,
    EditCommand,
    MergeCommand,
    MergeReceivedCommand,
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
    ThirdPartyMessageCommand,
    UnassignCommand,
    WaitCommand,
)
from workflows.models import (
    IMMEDIATE_CLOSE_METHODS,
    TICKET_ID_MAX,
    AgentNotice,
    Assignee,
    AssigneeKind,
    Command,
    EmailKind,
    EventType,
    MergeContent,
    MergeIntoEffect,
    Nature,
    NewTicket,
    NotifyAgentEffect,
    ProfilePolicy,
    Qualification,
    ResolutionMethod,
    SendEmailEffect,
    StartChildEffect,
    Status,
    Survey,
    TicketFields,
    TicketState,
    TicketView,
    Wait,
    WaitReason,
)
from workflows.records import CommandSpec
from workflows.texts import EXCERPT_BYTES, excerpt, needs_storing, text_data
from workflows.transaction import (
    OPEN_STATUSES,
    RESOLVABLE_STATUSES,
    CommandRejected,
    Transaction,
    customer_recipients,
    describe_status,
    rejection,
    thread_of,
)

SUBMIT_REQUIRED_FIELDS = ("title", "description", "category", "primary_contact", "requester")
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
# How many message bodies a merge carries to its target, and how much of each.
MERGE_MESSAGE_LIMIT = 20
MERGED_MESSAGE_BYTES = 500
# Inbound Message-IDs a ticket remembers, to drop a second delivery of the same mail.
SEEN_MESSAGE_IDS = 500


# ----------------------------------------------------------------- who is offered what
# The console and the customer page offer a command through its spec's ``offer``.


def _sent_by_tramita(view: TicketView, policy: ProfilePolicy, requester: bool) -> bool:
    """Inbound mail and release publication send these; no one types them."""
    return False


def _customers_own(view: TicketView, policy: ProfilePolicy, requester: bool) -> bool:
    return requester


def _robots_own(view: TicketView, policy: ProfilePolicy, requester: bool) -> bool:
    return False  # a robot hands a ticket back through the API


def _offer_qualify(view: TicketView, policy: ProfilePolicy, requester: bool) -> bool:
    if requester:
        return view.status is Status.RESOLVED and reviews_qualification(view.requester_kind, policy)
    return policy.qualification_enabled


def _offer_split(view: TicketView, policy: ProfilePolicy, requester: bool) -> bool:
    return not requester and policy.split_enabled


def _offer_resume(view: TicketView, policy: ProfilePolicy, requester: bool) -> bool:
    return not requester and view.wait is not None and view.wait.reason not in EVENT_ENDED_WAITS


def _offer_case_completed(view: TicketView, policy: ProfilePolicy, requester: bool) -> bool:
    return not requester and view.wait is not None and view.wait.reason is WaitReason.CASE


def missing_submit_fields(fields: TicketFields) -> list[str]:
    return [name for name in SUBMIT_REQUIRED_FIELDS if not getattr(fields, name)]


# =========================================================================== edit


def _check_edit(
    state: TicketState, command: EditCommand, now: datetime, policy: ProfilePolicy
) -> None:
    if not command.changes():
        raise rejection(state, "nothing to edit: give at least one field", "invalid_command")


def _apply_edit(tx: Transaction, command: EditCommand) -> None:
    changes = command.changes()
    fields = dict(changes)
    if "description" in changes:
        fields["description"] = excerpt(command.description or "")
        fields["description_ref"] = command.stored("description")
    tx.update(fields=tx.state.fields.model_copy(update=fields))
    tx.record(EventType.EDITED, {"changed": sorted(changes)})


EDIT = CommandSpec(
    name="edit",
    model=EditCommand,
    allowed_from=OPEN_STATUSES,
    check=_check_edit,
    apply=_apply_edit,
    records=frozenset({EventType.EDITED}),
)


# =========================================================================== submit


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


def _apply_submit(tx: Transaction, command: SubmitCommand) -> None:
    fields = tx.state.fields
    tx.record(
        EventType.NOTE,
        text_data("body", fields.description, fields.description_ref) | {"submission": True},
    )
    tx.enter(Status.NEW)
    tx.record(EventType.SUBMITTED)


SUBMIT = CommandSpec(
    name="submit",
    model=SubmitCommand,
    allowed_from=frozenset({Status.DRAFT}),
    check=_check_submit,
    apply=_apply_submit,
    records=frozenset({EventType.NOTE, EventType.SUBMITTED}),
)


# =========================================================================== assign


def _apply_assign(tx: Transaction, command: AssignCommand) -> None:
    previous = tx.state.assignee
    assignee = Assignee(id=command.assignee, kind=command.kind)
    tx.update(
        assignee=assignee, needs_human=tx.state.needs_human and command.kind is AssigneeKind.ROBOT
    )
    seq = tx.record(
        EventType.ASSIGNED,
        {
            "assignee": assignee.id,
            "kind": assignee.kind.value,
            "previous": previous.id if previous else None,
        },
    )
    if assignee.kind is AssigneeKind.HUMAN and assignee.id != tx.actor:
        tx.effect(NotifyAgentEffect(seq=seq, agent=assignee.id, notice=AgentNotice.ASSIGNED))
    if tx.policy.assign_starts_work and tx.state.status is Status.NEW:
        tx.enter(Status.IN_PROGRESS)
        tx.record(EventType.STARTED, {"assignee": assignee.id})


ASSIGN = CommandSpec(
    name="assign",
    model=AssignCommand,
    allowed_from=frozenset({Status.NEW, Status.IN_PROGRESS, Status.WAITING}),
    apply=_apply_assign,
    agent_work=True,
    records=frozenset({EventType.ASSIGNED, EventType.STARTED}),
)


# =========================================================================== start


def _apply_start(tx: Transaction, command: StartCommand) -> None:
    tx.start_work()


START = CommandSpec(
    name="start",
    model=StartCommand,
    allowed_from=frozenset({Status.NEW}),
    apply=_apply_start,
    agent_work=True,
    records=frozenset({EventType.STARTED}),
)


# =========================================================================== unassign


def _apply_unassign(tx: Transaction, command: UnassignCommand) -> None:
    previous = tx.state.assignee
    target = Assignee(id=command.to, kind=command.to_kind) if command.to else None
    tx.update(assignee=target)
    tx.enter(Status.NEW)
    seq = tx.record(
        EventType.UNASSIGNED, {"previous": previous.id if previous else None, "to": command.to}
    )
    if target is not None and target.kind is AssigneeKind.HUMAN and target.id != tx.actor:
        tx.effect(NotifyAgentEffect(seq=seq, agent=target.id, notice=AgentNotice.ASSIGNED))


UNASSIGN = CommandSpec(
    name="unassign",
    model=UnassignCommand,
    allowed_from=frozenset({Status.NEW, Status.IN_PROGRESS}),
    apply=_apply_unassign,
    records=frozenset({EventType.UNASSIGNED}),
)


# =========================================================================== requeue


def _apply_requeue(tx: Transaction, command: RequeueCommand) -> None:
    tx.enter(Status.NEW)
    tx.record(EventType.REQUEUED)


REQUEUE = CommandSpec(
    name="requeue",
    model=RequeueCommand,
    allowed_from=frozenset({Status.IN_PROGRESS}),
    apply=_apply_requeue,
    records=frozenset({EventType.REQUEUED}),
)


# =========================================================================== robot_reject


def _check_robot_reject(
    state: TicketState, command: RobotRejectCommand, now: datetime, policy: ProfilePolicy
) -> None:
    if state.assignee is None or state.assignee.kind is not AssigneeKind.ROBOT:
        raise rejection(state, "robot_reject needs a ticket assigned to a robot")


def _apply_robot_reject(tx: Transaction, command: RobotRejectCommand) -> None:
    robot = tx.state.assignee
    tx.update(assignee=None, needs_human=True)
    tx.enter(Status.NEW)
    tx.record(
        EventType.ROBOT_REJECTED,
        {"robot": robot.id if robot else None}
        | text_data("reason", command.reason, command.stored("reason")),
    )


ROBOT_REJECT = CommandSpec(
    name="robot_reject",
    model=RobotRejectCommand,
    allowed_from=frozenset({Status.NEW, Status.IN_PROGRESS}),
    check=_check_robot_reject,
    apply=_apply_robot_reject,
    records=frozenset({EventType.ROBOT_REJECTED}),
    offer=_robots_own,
)


# =========================================================================== wait


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
_REQUIRED_WAIT_FIELD = {
    WaitReason.RELEASE: "version",
    WaitReason.OTHER_TEAM: "area",
    WaitReason.CASE: "case_ref",
}


def _check_wait(
    state: TicketState, command: WaitCommand, now: datetime, policy: ProfilePolicy
) -> None:
    reason = command.reason
    if reason is WaitReason.SPLIT:
        raise rejection(
            state,
            "a split wait starts with the split command, which creates the child tickets",
            "invalid_command",
        )
    if reason not in policy.wait_reasons:
        allowed = ", ".join(sorted(r.value for r in policy.wait_reasons - {WaitReason.SPLIT}))
        raise rejection(
            state,
            f"the {policy.name} profile has no {reason.value!r} wait; use one of: {allowed}",
            "invalid_command",
        )
    accepted = _WAIT_FIELDS[reason]
    given = [
        name
        for name in _ALL_WAIT_FIELDS
        if name not in accepted and getattr(command, name) not in (None, False)
    ]
    if given:
        raise rejection(
            state, f"a {reason.value!r} wait does not take: {', '.join(given)}", "invalid_command"
        )
    if reason is WaitReason.CUSTOMER:
        if policy.timers.customer_wait_close is None and command.days is None:
            raise rejection(
                state,
                "a customer wait needs 'days' (how many days to wait for the answer)",
                "invalid_command",
            )
        if policy.timers.customer_wait_close is not None and (
            command.days is not None or command.close_if_no_response
        ):
            raise rejection(
                state,
                f"the {policy.name} profile times customer waits itself; "
                "'days' and 'close_if_no_response' are not accepted",
                "invalid_command",
            )
    if reason is WaitReason.FOLLOW_UP:
        if command.until is None:
            raise rejection(
                state,
                "a follow-up wait needs 'until' (the date and time to come back)",
                "invalid_command",
            )
        if command.until <= now:
            raise rejection(
                state,
                f"'until' must be in the future (now is {now.isoformat()})",
                "invalid_command",
            )
    required = _REQUIRED_WAIT_FIELD.get(reason)
    if required is not None and not getattr(command, required):
        raise rejection(state, f"a {reason.value!r} wait needs {required!r}", "invalid_command")


def _apply_wait(tx: Transaction, command: WaitCommand) -> None:
    state = tx.state
    wait = Wait(
        reason=command.reason,
        since=tx.now,
        days=command.days,
        close_if_no_response=command.close_if_no_response,
        until=command.until.astimezone(UTC) if command.until else None,
        version=command.version,
        area=command.area,
        case_ref=command.case_ref,
        qualification_before=state.qualification,
    )
    tx.enter(Status.WAITING, wait)
    tx.record(
        EventType.WAITING,
        command.model_dump(mode="json", exclude=set(command.ENVELOPE), exclude_defaults=True)
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


WAIT = CommandSpec(
    name="wait",
    model=WaitCommand,
    allowed_from=frozenset({Status.IN_PROGRESS}),
    check=_check_wait,
    apply=_apply_wait,
    agent_work=True,
    records=frozenset({EventType.WAITING, EventType.QUALIFIED}),
)


# =========================================================================== resume


def _check_resume(
    state: TicketState, command: ResumeCommand, now: datetime, policy: ProfilePolicy
) -> None:
    if state.wait is not None and state.wait.reason in EVENT_ENDED_WAITS:
        ends = (
            "all child tickets close"
            if state.wait.reason is WaitReason.SPLIT
            else "the case is completed"
        )
        raise rejection(
            state,
            f"a {state.wait.reason.value!r} wait cannot be resumed by hand; it ends when {ends}",
        )


def _apply_resume(tx: Transaction, command: ResumeCommand) -> None:
    reason = tx.state.wait.reason.value if tx.state.wait else None
    tx.leave_wait()
    tx.enter(Status.IN_PROGRESS)
    tx.record(EventType.RESUMED, {"reason": reason})


RESUME = CommandSpec(
    name="resume",
    model=ResumeCommand,
    allowed_from=frozenset({Status.WAITING}),
    check=_check_resume,
    apply=_apply_resume,
    agent_work=True,
    records=frozenset({EventType.RESUMED}),
    offer=_offer_resume,
)


# =========================================================================== note


def _start_on_agent_activity(tx: Transaction) -> None:
    if tx.policy.agent_activity_starts_work and tx.state.status is Status.NEW:
        tx.start_work()


def _apply_note(tx: Transaction, command: NoteCommand) -> None:
    tx.record(
        EventType.NOTE,
        text_data("body", command.body, command.stored("body"))
        | {"resolution": command.resolution or None},
    )
    _start_on_agent_activity(tx)


NOTE = CommandSpec(
    name="note",
    model=NoteCommand,
    allowed_from=OPEN_STATUSES,
    apply=_apply_note,
    agent_work=True,
    records=frozenset({EventType.NOTE, EventType.STARTED}),
)


# =========================================================================== send_email


def _check_method(state: TicketState, method: ResolutionMethod, policy: ProfilePolicy) -> None:
    if method not in MANUAL_RESOLUTION_METHODS:
        via = {
            ResolutionMethod.MERGED: "the merge command",
            ResolutionMethod.SPLIT_COMPLETED: "split command (resolved once every child closes)",
            ResolutionMethod.CASE_COMPLETED: "the case/complete command",
        }[method]
        raise rejection(
            state, f"method {method.value!r} is set by {via}, not by resolve", "invalid_command"
        )
    if method not in policy.resolution_methods:
        raise rejection(
            state,
            f"the {policy.name} profile does not allow {method.value!r}: it would close "
            "the ticket by hand, and closing is always automatic here",
        )


def _check_send_email(
    state: TicketState, command: SendEmailCommand, now: datetime, policy: ProfilePolicy
) -> None:
    if not (command.to or customer_recipients(state)):
        raise rejection(
            state,
            "no recipient: give 'to' or set the ticket's primary contact or requester",
            "invalid_command",
        )
    if command.resolve:
        if state.status not in RESOLVABLE_STATUSES:
            raise rejection(
                state, f"cannot send and resolve while the ticket is {describe_status(state)}"
            )
        _check_method(state, command.method or ResolutionMethod.CUSTOMER_RESPONSE, policy)
    elif command.method is not None:
        raise rejection(state, "'method' goes with 'resolve': true", "invalid_command")


def _apply_send_email(tx: Transaction, command: SendEmailCommand) -> None:
    state = tx.state
    fields = state.fields
    body = excerpt(command.body)
    body_ref = command.stored("body")
    if state.status is Status.DRAFT and not (fields.title or fields.description):
        tx.update(
            fields=fields.model_copy(
                update={"title": command.subject, "description": body, "description_ref": body_ref}
            )
        )
        tx.record(EventType.EDITED, {"changed": ["description", "title"], "from_email": True})
    recipients = tuple(command.to) if command.to else customer_recipients(state)
    copies = tuple(c for c in state.fields.contacts if c not in recipients) if command.cc else ()
    subject = command.subject or f"Re: {tx.state.fields.title or state.id}"
    thread = thread_of(state)
    seq = tx.record(
        EventType.EMAIL_SENT,
        {"to": list(recipients), "cc": list(copies) or None, "subject": subject}
        | text_data("body", command.body, body_ref),
    )
    tx.effect(
        SendEmailEffect(
            kind=EmailKind.AGENT,
            seq=seq,
            to=recipients,
            cc=copies,
            subject=subject,
            body=body,
            body_ref=body_ref,
            author=tx.actor,
            thread=thread,
        )
    )
    if tx.policy.timers.restart_clocks_on_email:
        tx.restart_clock()
    _start_on_agent_activity(tx)
    if command.resolve:
        tx.resolve(command.method or ResolutionMethod.CUSTOMER_RESPONSE, message_seq=seq)


SEND_EMAIL = CommandSpec(
    name="send_email",
    model=SendEmailCommand,
    allowed_from=OPEN_STATUSES,
    check=_check_send_email,
    apply=_apply_send_email,
    agent_work=True,
    records=frozenset(
        {
            EventType.EDITED,
            EventType.EMAIL_SENT,
            EventType.STARTED,
            EventType.RESOLVED,
            EventType.CLOSED,
        }
    ),
)


# =========================================================================== customer_reply


def _message_data(
    command: CustomerReplyCommand | ThirdPartyMessageCommand, sender: str | None
) -> dict[str, Any]:
    """What an event keeps of a message: its new text, where the rest is, what came
    with it."""
    return text_data("body", command.body, command.stored("body")) | {
        "subject": command.subject,
        "message_id": command.message_id,
        "from": sender,
        "attachments": [a.model_dump(mode="json") for a in command.attachments] or None,
        "full_body_ref": command.full_body_ref.sha256 if command.full_body_ref else None,
        "raw_ref": command.raw_ref.sha256 if command.raw_ref else None,
    }


def _seen(tx: Transaction, message_id: str | None) -> bool:
    """Whether the ticket already has this message (delivered twice); else remember it."""
    if not message_id:
        return False
    seen = tx.state.seen_message_ids
    if message_id in seen:
        return True
    tx.update(seen_message_ids=(*seen, message_id)[-SEEN_MESSAGE_IDS:])
    return False


def _apply_customer_reply(tx: Transaction, command: CustomerReplyCommand) -> None:
    state = tx.state
    if _seen(tx, command.message_id):
        return  # the same inbound email delivered twice: no second effect
    sender = command.from_address
    if command.as_requester:
        sender = state.fields.requester
        tx.actor = sender or tx.actor
    seq = tx.record(EventType.CUSTOMER_REPLY, _message_data(command, sender))
    tx.update(highlighted=True)
    assignee = state.assignee
    # Not when the assignee relays the customer's reply themselves (a phone call).
    if (
        assignee is not None
        and assignee.kind is AssigneeKind.HUMAN
        and assignee.id != command.actor
    ):
        tx.effect(
            NotifyAgentEffect(seq=seq, agent=assignee.id, notice=AgentNotice.CUSTOMER_REPLIED)
        )
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


def _check_customer_reply(
    state: TicketState, command: CustomerReplyCommand, now: datetime, policy: ProfilePolicy
) -> None:
    fields = state.fields
    if (
        command.from_address is not None
        and not command.as_requester
        and not speaks_for_the_customer(
            command.from_address, fields.requester, fields.primary_contact, fields.contacts
        )
    ):
        raise rejection(
            state,
            f"{command.from_address} is neither the requester nor a contact of ticket "
            f"{state.id}: a third party's message, not the customer's reply",
            "invalid_command",
        )


CUSTOMER_REPLY = CommandSpec(
    name="customer_reply",
    model=CustomerReplyCommand,
    allowed_from=OPEN_STATUSES,
    check=_check_customer_reply,
    apply=_apply_customer_reply,
    requester_may=True,
    records=frozenset({EventType.CUSTOMER_REPLY, EventType.WAIT_ENDED, EventType.REOPENED}),
)


# =========================================================================== mail that is
# not the customer's: a third party's message, an auto reply, a bounce. None changes the
# status; the router sends them (there is no route).


def _apply_third_party(tx: Transaction, command: ThirdPartyMessageCommand) -> None:
    if _seen(tx, command.message_id):
        return
    tx.record(EventType.THIRD_PARTY_MESSAGE, _message_data(command, command.from_address))
    tx.update(highlighted=True)


THIRD_PARTY_MESSAGE = CommandSpec(
    name="third_party_message",
    model=ThirdPartyMessageCommand,
    allowed_from=OPEN_STATUSES,
    apply=_apply_third_party,
    records=frozenset({EventType.THIRD_PARTY_MESSAGE}),
    offer=_sent_by_tramita,
)


def _apply_auto_reply(tx: Transaction, command: AutoReplyReceivedCommand) -> None:
    if _seen(tx, command.message_id):
        return
    tx.record(
        EventType.AUTO_REPLY_RECEIVED,
        {
            "message_id": command.message_id,
            "from": command.from_address,
            "subject": command.subject,
            "reason": command.reason,
            "raw_ref": command.raw_ref.sha256 if command.raw_ref else None,
        }
        | text_data("body", command.body, command.stored("body")),
    )


AUTO_REPLY_RECEIVED = CommandSpec(
    name="auto_reply_received",
    model=AutoReplyReceivedCommand,
    allowed_from=OPEN_STATUSES,
    apply=_apply_auto_reply,
    records=frozenset({EventType.AUTO_REPLY_RECEIVED}),
    offer=_sent_by_tramita,
)


def _apply_bounce(tx: Transaction, command: BounceReceivedCommand) -> None:
    if _seen(tx, command.message_id):
        return
    tx.record(
        EventType.BOUNCE_RECEIVED,
        {
            "message_id": command.message_id,
            "recipients": list(command.recipients),
            "permanent": command.permanent,
            "status": command.status,
            "diagnostic": command.diagnostic,
            "raw_ref": command.raw_ref.sha256 if command.raw_ref else None,
        },
    )
    tx.update(highlighted=True)


BOUNCE_RECEIVED = CommandSpec(
    name="bounce_received",
    model=BounceReceivedCommand,
    allowed_from=OPEN_STATUSES,
    apply=_apply_bounce,
    records=frozenset({EventType.BOUNCE_RECEIVED}),
    offer=_sent_by_tramita,
)


# =========================================================================== resolve


def resolution_message_seq(state: TicketState) -> int | None:
    """The note or email that counts as the resolution message, if one does now."""
    for event in reversed(state.timeline):
        if event.type in (EventType.NOTE, EventType.EMAIL_SENT) and not event.data.get(
            "submission"
        ):
            return event.seq
        if event.type in (EventType.CUSTOMER_REPLY, EventType.REOPENED, EventType.WAIT_ENDED):
            return None
    return None


def _check_resolve(
    state: TicketState, command: ResolveCommand, now: datetime, policy: ProfilePolicy
) -> None:
    _check_method(state, command.method, policy)
    if (
        policy.require_resolution_message
        and command.method not in IMMEDIATE_CLOSE_METHODS
        and command.note is None
        and resolution_message_seq(state) is None
    ):
        raise rejection(
            state,
            "add a resolution note or send a resolution email before resolving "
            "(or pass 'note' with the resolve command)",
        )


def _apply_resolve(tx: Transaction, command: ResolveCommand) -> None:
    message_seq = resolution_message_seq(tx.state)
    if command.note is not None:
        message_seq = tx.record(
            EventType.NOTE,
            text_data("body", command.note, command.stored("note")) | {"resolution": True},
        )
    tx.resolve(command.method, message_seq=message_seq)


RESOLVE = CommandSpec(
    name="resolve",
    model=ResolveCommand,
    allowed_from=RESOLVABLE_STATUSES,
    check=_check_resolve,
    apply=_apply_resolve,
    agent_work=True,
    records=frozenset({EventType.NOTE, EventType.RESOLVED, EventType.CLOSED}),
)


# =========================================================================== reopen


def _apply_reopen(tx: Transaction, command: ReopenCommand) -> None:
    tx.update(resolution=None)
    tx.enter(Status.IN_PROGRESS)
    tx.record(EventType.REOPENED)


REOPEN = CommandSpec(
    name="reopen",
    model=ReopenCommand,
    allowed_from=frozenset({Status.RESOLVED}),
    apply=_apply_reopen,
    records=frozenset({EventType.REOPENED}),
)


# =========================================================================== release_published


def _check_release(
    state: TicketState, command: ReleasePublishedCommand, now: datetime, policy: ProfilePolicy
) -> None:
    wait = state.wait
    if wait is None or wait.reason is not WaitReason.RELEASE:
        raise rejection(state, f"the ticket is {describe_status(state)}, not waiting for a release")
    if wait.version != command.version:
        raise rejection(
            state, f"the ticket waits for release {wait.version!r}, not {command.version!r}"
        )


def _apply_release(tx: Transaction, command: ReleasePublishedCommand) -> None:
    tx.record(EventType.RELEASE_PUBLISHED, {"version": command.version})
    tx.resolve(
        ResolutionMethod.CUSTOMER_RESPONSE, message_seq=None, data={"release": command.version}
    )


RELEASE_PUBLISHED = CommandSpec(
    name="release_published",
    model=ReleasePublishedCommand,
    allowed_from=frozenset({Status.WAITING}),
    check=_check_release,
    apply=_apply_release,
    records=frozenset({EventType.RELEASE_PUBLISHED, EventType.RESOLVED}),
    offer=_sent_by_tramita,
)


# =========================================================================== case_completed


def _check_case(
    state: TicketState, command: CaseCompletedCommand, now: datetime, policy: ProfilePolicy
) -> None:
    if state.wait is None or state.wait.reason is not WaitReason.CASE:
        raise rejection(state, f"the ticket is {describe_status(state)}, not waiting for a case")


def _apply_case(tx: Transaction, command: CaseCompletedCommand) -> None:
    case_ref = tx.state.wait.case_ref if tx.state.wait else None
    tx.record(
        EventType.CASE_COMPLETED,
        {"case_ref": case_ref} | text_data("note", command.note, command.stored("note")),
    )
    tx.resolve(ResolutionMethod.CASE_COMPLETED, message_seq=None)


CASE_COMPLETED = CommandSpec(
    name="case_completed",
    model=CaseCompletedCommand,
    allowed_from=frozenset({Status.WAITING}),
    check=_check_case,
    apply=_apply_case,
    records=frozenset({EventType.CASE_COMPLETED, EventType.RESOLVED}),
    offer=_offer_case_completed,
)


# =========================================================================== qualify


def _check_qualify(
    state: TicketState, command: QualifyCommand, now: datetime, policy: ProfilePolicy
) -> None:
    if not policy.qualification_enabled:
        raise rejection(state, f"the {policy.name} profile has no qualification", "invalid_command")
    if not command.requester_only:
        return
    if not reviews_qualification(state.fields.requester_kind, policy):
        kinds = ", ".join(sorted(k.value for k in policy.qualification_review_kinds)) or "nobody"
        raise rejection(
            state, f"only these requesters review the qualification: {kinds}", "forbidden"
        )
    if state.status is not Status.RESOLVED:
        raise rejection(
            state,
            "the qualification is reviewed during customer validation; the ticket is "
            f"{describe_status(state)}",
        )


def _apply_qualify(tx: Transaction, command: QualifyCommand) -> None:
    tx.update(qualification=command.qualification)
    wait = tx.state.wait
    if wait is not None and wait.reason is WaitReason.CUSTOMER:
        # An explicit choice outlives the wait that would otherwise restore the old one.
        tx.update(wait=wait.model_copy(update={"qualification_before": command.qualification}))
    tx.record(EventType.QUALIFIED, {"qualification": command.qualification.value})


QUALIFY = CommandSpec(
    name="qualify",
    model=QualifyCommand,
    allowed_from=OPEN_STATUSES,
    check=_check_qualify,
    apply=_apply_qualify,
    requester_may=True,
    records=frozenset({EventType.QUALIFIED}),
    offer=_offer_qualify,
)


# =========================================================================== rate (the survey)


def _apply_rate(tx: Transaction, command: RateCommand) -> None:
    tx.update(survey=Survey(score=command.score, comment=command.comment, at=tx.now))
    tx.record(EventType.RATED, {"score": command.score, "comment": command.comment})


RATE = CommandSpec(
    name="rate",
    model=RateCommand,
    allowed_from=frozenset({Status.RESOLVED}),
    apply=_apply_rate,
    requester_may=True,
    records=frozenset({EventType.RATED}),
    title="the satisfaction survey ('rate')",
    offer=_customers_own,
)


# =========================================================================== merge


def _check_merge(
    state: TicketState, command: MergeCommand, now: datetime, policy: ProfilePolicy
) -> None:
    if command.into == state.id:
        raise rejection(state, "a ticket cannot be merged into itself", "invalid_command")
    if command.target_missing:
        raise rejection(
            state, f"there is no ticket {command.into} to merge into", "invalid_command"
        )
    if command.target_status is Status.CLOSED:
        raise rejection(state, f"cannot merge into {command.into}: it is closed")


def _message_bodies(state: TicketState) -> tuple[str, ...]:
    kinds = {EventType.NOTE, EventType.EMAIL_SENT, EventType.CUSTOMER_REPLY}
    bodies = [str(e.data["body"]) for e in state.timeline if e.type in kinds and e.data.get("body")]
    return tuple(excerpt(body, MERGED_MESSAGE_BYTES) for body in bodies[-MERGE_MESSAGE_LIMIT:])


def _apply_merge(tx: Transaction, command: MergeCommand) -> None:
    state = tx.state
    content = MergeContent(
        source=state.id,
        title=state.fields.title,
        description=excerpt(state.fields.description or "", MERGED_MESSAGE_BYTES) or None,
        messages=_message_bodies(state),
    )
    tx.update(links=state.links.model_copy(update={"merged_into": command.into}))
    tx.effect(MergeIntoEffect(target_id=command.into, actor=tx.actor, content=content))
    tx.resolve(ResolutionMethod.MERGED, message_seq=None, data={"into": command.into})


MERGE = CommandSpec(
    name="merge",
    model=MergeCommand,
    allowed_from=OPEN_STATUSES,
    check=_check_merge,
    apply=_apply_merge,
    records=frozenset({EventType.RESOLVED}),
)


# =========================================================================== split


def child_ids(state: TicketState, children: tuple[NewTicket, ...]) -> tuple[str, ...]:
    """Each child's id: the one its request names, else ``<parent>-<n>``, shortened with a
    digest of the parent's id when that would pass the 64 characters an id may have."""
    first = len(state.links.children) + 1
    ids = []
    for index, child in enumerate(children):
        if child.id is not None:
            ids.append(child.id)
            continue
        suffix = f"-{first + index}"
        if len(state.id) + len(suffix) <= TICKET_ID_MAX:
            ids.append(f"{state.id}{suffix}")
        else:
            digest = hashlib.sha256(state.id.encode()).hexdigest()[:10]
            keep = TICKET_ID_MAX - len(suffix) - len(digest) - 1
            ids.append(f"{state.id[:keep]}-{digest}{suffix}")
    return tuple(ids)


def _check_split(
    state: TicketState, command: SplitCommand, now: datetime, policy: ProfilePolicy
) -> None:
    if not policy.split_enabled:
        raise rejection(
            state, f"the {policy.name} profile does not split tickets", "invalid_command"
        )
    for index, child in enumerate(command.children):
        if not child.title:
            raise rejection(
                state, f"children[{index}]: a child ticket needs a title", "invalid_command"
            )
        if child.description is not None and needs_storing(child.description, EXCERPT_BYTES):
            raise rejection(
                state,
                f"children[{index}]: a child's description may have at most {EXCERPT_BYTES} "
                "bytes; add the rest as a note on the child once it is open",
                "invalid_command",
            )
        if child.profile is not None and child.profile != state.profile:
            raise rejection(
                state,
                f"children[{index}]: a child ticket keeps its parent's profile "
                f"({state.profile}), not {child.profile}",
                "invalid_command",
            )
    ids = child_ids(state, command.children)
    taken = {state.id, *state.links.children}
    for index, child_id in enumerate(ids):
        if child_id in taken:
            raise rejection(
                state,
                f"children[{index}]: the id {child_id} is taken by this ticket or another child",
                "invalid_command",
            )
        taken.add(child_id)


def _inherit(spec: NewTicket, parent: TicketFields) -> NewTicket:
    """A child takes what it does not say from its parent, so it can be submitted."""
    return spec.model_copy(
        update={
            "description": spec.description or parent.description or spec.title,
            "category": spec.category or parent.category,
            "nature": spec.nature or parent.nature,
            "requester": spec.requester or parent.requester,
            "requester_kind": spec.requester_kind or parent.requester_kind,
            "primary_contact": spec.primary_contact or parent.primary_contact,
        }
    )


def _apply_split(tx: Transaction, command: SplitCommand) -> None:
    state = tx.state
    ids = child_ids(state, command.children)
    tx.update(
        links=state.links.model_copy(update={"children": (*state.links.children, *ids)}),
        open_children=(*state.open_children, *ids),
    )
    tx.enter(Status.WAITING, Wait(reason=WaitReason.SPLIT, since=tx.now))
    tx.record(EventType.SPLIT, {"children": list(ids)})
    for child_id, spec in zip(ids, command.children, strict=True):
        tx.effect(StartChildEffect(child_id=child_id, spec=_inherit(spec, state.fields)))


SPLIT = CommandSpec(
    name="split",
    model=SplitCommand,
    allowed_from=frozenset({Status.IN_PROGRESS}),
    check=_check_split,
    apply=_apply_split,
    records=frozenset({EventType.SPLIT}),
    offer=_offer_split,
)


# =========================================================================== between tickets


def _apply_merge_received(tx: Transaction, command: MergeReceivedCommand) -> None:
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


MERGE_RECEIVED = CommandSpec(
    name="merge_received",
    model=MergeReceivedCommand,
    allowed_from=OPEN_STATUSES,
    apply=_apply_merge_received,
    internal=True,
    records=frozenset({EventType.MERGED}),
)


def _apply_child_closed(tx: Transaction, command: ChildClosedCommand) -> None:
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


CHILD_CLOSED = CommandSpec(
    name="child_closed",
    model=ChildClosedCommand,
    allowed_from=OPEN_STATUSES,
    apply=_apply_child_closed,
    internal=True,
    records=frozenset({EventType.NOTE, EventType.RESOLVED}),
)


# =========================================================================== the table

SPECS: tuple[CommandSpec, ...] = (
    EDIT,
    SUBMIT,
    ASSIGN,
    START,
    UNASSIGN,
    REQUEUE,
    ROBOT_REJECT,
    WAIT,
    RESUME,
    NOTE,
    SEND_EMAIL,
    CUSTOMER_REPLY,
    THIRD_PARTY_MESSAGE,
    AUTO_REPLY_RECEIVED,
    BOUNCE_RECEIVED,
    RESOLVE,
    REOPEN,
    RELEASE_PUBLISHED,
    CASE_COMPLETED,
    QUALIFY,
    RATE,
    MERGE,
    SPLIT,
    MERGE_RECEIVED,
    CHILD_CLOSED,
)

# The registries the rest of the core reads, all derived from SPECS.
BY_MODEL: dict[type[Command], CommandSpec] = {spec.model: spec for spec in SPECS}
BY_NAME: dict[str, CommandSpec] = {spec.name: spec for spec in SPECS}
COMMAND_NAMES: dict[type[Command], str] = {spec.model: spec.name for spec in SPECS}
ALLOWED_FROM: dict[type[Command], frozenset[Status]] = {
    spec.model: spec.allowed_from for spec in SPECS
}
AGENT_WORK: tuple[type[Command], ...] = tuple(spec.model for spec in SPECS if spec.agent_work)


def spec_of(command: Command) -> CommandSpec:
    return BY_MODEL[type(command)]
