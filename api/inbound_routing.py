"""Inbound email: which ticket a message belongs to, and what it does there.

A message threads to a ticket by the ``[#<id>]`` tag in its subject or by an
In-Reply-To naming a Message-ID Tramita sent. An open ticket takes it as the customer's
reply (a resolved one reopens); a closed ticket gets a new, linked follow-up ticket;
anything else opens a new ticket. The same Message-ID twice is a ``duplicate``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

from activities.email import ticket_from_message_id
from api.failures import TicketNotFound
from api.gateway import TicketGateway
from api.schemas import InboundEmailBody, InboundResult
from workflows.commands import CustomerReplyCommand
from workflows.models import Command, EventType, NewTicket, Status, TicketView

SUBJECT_REFERENCE = re.compile(r"\[#([A-Za-z0-9][A-Za-z0-9_-]{0,63})\]")
INBOUND_CATEGORY = "email"


class Desk(Protocol):
    """What the router asks of the ticket service."""

    async def open_from_email(
        self, ticket_id: str, request: NewTicket, *, actor: str, follow_up_of: str | None
    ) -> bool:
        """Open the ticket; False when a ticket with that id already exists."""
        ...

    async def deliver(
        self, ticket_id: str, command: Command, *, update_id: str | None
    ) -> TicketView:
        """Send a command to a ticket (its long texts stored first)."""
        ...


class InboundRouter:
    def __init__(self, gateway: TicketGateway, desk: Desk) -> None:
        self._gateway = gateway
        self._desk = desk

    async def route(self, email: InboundEmailBody) -> InboundResult:
        sender = str(email.from_)
        referenced = self.referenced_ticket(email)
        if referenced is not None:
            current = await self._current(referenced)
            if current is not None and current.status is not Status.CLOSED:
                return await self._reply(current, email, sender)
            if current is not None:
                return await self._new_ticket(email, sender, follow_up_of=referenced)
        return await self._new_ticket(email, sender, follow_up_of=None)

    async def _current(self, ticket_id: str) -> TicketView | None:
        try:
            return await self._gateway.read(ticket_id)
        except TicketNotFound:
            return None

    @staticmethod
    def referenced_ticket(email: InboundEmailBody) -> str | None:
        match = SUBJECT_REFERENCE.search(email.subject)
        if match:
            return match.group(1)
        if email.in_reply_to:
            return ticket_from_message_id(email.in_reply_to)
        return None

    async def _reply(
        self, ticket: TicketView, email: InboundEmailBody, sender: str
    ) -> InboundResult:
        already = any(
            e.type is EventType.CUSTOMER_REPLY and e.data.get("message_id") == email.message_id
            for e in ticket.timeline
        )
        if already:
            return InboundResult(action="duplicate", ticket_id=ticket.id)
        view = await self._desk.deliver(
            ticket.id,
            CustomerReplyCommand(
                actor=sender,
                body=email.text or "(empty message)",
                subject=email.subject,
                message_id=email.message_id,
                from_address=sender,
            ),
            update_id=derived_id("inbound-", email.message_id),
        )
        reopened = ticket.status is Status.RESOLVED and view.status is Status.IN_PROGRESS
        return InboundResult(action="reopened" if reopened else "reply", ticket_id=ticket.id)

    async def _new_ticket(
        self, email: InboundEmailBody, sender: str, *, follow_up_of: str | None
    ) -> InboundResult:
        ticket_id = derived_id("m", email.message_id)
        title = " ".join(SUBJECT_REFERENCE.sub("", email.subject).split()) or "(no subject)"
        opened = await self._desk.open_from_email(
            ticket_id,
            NewTicket(
                title=title[:200],
                description=email.text or "(empty message)",
                category=INBOUND_CATEGORY,
                requester=sender,
                primary_contact=sender,
            ),
            actor=sender,
            follow_up_of=follow_up_of,
        )
        if not opened:
            return InboundResult(action="duplicate", ticket_id=ticket_id)
        return InboundResult(action="follow_up" if follow_up_of else "created", ticket_id=ticket_id)


def derived_id(prefix: str, *parts: str) -> str:
    """A stable id from ``parts`` (a retry finds what the first attempt made)."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return f"{prefix}{digest[:15]}"
