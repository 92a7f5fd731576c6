"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    envelope_to: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        return self._part("plain")

    @property
    def html(self) -> str:
        return self._part("html")

    def _part(self, subtype: str) -> str:
        """One alternative's text as a mail client shows it: decoded, lines ending in
        ``\n`` (on the wire, and inside base64, they end in CRLF)."""
        part = self.message.get_body(preferencelist=(subtype,))
        assert part is not None, f"the message has no text/{subtype} part"
        return str(part.get_content()).replace("\r\n", "\n")


@dataclass
class SmtpSink:
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    refusals: dict[str, int] = field(default_factory=dict)
    """Per ticket id: how many of its next messages get a temporary failure (451)."""
    refused: list[str] = field(default_factory=list)
    """Message-IDs of the refused attempts."""
    slow: dict[str, float] = field(default_factory=dict)
    """Per recipient: hold the next RCPT for it this many seconds before answering."""
    started_slow: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("bounce"):
            return "550 5.1.1 No such user here"
        delay = self.slow.pop(address, 0.0)
        if delay:
            # Hold the conversation before any content is sent.
            self.started_slow.add(address)
            await asyncio.sleep(delay)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        ticket = str(message["X-Tramita-Ticket"])
        with self._lock:
            if self.refusals.get(ticket, 0) > 0:
                self.refusals[ticket] -= 1
                self.refused.append(str(message["Message-ID"]))
                return "451 4.3.0 Temporary failure, try again"
            self.received.append(Received(list(envelope.rcpt_tos), message))
        return "250 OK"

    def start(self) -> None:
        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()

    def refuse(self, ticket_id: str, times: int) -> None:
        with self._lock:
            self.refusals[ticket_id] = times

    def copies_for(self, ticket_id: str) -> list[Received]:
        """Every copy of the ticket's mail to its customers and contacts (the requester's
        copy of a message to several people is sent apart, with their link)."""
        with self._lock:
            return [
                r
                for r in self.received
                if r.message["X-Tramita-Ticket"] == ticket_id
                and "X-Tramita-Notice" not in r.message
            ]

    def for_ticket(self, ticket_id: str) -> list[Received]:
        """The ticket's messages to its customers and contacts, one per Message-ID (the
        first copy: the requester's, when there are two), not the notices to agents."""
        seen: set[str] = set()
        found = []
        for received in self.copies_for(ticket_id):
            message_id = str(received.message["Message-ID"])
            if message_id not in seen:
                seen.add(message_id)
                found.append(received)
        return found

    def notices_for(self, ticket_id: str) -> list[Received]:
        """The ticket's notices to agents."""
        with self._lock:
            return [
                r
                for r in self.received
                if r.message["X-Tramita-Ticket"] == ticket_id and "X-Tramita-Notice" in r.message
            ]
