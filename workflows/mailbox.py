"""MailboxWorkflow: one durable follower per IMAP mailbox (``TRAMITA_IMAP_MAILBOXES``).

It fetches the messages past the last UID it routed, routes each one (an activity that
hands it to the inbound router), then waits: with IDLE where the server has it, else by
a durable timer of ``TRAMITA_IMAP_POLL_SECONDS``. Its state is the folder's UIDVALIDITY
and the last UID routed, advanced only once a message is routed, so a crash (worker or
IMAP server) mid-fetch loses nothing and doubles nothing: the fetch is done again, and
a message routed already is a ``duplicate`` by its Message-ID. A changed UIDVALIDITY
starts the UIDs over; the old messages come again and are recognised the same way, so
none opens a second ticket. A message refused as ``rate_limited`` is routed again an
hour later.

It decides nothing about tickets; the router does. No pure core of its own: the loop is
the whole of it.
"""

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.imap import (
        FetchBatch,
        FetchRequest,
        ImapActivities,
        RouteRequest,
        RouteResult,
        WaitRequest,
    )

FETCH_TIMEOUT = timedelta(minutes=5)
ROUTE_TIMEOUT = timedelta(minutes=2)
IDLE_SECONDS = 9 * 60.0  # under the 29 minutes RFC 2177 lets a server drop an idle client
HEARTBEAT = timedelta(seconds=30)
ROUTE_HEARTBEAT = timedelta(seconds=10)  # a route on a worker that died is tried again soon
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    non_retryable_error_types=["UnknownMailbox"],
)
RETRY_RATE_LIMITED_AFTER = timedelta(hours=1)
MAX_DEFERRED = 500
ROUNDS_PER_RUN = 200


class DeferredMessage(BaseModel):
    uid: int
    sha256: str
    retry_at_seconds: float
    """Workflow time (seconds since the epoch) to route it again."""


class MailboxInput(BaseModel):
    mailbox: str
    """The mailbox's key, ``user@host:port/folder`` (no password)."""
    poll_seconds: float = 60.0
    uidvalidity: int | None = None
    last_uid: int = 0
    deferred: list[DeferredMessage] = []


@workflow.defn(name="MailboxWorkflow")
class MailboxWorkflow:
    @workflow.run
    async def run(self, state: MailboxInput) -> None:
        for _ in range(ROUNDS_PER_RUN):
            batch: FetchBatch = await workflow.execute_activity_method(
                ImapActivities.fetch,
                FetchRequest(
                    mailbox=state.mailbox, uidvalidity=state.uidvalidity, after_uid=state.last_uid
                ),
                start_to_close_timeout=FETCH_TIMEOUT,
                heartbeat_timeout=HEARTBEAT,
                retry_policy=RETRY,
                summary=f"fetch new mail of {state.mailbox}",
            )
            if batch.changed or state.uidvalidity is None:
                if state.uidvalidity is not None:
                    workflow.logger.warning(
                        "UIDVALIDITY changed; the UIDs start over",
                        extra={"mailbox": state.mailbox, "uidvalidity": batch.uidvalidity},
                    )
                state.uidvalidity, state.last_uid = batch.uidvalidity, 0
                if batch.changed:
                    continue
            for message in batch.messages:
                await self._route(state, message.uid, message.sha256)
                state.last_uid = message.uid
            await self._route_deferred(state)
            if batch.more:
                continue
            await self._wait(state, idle=batch.idle)
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(state)

    async def _route(self, state: MailboxInput, uid: int, sha256: str) -> None:
        result: RouteResult = await workflow.execute_activity_method(
            ImapActivities.route,
            RouteRequest(mailbox=state.mailbox, uid=uid, sha256=sha256),
            start_to_close_timeout=ROUTE_TIMEOUT,
            heartbeat_timeout=ROUTE_HEARTBEAT,
            retry_policy=RETRY,
            summary=f"route UID {uid}",
        )
        if result.outcome == "rate_limited" and len(state.deferred) < MAX_DEFERRED:
            retry_at = workflow.now() + RETRY_RATE_LIMITED_AFTER
            state.deferred.append(
                DeferredMessage(uid=uid, sha256=sha256, retry_at_seconds=retry_at.timestamp())
            )

    async def _route_deferred(self, state: MailboxInput) -> None:
        now = workflow.now().timestamp()
        due = [m for m in state.deferred if m.retry_at_seconds <= now]
        state.deferred = [m for m in state.deferred if m.retry_at_seconds > now]
        for message in due:
            await self._route(state, message.uid, message.sha256)

    async def _wait(self, state: MailboxInput, *, idle: bool) -> None:
        if idle:
            await workflow.execute_activity_method(
                ImapActivities.wait,
                WaitRequest(mailbox=state.mailbox, seconds=IDLE_SECONDS, after_uid=state.last_uid),
                start_to_close_timeout=timedelta(seconds=IDLE_SECONDS + 60),
                heartbeat_timeout=HEARTBEAT,
                retry_policy=RETRY,
                summary=f"IDLE on {state.mailbox}",
            )
        else:
            await workflow.sleep(timedelta(seconds=state.poll_seconds), summary="poll again")
