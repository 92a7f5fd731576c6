"""Pydantic models shared by the workflow, the activities and the API.

Everything that crosses a Temporal boundary (workflow input, update and signal
arguments, activity input and output, query results) is one of these models, so the
pydantic data converter carries it. State models are frozen: the lifecycle core builds
a new state with ``model_copy(update=...)`` instead of mutating, which keeps it pure.
All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints


def _require_aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must carry a time zone (e.g. 2026-11-23T10:00:00-03:00)")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_require_aware)]
TicketId = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", strip_whitespace=True)
]
# One line of text (titles, subjects): a line break would end up inside an email header.
ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\r\n]+$"),
]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
ActorName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProfileName(StrEnum):
    ENATE = "enate"
    SUPPORT = "support"


class Status(StrEnum):
    DRAFT = "draft"
    NEW = "new"
    IN_PROGRESS = "in_progress"
    WAITING = "waiting"
    RESOLVED = "resolved"
    CLOSED = "closed"


class WaitReason(StrEnum):
    CUSTOMER = "customer"
    FOLLOW_UP = "follow_up"
    RELEASE = "release"
    OTHER_TEAM = "other_team"
    SPLIT = "split"
    CASE = "case"


class ResolutionMethod(StrEnum):
    CUSTOMER_RESPONSE = "customer_response"
    NO_CUSTOMER_RESPONSE = "no_customer_response"
    REJECTED = "rejected"
    SPAM = "spam"
    UNKNOWN_SENDER = "unknown_sender"
    MERGED = "merged"
    SPLIT_COMPLETED = "split_completed"
    CASE_COMPLETED = "case_completed"


IMMEDIATE_CLOSE_METHODS = frozenset({ResolutionMethod.SPAM, ResolutionMethod.UNKNOWN_SENDER})


class EventType(StrEnum):
    CREATED = "created"
    EDITED = "edited"
    SUBMITTED = "submitted"
    ASSIGNED = "assigned"
    STARTED = "started"
    UNASSIGNED = "unassigned"
    REQUEUED = "requeued"
    ROBOT_REJECTED = "robot_rejected"
    WAITING = "waiting"
    RESUMED = "resumed"
    NOTE = "note"
    EMAIL_SENT = "email_sent"
    CUSTOMER_REPLY = "customer_reply"
    REMINDER_SENT = "reminder_sent"
    WAIT_ENDED = "wait_ended"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    CLOSED = "closed"
    QUALIFIED = "qualified"
    RATED = "rated"
    MERGED = "merged"
    SPLIT = "split"
    RELEASE_PUBLISHED = "release_published"
    CASE_COMPLETED = "case_completed"
    FOLLOW_UP_CREATED = "follow_up_created"
    REJECTED_COMMAND = "rejected_command"


class DeadlineKind(StrEnum):
    REMINDER = "reminder"
    WAIT_END = "wait_end"
    AUTO_RESOLVE = "auto_resolve"
    AUTO_CLOSE = "auto_close"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Nature(StrEnum):
    INCIDENT = "incident"
    QUESTION = "question"
    REQUEST = "request"


class AssigneeKind(StrEnum):
    HUMAN = "human"
    ROBOT = "robot"


class Qualification(StrEnum):
    """Support qualifications. ``undefined_lack_of_info`` is the automatic one (HD1)."""

    UNDEFINED_LACK_OF_INFO = "undefined_lack_of_info"
    SOLVED = "solved"
    PRODUCT_DEFECT = "product_defect"
    USAGE_QUESTION = "usage_question"
    CONFIGURATION = "configuration"
    IMPROVEMENT_REQUEST = "improvement_request"
    NOT_APPLICABLE = "not_applicable"


# --------------------------------------------------------------------------- calendar


class CalendarSnapshot(Frozen):
    """A business calendar as plain data, resolved outside the workflow.

    ``work_days`` uses ISO weekday numbers (1 = Monday ... 7 = Sunday). ``holidays``
    covers the years up to ``valid_until``; the workflow refreshes the snapshot before
    that date is reached.
    """

    timezone: str = "America/Sao_Paulo"
    work_days: tuple[int, ...] = (1, 2, 3, 4, 5)
    opens_at: time = time(8, 0)
    closes_at: time = time(18, 0)
    holidays: tuple[date, ...] = ()
    country: str | None = None
    subdivision: str | None = None
    valid_until: date | None = None


# --------------------------------------------------------------------------- policy


class OffsetUnit(StrEnum):
    SECONDS = "seconds"
    MINUTES = "minutes"
    HOURS = "hours"
    CALENDAR_DAYS = "calendar_days"
    BUSINESS_DAYS = "business_days"


class Offset(Frozen):
    amount: int = Field(ge=0)
    unit: OffsetUnit

    def describe(self) -> str:
        return f"{self.amount} {self.unit.value.replace('_', ' ')}"


class TimerPolicy(Frozen):
    """Timer offsets of one profile. Clocks count from the anchor of the current status."""

    customer_wait_reminders: tuple[Offset, ...] = ()
    customer_wait_close: Offset | None = None
    """Support: close after this long without an answer. Enate uses the wait's ``days``."""
    resolved_reminders: tuple[Offset, ...] = ()
    resolved_close: Offset = Offset(amount=3, unit=OffsetUnit.BUSINESS_DAYS)
    defer_reminders_to_business_hours: bool = False
    restart_clocks_on_email: bool = False
    """Support: any email from support restarts the clock of the current status."""


