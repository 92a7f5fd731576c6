"""Pydantic models shared by the workflow, the activities and the API.

Everything that crosses a Temporal boundary (workflow input, update and signal
arguments, activity input and output, query results) is one of these models, so the
pydantic data converter carries it. State models are frozen: the lifecycle core builds
a new state with ``model_copy(update=...)`` instead of mutating, which keeps it pure.
All datetimes are timezone-aware UTC.

The commands themselves (their arguments and their rules) are declared together in
:mod:`workflows.commands`; this module holds their common envelope, :class:`Command`.
"""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    model_validator,
)


def _require_aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must carry a time zone (e.g. 2026-11-23T10:00:00-03:00)")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_require_aware)]
TICKET_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
TICKET_ID_MAX = 64
TicketId = Annotated[str, StringConstraints(pattern=TICKET_ID_PATTERN, strip_whitespace=True)]
# One line of text (titles, subjects): a line break would end up inside an email header.
ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\r\n]+$"),
]
# A text that may be long (a body, a note): its events keep an excerpt and the API stores
# the whole text outside Temporal (workflows.texts). Marked, so that is derived.
LONG_TEXT = StringConstraints(min_length=1, max_length=100_000)
LongText = Annotated[str, LONG_TEXT]
ActorName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Digest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16,64}$")]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StoredText(Frozen):
    """A text kept whole outside Temporal (the content store), by its SHA-256."""

    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    bytes: int = Field(ge=0)


