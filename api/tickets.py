"""Everything the HTTP layer asks of Temporal, behind one small service.

Routes stay thin: they authorise, turn a body into a command and call this service.
Commands are typed Updates (``TicketWorkflow.assign`` and so on) whose id is the
request's ``Idempotency-Key``, so a retried request applies once and gets the first
answer. Every call carries an RPC timeout: no worker means 503, never a hung request.

Decisions where the design is silent (also in README):

* A ticket created with an ``Idempotency-Key`` and no ``id`` gets an id derived from the
  caller and the key, so the retry finds the same ticket.
* An inbound email that starts a ticket gets an id derived from its Message-ID, so a
  second delivery of the same email finds it and answers ``duplicate``. Inbound tickets
  get the category ``email`` and the default profile.
* Releases are found through visibility, which is eventually consistent: a ticket that
  entered the release wait a moment ago may be missed; publish again to catch it (each
  ticket moves once, whatever the number of calls).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import TypeVar

from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from activities.archive import ArchiveFilters, ArchiveStore
from activities.calendar import build_calendar_snapshot
from activities.email import ticket_from_message_id
from api.errors import ApiError, closed, from_update_failure, not_found, unavailable
from api.schemas import (
    CreateTicketBody,
    FollowUpBody,
    InboundEmailBody,
    InboundResult,
    TicketList,
    TicketSummary,
)
from config import Settings
from workflows import lifecycle
from workflows.models import (
    CalendarRequest,
    CalendarSnapshot,
    Command,
    CommandResult,
    CustomerReplyCommand,
    EventType,
    Priority,
    ProfileName,
    ReleasePublishedCommand,
    Status,
    TicketFields,
    TicketInput,
    TicketView,
    WaitReason,
    workflow_id_for,
)
from workflows.policy import PolicySource, policy_for
from workflows.search import (
    TICKET_ASSIGNEE,
    TICKET_CATEGORY,
    TICKET_HIGHLIGHTED,
    TICKET_NEXT_DEADLINE,
    TICKET_PRIORITY,
    TICKET_PROFILE,
    TICKET_RELEASE,
    TICKET_REQUESTER,
    TICKET_STATUS,
    TICKET_WAIT_REASON,
    starting_search_attributes,
)
from workflows.ticket import TITLE_MEMO, TicketWorkflow

CommandT = TypeVar("CommandT", bound=Command)
EnumT = TypeVar("EnumT", bound=StrEnum)
UpdateMethod = UpdateMethodMultiParam[[TicketWorkflow, CommandT], CommandResult]
Handle = WorkflowHandle[TicketWorkflow, TicketView]

SUBJECT_REFERENCE = re.compile(r"\[#([A-Za-z0-9][A-Za-z0-9_-]{0,63})\]")
INBOUND_CATEGORY = "email"
RELEASE_PARALLELISM = 16
# A command that meets a ticket continuing as new is retried on the new run this often.
RUN_HANDOVER_ATTEMPTS = 5
BUSY_QUERY_ATTEMPTS = 5
HANDOVER_STATUSES = frozenset(
    {WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.CONTINUED_AS_NEW}
)
TOKEN_MAC_BYTES = 12
ARCHIVE_TOKEN_PREFIX = b"archive"


@dataclass(frozen=True)
class TicketFilters:
    status: Status | None = None
    assignee: str | None = None
    requester: str | None = None
    category: str | None = None
    wait_reason: WaitReason | None = None
    release: str | None = None
    view: str | None = None
    """``inbox`` or ``own_work``, for ``viewer``."""
    viewer: str | None = None


@lru_cache(maxsize=8)
def _calendar(template: CalendarSnapshot, year: int, years_ahead: int) -> CalendarSnapshot:
    return build_calendar_snapshot(
        CalendarRequest.like(template, from_year=year, years_ahead=years_ahead)
    )


def _derived_id(prefix: str, *parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return f"{prefix}{digest[:15]}"


def _quote(value: str) -> str:
    """A visibility-query string literal. Values never hold quotes (checked at the edge)."""
    if "'" in value or "\\" in value or '"' in value:
        raise ApiError(
            422, "validation_error", "filter values may not contain quotes or backslashes"
        )
    return f"'{value}'"


class TicketService:
    def __init__(
        self,
        client: Client,
        settings: Settings,
        archive: ArchiveStore,
        *,
        rpc_timeout: timedelta,
        policies: PolicySource = policy_for,
    ) -> None:
        self._client = client
        self._policies = policies
        self._settings = settings
        self._archive = archive
        self._rpc_timeout = rpc_timeout
        # Page tokens are signed so a forged one is refused here (Temporal would answer
        # it with retried UNKNOWN errors). The key is derived from the configured API keys:
        # every replica with the same configuration accepts the others' tokens.
        self._token_key = hashlib.sha256(
            b"tramita-page-token\0" + "\0".join(sorted(settings.api_keys)).encode()
        ).digest()

    # ------------------------------------------------------------------ reading

    def handle(self, ticket_id: str) -> Handle:
        return self._client.get_workflow_handle_for(TicketWorkflow.run, workflow_id_for(ticket_id))

    async def read(self, ticket_id: str) -> TicketView:
        """A closed ticket comes from the archive (it outlives retention); others are asked."""
        archived = await self._archived(ticket_id)
        if archived is not None:
            return archived
        return await self._ask_view(ticket_id)

    async def _ask_view(self, ticket_id: str) -> TicketView:
        for attempt in range(1, BUSY_QUERY_ATTEMPTS + 1):
            try:
                return await self.handle(ticket_id).query(
                    TicketWorkflow.view, rpc_timeout=self._rpc_timeout
                )
            except RPCError as error:
                if error.status is RPCStatusCode.NOT_FOUND:
                    raise not_found(ticket_id) from None
                # A ticket under a burst of commands refuses queries for a moment.
                busy = error.status is RPCStatusCode.RESOURCE_EXHAUSTED
                if busy and attempt < BUSY_QUERY_ATTEMPTS:
                    await asyncio.sleep(0.2 * attempt)
                    continue
                raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def read_as(self, ticket_id: str, subject: str, is_requester: bool) -> TicketView:
        """The view, as long as a requester asks for one of its own tickets (else 404)."""
        view = await self.read(ticket_id)
        if is_requester and not lifecycle.is_requester(view.requester, subject):
            raise not_found(ticket_id)
        return view

    async def exists(self, ticket_id: str) -> bool:
        return await self._run_status(ticket_id) is not None

    # ------------------------------------------------------------------ creating

    def calendar(self) -> CalendarSnapshot:
        year = datetime.now(UTC).year
        return _calendar(
            self._settings.calendar_template(), year, self._settings.calendar_years_ahead
        )

    async def create(
        self,
        body: CreateTicketBody,
        *,
        actor: str,
        idempotency_key: str | None,
        follow_up_of: str | None = None,
    ) -> TicketView:
        ticket_id = body.id or (
            _derived_id("k", actor, idempotency_key) if idempotency_key else secrets.token_hex(6)
        )
        fields = TicketFields(
            title=body.title,
            description=body.description,
            category=body.category,
            priority=body.priority or Priority.NORMAL,
            nature=body.nature,
            requester=body.requester,
            primary_contact=body.primary_contact,
        )
        if body.submit:
            missing = lifecycle.missing_submit_fields(fields)
            if missing:
                raise ApiError(
                    422,
                    "missing_fields",
                    f"cannot submit: missing {', '.join(missing)}",
                    missing=missing,
                )
        profile = body.profile or self._settings.default_profile
        return await self._start(
            TicketInput(
                ticket_id=ticket_id,
                policy=self._policies(profile),
                calendar=self.calendar(),
                deliver_webhooks=bool(self._settings.webhook_urls),
                archive_locally=True,
                fields=fields,
                submit=body.submit,
                actor=actor,
                follow_up_of=follow_up_of,
            )
        )

    async def _start(self, ticket: TicketInput) -> TicketView:
        """Start the ticket's workflow and answer its opening view.

        The view comes from the core (``lifecycle.opening``, dated ``ticket.opened_at``),
        the same call the workflow makes when it starts: asking the workflow instead would
        wait for the worker's first workflow task. A start that meets the ticket already
        running (a retried create) answers the ticket as it is now.
        """
        opened_at = datetime.now(UTC)
        ticket = ticket.model_copy(update={"opened_at": opened_at})
        opened = lifecycle.opening(ticket, opened_at).state
        title = ticket.fields.title
        try:
            await self._client.start_workflow(
                TicketWorkflow.run,
                ticket,
                id=workflow_id_for(ticket.ticket_id),
                task_queue=self._settings.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=title,
                memo={TITLE_MEMO: title},
                search_attributes=starting_search_attributes(opened),
                rpc_timeout=self._rpc_timeout,
            )
        except WorkflowAlreadyStartedError:
            if await self._run_status(ticket.ticket_id) is WorkflowExecutionStatus.RUNNING:
                current = await self._ask_view(ticket.ticket_id)
                if current.status is not Status.CLOSED:  # else it is only archiving itself
                    return current
            raise ApiError(
                409,
                "invalid_transition",
                f"ticket id {ticket.ticket_id} belongs to a closed ticket",
                status=Status.CLOSED,
            ) from None
        return lifecycle.view(opened, ticket.policy)

    async def follow_up(
        self, ticket_id: str, body: FollowUpBody, *, actor: str, idempotency_key: str | None
    ) -> TicketView:
        original = await self.read(ticket_id)
        if original.status is not Status.CLOSED:
            raise ApiError(
                409,
                "invalid_transition",
                "follow-ups are opened from closed tickets; this one is open (reply to it instead)",
                status=original.status,
            )
        follow_up = await self.create(
            CreateTicketBody(
                profile=original.profile,
                title=body.title or f"Follow-up: {original.title or original.id}"[:200],
                description=body.description or original.description,
                category=original.category,
                priority=original.priority,
                nature=original.nature,
                requester=original.requester,
                primary_contact=original.primary_contact,
            ),
            actor=actor,
            idempotency_key=idempotency_key and f"follow-up:{ticket_id}:{idempotency_key}",
            follow_up_of=ticket_id,
        )
        await asyncio.to_thread(self._archive.add_follow_up, ticket_id, follow_up.id)
        return follow_up

    # ------------------------------------------------------------------ commands

    async def command(
        self,
        ticket_id: str,
        update: UpdateMethod[CommandT],
        command: CommandT,
        idempotency_key: str | None,
    ) -> TicketView:
        for attempt in range(1, RUN_HANDOVER_ATTEMPTS + 1):
            last = attempt == RUN_HANDOVER_ATTEMPTS
            try:
                result = await self.handle(ticket_id).execute_update(
                    update, command, id=idempotency_key, rpc_timeout=self._rpc_timeout
                )
                if result.view is not None:
                    return result.view
                # A long ticket: its view is not in the answer (it would bloat history).
                if result.status is Status.CLOSED:
                    return await self.read(ticket_id)  # it may be archived already
                return await self._ask_view(ticket_id)
            except RPCError as error:
                if error.status is not RPCStatusCode.NOT_FOUND:
                    raise
                # An unknown ticket, a closed one, or a run that just continued as new
                # (the update never reached it: the next run takes it).
                archived = await self._archived(ticket_id)
                status = (
                    WorkflowExecutionStatus.COMPLETED
                    if archived is not None
                    else await self._described_status(ticket_id)
                )
                if status is None:
                    raise not_found(ticket_id) from None
                if status in HANDOVER_STATUSES and not last:
                    continue
                if status in HANDOVER_STATUSES:
                    raise unavailable("the ticket is changing runs; retry the command") from None
                if command.requester_only and not (
                    archived is not None
                    and lifecycle.is_requester(archived.requester, command.actor)
                ):
                    raise not_found(ticket_id) from None
                raise closed(ticket_id) from None
            except WorkflowUpdateFailedError as failure:
                if _lost_in_handover(failure) and not last:
                    continue  # accepted but not completed before the run handed over
                raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _archived(self, ticket_id: str) -> TicketView | None:
        return await asyncio.to_thread(self._archive.get, ticket_id)

    async def _run_status(self, ticket_id: str) -> WorkflowExecutionStatus | None:
        """COMPLETED for an archived ticket, else what Temporal says; None if unknown."""
        if await self._archived(ticket_id) is not None:
            return WorkflowExecutionStatus.COMPLETED
        return await self._described_status(ticket_id)

    async def _described_status(self, ticket_id: str) -> WorkflowExecutionStatus | None:
        try:
            described = await self.handle(ticket_id).describe(rpc_timeout=self._rpc_timeout)
        except RPCError as error:
            if error.status is RPCStatusCode.NOT_FOUND:
                return None
            raise
        return described.status

    # ------------------------------------------------------------------ lists

    async def list_tickets(
        self, filters: TicketFilters, *, page_size: int, page_token: str | None
    ) -> TicketList:
        """Closed tickets come from the archive; the others from Temporal visibility."""
        if filters.status is Status.CLOSED:
            return await self._list_archived(filters, page_size=page_size, page_token=page_token)
        clauses = ["WorkflowType = 'TicketWorkflow'"]
        if filters.status is None:
            clauses.append(f"{TICKET_STATUS.name} != 'closed'")
        for key, value in (
            (TICKET_STATUS.name, filters.status.value if filters.status else None),
            (TICKET_ASSIGNEE.name, filters.assignee),
            (TICKET_REQUESTER.name, filters.requester),
            (TICKET_CATEGORY.name, filters.category),
            (TICKET_WAIT_REASON.name, filters.wait_reason.value if filters.wait_reason else None),
            (TICKET_RELEASE.name, filters.release),
        ):
            if value is not None:
                clauses.append(f"{key} = {_quote(value)}")
        if filters.view is not None and filters.viewer is not None:
            me = _quote(filters.viewer)
            if filters.view == "inbox":
                clauses.append(
                    f"{TICKET_ASSIGNEE.name} = {me} AND {TICKET_STATUS.name} != 'closed' AND "
                    f"({TICKET_STATUS.name} IN ('new', 'in_progress') "
                    f"OR {TICKET_HIGHLIGHTED.name} = true)"
                )
            else:
                clauses.append(
                    f"{TICKET_ASSIGNEE.name} = {me} AND {TICKET_STATUS.name} = 'waiting'"
                )
        token = _decode_token(page_token, self._token_key)
        iterator = self._client.list_workflows(
            " AND ".join(clauses),
            page_size=page_size,
            next_page_token=token,
            rpc_timeout=self._rpc_timeout,
        )
        await iterator.fetch_next_page(page_size=page_size)
        items = [await _summary(execution) for execution in iterator.current_page or ()]
        return TicketList(
            items=items, next_page_token=_encode_token(iterator.next_page_token, self._token_key)
        )

    async def _list_archived(
        self, filters: TicketFilters, *, page_size: int, page_token: str | None
    ) -> TicketList:
        if filters.wait_reason is not None or filters.release is not None or filters.view:
            return TicketList(items=[], next_page_token=None)  # closed tickets wait for nothing
        token = _decode_token(page_token, self._token_key)
        offset = 0
        if token is not None:
            prefix, _, number = token.partition(b":")
            if prefix != ARCHIVE_TOKEN_PREFIX or not number.isdigit():
                raise _bad_token()
            offset = int(number)
        views = await asyncio.to_thread(
            self._archive.list,
            ArchiveFilters(
                assignee=filters.assignee, requester=filters.requester, category=filters.category
            ),
            offset=offset,
            limit=page_size + 1,
        )
        more = len(views) > page_size
        next_raw = ARCHIVE_TOKEN_PREFIX + b":" + str(offset + page_size).encode() if more else None
        return TicketList(
            items=[_archived_summary(view) for view in views[:page_size]],
            next_page_token=_encode_token(next_raw, self._token_key),
        )

    # ------------------------------------------------------------------ releases

    async def publish_release(self, version: str, *, actor: str) -> list[str]:
        query = (
            f"WorkflowType = 'TicketWorkflow' AND {TICKET_STATUS.name} = 'waiting' AND "
            f"{TICKET_WAIT_REASON.name} = 'release' AND {TICKET_RELEASE.name} = {_quote(version)}"
        )
        ids = [
            execution.id.removeprefix("ticket-")
            async for execution in self._client.list_workflows(query, rpc_timeout=self._rpc_timeout)
        ]
        gate = asyncio.Semaphore(RELEASE_PARALLELISM)

        async def move(ticket_id: str) -> str | None:
            async with gate:
                try:
                    await self.command(
                        ticket_id,
                        TicketWorkflow.release_published,
                        ReleasePublishedCommand(actor=actor, version=version),
                        # One id per release: two publishes racing move a ticket once.
                        f"release:{version}",
                    )
                except WorkflowUpdateFailedError as failure:
                    if from_update_failure(failure).status_code == 409:
                        return None  # it left the release wait meanwhile
                    raise
                except ApiError as error:
                    if error.status_code in (404, 409):
                        return None
                    raise
                return ticket_id

        moved = await asyncio.gather(*(move(ticket_id) for ticket_id in ids))
        return sorted(ticket_id for ticket_id in moved if ticket_id is not None)

    # ------------------------------------------------------------------ inbound

    async def route_inbound(self, email: InboundEmailBody) -> InboundResult:
        sender = str(email.from_)
        referenced = self._referenced_ticket(email)
        if referenced is not None:
            try:
                current = await self.read(referenced)
            except ApiError as error:
                if error.status_code != 404:
                    raise
                current = None
            if current is not None and current.status is not Status.CLOSED:
                return await self._reply(current, email, sender)
            if current is not None:
                return await self._new_from_email(email, sender, follow_up_of=referenced)
        return await self._new_from_email(email, sender, follow_up_of=None)

    @staticmethod
    def _referenced_ticket(email: InboundEmailBody) -> str | None:
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
        view = await self.command(
            ticket.id,
            TicketWorkflow.customer_reply,
            CustomerReplyCommand(
                actor=sender,
                body=email.text or "(empty message)",
                subject=email.subject,
                message_id=email.message_id,
                from_address=sender,
            ),
            _derived_id("inbound-", email.message_id),
        )
        reopened = ticket.status is Status.RESOLVED and view.status is Status.IN_PROGRESS
        return InboundResult(action="reopened" if reopened else "reply", ticket_id=ticket.id)

    async def _new_from_email(
        self, email: InboundEmailBody, sender: str, *, follow_up_of: str | None
    ) -> InboundResult:
        ticket_id = _derived_id("m", email.message_id)
        if await self.exists(ticket_id):
            return InboundResult(action="duplicate", ticket_id=ticket_id)
        title = " ".join(SUBJECT_REFERENCE.sub("", email.subject).split()) or "(no subject)"
        await self._start(
            TicketInput(
                ticket_id=ticket_id,
                policy=self._policies(self._settings.default_profile),
                calendar=self.calendar(),
                deliver_webhooks=bool(self._settings.webhook_urls),
                archive_locally=True,
                fields=TicketFields(
                    title=title[:200],
                    description=email.text or "(empty message)",
                    category=INBOUND_CATEGORY,
                    requester=sender,
                    primary_contact=sender,
                ),
                submit=True,
                actor=sender,
                follow_up_of=follow_up_of,
            )
        )
        if follow_up_of is not None:
            await asyncio.to_thread(self._archive.add_follow_up, follow_up_of, ticket_id)
        return InboundResult(action="follow_up" if follow_up_of else "created", ticket_id=ticket_id)


def _decode_token(token: str | None, key: bytes) -> bytes | None:
    if not token:
        return None
    try:
        signed = base64.b64decode(token.encode(), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise _bad_token() from None
    mac, raw = signed[:TOKEN_MAC_BYTES], signed[TOKEN_MAC_BYTES:]
    if not raw or not hmac.compare_digest(mac, _token_mac(raw, key)):
        raise _bad_token()
    return raw


def _encode_token(raw: bytes | None, key: bytes) -> str | None:
    if not raw:
        return None
    return base64.b64encode(_token_mac(raw, key) + raw, altchars=b"-_").decode()


def _token_mac(raw: bytes, key: bytes) -> bytes:
    return hmac.new(key, raw, hashlib.sha256).digest()[:TOKEN_MAC_BYTES]


def _bad_token() -> ApiError:
    return ApiError(422, "validation_error", "page_token is not one this API handed out")


def _lost_in_handover(failure: WorkflowUpdateFailedError) -> bool:
    cause = failure.cause
    return isinstance(cause, ApplicationError) and cause.type == "AcceptedUpdateCompletedWorkflow"


def _archived_summary(view: TicketView) -> TicketSummary:
    return TicketSummary(
        id=view.id,
        profile=view.profile,
        status=view.status,
        title=view.title,
        assignee=view.assignee.id if view.assignee else None,
        requester=view.requester,
        category=view.category,
        priority=view.priority,
        wait_reason=None,
        release=None,
        next_deadline=None,
        highlighted=False,
        created_at=view.created_at,
        closed_at=view.closed_at,
    )


def enum_or_none(enum: type[EnumT], raw: str | None) -> EnumT | None:
    """A search attribute value as its enum; None when unset or not a known value."""
    try:
        return enum(raw) if raw is not None else None
    except ValueError:
        return None


async def _summary(execution: WorkflowExecution) -> TicketSummary:
    attributes = execution.typed_search_attributes
    return TicketSummary(
        id=execution.id.removeprefix("ticket-"),
        profile=enum_or_none(ProfileName, attributes.get(TICKET_PROFILE)),
        status=enum_or_none(Status, attributes.get(TICKET_STATUS)),
        title=await execution.memo_value(TITLE_MEMO, None, type_hint=str),
        assignee=attributes.get(TICKET_ASSIGNEE),
        requester=attributes.get(TICKET_REQUESTER),
        category=attributes.get(TICKET_CATEGORY),
        priority=enum_or_none(Priority, attributes.get(TICKET_PRIORITY)),
        wait_reason=enum_or_none(WaitReason, attributes.get(TICKET_WAIT_REASON)),
        release=attributes.get(TICKET_RELEASE),
        next_deadline=attributes.get(TICKET_NEXT_DEADLINE),
        highlighted=bool(attributes.get(TICKET_HIGHLIGHTED)),
        created_at=execution.start_time,
        closed_at=execution.close_time,
    )
