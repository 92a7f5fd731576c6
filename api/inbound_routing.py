"""Inbound email: which ticket a message belongs to, and what it does there.

Every inbound path (``POST /inbound/mime``, ``POST /inbound/email``, the SMTP listener,
IMAP mailboxes) hands the raw message to :meth:`InboundRouter.route_raw`: one parser
(``mail.parsing``), one classifier (``mail.classify``), one router. The raw message is
kept first, whole, in the content store, so nothing that arrived is lost.

Threading, first match wins: the message answers a Message-ID of the ticket's thread
(Tramita's own name their ticket; a customer's earlier mail is in the ledger); its
subject carries ``[#<id>]``; or its subject, under a reply prefix, is the title of an
open ticket of the same sender.

Outcomes: ``reply`` (a waiting ticket returns to the agent), ``reopen`` (a resolved one
reopens), ``follow_up`` (the ticket is closed: a new, linked one), ``new_ticket``,
``unknown_sender`` (opened and closed at once, where the profile rejects unknown
senders), ``third_party`` (threads to a ticket but comes from none of its requester and
contacts: recorded, highlighted, nothing else), ``auto_reply``, ``bounce`` (recorded on
its ticket, naming who could not be reached), ``bulk``, ``rate_limited`` (too many new
tickets from the sender this hour) and ``duplicate`` (a message routed already, by any
path). Auto replies, bounces and bulk mail never change a status, never open a ticket
and are never answered.
"""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

from activities.content import ContentStore
from activities.email import ticket_from_message_id
from activities.mail_ledger import MailLedger, Routed
from activities.store import TicketParties
from api.failures import InvalidRequest, TicketNotFound
from api.gateway import TicketGateway
from api.listing import quote
from api.schemas import InboundEmailBody, InboundResult, Outcome
from config import Settings
from mail.classify import Classification, classify
from mail.parsing import InboundMail, parse
from mail.quotes import above_marker, new_text
from mail.subjects import bare, has_prefix, ticket_tag
from workflows import texts
from workflows.addresses import canonical, same_address
from workflows.audiences import speaks_for_the_customer
from workflows.messages import (
    AutoReplyReceivedCommand,
    BounceReceivedCommand,
    CustomerReplyCommand,
    ResolveCommand,
    ThirdPartyMessageCommand,
)
from workflows.models import (
    AttachmentInfo,
    Command,
    NewTicket,
    OpeningMessage,
    ProfileName,
    ResolutionMethod,
    Status,
    StoredText,
    TicketView,
)
from workflows.policy import PolicySource
from workflows.search import TICKET_REQUESTER, TICKET_STATUS
from workflows.ticket import TITLE_MEMO
from workflows.transaction import CommandRejected

logger = logging.getLogger("tramita.inbound")

INBOUND_CATEGORY = "email"
# Addresses no one reads: never acknowledged.
UNANSWERABLE = re.compile(
    r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|bounces?|root)([+.-][^@]*)?@",
    re.IGNORECASE,
)
NO_TEXT = {"pt-BR": "(mensagem sem texto)", "en": "(message without text)"}
NO_SUBJECT = {"pt-BR": "(sem assunto)", "en": "(no subject)"}
HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 field name: printable, no colon


class Desk(Protocol):
    """What the router asks of the ticket service."""

    async def open_from_email(
        self,
        ticket_id: str,
        request: NewTicket,
        *,
        actor: str,
        follow_up_of: str | None,
        opening_message: OpeningMessage,
    ) -> bool:
        """Open the ticket; False when a ticket with that id already exists."""
        ...

    async def deliver(
        self, ticket_id: str, command: Command, *, update_id: str | None
    ) -> TicketView:
        """Send a command to a ticket (its long texts stored first)."""
        ...

    async def parties(self, ticket_id: str) -> TicketParties:
        """A ticket's status and customer side as the ticket store holds them (from
        Temporal if it has no row)."""
        ...


