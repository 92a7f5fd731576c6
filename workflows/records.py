"""The core's record types: what a command, a timer, a decision and a readable content
look like.

Their instances live with the rules that fill them (:mod:`workflows.commands`,
:mod:`workflows.timers`, :mod:`workflows.lifecycle`); the classes are here because they
are data. The workflow passes this module through its sandbox, like its models, so each
class is built once per worker rather than once per ticket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from workflows.models import (
    CalendarSnapshot,
    Command,
    Deadline,
    DeadlineKind,
    Effect,
    EventType,
    Offset,
    ProfilePolicy,
    SlaAlert,
    SlaClock,
    SlaMetric,
    Status,
    TicketState,
    TicketView,
)

if TYPE_CHECKING:
    from workflows.transaction import Transaction

Check = Callable[[TicketState, Any, datetime, ProfilePolicy], None]
Apply = Callable[["Transaction", Any], None]
Offer = Callable[[TicketView, ProfilePolicy, bool], bool]
"""Whether a reader (a requester when the flag is set, else staff) is offered the
command on this ticket now, beyond the statuses it is allowed from."""


@dataclass(frozen=True, kw_only=True)
class CommandSpec:
    """One command: everything the rest of Tramita derives from."""

    name: str
    """The Update and Signal name (and the command's name in errors and events)."""
    model: type[Command]
    allowed_from: frozenset[Status]
    apply: Apply
    check: Check | None = None
    agent_work: bool = False
    """Counts as agent work on the ticket: clears the highlight."""
    requester_may: bool = False
    """A requester may send it (for their own tickets only)."""
    internal: bool = False
    """A message between tickets: a Signal only, no Update and no route."""
    records: frozenset[EventType] = frozenset()
    """The event types it may record (their audience is fixed by the type)."""
    title: str = ""
    """How errors name the command, when its name alone would not say it."""
    offer: Offer | None = None
    """When the console or the customer page offers it; None: staff, and a requester
    where ``requester_may``, whenever the status allows."""

    @property
    def words(self) -> str:
        return self.title or repr(self.name)


@dataclass(frozen=True)
class Decision:
    state: TicketState
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True)
class StatusClock:
    """The clocked timers of the current status: reminders, then the automatic close."""

    reminders: tuple[Offset, ...]
    close_after: Offset
    reminder_label: str
    close_label: str
    reminder_template: str


ArmRule = Callable[[TicketState, ProfilePolicy, CalendarSnapshot], Iterable[Deadline]]
FireRule = Callable[["Transaction", list[Deadline]], None]


@dataclass(frozen=True)
class TimerSpec:
    kind: DeadlineKind
    arm: ArmRule
    fire: FireRule
    """Called with the due deadlines of this kind, earliest first."""
    changes_status: bool


@dataclass(frozen=True)
class Readable:
    """A stored content a reader may fetch, and how to hand it over."""

    content_type: str
    filename: str | None = None


@dataclass(frozen=True)
class SlaSpan:
    """A stretch of time SLA clocks count: the ticket open, and not in a pause."""

    start: datetime
    end: datetime | None  # None: still counting


@dataclass(frozen=True)
class SlaCycle:
    """One run of an SLA metric: when it started, and when it was met or stopped."""

    metric: SlaMetric
    started_at: datetime
    met_at: datetime | None = None
    stopped_at: datetime | None = None


@dataclass(frozen=True)
class DueAlert:
    """A warning or breach an SLA clock owes, and when."""

    alert: SlaAlert
    clock: SlaClock
    due_at: datetime