class ProfilePolicy(Frozen):
    """A profile is data: labels, rules and timers. One engine serves every profile."""

    name: ProfileName
    language: Literal["en", "pt-BR"]
    status_labels: dict[Status, str]
    wait_labels: dict[WaitReason, str]
    wait_reasons: frozenset[WaitReason]
    resolution_methods: frozenset[ResolutionMethod]
    assign_starts_work: bool
    agent_activity_starts_work: bool
    require_resolution_message: bool
    qualification_enabled: bool
    split_enabled: bool
    timers: TimerPolicy


# --------------------------------------------------------------------------- state


class Contact(Frozen):
    email: EmailStr
    name: str | None = None


class TicketFields(Frozen):
    title: str | None = None
    description: str | None = None
    category: str | None = None
    priority: Priority = Priority.NORMAL
    nature: Nature | None = None
    requester: str | None = None
    primary_contact: str | None = None
    contacts: tuple[str, ...] = ()


class Assignee(Frozen):
    id: ActorName
    kind: AssigneeKind = AssigneeKind.HUMAN


class Wait(Frozen):
    reason: WaitReason
    since: datetime
    days: int | None = None
    close_if_no_response: bool = False
    until: datetime | None = None
    version: str | None = None
    area: str | None = None
    case_ref: str | None = None
    qualification_before: Qualification | None = None
    """Support sets ``undefined_lack_of_info`` on entering a customer wait; this restores."""


class Resolution(Frozen):
    method: ResolutionMethod
    at: datetime
    message_seq: int | None = None


class Survey(Frozen):
    score: int
    comment: str | None = None
    at: datetime


class Links(Frozen):
    follow_up_of: str | None = None
    follow_ups: tuple[str, ...] = ()
    parent: str | None = None
    children: tuple[str, ...] = ()
    merged_into: str | None = None


class Deadline(Frozen):
    kind: DeadlineKind
    due_at: datetime
    label: str


class TimelineEvent(Frozen):
    seq: int
    at: datetime
    type: EventType
    actor: str
    data: dict[str, Any] = Field(default_factory=dict)


class StatusClock(Frozen):
    """The clock of the current status: when it started and which reminders went out."""

    started_at: datetime
    reminders_sent: int = 0


class TicketState(Frozen):
    id: str
    profile: ProfileName
    status: Status = Status.DRAFT
    fields: TicketFields = TicketFields()
    assignee: Assignee | None = None
    needs_human: bool = False
    highlighted: bool = False
    wait: Wait | None = None
    resolution: Resolution | None = None
    qualification: Qualification | None = None
    survey: Survey | None = None
    links: Links = Links()
    clock: StatusClock | None = None
    deadlines: tuple[Deadline, ...] = ()
    timeline: tuple[TimelineEvent, ...] = ()
    open_children: tuple[str, ...] = ()
    seen_message_ids: tuple[str, ...] = ()
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None


