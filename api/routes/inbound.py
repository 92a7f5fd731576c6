"""Inbound email, by raw MIME or as JSON: one parser and one router behind both."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from api.deps import SettingsDep, TicketsDep, require
from api.errors import ApiError
from api.principal import Principal
from api.routes.commands import COMMAND_ERRORS
from api.schemas import InboundEmailBody, InboundResult
from workflows.models import ProfileName

router = APIRouter(prefix="/inbound", tags=["inbound"])

SystemDep = Annotated[Principal, Depends(require("system"))]
MIME_TYPES = ("message/rfc822", "application/octet-stream", "text/plain")

ROUTING = """Threads by In-Reply-To and References (any Message-ID of the ticket's mail), the
``[#<id>]`` subject tag, or a reply prefix on the title of the sender's open ticket.
``outcome``: reply, reopen, follow_up (closed ticket: a new, linked one), new_ticket,
unknown_sender, third_party (not the requester or a contact: recorded, no status
change), auto_reply, bounce, bulk (none of these three changes anything), rate_limited,
duplicate (routed already, by any path)."""


@router.post(
    "/mime",
    responses=COMMAND_ERRORS,
    summary="Route a raw email (message/rfc822)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def inbound_mime(
    request: Request,
    principal: SystemDep,
    tickets: TicketsDep,
    settings: SettingsDep,
    profile: Annotated[
        ProfileName | None, Query(description="Overrides TRAMITA_INBOUND_ADDRESSES.")
    ] = None,
) -> InboundResult:
    """The message exactly as received, as an MTA pipe or a provider's raw-MIME webhook
    delivers it."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in MIME_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the raw message with Content-Type: message/rfc822",
        )
    raw = await request.body()
    if not raw.strip():
        raise ApiError(422, "validation_error", "the message is empty")
    return await tickets.inbound.route_raw(raw, profile=profile)


inbound_mime.__doc__ = (inbound_mime.__doc__ or "") + ROUTING


@router.post("/email", responses=COMMAND_ERRORS, summary="Route an email given as JSON")
async def inbound_email(
    body: InboundEmailBody, principal: SystemDep, tickets: TicketsDep
) -> InboundResult:
    """The same routing as ``/inbound/mime``, for senders that parsed the mail already."""
    return await tickets.inbound.route_json(body)


inbound_email.__doc__ = (inbound_email.__doc__ or "") + " " + ROUTING
