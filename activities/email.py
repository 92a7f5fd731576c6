"""Outbound email over SMTP.

Every message carries the ticket reference ``[#<id>]`` in its subject and a Message-ID
derived from the ticket and the timeline event that asked for it
(``<ticket-<id>.<seq>@<domain>>``). A retried activity therefore sends a message with the
same Message-ID, which mail systems and the inbound router recognise, and an answer's
In-Reply-To leads back to the ticket.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from typing import Protocol

import aiosmtplib
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.content import ContentStore
from activities.heartbeats import heartbeating
from activities.templates import render
from mail.classify import LOOP_HEADER
from web import links
from workflows.addresses import same_address
from workflows.models import (
    AgentNoticeInput,
    EmailInput,
    EmailResult,
    SendEmailEffect,
    SlaAlertInput,
)
from workflows.zones import zone

logger = logging.getLogger(__name__)

NOTICE_HEADER = "X-Tramita-Notice"
"""Marks a notice to staff, so their filters (and ours) tell it from customer mail."""

_MESSAGE_ID = re.compile(r"<?ticket-(?P<ticket>[A-Za-z0-9][A-Za-z0-9_-]*)\.(?P<seq>\d+)@[^>]+>?")


def message_id_for(ticket_id: str, seq: int, domain: str) -> str:
    return f"<ticket-{ticket_id}.{seq}@{domain}>"


def ticket_from_message_id(message_id: str) -> str | None:
    """The ticket a Message-ID we sent belongs to, or None for a foreign one."""
    match = _MESSAGE_ID.fullmatch(message_id.strip())
    return match["ticket"] if match else None


def reference(ticket_id: str) -> str:
    return f"[#{ticket_id}]"


def _recipients(request: EmailInput) -> list[str]:
    """Every address the email goes to, each once (To, then Cc)."""
    found: list[str] = []
    for address in (*request.email.to, *request.email.cc):
        if not any(same_address(address, seen) for seen in found):
            found.append(address)
    return found


def with_reference(subject: str, ticket_id: str) -> str:
    ref = reference(ticket_id)
    return subject if ref in subject else f"{subject} {ref}"


class MailSender(Protocol):
    async def send(self, message: EmailMessage, recipients: Sequence[str] | None = None) -> None:
        """Send ``message``, to ``recipients`` (the envelope) or else to its To and Cc."""
        ...


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

    async def send(self, message: EmailMessage, recipients: Sequence[str] | None = None) -> None:
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
            await client.send_message(message, recipients=recipients)


class EmailActivities:
    def __init__(
        self,
        sender: MailSender,
        mail_from: str,
        domain: str,
        timezone: str,
        contents: ContentStore,
        display_names: Mapping[str, str] | None = None,
        *,
        agent_emails: Mapping[str, str] | None = None,
        public_url: str = "http://localhost:8000",
        secret_key: str | None = None,
    ) -> None:
        self._agent_emails = dict(agent_emails or {})
        self._public_url = public_url
        self._secret_key = secret_key
        self._sender = sender
        self._team, self._address = parseaddr(mail_from)
        self._mail_from = mail_from
        self._domain = domain
        self._timezone = timezone
        self._contents = contents
        self._display_names = dict(display_names or {})

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

    def _sender_name(self, author: str | None) -> str:
        """An agent's name as recipients see it: "Ana Souza (Suporte Tramita)"."""
        if not author:
            return self._team or self._address
        name = self._display_names.get(author, author)
        return f"{name} ({self._team})" if self._team else name

    def _message_id(self, token: str, ticket_id: str) -> str:
        if token.startswith("sent:") and token[5:].isdigit():
            return message_id_for(ticket_id, int(token[5:]), self._domain)
        return token

    def _customer_link(self, request: EmailInput) -> str | None:
        """The requester's page, for the requester's copy of an email that goes to them."""
        requester = request.requester
        if not requester or not self._secret_key:
            return None
        if not any(same_address(requester, address) for address in _recipients(request)):
            return None
        token = links.sign(self._secret_key, request.ticket_id, requester)
        return links.customer_url(self._public_url, token)

    def copies(self, request: EmailInput) -> list[tuple[EmailMessage, list[str]]]:
        """The messages to send and each one's envelope: one message to everyone, or,
        when the requester is among several recipients, the requester's copy with their
        link and everyone else's without it (the link acts as the requester, so no one
        else may hold it). Both copies are the same message: one Message-ID, one thread."""
        everyone = _recipients(request)
        link = self._customer_link(request)
        if link is None:
            return [(self.compose(request), everyone)]
        requester = request.requester or ""
        theirs = [a for a in everyone if same_address(requester, a)]
        others = [a for a in everyone if not same_address(requester, a)]
        copies = [(self.compose(request, customer_link=link), theirs)]
        if others:
            copies.append((self.compose(request, customer_link=None), others))
        return copies

    def compose(self, request: EmailInput, *, customer_link: str | None = None) -> EmailMessage:
        email = request.email
        zone_name = request.timezone or self._timezone
        values: dict[str, object] = {
            "ticket_ref": reference(request.ticket_id).strip("[]"),
            "title": request.title or request.ticket_id,
            "sender_name": self._sender_name(email.author),
            "customer_link": customer_link,
        }
        if email.template is None:
            name = "agent_email"
            values["subject"] = email.subject or request.title or request.ticket_id
            values["body"] = self._body(email)
        else:
            name = email.template
            date_format = "%d/%m/%Y %H:%M" if request.language == "pt-BR" else "%Y-%m-%d %H:%M"
            closes = email.closes_at.astimezone(zone(zone_name)) if email.closes_at else None
            values["number"] = email.reminder_number or 1
            values["total"] = email.reminder_total or 1
            values["closes_at"] = closes.strftime(date_format) if closes else "-"
        rendered = render(name, request.language, values)
        message = EmailMessage()
        message["From"] = formataddr((self._sender_name(email.author), self._address))
        message["To"] = ", ".join(email.to)
        if email.cc:
            message["Cc"] = ", ".join(email.cc)
        # Titles are one line when validated; fold anyway, a header must never break.
        message["Subject"] = with_reference(" ".join(rendered.subject.split()), request.ticket_id)
        message["Message-ID"] = message_id_for(request.ticket_id, email.seq, self._domain)
        thread = [self._message_id(token, request.ticket_id) for token in email.thread]
        if thread:
            message["In-Reply-To"] = thread[-1]
            message["References"] = " ".join(thread)
        message["Date"] = format_datetime(datetime.now(zone(zone_name)))
        message["X-Tramita-Ticket"] = request.ticket_id
        if email.kind.automatic:
            self._mark_automatic(message)
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        return message

    def _mark_automatic(self, message: EmailMessage) -> None:
        """RFC 3834: nobody should answer it automatically, and Tramita knows it back."""
        message["Auto-Submitted"] = "auto-generated"
        message["X-Auto-Response-Suppress"] = "All"
        message[LOOP_HEADER] = self._domain

    def _staff_notice(
        self,
        template: str,
        values: dict[str, str],
        *,
        ticket_id: str,
        language: str,
        to: Sequence[str],
        message_id: str,
        notice: str,
        timezone: str | None,
    ) -> EmailMessage:
        """An email to staff about a ticket: from the team, automatic, with its link."""
        values = {
            "ticket_ref": reference(ticket_id).strip("[]"),
            "console_link": links.console_url(self._public_url, ticket_id),
            **values,
        }
        rendered = render(template, language, values)
        message = EmailMessage()
        message["From"] = formataddr((self._team or self._address, self._address))
        message["To"] = ", ".join(to)
        message["Subject"] = with_reference(" ".join(rendered.subject.split()), ticket_id)
        message["Message-ID"] = f"<ticket-{ticket_id}.{message_id}@{self._domain}>"
        message["Date"] = format_datetime(datetime.now(zone(timezone or self._timezone)))
        message["X-Tramita-Ticket"] = ticket_id
        message[NOTICE_HEADER] = notice
        self._mark_automatic(message)
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        return message

    def compose_notice(self, request: AgentNoticeInput, address: str) -> EmailMessage:
        return self._staff_notice(
            "agent_notice",
            {"title": request.title or request.ticket_id, "notice": request.notice.value},
            ticket_id=request.ticket_id,
            language=request.language,
            to=(address,),
            message_id=f"{request.seq}.{request.notice.value}",
            notice=request.notice.value,
            timezone=request.timezone,
        )

    def compose_sla_alert(self, request: SlaAlertInput, to: Sequence[str]) -> EmailMessage:
        effect = request.alert
        clock = effect.clock
        timezone = request.timezone or self._timezone
        due = clock.breached_at or clock.target_at or clock.as_of
        values = {
            "title": request.title or request.ticket_id,
            "alert": effect.alert.value,
            "metric": clock.metric.value,
            "target": clock.target,
            "priority": request.priority.value,
            "due_at": f"{due.astimezone(zone(timezone)):%Y-%m-%d %H:%M}",
            "timezone": timezone,
        }
        return self._staff_notice(
            "sla_alert",
            values,
            ticket_id=request.ticket_id,
            language=request.language,
            to=to,
            message_id=f"{effect.seq}.sla",
            notice=effect.alert.value,
            timezone=timezone,
        )

    @activity.defn(name="tell_of_sla")
    async def tell_of_sla(self, request: SlaAlertInput) -> tuple[str, ...]:
        """Tells the assignee of an SLA warning or breach, or the SLA's supervisors when
        the ticket has no assignee or Tramita has no address for them. Returns who was
        told (nobody: no address anywhere, nothing to retry)."""
        effect = request.alert
        agent_address = self._agent_emails.get(effect.agent) if effect.agent else None
        to = (agent_address,) if agent_address else tuple(effect.supervisors)
        if not to:
            logger.warning(
                "SLA alert has nobody to go to",
                extra={"ticket_id": request.ticket_id, "alert": effect.alert.value},
            )
            return ()
        await heartbeating(self._sender.send(self.compose_sla_alert(request, to)))
        logger.info(
            "SLA alert sent",
            extra={
                "ticket_id": request.ticket_id,
                "alert": effect.alert.value,
                "metric": effect.clock.metric.value,
            },
        )
        return to

    @activity.defn(name="notify_agent")
    async def notify_agent(self, request: AgentNoticeInput) -> bool:
        """Tells an agent of a ticket that needs them; False when the agent has no
        address (``TRAMITA_API_KEYS``, ``email``): nothing to retry."""
        address = self._agent_emails.get(request.agent)
        if address is None:
            logger.info(
                "agent has no address; not told",
                extra={"ticket_id": request.ticket_id, "agent": request.agent},
            )
            return False
        await heartbeating(self._sender.send(self.compose_notice(request, address)))
        logger.info(
            "agent told",
            extra={
                "ticket_id": request.ticket_id,
                "agent": request.agent,
                "notice": request.notice.value,
            },
        )
        return True

    @activity.defn(name="send_email")
    async def send(self, request: EmailInput) -> EmailResult:
        if not request.email.to:
            raise ApplicationError("email has no recipient", type="NoRecipient", non_retryable=True)
        copies = self.copies(request)
        message = copies[0][0]
        refused: list[aiosmtplib.SMTPRecipientsRefused] = []
        for copy, envelope in copies:
            try:
                await heartbeating(self._sender.send(copy, envelope))
            except aiosmtplib.SMTPRecipientsRefused as exc:
                refused.append(exc)
        if len(refused) == len(copies):
            raise ApplicationError(
                f"every recipient was refused: {refused[0]}",
                type="RecipientsRefused",
                non_retryable=True,
            ) from refused[0]
        if refused:
            logger.warning(
                "some recipients refused",
                extra={"ticket_id": request.ticket_id, "refused": str(refused[0])},
            )
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
