"""Inbound email: a reply to a ticket, a reopen, a follow-up or a new ticket."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.deps import TicketsDep, require
from api.principal import Principal
from api.routes.commands import COMMAND_ERRORS
from api.schemas import InboundEmailBody, InboundResult

router = APIRouter(prefix="/inbound", tags=["inbound"])

SystemDep = Annotated[Principal, Depends(require("system"))]


@router.post("/email", responses=COMMAND_ERRORS, summary="Route an inbound email")
async def inbound_email(
    body: InboundEmailBody, principal: SystemDep, tickets: TicketsDep
) -> InboundResult:
    """Finds the ticket by ``[#<id>]`` in the subject or by In-Reply-To of a Message-ID that
    Tramita sent. Open ticket: a customer reply (a resolved one reopens). Closed ticket: a
    new ticket linked by ``follow_up_of``. Unknown: a new ticket. The same Message-ID twice:
    ``duplicate``, nothing changes."""
    return await tickets.inbound.route(body)
