"""What the routes ask of Tramita: open, read, list and command tickets, for a caller.

The service chooses what each caller reads (the staff view, or the core's customer view
for a requester), derives the Temporal ids that make retries safe, and gathers the
facts a rule needs from elsewhere (a merge target's status) before the core decides.
It raises domain errors (``api.failures`` and the core's ``CommandRejected``);
``api.errors`` turns them into HTTP.

Decisions where the design is silent (also in README):

* An ``Idempotency-Key`` is the caller's: the update id is derived from the caller, the
  ticket, the command, the key and the body, so no one else's key can replay an answer,
  and the same key with another command or body is refused (``idempotency_key_reused``).
* A ticket created with an ``Idempotency-Key`` and no ``id`` gets an id derived from the
  caller and the key, so the retry finds the same ticket.
* Releases are found through visibility, which is eventually consistent: a ticket that
  entered the release wait a moment ago may be missed; publish again to catch it (each
  ticket moves once, whatever the number of calls).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from temporalio.client import Client

from activities.archive import ArchiveStore
from activities.calendar import build_calendar_snapshot
from activities.content import ContentStore
from activities.mail_ledger import MailLedger
from activities.store import StoredRow, StoreQuery, TicketParties, TicketStore
from api.failures import IdempotencyKeyReused, TicketNotFound
from api.gateway import TicketGateway
from api.inbound_routing import InboundRouter
from api.listing import TicketFilters, TicketLister, quote
from api.principal import Principal
from api.schemas import FollowUpBody, TicketList
from api.tokens import PageTokens
from config import Settings
from workflows import lifecycle, texts
from workflows.audiences import readable_contents
from workflows.commands import spec_of
from workflows.messages import MergeCommand, ReleasePublishedCommand
from workflows.models import (
    CalendarRequest,
    CalendarSnapshot,
    Command,
    CustomerView,
    NewTicket,
    OpeningMessage,
    ProfileName,
    ProfilePolicy,
    Status,
    TicketInput,
    TicketView,
    long_text_fields,
)
from workflows.policy import PolicySource
from workflows.records import Readable
from workflows.search import TICKET_RELEASE, TICKET_STATUS, TICKET_WAIT_REASON
from workflows.transaction import CommandRejected

RELEASE_PARALLELISM = 16
REQUEST_MEMO = "request"

Reading = TicketView | CustomerView


@lru_cache(maxsize=8)
def _calendar(template: CalendarSnapshot, year: int, years_ahead: int) -> CalendarSnapshot:
    return build_calendar_snapshot(
        CalendarRequest.like(template, from_year=year, years_ahead=years_ahead)
    )


def derived_id(prefix: str, *parts: str) -> str:
    """A stable id from ``parts`` (a retry finds what the first attempt made)."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return f"{prefix}{digest[:15]}"


