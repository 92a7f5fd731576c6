"""One decision of the core in the making: the changes, events and effects it collects.

Commands (:mod:`workflows.commands`) and timers (:mod:`workflows.timers`) describe what
they do through a :class:`Transaction`; :meth:`Transaction.commit` turns it into a
:class:`Decision` and enforces the invariants: deadlines derived from the new state,
``updated_at`` set, a webhook for a status change. Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from workflows import sla, texts
from workflows.models import (
    IMMEDIATE_CLOSE_METHODS,
    Assignee,
    AssigneeKind,
    CalendarSnapshot,
    Deadline,
    Effect,
    EventType,
    NotifyParentEffect,
    ProfilePolicy,
    Resolution,
    ResolutionMethod,
    Status,
    StatusClock,
    TicketState,
    TimelineEvent,
    Wait,
    WaitReason,
    WebhookEffect,
)
from workflows.records import Decision

RejectionCode = Literal[
    "invalid_transition",
    "missing_fields",
    "invalid_command",
    "not_found",
    "forbidden",
    "idempotency_key_reused",
]

OPEN_STATUSES = frozenset(Status) - {Status.CLOSED}
RESOLVABLE_STATUSES = frozenset({Status.DRAFT, Status.NEW, Status.IN_PROGRESS, Status.WAITING})
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

DeadlineRule = Callable[[TicketState, ProfilePolicy, CalendarSnapshot], tuple[Deadline, ...]]


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


class Transaction:
    """Collects one decision's changes; :meth:`commit` enforces the invariants."""

    def __init__(
        self,
        state: TicketState,
        now: datetime,
        actor: str,
        policy: ProfilePolicy,
        calendar: CalendarSnapshot,
        deadlines: DeadlineRule,
    ) -> None:
        self.before = state
        self.state = state
        self.now = now
        self.actor = actor
        self.policy = policy
        self.calendar = calendar
        self._deadlines = deadlines
        self.events: list[TimelineEvent] = []
        self.effects: list[Effect] = []

    def update(self, **changes: Any) -> None:
        self.state = self.state.model_copy(update=changes)

    def record(
        self, type_: EventType, data: dict[str, Any] | None = None, actor: str | None = None
    ) -> int:
        seq = next_seq(self.before) + len(self.events)
        clean = texts.bounded(
            {k: v for k, v in (data or {}).items() if v is not None},
            text_bytes=texts.EXCERPT_BYTES,
            items=texts.LIST_ITEMS,
        )
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
                "timeline": _with_old_events_compacted(self.before.timeline, self.events),
                "updated_at": self.now,
            }
        )
        state = derived(state, self.policy, self.calendar, self._deadlines, as_of=self.now)
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


def derived(
    state: TicketState,
    policy: ProfilePolicy,
    calendar: CalendarSnapshot,
    deadlines: DeadlineRule,
    *,
    as_of: datetime,
) -> TicketState:
    """``state`` with what is derived from it: its SLA clocks (as of ``as_of``, its last
    change), then its deadlines (which include the clocks' warnings and breaches)."""
    if policy.sla is not None or state.sla:
        state = state.model_copy(update={"sla": sla.clocks(state, policy, calendar, as_of)})
    return state.model_copy(update={"deadlines": deadlines(state, policy, calendar)})


def _with_old_events_compacted(
    before: tuple[TimelineEvent, ...], added: list[TimelineEvent]
) -> tuple[TimelineEvent, ...]:
    """The timeline with ``added``, its events past the newest ``RECENT_EVENTS`` compacted.

    Only the events that leave the recent window now need it (the older ones were
    compacted when they left it), so a commit costs the same however long the ticket.
    """
    timeline = (*before, *added)
    first_old = len(before) - texts.RECENT_EVENTS
    leaving = range(max(first_old, 0), max(len(timeline) - texts.RECENT_EVENTS, 0))
    if not leaving:
        return timeline
    return (
        *timeline[: leaving.start],
        *(texts.compacted(timeline[i]) for i in leaving),
        *timeline[leaving.stop :],
    )


def next_seq(state: TicketState) -> int:
    return state.timeline[-1].seq + 1 if state.timeline else 1


def describe_status(state: TicketState) -> str:
    if state.status is Status.WAITING and state.wait is not None:
        return f"waiting ({state.wait.reason.value})"
    return state.status.value


THREAD_LENGTH = 20
_RECEIVED = (EventType.CREATED, EventType.CUSTOMER_REPLY, EventType.THIRD_PARTY_MESSAGE)
_SENT = (EventType.EMAIL_SENT, EventType.REMINDER_SENT)


def thread_of(state: TicketState) -> tuple[str, ...]:
    """The ticket's mail thread, oldest first (its newest messages): what it received,
    by Message-ID, and what it sent, as ``sent:<seq>`` (the sender knows its domain)."""
    tokens: list[str] = []
    for event in state.timeline:
        if event.type in _RECEIVED and isinstance(event.data.get("message_id"), str):
            tokens.append(event.data["message_id"])
        elif event.type in _SENT:
            tokens.append(f"sent:{event.seq}")
    return tuple(tokens[-THREAD_LENGTH:])


def customer_recipients(state: TicketState) -> tuple[str, ...]:
    fields = state.fields
    ordered = [fields.primary_contact, fields.requester]
    return tuple(dict.fromkeys(addr for addr in ordered if addr))


def rejection(
    state: TicketState, reason: str, code: RejectionCode = "invalid_transition"
) -> CommandRejected:
    return CommandRejected(reason, status=state.status, code=code)


def as_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