class TicketView(BaseModel):
    """What the API and the ``view`` query show of a ticket (DESIGN section 2 and 6)."""

    model_config = ConfigDict(frozen=True)

    id: str
    profile: ProfileName
    status: Status
    status_label: str
    title: str | None
    description: str | None
    category: str | None
    priority: Priority
    nature: Nature | None
    requester: str | None
    primary_contact: str | None
    contacts: tuple[str, ...]
    assignee: Assignee | None
    needs_human: bool
    highlighted: bool
    wait: Wait | None
    resolution: Resolution | None
    qualification: Qualification | None
    survey: Survey | None
    links: Links
    deadlines: tuple[Deadline, ...]
    timeline: tuple[TimelineEvent, ...]
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class CommandResult(BaseModel):
    """What an Update answers. Temporal stores it in history, so its size is bounded.

    It carries the new ``view`` while the timeline is short (every ordinary ticket): the
    API answers a command without a second round trip. Past
    :data:`workflows.lifecycle.VIEW_IN_ANSWER_MAX_EVENTS` it carries none and the API
    reads the view with the ``view`` query (not stored): answering every update with the
    whole timeline would grow history with the square of it.
    """

    model_config = ConfigDict(frozen=True)

    ticket_id: str
    status: Status
    status_label: str
    seq: int
    """The last timeline event when the command was applied."""
    updated_at: datetime
    view: TicketView | None = None


# --------------------------------------------------------------------------- commands


class Command(BaseModel):
    """Base of every command message: who acts. Unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    actor: ActorName = "system"
    requester_only: bool = False
    """Sent by a requester, not staff: refused as ``not_found`` unless ``actor`` is the
    ticket's requester, so a requester learns nothing about other people's tickets."""


class EditCommand(Command):
    title: ShortText | None = None
    description: LongText | None = None
    category: ShortText | None = None
    priority: Priority | None = None
    nature: Nature | None = None
    requester: EmailStr | None = None
    primary_contact: EmailStr | None = None
    contacts: tuple[EmailStr, ...] | None = None


class SubmitCommand(Command):
    pass


class AssignCommand(Command):
    assignee: ActorName
    kind: AssigneeKind = AssigneeKind.HUMAN


class StartCommand(Command):
    pass


class UnassignCommand(Command):
    to: ActorName | None = None
    to_kind: AssigneeKind = AssigneeKind.HUMAN


class RequeueCommand(Command):
    pass


class RobotRejectCommand(Command):
    reason: LongText


class WaitCommand(Command):
    reason: WaitReason
    days: int | None = Field(default=None, ge=1, le=365)
    close_if_no_response: bool = False
    until: AwareDatetime | None = None
    version: ShortText | None = None
    area: ShortText | None = None
    case_ref: ShortText | None = None


class ResumeCommand(Command):
    pass


class NoteCommand(Command):
    body: LongText
    resolution: bool = False


class SendEmailCommand(Command):
    body: LongText
    subject: ShortText | None = None
    to: tuple[EmailStr, ...] | None = None
    resolve: bool = False
    method: ResolutionMethod | None = None


class CustomerReplyCommand(Command):
    body: LongText
    subject: str | None = None
    message_id: str | None = None
    from_address: str | None = None
    as_requester: bool = False
    """The requester's own reply, whoever relays it (``POST /replies``): recorded with the
    ticket's requester as author and sender instead of ``actor`` and ``from_address``
    (the actor stays the author of a ticket that names no requester)."""


class ResolveCommand(Command):
    method: ResolutionMethod
    note: LongText | None = None


class ReopenCommand(Command):
    pass


class ReleasePublishedCommand(Command):
    version: ShortText


class CaseCompletedCommand(Command):
    note: LongText | None = None


class QualifyCommand(Command):
    qualification: Qualification


class RateCommand(Command):
    score: int = Field(ge=1, le=5)
    comment: Annotated[str, StringConstraints(max_length=5_000)] | None = None


class MergeCommand(Command):
    into: TicketId


class ChildTicketSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: ShortText
    description: LongText | None = None
    category: ShortText | None = None
    priority: Priority = Priority.NORMAL
    nature: Nature | None = None
    requester: EmailStr | None = None
    primary_contact: EmailStr | None = None


class SplitCommand(Command):
    children: tuple[ChildTicketSpec, ...] = Field(min_length=1, max_length=50)


class MergeReceivedCommand(Command):
    """Internal: the target of a merge receives the source's content."""

    source: str
    title: str | None = None
    description: str | None = None
    messages: tuple[str, ...] = ()


class ChildClosedCommand(Command):
    """Internal: a child of a split reports that it is closed."""

    child: str