@cache
def long_text_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``model`` declared as :data:`LongText` (optional or not)."""

    def marked(annotation: Any) -> bool:
        if get_origin(annotation) is Annotated:
            return any(meta is LONG_TEXT for meta in get_args(annotation)[1:])
        return any(marked(arg) for arg in get_args(annotation))

    return tuple(
        name
        for name, info in model.model_fields.items()
        if any(meta is LONG_TEXT for meta in info.metadata) or marked(info.annotation)
    )


PROFILE_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,39}$"
ProfileName = Annotated[str, StringConstraints(pattern=PROFILE_NAME_PATTERN)]
"""A profile's name: data, not a fixed list. The built-ins and TRAMITA_PROFILES_FILE's
profiles are the ones in force (``profiles.Profiles``); a ticket keeps the policy it was
opened with, named by this."""


class BuiltInProfile(StrEnum):
    """The two processes Tramita ships with (``workflows.policy``)."""

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


class Visibility(StrEnum):
    """Who may read a timeline event: everyone on the ticket, or staff only."""

    PUBLIC = "public"
    INTERNAL = "internal"


class EventType(StrEnum):
    """Timeline event types, each with its fixed audience (DESIGN section 10).

    Public: what the customer wrote, emails and reminders sent to the customer, status
    changes, resolution, reopening, closing, rating and follow-up links. Everything else
    is internal: notes, edits, assignments and robot hand-offs, qualification, merges and
    splits (they carry other tickets' content), rejected commands, and what mail brought
    that the customer did not write (a third party's message, auto replies, bounces).
    """

    visibility: Visibility

    def __new__(cls, value: str, visibility: Visibility) -> EventType:
        member = str.__new__(cls, value)
        member._value_ = value
        member.visibility = visibility
        return member

    CREATED = "created", Visibility.PUBLIC
    EDITED = "edited", Visibility.INTERNAL
    SUBMITTED = "submitted", Visibility.PUBLIC
    ASSIGNED = "assigned", Visibility.INTERNAL
    STARTED = "started", Visibility.PUBLIC
    UNASSIGNED = "unassigned", Visibility.INTERNAL
    REQUEUED = "requeued", Visibility.INTERNAL
    ROBOT_REJECTED = "robot_rejected", Visibility.INTERNAL
    WAITING = "waiting", Visibility.PUBLIC
    RESUMED = "resumed", Visibility.PUBLIC
    NOTE = "note", Visibility.INTERNAL
    EMAIL_SENT = "email_sent", Visibility.PUBLIC
    CUSTOMER_REPLY = "customer_reply", Visibility.PUBLIC
    REMINDER_SENT = "reminder_sent", Visibility.PUBLIC
    WAIT_ENDED = "wait_ended", Visibility.PUBLIC
    RESOLVED = "resolved", Visibility.PUBLIC
    REOPENED = "reopened", Visibility.PUBLIC
    CLOSED = "closed", Visibility.PUBLIC
    QUALIFIED = "qualified", Visibility.INTERNAL
    RATED = "rated", Visibility.PUBLIC
    MERGED = "merged", Visibility.INTERNAL
    SPLIT = "split", Visibility.INTERNAL
    RELEASE_PUBLISHED = "release_published", Visibility.INTERNAL
    CASE_COMPLETED = "case_completed", Visibility.INTERNAL
    FOLLOW_UP_CREATED = "follow_up_created", Visibility.PUBLIC
    REJECTED_COMMAND = "rejected_command", Visibility.INTERNAL
    THIRD_PARTY_MESSAGE = "third_party_message", Visibility.INTERNAL
    AUTO_REPLY_RECEIVED = "auto_reply_received", Visibility.INTERNAL
    BOUNCE_RECEIVED = "bounce_received", Visibility.INTERNAL
    SLA_WARNING = "sla_warning", Visibility.INTERNAL
    SLA_BREACHED = "sla_breached", Visibility.INTERNAL


class DeadlineKind(StrEnum):
    REMINDER = "reminder"
    WAIT_END = "wait_end"
    AUTO_RESOLVE = "auto_resolve"
    AUTO_CLOSE = "auto_close"
    SLA_WARNING = "sla_warning"
    SLA_BREACH = "sla_breach"


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


class RequesterKind(StrEnum):
    """Who the requester is. Support's accredited consultants and channels also review
    the qualification during customer validation (DESIGN section 10)."""

    CUSTOMER = "customer"
    CONSULTANT = "consultant"
    CHANNEL = "channel"


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
    closed_dates: tuple[date, ...] = ()
    """Days the desk is closed besides the country's holidays (in ``holidays`` too)."""
    valid_until: date | None = None


# --------------------------------------------------------------------------- policy


class OffsetUnit(StrEnum):
    SECONDS = "seconds"
    MINUTES = "minutes"
    HOURS = "hours"
    CALENDAR_DAYS = "calendar_days"
    BUSINESS_DAYS = "business_days"
    BUSINESS_HOURS = "business_hours"
    BUSINESS_MINUTES = "business_minutes"

    @property
    def business(self) -> bool:
        """Counted in the calendar's business time rather than on the wall clock."""
        return self.value.startswith("business_")


# The words an offset may be written in ("2 business days", "1 hour", "3 days"): the
# singular and plural of each unit.
_OFFSET_WORDS: dict[str, OffsetUnit] = {
    **dict.fromkeys(("second", "seconds"), OffsetUnit.SECONDS),
    **dict.fromkeys(("minute", "minutes"), OffsetUnit.MINUTES),
    **dict.fromkeys(("hour", "hours"), OffsetUnit.HOURS),
    **dict.fromkeys(("day", "days"), OffsetUnit.CALENDAR_DAYS),
    **dict.fromkeys(("business day", "business days"), OffsetUnit.BUSINESS_DAYS),
    **dict.fromkeys(("business hour", "business hours"), OffsetUnit.BUSINESS_HOURS),
    **dict.fromkeys(("business minute", "business minutes"), OffsetUnit.BUSINESS_MINUTES),
}
OFFSET_EXAMPLES = '"2 business days", "4 business hours", "1 hour", "30 minutes", "3 days"'


def parse_offset(text: str) -> tuple[int, OffsetUnit]:
    """``"2 business days"`` as (2, business days); ValueError naming what is accepted."""
    amount, _, unit = " ".join(text.lower().split()).partition(" ")
    if not amount.isdigit() or unit not in _OFFSET_WORDS:
        raise ValueError(
            f"{text!r} is not an offset: write a whole number and a unit, like {OFFSET_EXAMPLES}"
        )
    return int(amount), _OFFSET_WORDS[unit]


class Offset(Frozen):
    """A length of time: on the wall clock, in calendar days, or in business time.

    Written in words where people write it (``"2 business days"``); stored as data."""

    amount: int = Field(ge=0)
    unit: OffsetUnit

    @model_validator(mode="before")
    @classmethod
    def _from_words(cls, data: Any) -> Any:
        if isinstance(data, str):
            amount, unit = parse_offset(data)
            return {"amount": amount, "unit": unit}
        return data

    def describe(self) -> str:
        words = self.unit.value.replace("_", " ").replace("calendar ", "")
        return f"{self.amount} {words[:-1] if self.amount == 1 else words}"


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
    stop_validation_reminders_when_rated: bool = False
    """No validation reminder once the customer has answered the survey (the automatic
    close stays). False in policies written before it existed: their tickets keep the
    reminders they armed."""


class SlaMetric(StrEnum):
    """What an SLA times (README, "Processes and SLAs")."""

    FIRST_REPLY = "first_reply"
    """From the ticket's submission to the first email an agent sends the customer."""
    NEXT_REPLY = "next_reply"
    """From the oldest customer message not yet answered to the agent's next email."""
    RESOLUTION = "resolution"
    """From the submission to the resolution (reopening resumes it)."""


class SlaPause(StrEnum):
    """Where an SLA's clocks stop: a wait for a reason, or the resolved status."""

    WAITING_CUSTOMER = "waiting_customer"
    WAITING_FOLLOW_UP = "waiting_follow_up"
    WAITING_RELEASE = "waiting_release"
    WAITING_OTHER_TEAM = "waiting_other_team"
    WAITING_SPLIT = "waiting_split"
    WAITING_CASE = "waiting_case"
    RESOLVED = "resolved"


class SlaPolicy(Frozen):
    """A profile's SLA targets: per metric and priority, in business time (a unit
    starting with ``business``) or on the wall clock."""

    targets: dict[SlaMetric, dict[Priority, Offset]]
    warn_at: float | None = Field(default=0.75, gt=0, lt=1)
    """The share of a target at which a warning goes out; None: no warnings."""
    pause_while: frozenset[SlaPause] = frozenset({SlaPause.WAITING_CUSTOMER, SlaPause.RESOLVED})
    supervisors: tuple[EmailStr, ...] = ()
    """Told of an unassigned ticket's warnings and breaches (and of an assigned one's
    when its assignee has no address)."""

    def target(self, metric: SlaMetric, priority: Priority) -> Offset | None:
        return self.targets.get(metric, {}).get(priority)


class SlaState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    MET = "met"
    """Achieved: the reply was sent, the ticket resolved."""
    STOPPED = "stopped"
    """Closed before it was achieved (a ticket closed without any reply, say)."""


class SlaClock(Frozen):
    """One SLA metric's clock on a ticket, derived from its timeline (``workflows.sla``).

    ``remaining_seconds`` is in the target's time (business seconds for a business
    target) as of ``as_of``; negative once breached. ``target_at`` is when it runs out
    if nothing pauses it: None while paused."""

    metric: SlaMetric
    target_at: datetime | None
    warning_at: datetime | None = None
    """When a running clock's warning is due (None: no warnings, or not running)."""
    paused: bool
    remaining_seconds: int
    breached_at: datetime | None = None
    state: SlaState
    started_at: datetime
    met_at: datetime | None = None
    target: str
    """The target in words ("4 business hours"), for the ticket's priority."""
    target_seconds: int
    business_time: bool
    as_of: datetime


class SlaAlert(StrEnum):
    WARNING = "sla_warning"
    BREACHED = "sla_breached"


# The timers' labels, by the key each timer names (workflows.timers), in the two
# languages the built-in profiles speak. A profile may set its own.
DEADLINE_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "customer_reminder": "Reminder {number} of {total} to the customer",
        "validation_reminder": "Validation reminder {number} of {total}",
        "close_no_info": "Close for lack of information",
        "close_resolved": "Close when the feedback window ends",
        "auto_resolve": "Resolve: no customer response",
        "wait_end": "End of wait for more info",
        "follow_up": "Follow-up date",
        "sla_warning": "SLA warning: {metric}",
        "sla_breached": "SLA breach: {metric}",
        "first_reply": "first reply",
        "next_reply": "next reply",
        "resolution": "resolution",
    },
    "pt-BR": {
        "customer_reminder": "Lembrete {number} de {total} ao cliente",
        "validation_reminder": "Lembrete de validação {number} de {total}",
        "close_no_info": "Fechamento por falta de informação",
        "close_resolved": "Fechamento automático após validação",
        "auto_resolve": "Resolver: sem resposta do cliente",
        "wait_end": "Fim da espera por informações",
        "follow_up": "Data de acompanhamento",
        "sla_warning": "Alerta de SLA: {metric}",
        "sla_breached": "SLA violado: {metric}",
        "first_reply": "primeira resposta",
        "next_reply": "próxima resposta",
        "resolution": "resolução",
    },
}


