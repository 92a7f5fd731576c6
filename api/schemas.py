"""HTTP bodies that are not commands (DESIGN section 6). Unknown fields are rejected.

A command's body is its argument model from ``workflows.commands`` (see
``api.routes.commands``); a ticket to open is ``workflows.models.NewTicket``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints
from pydantic.config import JsonDict

from workflows.models import (
    CustomerView,
    LongText,
    Priority,
    ProfileName,
    ShortText,
    Status,
    TicketView,
    WaitReason,
)

# What a caller reads of a ticket: the whole view (staff) or the customer view.
Reading = Annotated[TicketView | CustomerView, Field(discriminator="audience")]

# Header values and filter values: one line, no control characters.
NoControl = r"^[^\x00-\x1f\x7f]+$"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _examples(*examples: JsonDict) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(examples)})


class FollowUpBody(Body):
    model_config = _examples(
        {"title": "Erro voltou após atualização", "description": "O erro 500 voltou."}
    )

    title: ShortText | None = None
    description: LongText | None = None


# No control characters and no Unicode line breaks: Python's email package (and every
# mail reader) would take them for the end of the header.
_ONE_HEADER_LINE = r"^[^\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]*$"
HeaderText = Annotated[str, StringConstraints(max_length=998, pattern=_ONE_HEADER_LINE)]
RequiredHeaderText = Annotated[
    str, StringConstraints(min_length=3, max_length=998, pattern=_ONE_HEADER_LINE)
]
HeaderName = Annotated[str, StringConstraints(min_length=1, max_length=76, pattern=r"^[!-9;-~]+$")]


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

    message_id: RequiredHeaderText
    from_: EmailStr = Field(alias="from")
    to: RequiredHeaderText
    subject: HeaderText = ""
    text: str = Field(default="", max_length=100_000)
    html: str | None = Field(default=None, max_length=500_000)
    in_reply_to: RequiredHeaderText | None = None
    headers: dict[HeaderName, HeaderText] | None = Field(
        default=None,
        max_length=100,
        description="Other headers as received (Auto-Submitted, References, List-Id, ...).",
    )


class TicketSummary(BaseModel):
    """One row of a ticket list, read from the ticket store (no query per ticket)."""

    audience: Literal["staff"] = "staff"
    id: str
    profile: ProfileName | None
    status: Status | None
    status_label: str | None
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
    updated_at: datetime | None = None
    closed_at: datetime | None


class CustomerSummary(BaseModel):
    """One row of a requester's list: what the customer view shows, nothing more."""

    audience: Literal["customer"] = "customer"
    id: str
    profile: ProfileName | None
    status: Status | None
    status_label: str | None
    title: str | None
    created_at: datetime | None
    closed_at: datetime | None

    @classmethod
    def of(cls, row: TicketSummary) -> CustomerSummary:
        return cls(
            id=row.id,
            profile=row.profile,
            status=row.status,
            status_label=row.status_label,
            title=row.title,
            created_at=row.created_at,
            closed_at=row.closed_at,
        )


class TicketList(BaseModel):
    items: list[Annotated[TicketSummary | CustomerSummary, Field(discriminator="audience")]]
    next_page_token: str | None = Field(
        description="Pass as page_token for the next page; null at the end."
    )


class ReleasePublished(BaseModel):
    version: str
    ticket_ids: list[str]


Outcome = Literal[
    "reply",
    "reopen",
    "follow_up",
    "new_ticket",
    "unknown_sender",
    "third_party",
    "auto_reply",
    "bounce",
    "bulk",
    "rate_limited",
    "duplicate",
]


class InboundResult(BaseModel):
    """What became of an inbound message."""

    outcome: Outcome
    ticket_id: str | None
    message_id: str


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
    retryable: bool | None = Field(
        default=None,
        description="503 only: whether sending the same request again (same key) can help.",
    )