AnyCommand = (
    EditCommand
    | SubmitCommand
    | AssignCommand
    | StartCommand
    | UnassignCommand
    | RequeueCommand
    | RobotRejectCommand
    | WaitCommand
    | ResumeCommand
    | NoteCommand
    | SendEmailCommand
    | CustomerReplyCommand
    | ResolveCommand
    | ReopenCommand
    | ReleasePublishedCommand
    | CaseCompletedCommand
    | QualifyCommand
    | RateCommand
    | MergeCommand
    | SplitCommand
    | MergeReceivedCommand
    | ChildClosedCommand
)


def workflow_id_for(ticket_id: str) -> str:
    return f"ticket-{ticket_id}"


# --------------------------------------------------------------------------- effects


class EmailKind(StrEnum):
    AGENT = "agent"
    REMINDER = "reminder"


class SendEmailEffect(Frozen):
    kind: EmailKind
    seq: int
    """Timeline seq of the event that asked for this email; makes its Message-ID stable."""
    to: tuple[str, ...]
    subject: str | None = None
    body: str | None = None
    template: str | None = None
    reminder_number: int | None = None
    reminder_total: int | None = None
    closes_at: datetime | None = None


class WebhookEffect(Frozen):
    seq: int
    event: str
    from_status: Status | None
    to_status: Status


class StartChildEffect(Frozen):
    child_id: str
    spec: ChildTicketSpec


class NotifyParentEffect(Frozen):
    parent_id: str


class MergeIntoEffect(Frozen):
    target_id: str
    content: MergeReceivedCommand


Effect = SendEmailEffect | WebhookEffect | StartChildEffect | NotifyParentEffect | MergeIntoEffect


# --------------------------------------------------------------------------- workflow I/O


class TicketInput(BaseModel):
    """The one input of TicketWorkflow.

    ``state`` (and ``pending_effects``) are set when continuing as new; the bench also uses
    ``state`` to open tickets already waiting, computed by the same lifecycle core.
    """

    model_config = ConfigDict(extra="forbid")

    ticket_id: TicketId
    policy: ProfilePolicy
    calendar: CalendarSnapshot
    opened_at: AwareDatetime | None = None
    """When the API accepted the ticket. A new ticket is created as of this moment (its
    ``created_at`` and first deadlines), so the API can answer with the opening view
    computed by the same core instead of asking the workflow. None (child tickets, inputs
    older than this field): the time of the ticket's first workflow task."""
    fields: TicketFields = TicketFields()
    submit: bool = False
    actor: str = "system"
    follow_up_of: str | None = None
    parent: str | None = None
    state: TicketState | None = None
    pending_effects: tuple[Effect, ...] = ()
    deliver_webhooks: bool = True
    """False when no webhook receiver was configured where the ticket was opened: its
    status changes then schedule no webhook activity at all (three history events each).
    Fixed for the ticket's life and handed to its children and next runs."""
    archive_locally: bool = False
    """True in every input this version writes (the API's, a child's, a continue-as-new's):
    the closed ticket is archived by a local activity and no patch marker is recorded.
    False only in inputs written before this field, whose tickets may have started before
    the local archive existed: they ask ``workflow.patched("archive-as-local-activity")``,
    which costs a marker and a ``TemporalChangeVersion`` upsert (README, "Changing
    workflow code")."""


class EmailInput(BaseModel):
    ticket_id: str
    profile: ProfileName
    language: Literal["en", "pt-BR"]
    title: str | None
    email: SendEmailEffect


class EmailResult(BaseModel):
    message_id: str
    recipients: tuple[str, ...]


class WebhookInput(BaseModel):
    ticket_id: str
    profile: ProfileName
    status_label: str
    effect: WebhookEffect
    occurred_at: datetime


class ArchiveInput(BaseModel):
    view: TicketView


class CalendarRequest(BaseModel):
    timezone: str
    work_days: tuple[int, ...]
    opens_at: time
    closes_at: time
    country: str | None
    subdivision: str | None
    years_ahead: int = 3
    from_year: int

    @classmethod
    def like(
        cls, calendar: CalendarSnapshot, *, from_year: int, years_ahead: int = 3
    ) -> CalendarRequest:
        """A request for a fresh snapshot of the same calendar, from ``from_year`` on."""
        return cls(
            timezone=calendar.timezone,
            work_days=calendar.work_days,
            opens_at=calendar.opens_at,
            closes_at=calendar.closes_at,
            country=calendar.country,
            subdivision=calendar.subdivision,
            from_year=from_year,
            years_ahead=years_ahead,
        )