@dataclass(frozen=True)
class Kept:
    """What the content store keeps of one message."""

    raw: StoredText
    full_text: StoredText | None
    attachments: tuple[AttachmentInfo, ...]


@dataclass(frozen=True)
class Taken:
    """A message parsed, kept whole and classified: ready to route."""

    mail: InboundMail
    kept: Kept
    kind: Classification


@dataclass(frozen=True)
class RoutedAlready:
    """A message parsed whose Message-ID the ledger has (any path routed it)."""

    mail: InboundMail
    routed: Routed


class InboundRouter:
    def __init__(
        self,
        gateway: TicketGateway,
        desk: Desk,
        ledger: MailLedger,
        contents: ContentStore,
        settings: Settings,
        policies: PolicySource,
    ) -> None:
        self._gateway = gateway
        self._desk = desk
        self._ledger = ledger
        self._contents = contents
        self._settings = settings
        self._policies = policies

    # ------------------------------------------------------------------ entry points

    async def route_raw(
        self, raw: bytes, *, profile: ProfileName | None = None, recipients: tuple[str, ...] = ()
    ) -> InboundResult:
        """Route one raw RFC 5322 message (``recipients``: the SMTP envelope's, if any)."""
        taken = await asyncio.to_thread(self._take, raw)
        if isinstance(taken, RoutedAlready):
            return self._result("duplicate", taken.routed.ticket_id, taken.mail)
        return await self._route(
            taken, profile=profile or self._profile_for(taken.mail, recipients)
        )

    async def route_json(self, body: InboundEmailBody) -> InboundResult:
        """A message given as JSON fields: made into the same MIME and routed the same."""
        return await self.route_raw(as_mime(body))

    def _profile_for(self, mail: InboundMail, recipients: tuple[str, ...]) -> ProfileName:
        addresses = self._settings.inbound_addresses
        for address in (*recipients, *mail.to, *mail.cc):
            for known, profile in addresses.items():
                if same_address(address, known):
                    return profile
        return self._settings.default_profile

    # ------------------------------------------------------------------ routing

    def _take(self, raw: bytes) -> Taken | RoutedAlready:
        """What a message needs of the disk and the CPU before it is routed, in one trip
        to a thread: parsed; found in the ledger if routed already; else kept whole in the
        content store and classified."""
        mail = parse(raw)
        routed = self._ledger.routed(mail.message_id)
        if routed is not None:
            return RoutedAlready(mail, routed)
        kind = classify(mail, own_domain=self._settings.mail_domain)
        return Taken(mail, self._keep(mail), kind)

    async def _route(self, taken: Taken, *, profile: ProfileName) -> InboundResult:
        mail, kept, kind = taken.mail, taken.kept, taken.kind
        outcome: Outcome
        ticket_id: str | None
        if kind.kind == "bulk":
            outcome, ticket_id = "bulk", None
        else:
            ticket = await self._thread(mail, kind)
            if kind.kind == "bounce":
                outcome, ticket_id = await self._bounce(mail, kind, ticket, kept)
            elif kind.kind == "auto_reply":
                outcome, ticket_id = await self._auto_reply(mail, kind, ticket, kept)
            else:
                outcome, ticket_id = await self._person(mail, ticket, kept, profile)
        if outcome != "rate_limited":  # a later delivery may still open its ticket
            first = await asyncio.to_thread(
                self._ledger.record,
                mail.message_id,
                sender=mail.sender,
                ticket_id=ticket_id,
                outcome=outcome,
                at=datetime.now(UTC),
            )
            if not first:
                outcome = "duplicate"  # another path routed it meanwhile
        logger.info(
            "inbound mail routed",
            extra={
                "outcome": outcome,
                "ticket_id": ticket_id,
                "message_id": mail.message_id,
                "kind": kind.reason,
                "raw_sha256": kept.raw.sha256,
            },
        )
        return self._result(outcome, ticket_id, mail)

    @staticmethod
    def _result(outcome: Outcome, ticket_id: str | None, mail: InboundMail) -> InboundResult:
        return InboundResult(outcome=outcome, ticket_id=ticket_id, message_id=mail.message_id)

    def _keep(self, mail: InboundMail) -> Kept:
        raw = self._contents.put(mail.raw)
        full = None
        if mail.text and texts.needs_storing(mail.text):
            full = self._contents.put_text(mail.text)
        attachments = []
        for attachment in mail.attachments:
            size = len(attachment.data)
            if size > self._settings.max_attachment_bytes:
                attachments.append(
                    AttachmentInfo(
                        filename=attachment.filename[:255],
                        content_type=attachment.content_type[:255],
                        size=size,
                        refused=f"larger than {self._settings.max_attachment_bytes} bytes",
                    )
                )
                continue
            stored = self._contents.put(attachment.data)
            attachments.append(
                AttachmentInfo(
                    filename=attachment.filename[:255],
                    content_type=attachment.content_type[:255],
                    size=size,
                    sha256=stored.sha256,
                )
            )
        return Kept(raw=raw, full_text=full, attachments=tuple(attachments))

    # ------------------------------------------------------------------ threading

    async def _thread(self, mail: InboundMail, kind: Classification) -> TicketParties | None:
        candidates = list(mail.thread_ids)
        if kind.bounce is not None:
            candidates = [*kind.bounce.original_ids, *candidates]
        own_domain = f"@{self._settings.mail_domain}>"
        for message_id in candidates:
            ticket_id = ticket_from_message_id(message_id)
            if (
                ticket_id is not None
                and message_id.endswith(own_domain)
                and (ticket := await self._read(ticket_id)) is not None
            ):
                return ticket
        ledger_ticket = await asyncio.to_thread(self._ledger.ticket_of, tuple(candidates))
        if ledger_ticket and (ticket := await self._read(ledger_ticket)) is not None:
            return ticket
        tagged = ticket_tag(mail.subject)
        if tagged and (ticket := await self._read(tagged)) is not None:
            return ticket
        if kind.kind == "human" and mail.sender and has_prefix(mail.subject):
            return await self._open_ticket_titled(mail.sender, bare(mail.subject))
        return None

    async def _read(self, ticket_id: str) -> TicketParties | None:
        try:
            # The store, which each ticket writes before it answers: threading a message
            # asks no workflow a query (one would replay an evicted ticket).
            return await self._desk.parties(ticket_id)
        except TicketNotFound:
            return None

    async def _open_ticket_titled(self, sender: str, title: str) -> TicketParties | None:
        """The sender's open ticket with this title: a reply whose client kept no
        threading headers and no tag, only "Re:"."""
        if not title:
            return None
        query = (
            f"WorkflowType = 'TicketWorkflow' AND {TICKET_STATUS.name} != 'closed' AND "
            f"{TICKET_REQUESTER.name} = {quote(canonical(sender))}"
        )
        try:
            async for execution in self._gateway.client.list_workflows(query, limit=50):
                memo_title = await execution.memo_value(TITLE_MEMO, None, type_hint=str)
                if isinstance(memo_title, str) and bare(memo_title) == title:
                    return await self._read(execution.id.removeprefix("ticket-"))
        except Exception as error:  # visibility is a convenience here, not a dependency
            logger.warning("subject threading skipped", extra={"error": repr(error)})
        return None

    # ------------------------------------------------------------------ per kind

    async def _send(self, ticket: TicketParties, command: Command, mail: InboundMail) -> TicketView:
        update_id = "inbound-" + hashlib.sha256(mail.message_id.encode()).hexdigest()[:40]
        return await self._desk.deliver(ticket.id, command, update_id=update_id)

    async def _bounce(
        self, mail: InboundMail, kind: Classification, ticket: TicketParties | None, kept: Kept
    ) -> tuple[Outcome, str | None]:
        if ticket is None or ticket.status is Status.CLOSED or kind.bounce is None:
            return "bounce", ticket.id if ticket else None
        bounce = kind.bounce
        await self._tolerant_send(
            ticket,
            BounceReceivedCommand(
                message_id=mail.message_id,
                recipients=bounce.recipients[:20],
                permanent=bounce.permanent,
                status=bounce.status,
                diagnostic=(bounce.diagnostic or "")[:500] or None,
                raw_ref=kept.raw,
            ),
            mail,
        )
        return "bounce", ticket.id

    async def _auto_reply(
        self, mail: InboundMail, kind: Classification, ticket: TicketParties | None, kept: Kept
    ) -> tuple[Outcome, str | None]:
        if ticket is None or ticket.status is Status.CLOSED:
            return "auto_reply", ticket.id if ticket else None
        await self._tolerant_send(
            ticket,
            AutoReplyReceivedCommand(
                message_id=mail.message_id,
                from_address=mail.sender,
                subject=mail.subject[:998] or None,
                body=mail.text or None,
                reason=kind.reason,
                raw_ref=kept.raw,
            ),
            mail,
        )
        return "auto_reply", ticket.id

    async def _tolerant_send(
        self, ticket: TicketParties, command: Command, mail: InboundMail
    ) -> None:
        """Note machine mail on a ticket; if the ticket refuses (it just closed, or is
        full), the raw message stays in the content store and the log names it."""
        try:
            await self._send(ticket, command, mail)
        except (CommandRejected, TicketNotFound) as refused:
            logger.info(
                "machine mail not noted on its ticket",
                extra={"ticket_id": ticket.id, "reason": str(refused)},
            )

    async def _person(
        self, mail: InboundMail, ticket: TicketParties | None, kept: Kept, profile: ProfileName
    ) -> tuple[Outcome, str | None]:
        sender = mail.sender or ""
        if ticket is not None:
            theirs = speaks_for_the_customer(
                sender, ticket.requester, ticket.primary_contact, ticket.contacts
            )
            if ticket.status is not Status.CLOSED:
                try:
                    return await self._into_ticket(mail, ticket, kept, theirs)
                except CommandRejected as refused:
                    if refused.status is not Status.CLOSED and "follow-up" not in refused.reason:
                        raise
                    # It closed (or filled up) meanwhile: a follow-up, as for a closed one.
            if theirs:
                return await self._new_ticket(mail, kept, profile, follow_up_of=ticket.id)
        return await self._new_ticket(mail, kept, profile, follow_up_of=None)

    async def _into_ticket(
        self, mail: InboundMail, ticket: TicketParties, kept: Kept, theirs: bool
    ) -> tuple[Outcome, str | None]:
        language = self._policies(ticket.profile).language
        text = new_text(mail.text, mail.subject) or NO_TEXT[language]
        # The same message either way; only whose it is differs.
        message = {
            "actor": mail.sender or "system",
            "body": text,
            "subject": mail.subject[:998] or None,
            "message_id": mail.message_id,
            "from_address": mail.sender,
            "attachments": kept.attachments,
            "full_body_ref": kept.full_text,
            "raw_ref": kept.raw,
        }
        if not theirs:
            await self._send(ticket, ThirdPartyMessageCommand(**message), mail)
            return "third_party", ticket.id
        view = await self._send(ticket, CustomerReplyCommand(**message), mail)
        reopened = ticket.status is Status.RESOLVED and view.status is Status.IN_PROGRESS
        return ("reopen" if reopened else "reply"), ticket.id

    async def _new_ticket(
        self, mail: InboundMail, kept: Kept, profile: ProfileName, *, follow_up_of: str | None
    ) -> tuple[Outcome, str | None]:
        sender = mail.sender
        if sender is None:
            logger.warning("inbound mail without a sender", extra={"message_id": mail.message_id})
            return "bulk", None
        since = datetime.now(UTC) - timedelta(hours=1)
        opened = await asyncio.to_thread(self._ledger.new_tickets_since, sender, since)
        if opened >= self._settings.inbound_max_new_per_sender_hour:
            return "rate_limited", None
        policy = self._policies(profile)
        ticket_id = "m" + hashlib.sha256(mail.message_id.encode()).hexdigest()[:15]
        title = bare(mail.subject)[:200] or NO_SUBJECT[policy.language]
        turned_away = policy.reject_unknown_senders and not self._known(sender)
        # Opening is idempotent: the ticket id comes from this very Message-ID. When the
        # ticket already exists yet no ledger row names this message, an earlier delivery
        # opened it and stopped (a crash) before finishing; finish its steps and report
        # what it would have. A concurrent delivery is told apart by the ledger below.
        await self._desk.open_from_email(
            ticket_id,
            NewTicket(
                profile=profile,
                title=title,
                description=above_marker(mail.text) or NO_TEXT[policy.language],
                category=INBOUND_CATEGORY,
                requester=sender,
                primary_contact=sender,
            ),
            actor=sender,
            follow_up_of=follow_up_of,
            opening_message=OpeningMessage(
                message_id=mail.message_id,
                sender=sender,
                attachments=kept.attachments,
                raw_ref=kept.raw,
                full_body_ref=kept.full_text,
                acknowledge=not turned_away and not UNANSWERABLE.match(sender),
            ),
        )
        if turned_away:
            turned = await self._read(ticket_id)
            if turned is not None and turned.status not in (Status.RESOLVED, Status.CLOSED):
                await self._send(
                    turned,
                    ResolveCommand(actor="system", method=ResolutionMethod.UNKNOWN_SENDER),
                    mail,
                )
            return "unknown_sender", ticket_id
        return ("follow_up" if follow_up_of else "new_ticket"), ticket_id

    def _known(self, sender: str) -> bool:
        known = self._settings.known_senders
        if not known:
            return True
        address = canonical(sender)
        domain = address.rpartition("@")[2]
        return any(
            same_address(address, entry) if "@" in entry else canonical(f"x@{entry}")[2:] == domain
            for entry in known
        )


