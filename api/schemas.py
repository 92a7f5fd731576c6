"""HTTP request and response bodies (DESIGN section 6). Unknown fields are rejected."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field
from pydantic.config import JsonDict

from workflows.models import (
    ActorName,
    AssigneeKind,
    AwareDatetime,
    LongText,
    Nature,
    Priority,
    ProfileName,
    Qualification,
    ResolutionMethod,
    ShortText,
    Status,
    TicketId,
    WaitReason,
)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _examples(*examples: JsonDict) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(examples)})


class TicketFieldsBody(Body):
    title: ShortText | None = None
    description: LongText | None = None
    category: ShortText | None = None
    priority: Priority | None = None
    nature: Nature | None = None
    requester: EmailStr | None = None
    primary_contact: EmailStr | None = None


class CreateTicketBody(TicketFieldsBody):
    model_config = _examples(
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
    )

    id: TicketId | None = Field(
        default=None, description="Client-chosen id; creating it twice is a no-op."
    )
    profile: ProfileName | None = Field(
        default=None, description="Defaults to TRAMITA_DEFAULT_PROFILE."
    )
    submit: bool = Field(default=True, description="Submit at once (needs every required field).")


class EditBody(TicketFieldsBody):
    model_config = _examples({"title": "NF-e rejeitada com erro 500", "priority": "urgent"})

    contacts: list[EmailStr] | None = Field(default=None, max_length=50)


class EmptyBody(Body):
    pass


class AssignBody(Body):
    model_config = _examples({"assignee": "ana", "kind": "human"})

    assignee: ActorName
    kind: AssigneeKind = AssigneeKind.HUMAN


class UnassignBody(Body):
    model_config = _examples({"to": "bruno"}, {"to": None})

    to: ActorName | None = Field(
        default=None, description="Another resource, or null for the queue."
    )


class RobotRejectBody(Body):
    model_config = _examples({"reason": "Attachment could not be read"})

    reason: LongText


class WaitBody(Body):
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


class NoteBody(Body):
    model_config = _examples(
        {"body": "Checked the logs: certificate expired.", "resolution": False}
    )

    body: LongText
    resolution: bool = False


class EmailBody(Body):
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
    to: list[EmailStr] | None = Field(default=None, min_length=1, max_length=20)
    resolve: bool = False
    method: ResolutionMethod | None = None


class ReplyBody(Body):
    model_config = _examples({"body": "Segue o XML em anexo."})

    body: LongText


class ResolveBody(Body):
    model_config = _examples({"method": "customer_response", "note": "Certificate renewed."})

    method: ResolutionMethod
    note: LongText | None = None


class CaseCompleteBody(Body):
    model_config = _examples({"note": "Case CASE-17 closed by the legal team."})

    note: LongText | None = None


class QualificationBody(Body):
    model_config = _examples({"qualification": "product_defect"})

    qualification: Qualification


class SurveyBody(Body):
    model_config = _examples({"score": 5, "comment": "Rápido e claro."})

    score: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=5_000)


class MergeBody(Body):
    model_config = _examples({"into": "8f3a2c1d9e0b"})

    into: TicketId


class SplitBody(Body):
    model_config = _examples({"children": [{"title": "Payroll part"}, {"title": "Benefits part"}]})

    children: list[CreateTicketBody] = Field(min_length=1, max_length=50)


class FollowUpBody(Body):
    model_config = _examples(
        {"title": "Erro voltou após atualização", "description": "O erro 500 voltou."}
    )

    title: ShortText | None = None
    description: LongText | None = None


class InboundEmailBody(Body):
    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "message_id": "<CAF1234@mail.empresa.com.br>",
                    "from": "cliente@empresa.com.br",
                    "to": "suporte@tramita.example",
                    "subject": "Re: Erro ao emitir nota fiscal [#8f3a2c1d9e0b]",
                    "text": "Segue o XML.",
                    "in_reply_to": "<ticket-8f3a2c1d9e0b.7@tramita.example>",
                }
            ]
        },
    )

    message_id: str = Field(min_length=3, max_length=998, pattern=r"^[^\r\n]+$")
    from_: EmailStr = Field(alias="from")
    to: str = Field(min_length=3, max_length=998, pattern=r"^[^\r\n]+$")
    subject: str = Field(default="", max_length=998, pattern=r"^[^\r\n]*$")
    text: str = Field(default="", max_length=100_000)
    in_reply_to: str | None = Field(default=None, max_length=998, pattern=r"^[^\r\n]+$")


class TicketSummary(BaseModel):
    """One row of a ticket list, read from Temporal visibility (no query per ticket)."""

    id: str
    profile: ProfileName | None
    status: Status | None
    title: str | None
    assignee: str | None
    requester: str | None
    category: str | None
    priority: Priority | None
    wait_reason: WaitReason | None
    release: str | None
    next_deadline: datetime | None
    highlighted: bool
    created_at: datetime | None
    closed_at: datetime | None


class TicketList(BaseModel):
    items: list[TicketSummary]
    next_page_token: str | None = Field(
        description="Pass as page_token for the next page; null at the end."
    )


class ReleasePublished(BaseModel):
    version: str
    ticket_ids: list[str]


class InboundResult(BaseModel):
    action: Literal["reply", "reopened", "created", "follow_up", "duplicate"]
    ticket_id: str


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: str | None = None


class ErrorBody(BaseModel):
    error: str = Field(
        description="invalid_transition, missing_fields, validation_error, not_found, ..."
    )
    detail: object
    status: Status | None = None
    missing: list[str] | None = None
