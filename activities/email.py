"""Outbound email over SMTP.

Every message carries the ticket reference ``[#<id>]`` in its subject and a Message-ID
derived from the ticket and the timeline event that asked for it
(``<ticket-<id>.<seq>@<domain>>``). A retried activity therefore sends a message with the
same Message-ID, which mail systems and the inbound router recognise, and an answer's
In-Reply-To leads back to the ticket.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

import aiosmtplib
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.content import ContentStore
from activities.templates import render_template
from workflows.calendar import zone
from workflows.models import EmailInput, EmailResult, SendEmailEffect

logger = logging.getLogger(__name__)

_MESSAGE_ID = re.compile(r"<?ticket-(?P<ticket>[A-Za-z0-9][A-Za-z0-9_-]*)\.(?P<seq>\d+)@[^>]+>?")


def message_id_for(ticket_id: str, seq: int, domain: str) -> str:
    return f"<ticket-{ticket_id}.{seq}@{domain}>"


def ticket_from_message_id(message_id: str) -> str | None:
    """The ticket a Message-ID we sent belongs to, or None for a foreign one."""
    match = _MESSAGE_ID.fullmatch(message_id.strip())
    return match["ticket"] if match else None


def reference(ticket_id: str) -> str:
    return f"[#{ticket_id}]"


def with_reference(subject: str, ticket_id: str) -> str:
    ref = reference(ticket_id)
    return subject if ref in subject else f"{subject} {ref}"


HEARTBEAT_EVERY_SECONDS = 2.0


async def _heartbeating(work: Awaitable[None]) -> None:
    """Heartbeat while ``work`` runs, so a send on a worker that died is retried soon."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY_SECONDS)
        if done:
            return task.result()
        activity.heartbeat()


class MailSender(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class InsecureMailServer(Exception):
    """The mail server offers no TLS, and the password must not go out in clear text."""


@dataclass(frozen=True)
class SmtpMailSender:
    """SMTP, upgraded to TLS whenever the server offers it (``starttls`` None), always
    (``starttls`` True, or ``tls`` for implicit TLS) or never (``starttls`` False).
    Credentials are sent only over TLS when ``credentials_need_tls`` (production)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    starttls: bool | None = None
    tls: bool = False
    ca_file: str | None = None
    credentials_need_tls: bool = False
    timeout: float = 20.0

    async def send(self, message: EmailMessage) -> None:
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            use_tls=self.tls,
            start_tls=self.starttls,
            cert_bundle=self.ca_file,
            timeout=self.timeout,
        )
        async with client:
            if self.username:
                if client.get_transport_info("sslcontext") is None:
                    if self.credentials_need_tls:
                        raise InsecureMailServer(
                            f"{self.host}:{self.port} offers no TLS; the SMTP password was "
                            "not sent (enable STARTTLS on the server, or TRAMITA_SMTP_TLS)"
                        )
                    logger.warning(
                        "sending SMTP credentials without TLS (allowed outside production)",
                        extra={"host": self.host},
                    )
                await client.login(self.username, self.password or "")
            await client.send_message(message)


class EmailActivities:
    def __init__(
        self,
        sender: MailSender,
        mail_from: str,
        domain: str,
        timezone: str,
        contents: ContentStore,
    ) -> None:
        self._sender = sender
        self._mail_from = mail_from
        self._domain = domain
        self._timezone = timezone
        self._contents = contents

    def _body(self, email: SendEmailEffect) -> str:
        """The whole body: the ticket keeps an excerpt of a long one, and its reference."""
        if email.body_ref is not None:
            stored = self._contents.read(email.body_ref.sha256)
            if stored is not None:
                return stored.decode()
            logger.error(
                "stored body missing; sending the excerpt",
                extra={"sha256": email.body_ref.sha256},
            )
        return email.body or ""

    def compose(self, request: EmailInput) -> EmailMessage:
        email = request.email
        if email.template is not None:
            closes_local = (
                email.closes_at.astimezone(zone(self._timezone)) if email.closes_at else None
            )
            subject, body = render_template(
                email,
                language=request.language,
                ticket_id=request.ticket_id,
                title=request.title,
                closes_at_local=closes_local,
            )
        else:
            subject, body = email.subject or request.title or request.ticket_id, self._body(email)
        message = EmailMessage()
        message["From"] = self._mail_from
        message["To"] = ", ".join(email.to)
        # Titles are one line when validated; fold anyway, a header must never break.
        message["Subject"] = with_reference(" ".join(subject.split()), request.ticket_id)
        message["Message-ID"] = message_id_for(request.ticket_id, email.seq, self._domain)
        message["Date"] = formatdate(localtime=False)
        message["X-Tramita-Ticket"] = request.ticket_id
        message.set_content(body)
        return message

    @activity.defn(name="send_email")
    async def send(self, request: EmailInput) -> EmailResult:
        if not request.email.to:
            raise ApplicationError("email has no recipient", type="NoRecipient", non_retryable=True)
        message = self.compose(request)
        try:
            await _heartbeating(self._sender.send(message))
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise ApplicationError(
                f"every recipient was refused: {exc}", type="RecipientsRefused", non_retryable=True
            ) from exc
        logger.info(
            "email sent",
            extra={
                "ticket_id": request.ticket_id,
                "message_id": message["Message-ID"],
                "kind": request.email.kind.value,
                "attempt": activity.info().attempt,
            },
        )
        return EmailResult(message_id=str(message["Message-ID"]), recipients=request.email.to)
