"""The messages a ticket takes: each command's arguments.

A command is declared by its :class:`~workflows.records.CommandSpec` in
:mod:`workflows.commands`, next to its rules; the model of its arguments is here because
models are data. The workflow passes this module through its sandbox, so each class is
built once per worker; the rules run inside the sandbox, where a mistake such as reading
the clock is caught. The models are also the bodies of the API's command routes, less the
fields Tramita fills itself.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import ConfigDict, EmailStr, Field, StringConstraints

from workflows.models import (
    ActorName,
    AssigneeKind,
    AttachmentInfo,
    AwareDatetime,
    Command,
    LongText,
    MergeContent,
    Nature,
    NewTicket,
    Priority,
    Qualification,
    RequesterKind,
    ResolutionMethod,
    ShortText,
    Status,
    StoredText,
    TicketId,
    WaitReason,
)

MAX_CHILDREN = 50


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": list(examples)})


class EditCommand(Command):
    model_config = _examples({"title": "NF-e rejeitada com erro 500", "priority": "urgent"})

    title: ShortText | None = None
    description: LongText | None = None
    category: ShortText | None = None
    priority: Priority | None = None
    nature: Nature | None = None
    requester: EmailStr | None = None
    requester_kind: RequesterKind | None = None
    primary_contact: EmailStr | None = None
    contacts: tuple[EmailStr, ...] | None = Field(default=None, max_length=50)

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude=set(self.ENVELOPE), exclude_none=True)


class SubmitCommand(Command):
    pass


class AssignCommand(Command):
    model_config = _examples({"assignee": "ana", "kind": "human"})

    assignee: ActorName
    kind: AssigneeKind = AssigneeKind.HUMAN


class StartCommand(Command):
    pass


class UnassignCommand(Command):
    model_config = _examples({"to": "bruno"}, {"to": None})

    to: ActorName | None = Field(
        default=None, description="Another resource, or null for the queue."
    )
    to_kind: AssigneeKind = AssigneeKind.HUMAN


class RequeueCommand(Command):
    pass


class RobotRejectCommand(Command):
    model_config = _examples({"reason": "Attachment could not be read"})

    reason: LongText


class WaitCommand(Command):
    model_config = _examples(
        {"reason": "customer"},
        {"reason": "customer", "days": 5, "close_if_no_response": True},
        {"reason": "follow_up", "until": "2026-12-01T09:00:00-03:00"},
        {"reason": "release", "version": "8.4.2"},
    )

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
    model_config = _examples(
        {"body": "Checked the logs: certificate expired.", "resolution": False}
    )

    body: LongText
    resolution: bool = False


class SendEmailCommand(Command):
    model_config = _examples(
        {"body": "Poderia enviar o XML da nota?", "subject": "Informações adicionais"},
        {
            "body": "Certificado renovado, pode testar.",
            "resolve": True,
            "method": "customer_response",
        },
    )

    body: LongText
    subject: ShortText | None = None
    to: tuple[EmailStr, ...] | None = Field(default=None, min_length=1, max_length=20)
    cc: bool = Field(default=False, description="Copy the ticket's contacts.")
    resolve: bool = False
    method: ResolutionMethod | None = None


class CustomerReplyCommand(Command):
    model_config = _examples({"body": "Segue o XML em anexo."})

    INTERNAL_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {
            "subject",
            "message_id",
            "from_address",
            "as_requester",
            "attachments",
            "full_body_ref",
            "raw_ref",
        }
    )

    body: LongText
    subject: str | None = None
    message_id: str | None = None
    from_address: str | None = None
    attachments: tuple[AttachmentInfo, ...] = ()
    full_body_ref: StoredText | None = None
    """An email's whole text, quotes included (``body`` is the new text)."""
    raw_ref: StoredText | None = None
    """An email as it arrived."""
    as_requester: bool = False
    """The requester's own reply, whoever relays it (``POST /replies``): recorded with the
    ticket's requester as author and sender instead of ``actor`` and ``from_address``
    (the actor stays the author of a ticket that names no requester)."""


class ThirdPartyMessageCommand(Command):
    """A message that threads to the ticket but comes from none of its requester and
    contacts: recorded for the agents (highlighted), the status stays."""

    body: LongText
    subject: str | None = None
    message_id: str | None = None
    from_address: str | None = None
    attachments: tuple[AttachmentInfo, ...] = ()
    full_body_ref: StoredText | None = None
    raw_ref: StoredText | None = None


class AutoReplyReceivedCommand(Command):
    """An automatic answer (out of office, a rule) to the ticket's mail: noted, nothing
    else; it never ends a wait or reopens."""

    message_id: str | None = None
    from_address: str | None = None
    subject: str | None = None
    body: LongText | None = None
    reason: str | None = None
    raw_ref: StoredText | None = None


class BounceReceivedCommand(Command):
    """A delivery report: the ticket's mail did not reach someone. Highlighted, so an
    agent can find another way to the customer; the status stays."""

    message_id: str | None = None
    recipients: tuple[str, ...] = Field(default=(), max_length=20)
    permanent: bool = True
    status: str | None = None
    diagnostic: str | None = None
    raw_ref: StoredText | None = None


class ResolveCommand(Command):
    model_config = _examples({"method": "customer_response", "note": "Certificate renewed."})

    method: ResolutionMethod
    note: LongText | None = None


class ReopenCommand(Command):
    pass


class ReleasePublishedCommand(Command):
    version: ShortText


class CaseCompletedCommand(Command):
    model_config = _examples({"note": "Case CASE-17 closed by the legal team."})

    note: LongText | None = None


class QualifyCommand(Command):
    model_config = _examples({"qualification": "product_defect"})

    qualification: Qualification


class RateCommand(Command):
    """An answer to the satisfaction survey (route ``/survey``, event ``rated``)."""

    model_config = _examples({"score": 5, "comment": "Rápido e claro."})

    score: int = Field(ge=1, le=5)
    comment: Annotated[str, StringConstraints(max_length=5_000)] | None = None


class MergeCommand(Command):
    model_config = _examples({"into": "8f3a2c1d9e0b"})

    INTERNAL_FIELDS: ClassVar[frozenset[str]] = frozenset({"target_status", "target_missing"})

    into: TicketId
    target_status: Status | None = None
    """The target's status, looked up by whoever sends the command (the API does)."""
    target_missing: bool = False
    """The sender looked the target up and found no such ticket."""


class SplitCommand(Command):
    model_config = _examples({"children": [{"title": "Payroll part"}, {"title": "Benefits part"}]})

    children: tuple[NewTicket, ...] = Field(min_length=1, max_length=MAX_CHILDREN)


class MergeReceivedCommand(Command, MergeContent):
    """Internal: the target of a merge receives the source's content."""


class ChildClosedCommand(Command):
    """Internal: a child of a split reports that it is closed."""

    child: str