class ProfilePolicy(Frozen):
    """A profile is data: labels, rules and timers. One engine serves every profile."""

    name: ProfileName
    language: Literal["en", "pt-BR"]
    status_labels: dict[Status, str]
    wait_labels: dict[WaitReason, str]
    wait_label_format: str = "{reason}"
    """How a waiting ticket's label is built from the status label and the reason's."""
    deadline_labels: dict[str, str] = Field(default_factory=dict)
    """Timer labels by key (``customer_reminder``, ``close_no_info``, ...)."""
    wait_reasons: frozenset[WaitReason]
    resolution_methods: frozenset[ResolutionMethod]
    assign_starts_work: bool
    agent_activity_starts_work: bool
    require_resolution_message: bool
    qualification_enabled: bool
    qualification_review_kinds: frozenset[RequesterKind] = frozenset()
    """Requester kinds that see and may change the qualification in customer validation."""
    split_enabled: bool
    acknowledge_new_tickets: bool = False
    """Mail an acknowledgement to whoever opened a ticket by email (a person only)."""
    reject_unknown_senders: bool = False
    """Close at once, as ``unknown_sender``, a ticket opened by mail from a sender outside
    ``TRAMITA_KNOWN_SENDERS`` (when that lists anyone): the Enate process does."""
    timers: TimerPolicy
    sla: SlaPolicy | None = None

    @model_validator(mode="before")
    @classmethod
    def _written_before_these_fields(cls, data: Any) -> Any:
        """Policies travel in running tickets' inputs: one written before the label fields
        existed gets what its profile then did (the labels of its language; Enate named
        the status before the wait's reason)."""
        if not isinstance(data, dict) or "deadline_labels" in data:
            return data
        language = data.get("language", "en")
        legacy_enate = data.get("name") == BuiltInProfile.ENATE.value
        return {
            **data,
            "deadline_labels": DEADLINE_LABELS.get(language, DEADLINE_LABELS["en"]),
            "wait_label_format": "{status}: {reason}" if legacy_enate else "{reason}",
            "qualification_review_kinds": ()
            if legacy_enate or not data.get("qualification_enabled")
            else (RequesterKind.CONSULTANT.value, RequesterKind.CHANNEL.value),
        }


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
    requester_kind: RequesterKind = RequesterKind.CUSTOMER
    primary_contact: str | None = None
    contacts: tuple[str, ...] = ()
    description_ref: StoredText | None = None
    """Where the whole description is, when it is longer than the excerpt kept here."""


