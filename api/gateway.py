"""The API's one door to Temporal: start tickets, send them commands, read their views.

Commands are Updates named after the command (``workflows.commands``), sent with an
update id the caller's service derives, so a retried request applies once and gets the
first answer. Every call carries an RPC timeout: no worker means a 503, never a hung
request. Temporal's failures come out of here as domain errors (``api.failures``, and
the core's ``CommandRejected`` for a command the ticket refused); nothing here speaks
HTTP.

What a failed update means (checked against Temporal server 1.32, README "Operations"):

* ``UNAVAILABLE`` ("workflow update was aborted"): the server dropped an admitted
  update (another request on the ticket failed, a shard moved). Nothing was applied;
  the same update id is a fresh admission. The SDK already retried it for about 10 s.
* ``FAILED_PRECONDITION`` "Workflow Task in failed state": the ticket's workflow tasks
  failed or timed out (an overloaded worker); every update is refused until one
  completes. Retried once after a pause, then a 503 that says a retry is safe.
* ``NOT_FOUND``: the run is closed (or continued as new: the next run takes it).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import cast, get_args

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.archive import ArchiveStore
from api.failures import TicketNotFound, Unavailable
from workflows import lifecycle
from workflows.commands import spec_of
from workflows.models import (
    Command,
    CommandResult,
    Status,
    TicketInput,
    TicketView,
    workflow_id_for,
)
from workflows.search import starting_search_attributes
from workflows.ticket import TITLE_MEMO, TicketWorkflow
from workflows.transaction import CommandRejected, RejectionCode

logger = logging.getLogger("tramita.api")

Handle = WorkflowHandle[TicketWorkflow, TicketView]

# A command that meets a ticket continuing as new is retried on the new run this often.
RUN_HANDOVER_ATTEMPTS = 5
BUSY_QUERY_ATTEMPTS = 5
FAILED_TASK_PAUSE_SECONDS = 1.0
HANDOVER_STATUSES = frozenset(
    {WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.CONTINUED_AS_NEW}
)
# Temporal statuses that mean "not done, ask again": nothing was applied or the same
# update id finds the first outcome.
RETRYABLE_CODES = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.ABORTED,
        RPCStatusCode.INTERNAL,
        RPCStatusCode.UNKNOWN,
    }
)
REJECTION_CODES: frozenset[str] = frozenset(get_args(RejectionCode))


class TicketGateway:
    def __init__(self, client: Client, archive: ArchiveStore, *, rpc_timeout: timedelta) -> None:
        self._client = client
        self._archive = archive
        self._rpc_timeout = rpc_timeout

    @property
    def client(self) -> Client:
        return self._client

    def handle(self, ticket_id: str) -> Handle:
        return self._client.get_workflow_handle_for(TicketWorkflow.run, workflow_id_for(ticket_id))

    # ------------------------------------------------------------------ reading

    async def read(self, ticket_id: str) -> TicketView:
        """A closed ticket comes from the archive (it outlives retention); others are asked."""
        archived = await self.archived(ticket_id)
        if archived is not None:
            return archived
        return await self.query_view(ticket_id)

    async def archived(self, ticket_id: str) -> TicketView | None:
        return await asyncio.to_thread(self._archive.get, ticket_id)

    async def query_view(self, ticket_id: str) -> TicketView:
        for attempt in range(1, BUSY_QUERY_ATTEMPTS + 1):
            try:
                return await self.handle(ticket_id).query(
                    TicketWorkflow.view, rpc_timeout=self._rpc_timeout
                )
            except RPCError as error:
                if error.status is RPCStatusCode.NOT_FOUND:
                    raise TicketNotFound(ticket_id) from None
                # A ticket under a burst of commands refuses queries for a moment.
                busy = error.status is RPCStatusCode.RESOURCE_EXHAUSTED
                if busy and attempt < BUSY_QUERY_ATTEMPTS:
                    await asyncio.sleep(0.2 * attempt)
                    continue
                raise unavailable_from(error, "the ticket could not be read right now") from None
            except WorkflowQueryFailedError as error:
                logger.error("query failed", extra={"ticket_id": ticket_id, "error": str(error)})
                raise Unavailable("the ticket could not be read right now") from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def run_status(self, ticket_id: str) -> WorkflowExecutionStatus | None:
        """COMPLETED for an archived ticket, else what Temporal says; None if unknown."""
        if await self.archived(ticket_id) is not None:
            return WorkflowExecutionStatus.COMPLETED
        return await self.described_status(ticket_id)

    async def described_status(self, ticket_id: str) -> WorkflowExecutionStatus | None:
        try:
            described = await self.handle(ticket_id).describe(rpc_timeout=self._rpc_timeout)
        except RPCError as error:
            if error.status is RPCStatusCode.NOT_FOUND:
                return None
            raise unavailable_from(error, "Temporal did not answer") from None
        return described.status

    async def memo(self, ticket_id: str, key: str) -> str | None:
        try:
            described = await self.handle(ticket_id).describe(rpc_timeout=self._rpc_timeout)
        except RPCError as error:
            if error.status is RPCStatusCode.NOT_FOUND:
                return None
            raise unavailable_from(error, "Temporal did not answer") from None
        value = await described.memo_value(key, None, type_hint=str)
        return value if isinstance(value, str) else None

    # ------------------------------------------------------------------ starting

    async def start(
        self, ticket: TicketInput, *, task_queue: str, memo: dict[str, str] | None = None
    ) -> tuple[TicketView, bool]:
        """Start the ticket's workflow; answer its opening view and whether it is new.

        The view comes from the core (``lifecycle.opening``, dated ``ticket.opened_at``),
        the same call the workflow makes when it starts: asking the workflow instead would
        wait for the worker's first workflow task. A start that meets the ticket already
        running (a retried create) answers the ticket as it is now.
        """
        opened_at = datetime.now(UTC)
        ticket = ticket.model_copy(update={"opened_at": opened_at})
        opened = lifecycle.opening(ticket, opened_at).state
        title = ticket.fields.title
        attributes: TypedSearchAttributes = starting_search_attributes(opened)
        try:
            await self._client.start_workflow(
                TicketWorkflow.run,
                ticket,
                id=workflow_id_for(ticket.ticket_id),
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=title,
                memo={TITLE_MEMO: title, **(memo or {})},
                search_attributes=attributes,
                rpc_timeout=self._rpc_timeout,
            )
        except WorkflowAlreadyStartedError:
            if await self.run_status(ticket.ticket_id) is WorkflowExecutionStatus.RUNNING:
                current = await self.query_view(ticket.ticket_id)
                if current.status is not Status.CLOSED:  # else it is only archiving itself
                    return current, False
            raise CommandRejected(
                f"ticket id {ticket.ticket_id} belongs to a closed ticket", status=Status.CLOSED
            ) from None
        except RPCError as error:
            raise unavailable_from(error, "Temporal did not start the ticket") from None
        return lifecycle.view(opened, ticket.policy), True

    # ------------------------------------------------------------------ commands

    async def send(self, ticket_id: str, command: Command, *, update_id: str | None) -> TicketView:
        """Apply ``command`` to the ticket; answer its new (staff) view.

        Raises the core's ``CommandRejected`` when the ticket refuses it,
        ``TicketNotFound`` for an unknown ticket (or one a requester may not know of),
        ``Unavailable`` when Temporal or the worker does not answer.
        """
        name = spec_of(command).name
        failed_task_retried = False
        for attempt in range(1, RUN_HANDOVER_ATTEMPTS + 1):
            last = attempt == RUN_HANDOVER_ATTEMPTS
            try:
                result: CommandResult = await self.handle(ticket_id).execute_update(
                    name,
                    command,
                    id=update_id,
                    result_type=CommandResult,
                    rpc_timeout=self._rpc_timeout,
                )
            except WorkflowUpdateFailedError as failure:
                if _lost_in_handover(failure) and not last:
                    continue  # accepted but not completed before the run handed over
                raise _rejection(failure) from None
            except WorkflowUpdateRPCTimeoutOrCancelledError:
                raise Unavailable(
                    "no worker answered in time; the command was not confirmed: send it again "
                    "with the same Idempotency-Key (it applies once)"
                ) from None
            except RPCError as error:
                if error.status is RPCStatusCode.FAILED_PRECONDITION and _task_failed(error):
                    logger.warning(
                        "ticket's workflow task is failing; update refused",
                        extra={"ticket_id": ticket_id, "status": error.status.name},
                    )
                    if not failed_task_retried:
                        failed_task_retried = True
                        await asyncio.sleep(FAILED_TASK_PAUSE_SECONDS)
                        continue
                    raise Unavailable(
                        "the ticket's worker is overloaded or failing; the command was not "
                        "applied: send it again with the same Idempotency-Key"
                    ) from None
                if error.status is not RPCStatusCode.NOT_FOUND:
                    raise unavailable_from(error, "Temporal refused the command") from None
                if await self._handed_over(ticket_id, command) and not last:
                    continue
                raise Unavailable("the ticket is changing runs; send the command again") from None
            if result.view is not None:
                return result.view
            # A long ticket: its view is not in the answer (it would bloat history).
            if result.status is Status.CLOSED:
                return await self.read(ticket_id)  # it may be archived already
            return await self.query_view(ticket_id)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _handed_over(self, ticket_id: str, command: Command) -> bool:
        """After NOT_FOUND: True when the ticket just continued as new (send again);
        else raise what the caller should hear (unknown, or closed)."""
        archived = await self.archived(ticket_id)
        status = (
            WorkflowExecutionStatus.COMPLETED
            if archived is not None
            else await self.described_status(ticket_id)
        )
        if status is None:
            raise TicketNotFound(ticket_id)
        if status in HANDOVER_STATUSES:
            return True
        if command.requester_only and not (
            archived is not None and lifecycle.is_requester(archived.requester, command.actor)
        ):
            raise TicketNotFound(ticket_id)
        raise CommandRejected(
            f"ticket {ticket_id} is closed: closed tickets accept no command (open a follow-up)",
            status=Status.CLOSED,
        )


def _rejection(failure: WorkflowUpdateFailedError) -> Exception:
    cause = failure.cause
    if isinstance(cause, ApplicationError) and cause.type in REJECTION_CODES:
        info = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
        status = Status(info["status"]) if info.get("status") else Status.CLOSED
        code = cast(RejectionCode, cause.type)
        return CommandRejected(
            cause.message, status=status, code=code, missing=info.get("missing", ())
        )
    logger.error("update failed unexpectedly", extra={"cause": repr(cause)})
    return Unavailable("the ticket could not process the command; send it again")


def _lost_in_handover(failure: WorkflowUpdateFailedError) -> bool:
    cause = failure.cause
    return isinstance(cause, ApplicationError) and cause.type == "AcceptedUpdateCompletedWorkflow"


def _task_failed(error: RPCError) -> bool:
    return "workflow task in failed state" in error.message.lower()


def unavailable_from(error: RPCError, detail: str) -> Unavailable:
    """A Temporal failure as a 503, saying whether asking again can help."""
    retryable = error.status in RETRYABLE_CODES
    logger.error(
        "temporal rpc failed",
        extra={"status": error.status.name, "error": error.message, "retryable": retryable},
    )
    if retryable:
        return Unavailable(f"{detail}: Temporal did not answer in time; try again")
    return Unavailable(
        f"{detail}: Temporal refused the request ({error.status.name}); trying again will "
        "not help until an operator looks at it",
        retryable=False,
    )