def as_mime(body: InboundEmailBody) -> bytes:
    """The JSON route's fields as a MIME message, for the one parser. A header value the
    email package cannot read (an address header such as ``To: a <``) is a 422."""
    message = EmailMessage()
    for name, value in (body.headers or {}).items():
        if HEADER_NAME.match(name) and name.lower() not in _SET_BELOW:
            _set_header(message, name, value)
    _set_header(message, "Message-ID", body.message_id)
    _set_header(message, "From", str(body.from_))
    _set_header(message, "To", body.to)
    _set_header(message, "Subject", body.subject)
    message["Date"] = formatdate(localtime=False)
    if body.in_reply_to:
        _set_header(message, "In-Reply-To", body.in_reply_to)
    message.set_content(body.text or "")
    if body.html:
        message.add_alternative(body.html, subtype="html")
    try:
        # UTF-8 headers as they came (RFC 6532): a JSON caller may send an address or a
        # Message-ID outside ASCII, which the classic encodings cannot carry.
        return message.as_bytes(policy=email.policy.SMTPUTF8)
    except Exception as error:  # the email package's own errors, whatever their type
        raise InvalidRequest(f"the message cannot be written as MIME: {error}"[:300]) from None


def _set_header(message: EmailMessage, name: str, value: str) -> None:
    try:
        message[name] = value
        str(message[name])  # address headers are parsed when read
    except Exception:  # the parser fails with IndexError, ValueError, HeaderParseError...
        del message[name]
        raise InvalidRequest(f"the {name} header cannot be read: {value[:80]!r}") from None


_SET_BELOW = frozenset(
    {
        "message-id",
        "from",
        "to",
        "subject",
        "date",
        "in-reply-to",
        "content-type",
        "content-transfer-encoding",
        "mime-version",
    }
)