class NewTicket(BaseModel):
    """A ticket to open: the body of ``POST /tickets`` and of each child of ``/split``."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "profile": "support",
                    "title": "Erro ao emitir nota fiscal",
                    "description": "Ao emitir a NF-e o sistema mostra o erro 500.",
                    "category": "fiscal",
                    "priority": "high",
                    "nature": "incident",
                    "requester": "cliente@empresa.com.br",
                    "primary_contact": "cliente@empresa.com.br",
                }
            ]
        },
    )

    id: TicketId | None = Field(
        default=None, description="Client-chosen id; creating it twice is a no-op."
    )
    profile: ProfileName | None = Field(
        default=None,
        description="Defaults to TRAMITA_DEFAULT_PROFILE (a split child: its parent's).",
    )
    title: ShortText | None = None
    description: LongText | None = None
    category: ShortText | None = None
    priority: Priority | None = None
    nature: Nature | None = None
    requester: EmailStr | None = None
    requester_kind: RequesterKind | None = Field(
        default=None, description="customer (default), consultant or channel."
    )
    primary_contact: EmailStr | None = None
    contacts: tuple[EmailStr, ...] | None = Field(default=None, max_length=50)
    submit: bool = Field(default=True, description="Submit at once (needs every required field).")

    def ticket_fields(self) -> TicketFields:
        return TicketFields(
            title=self.title,
            description=self.description,
            category=self.category,
            priority=self.priority or Priority.NORMAL,
            nature=self.nature,
            requester=self.requester,
            requester_kind=self.requester_kind or RequesterKind.CUSTOMER,
            primary_contact=self.primary_contact,
            contacts=tuple(self.contacts or ()),
        )


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
    sla: tuple[SlaClock, ...] = ()
    """Derived after every change, like ``deadlines`` (``workflows.sla``)."""
    timeline: tuple[TimelineEvent, ...] = ()
    open_children: tuple[str, ...] = ()
    seen_message_ids: tuple[str, ...] = ()
    idempotency_keys: tuple[tuple[str, str], ...] = ()
    """The latest keyed commands: (key digest, request digest), oldest first, bounded."""
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None


class TicketView(BaseModel):
    """The staff view of a ticket: what agents, the API's staff keys, webhooks and the
    ``view`` query see (DESIGN sections 2 and 6)."""

    model_config = ConfigDict(frozen=True)

    audience: Literal["staff"] = "staff"
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
    requester_kind: RequesterKind = RequesterKind.CUSTOMER
    primary_contact: str | None
    contacts: tuple[str, ...]
    description_ref: StoredText | None = None
    assignee: Assignee | None
    needs_human: bool
    highlighted: bool
    wait: Wait | None
    resolution: Resolution | None
    qualification: Qualification | None
    survey: Survey | None
    links: Links
    deadlines: tuple[Deadline, ...]
    sla: tuple[SlaClock, ...] = ()
    timeline: tuple[TimelineEvent, ...]
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class AttachmentInfo(Frozen):
    """A file that came with a message, as its event lists it."""

    filename: Annotated[str, StringConstraints(max_length=255)]
    content_type: Annotated[str, StringConstraints(max_length=255)]
    size: int = Field(ge=0)
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None
    """None when it was not kept (over ``TRAMITA_MAX_ATTACHMENT_BYTES``)."""
    refused: str | None = None


class OpeningMessage(Frozen):
    """The email that opened a ticket: where it came from and what came with it."""

    message_id: str
    sender: str | None = None
    attachments: tuple[AttachmentInfo, ...] = ()
    raw_ref: StoredText | None = None
    full_body_ref: StoredText | None = None
    acknowledge: bool = False
    """The sender is a person who may be answered (not a no-reply or daemon address)."""


class CustomerEvent(BaseModel):
    """A public timeline event as the requester sees it: only what is theirs to read."""

    model_config = ConfigDict(frozen=True)

    seq: int
    at: datetime
    type: EventType
    actor: str
    status_label: str | None = None
    """For an event that moved the ticket: the label of the status it moved to."""
    data: dict[str, Any] = Field(default_factory=dict)


class CustomerResolution(BaseModel):
    model_config = ConfigDict(frozen=True)

    method: ResolutionMethod
    at: datetime


class CustomerLinks(BaseModel):
    model_config = ConfigDict(frozen=True)

    follow_up_of: str | None = None
    follow_ups: tuple[str, ...] = ()


class CustomerView(BaseModel):
    """The customer view (DESIGN section 10): what the requester of a ticket may read."""

    model_config = ConfigDict(frozen=True)

    audience: Literal["customer"] = "customer"
    id: str
    profile: ProfileName
    status: Status
    status_label: str
    title: str | None
    description: str | None
    description_ref: StoredText | None = None
    wait_label: str | None
    resolution: CustomerResolution | None
    survey: Survey | None
    survey_open: bool
    """Whether the satisfaction survey may be answered (or changed) now."""
    qualification: Qualification | None
    """Only for requesters who review it (support's consultants and channels)."""
    qualification_review_open: bool
    agent: str | None
    """The display name of whoever handles the ticket; nothing more about them."""
    closes_at: datetime | None
    """When the ticket will close by itself, if a timer says so."""
    links: CustomerLinks
    timeline: tuple[CustomerEvent, ...]
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
    """The envelope of every command message: who acts and for whom. Each command's
    own arguments are declared with its rules in :mod:`workflows.commands`.

    Unknown fields are rejected. ``INTERNAL_FIELDS`` of a command are filled by Tramita
    itself (the inbound router, the API's gateway), never taken from an API body.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    ENVELOPE: ClassVar[frozenset[str]] = frozenset(
        {"actor", "requester_only", "key_digest", "request_digest", "stored_texts"}
    )
    INTERNAL_FIELDS: ClassVar[frozenset[str]] = frozenset()

    actor: ActorName = "system"
    requester_only: bool = False
    """Sent by a requester, not staff: refused as ``not_found`` unless ``actor`` is the
    ticket's requester, so a requester learns nothing about other people's tickets."""
    key_digest: Digest | None = None
    """The caller's ``Idempotency-Key`` for this ticket, as a digest of caller and key."""
    request_digest: Digest | None = None
    """A digest of the command's name and arguments: what the key was used for."""
    stored_texts: dict[str, StoredText] = Field(default_factory=dict)
    """Long texts of this command stored whole outside Temporal, by field name; the
    field itself then holds an excerpt."""

    def stored(self, field: str) -> StoredText | None:
        return self.stored_texts.get(field)

    def arguments(self) -> dict[str, Any]:
        """The command's own arguments (envelope left out), as JSON values."""
        return self.model_dump(mode="json", exclude=set(self.ENVELOPE))


def workflow_id_for(ticket_id: str) -> str:
    return f"ticket-{ticket_id}"


# --------------------------------------------------------------------------- effects


class EmailKind(StrEnum):
    AGENT = "agent"
    """Written by an agent: a person's mail, answerable."""
    REMINDER = "reminder"
    ACKNOWLEDGEMENT = "acknowledgement"

    @property
    def automatic(self) -> bool:
        """Sent by Tramita on its own: marked so auto replies and loops can tell."""
        return self is not EmailKind.AGENT


class SendEmailEffect(Frozen):
    kind: EmailKind
    seq: int
    """Timeline seq of the event that asked for this email; makes its Message-ID stable."""
    to: tuple[str, ...]
    subject: str | None = None
    body: str | None = None
    body_ref: StoredText | None = None
    """The whole body, when ``body`` is an excerpt of it."""
    template: str | None = None
    reminder_number: int | None = None
    reminder_total: int | None = None
    closes_at: datetime | None = None
    cc: tuple[str, ...] = ()
    author: str | None = None
    """Who wrote it (an agent's subject), for the sender's display name."""
    thread: tuple[str, ...] = ()
    """The ticket's messages this one follows, oldest first: received Message-IDs as they
    are, Tramita's own as ``sent:<seq>`` (the sender knows the domain)."""


class WebhookEffect(Frozen):
    seq: int
    event: str
    from_status: Status | None
    to_status: Status
    sla: SlaClock | None = None
    """The clock a ``sla_warning`` or ``sla_breached`` event is about."""


class StartChildEffect(Frozen):
    child_id: str
    spec: NewTicket


class NotifyParentEffect(Frozen):
    parent_id: str


class MergeContent(Frozen):
    """What a merged ticket hands to the ticket it was merged into."""

    source: str
    title: str | None = None
    description: str | None = None
    messages: tuple[str, ...] = ()


class MergeIntoEffect(Frozen):
    target_id: str
    actor: str
    content: MergeContent

    @model_validator(mode="before")
    @classmethod
    def _written_with_the_command(cls, data: Any) -> Any:
        """Effects pending at a continue-as-new travel in the next run's input: one
        written when the content was the whole signal (actor included) still decodes."""
        if isinstance(data, dict) and "actor" not in data and isinstance(data.get("content"), dict):
            content = dict(data["content"])
            actor = content.pop("actor", "system")
            content.pop("requester_only", None)
            return {**data, "actor": actor, "content": content}
        return data


class AgentNotice(StrEnum):
    ASSIGNED = "assigned"
    CUSTOMER_REPLIED = "customer_replied"


class NotifyAgentEffect(Frozen):
    """Tell an agent, by email, of a ticket that needs them: one assigned to them by
    someone else, or a customer's reply on one of theirs."""

    seq: int
    agent: str
    notice: AgentNotice


class SlaAlertEffect(Frozen):
    """Tell the assignee (else the SLA's supervisors) of a warning or a breach."""

    seq: int
    alert: SlaAlert
    clock: SlaClock
    agent: str | None
    supervisors: tuple[str, ...] = ()


Effect = (
    SendEmailEffect
    | WebhookEffect
    | StartChildEffect
    | NotifyParentEffect
    | MergeIntoEffect
    | NotifyAgentEffect
    | SlaAlertEffect
)


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
    opening_message: OpeningMessage | None = None
    """Set when an email opened the ticket (recorded on its ``created`` event)."""
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
    notify_agents: bool = False
    """True where agents have addresses to be told at (``TRAMITA_API_KEYS``, ``email``):
    an assignment by someone else and a customer's reply then email the assignee. Fixed
    for the ticket's life and handed to its children and next runs."""
    keep_store: bool = False
    """True in every input this version writes: the ticket writes its row in the ticket
    store (a local activity) whenever it changes, before it answers the command. False in
    inputs written before the store existed, whose histories have no such writes."""


class EmailInput(BaseModel):
    ticket_id: str
    profile: ProfileName
    language: Literal["en", "pt-BR"]
    title: str | None
    email: SendEmailEffect
    timezone: str | None = None
    """The ticket's calendar zone: the Date header is in its offset."""
    requester: str | None = None
    """The ticket's requester: an email that goes to them carries their signed link to
    the ticket's page (made by the activity; no secret enters the history)."""


class AgentNoticeInput(BaseModel):
    ticket_id: str
    language: Literal["en", "pt-BR"]
    title: str | None
    agent: str
    notice: AgentNotice
    seq: int
    timezone: str | None = None


class SlaAlertInput(BaseModel):
    ticket_id: str
    language: Literal["en", "pt-BR"]
    title: str | None
    priority: Priority
    alert: SlaAlertEffect
    timezone: str | None = None


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
    closed_dates: tuple[date, ...] = ()
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
            closed_dates=calendar.closed_dates,
            from_year=from_year,
            years_ahead=years_ahead,
        )