def fingerprint(*parts: Any) -> str:
    """A digest of a request's meaning (JSON, keys sorted), to tell two bodies apart."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def keyed(ticket_id: str, command: Command, caller: str, key: str) -> tuple[Command, str]:
    """The command marked with its caller's key, and its Update id.

    The key is the caller's own: its digest ties it to the caller and the ticket, and
    the request digest to the command and the body the caller sent (not to what the API
    fills in). The Update id joins both, so a retry gets the first answer, nobody else's
    key can replay it, and the same key with another command or body reaches the core,
    which refuses it (``idempotency_key_reused``).
    """
    name = spec_of(command).name
    body = command.model_dump(mode="json", exclude=set(command.ENVELOPE | command.INTERNAL_FIELDS))
    key_digest = fingerprint("key", caller, ticket_id, key)[:32]
    request_digest = fingerprint("request", name, body)[:32]
    marked = command.model_copy(update={"key_digest": key_digest, "request_digest": request_digest})
    return marked, f"{name}:{key_digest}:{request_digest}"


class TicketService:
    def __init__(
        self,
        client: Client,
        settings: Settings,
        archive: ArchiveStore,
        *,
        rpc_timeout: timedelta,
        policies: PolicySource | None = None,
        store: TicketStore | None = None,
    ) -> None:
        self._settings = settings
        self._policies = policies or settings.profiles
        self._archive = archive
        self.store = store or TicketStore(archive.engine)
        self._client = client
        self._rpc_timeout = rpc_timeout
        self.contents = ContentStore(settings.content_directory)
        self.gateway = TicketGateway(client, archive, rpc_timeout=rpc_timeout)
        self.lister = TicketLister(self.store, PageTokens(settings.api_keys))
        self.inbound = InboundRouter(
            self.gateway,
            self,
            MailLedger(archive),
            self.contents,
            settings,
            self._policies,
        )

    # ------------------------------------------------------------------ reading

    def for_reader(self, view: TicketView, principal: Principal) -> Reading:
        """The view a caller may read: the customer view for a requester."""
        if principal.is_requester:
            return lifecycle.customer_view(view, self._policies(view.profile))
        return view

    async def read_for(self, ticket_id: str, principal: Principal) -> Reading:
        view = await self.gateway.read(ticket_id)
        if principal.is_requester and not lifecycle.is_requester(view.requester, principal.subject):
            raise TicketNotFound(ticket_id)
        return self.for_reader(view, principal)

    async def list_tickets(
        self, filters: TicketFilters, *, page_size: int, page_token: str | None
    ) -> TicketList:
        return await self.lister.list_tickets(filters, page_size=page_size, page_token=page_token)

    async def store_rows(self, query: StoreQuery, *, offset: int, limit: int) -> list[StoredRow]:
        return await asyncio.to_thread(self.store.list, query, offset=offset, limit=limit)

    async def store_revision(self, ticket_id: str) -> int | None:
        return await asyncio.to_thread(self.store.revision, ticket_id)

    async def parties(self, ticket_id: str) -> TicketParties:
        """A ticket's status and customer side, from the store without decoding its view
        (else as :meth:`current_view`)."""
        stored = await asyncio.to_thread(self.store.parties, ticket_id)
        return (
            stored if stored is not None else TicketParties.of(await self.gateway.read(ticket_id))
        )

    async def current_view(self, ticket_id: str) -> TicketView:
        """A ticket's staff view as the store holds it (current with its last command);
        from Temporal or the archive when the store has no row (a ticket opened before
        the store existed)."""
        stored = await asyncio.to_thread(self.store.get, ticket_id)
        return stored if stored is not None else await self.gateway.read(ticket_id)

    def policy(self, profile: ProfileName) -> ProfilePolicy:
        return self._policies(profile)

    # ------------------------------------------------------------------ opening

    def calendar(self, profile: ProfileName) -> CalendarSnapshot:
        """A new ticket's calendar: its profile's, with holidays a few years ahead."""
        template = self._settings.calendar_for(profile)
        year = datetime.now(UTC).year
        return _calendar(template, year, self._settings.calendar_years_ahead)

    async def _ticket_input(
        self,
        ticket_id: str,
        request: NewTicket,
        *,
        actor: str,
        follow_up_of: str | None = None,
    ) -> TicketInput:
        profile = request.profile or self._settings.default_profile
        policy = self._policies(profile)  # an unknown profile: refused before anything
        fields = request.ticket_fields()
        if fields.description is not None and texts.needs_storing(fields.description):
            stored = await asyncio.to_thread(self.contents.put_text, fields.description)
            fields = fields.model_copy(
                update={
                    "description": texts.excerpt(fields.description),
                    "description_ref": stored,
                }
            )
        if request.submit:
            missing = lifecycle.missing_submit_fields(fields)
            if missing:
                raise CommandRejected(
                    f"cannot submit: missing {', '.join(missing)}",
                    status=Status.DRAFT,
                    code="missing_fields",
                    missing=missing,
                )
        return TicketInput(
            ticket_id=ticket_id,
            policy=policy,
            calendar=self.calendar(profile),
            deliver_webhooks=bool(self._settings.webhook_urls),
            notify_agents=bool(self._settings.agent_emails),
            archive_locally=True,
            keep_store=True,
            fields=fields,
            submit=request.submit,
            actor=actor,
            follow_up_of=follow_up_of,
        )

    async def create(
        self,
        request: NewTicket,
        *,
        actor: str,
        idempotency_key: str | None,
        follow_up_of: str | None = None,
    ) -> TicketView:
        ticket_id = request.id or (
            derived_id("k", actor, idempotency_key) if idempotency_key else secrets.token_hex(6)
        )
        ticket = await self._ticket_input(
            ticket_id, request, actor=actor, follow_up_of=follow_up_of
        )
        meaning = fingerprint("create", actor, request.model_dump(mode="json"), follow_up_of)
        view, new = await self.gateway.start(
            ticket, task_queue=self._settings.task_queue, memo={REQUEST_MEMO: meaning}
        )
        if new:
            await self._list(view)
        if not new and idempotency_key is not None and request.id is None:
            first = await self.gateway.memo(ticket_id, REQUEST_MEMO)
            if first is not None and first != meaning:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key already created a ticket with another body; "
                    "use a new key for a new ticket"
                )
        return view

    async def open_from_email(
        self,
        ticket_id: str,
        request: NewTicket,
        *,
        actor: str,
        follow_up_of: str | None,
        opening_message: OpeningMessage,
    ) -> bool:
        if await self.gateway.run_status(ticket_id) is not None:
            return False
        ticket = await self._ticket_input(
            ticket_id, request, actor=actor, follow_up_of=follow_up_of
        )
        ticket = ticket.model_copy(update={"opening_message": opening_message})
        view, new = await self.gateway.start(ticket, task_queue=self._settings.task_queue)
        if not new:
            return False
        await self._list(view)
        if follow_up_of is not None:
            await asyncio.to_thread(self._archive.add_follow_up, follow_up_of, ticket_id)
        return True

    async def _list(self, view: TicketView) -> None:
        """A new ticket's row in the store, as the API answers it: listed at once, even
        before a worker has run it (the ticket's own writes are newer and win)."""
        await asyncio.to_thread(self.store.put, view)

    async def follow_up(
        self, ticket_id: str, body: FollowUpBody, *, actor: str, idempotency_key: str | None
    ) -> TicketView:
        original = await self.gateway.read(ticket_id)
        lifecycle.check_follow_up(original)
        follow_up = await self.create(
            NewTicket(
                profile=original.profile,
                title=body.title or f"Follow-up: {original.title or original.id}"[:200],
                description=body.description or original.description,
                category=original.category,
                priority=original.priority,
                nature=original.nature,
                requester=original.requester,
                requester_kind=original.requester_kind,
                primary_contact=original.primary_contact,
                contacts=original.contacts or None,
            ),
            actor=actor,
            idempotency_key=idempotency_key and f"follow-up:{ticket_id}:{idempotency_key}",
            follow_up_of=ticket_id,
        )
        await asyncio.to_thread(self._archive.add_follow_up, ticket_id, follow_up.id)
        return follow_up

    # ------------------------------------------------------------------ commands

    async def command(
        self, ticket_id: str, command: Command, *, principal: Principal, idempotency_key: str | None
    ) -> Reading:
        """Apply a caller's command; answer the view that caller may read."""
        update_id = None  # without a key the SDK makes a fresh id: each request applies
        if idempotency_key is not None:
            command, update_id = keyed(ticket_id, command, principal.subject, idempotency_key)
        if isinstance(command, MergeCommand):
            command = await self._with_merge_target(ticket_id, command)
        view = await self.deliver(ticket_id, command, update_id=update_id)
        return self.for_reader(view, principal)

    async def deliver(
        self, ticket_id: str, command: Command, *, update_id: str | None
    ) -> TicketView:
        """Send a command to its ticket, its long texts stored first (every path in: the
        routes, inbound mail)."""
        command = await self._with_long_texts_stored(command)
        return await self.gateway.send(ticket_id, command, update_id=update_id)

    async def _with_long_texts_stored(self, command: Command) -> Command:
        """Each long text of the command stored whole in the content store, and replaced
        in the command by its excerpt: the ticket keeps the excerpt and the reference,
        and no text can grow the ticket's history or state past its bounds."""
        updates: dict[str, object] = {}
        stored = dict(command.stored_texts)
        for field in long_text_fields(type(command)):
            value = getattr(command, field)
            if isinstance(value, str) and texts.needs_storing(value):
                stored[field] = await asyncio.to_thread(self.contents.put_text, value)
                updates[field] = texts.excerpt(value)
        if not stored:
            return command
        return command.model_copy(update={**updates, "stored_texts": stored})

    async def content(
        self, ticket_id: str, sha256: str, principal: Principal
    ) -> tuple[bytes, Readable]:
        """A stored text or attachment of a ticket, if its reader may see it."""
        view = await self.read_for(ticket_id, principal)
        readable = readable_contents(view).get(sha256)
        if readable is None:
            raise TicketNotFound(f"{ticket_id}/contents/{sha256}")
        data = await asyncio.to_thread(self.contents.read, sha256)
        if data is None:
            raise TicketNotFound(f"{ticket_id}/contents/{sha256}")
        return data, readable

    async def _with_merge_target(self, ticket_id: str, command: MergeCommand) -> MergeCommand:
        """The merge rule needs the target's status, which only Temporal or the archive
        can tell; the core decides with it."""
        if command.into == ticket_id:
            return command
        try:
            target = await self.gateway.read(command.into)
        except TicketNotFound:
            return command.model_copy(update={"target_missing": True})
        return command.model_copy(update={"target_status": target.status})

    # ------------------------------------------------------------------ releases

    async def publish_release(self, version: str, *, actor: str) -> list[str]:
        query = (
            f"WorkflowType = 'TicketWorkflow' AND {TICKET_STATUS.name} = 'waiting' AND "
            f"{TICKET_WAIT_REASON.name} = 'release' AND {TICKET_RELEASE.name} = {quote(version)}"
        )
        ids = [
            execution.id.removeprefix("ticket-")
            async for execution in self._client.list_workflows(query, rpc_timeout=self._rpc_timeout)
        ]
        gate = asyncio.Semaphore(RELEASE_PARALLELISM)
        # A fresh id per publication: a caller's key can never collide with it, and a
        # second publication of the same version finds the tickets already moved (409).
        publication = secrets.token_hex(8)

        async def move(ticket_id: str) -> str | None:
            async with gate:
                try:
                    await self.gateway.send(
                        ticket_id,
                        ReleasePublishedCommand(actor=actor, version=version),
                        update_id=f"release:{publication}",
                    )
                except (CommandRejected, TicketNotFound):
                    return None  # it left the release wait meanwhile, or closed
                return ticket_id

        moved = await asyncio.gather(*(move(ticket_id) for ticket_id in ids))
        return sorted(ticket_id for ticket_id in moved if ticket_id is not None)
