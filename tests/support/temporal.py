"""Helpers for tests against a real Temporal server (time-skipping or dev server)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

import httpx
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.calendar import build_calendar_snapshot
from config import Settings
from worker import build_worker
from workflows import lifecycle
from workflows.commands import spec_of
from workflows.models import (
    BuiltInProfile,
    CalendarRequest,
    CalendarSnapshot,
    Command,
    CommandResult,
    EventType,
    Nature,
    ProfileName,
    TicketFields,
    TicketInput,
    TicketView,
    workflow_id_for,
)
from workflows.policy import policy_for
from workflows.search import starting_search_attributes
from workflows.ticket import TicketWorkflow

T = TypeVar("T")
_ids = itertools.count(1)


def strict_worker(client: Client, settings: Settings, http_client: httpx.AsyncClient) -> Worker:
    """The production worker, except that any exception fails the workflow at once.

    Otherwise a sandbox violation or a bug fails only the workflow task, which Temporal
    retries forever: the test would hang instead of failing (TEMPORAL_NOTES).
    """
    return build_worker(
        client, settings, http_client=http_client, workflow_failure_exception_types=[Exception]
    )


FIELDS = TicketFields(
    title="Erro ao emitir nota fiscal",
    description="O sistema mostra erro 500 ao emitir a nota.",
    category="fiscal",
    nature=Nature.INCIDENT,
    requester="cliente@example.com",
    primary_contact="contato@example.com",
)


def fresh_id(prefix: str = "T") -> str:
    return f"{prefix}{next(_ids)}-{datetime.now(UTC):%H%M%S%f}"


def brazil_calendar(year: int, timezone: str = "America/Sao_Paulo") -> CalendarSnapshot:
    return build_calendar_snapshot(
        CalendarRequest(
            timezone=timezone,
            work_days=(1, 2, 3, 4, 5),
            opens_at=time(8),
            closes_at=time(18),
            country="BR",
            subdivision=None,
            from_year=year,
        )
    )


async def start_ticket(
    client: Client,
    task_queue: str,
    *,
    profile: ProfileName = BuiltInProfile.SUPPORT,
    fields: TicketFields = FIELDS,
    calendar: CalendarSnapshot | None = None,
    submit: bool = True,
    ticket_id: str | None = None,
    deliver_webhooks: bool = True,
    listed: bool = False,
    archive_locally: bool = True,
    keep_store: bool = True,
) -> WorkflowHandle[TicketWorkflow, TicketView]:
    """Starts a ticket's workflow; ``listed``: with its search attributes, as the API does.

    Unlisted, the workflow publishes them in its first task, as a child ticket does.
    ``archive_locally`` False writes the input of a ticket opened before that field.
    """
    ticket_id = ticket_id or fresh_id()
    ticket = TicketInput(
        ticket_id=ticket_id,
        policy=policy_for(profile),
        calendar=calendar or brazil_calendar(datetime.now(UTC).year),
        fields=fields,
        submit=submit,
        actor="ana",
        deliver_webhooks=deliver_webhooks,
        archive_locally=archive_locally,
        keep_store=keep_store,
    )
    attributes = TypedSearchAttributes.empty
    if listed:
        # A new ticket has no deadline yet, so its attributes do not depend on the clock
        # (under time skipping the workflow's differs from this one).
        opened = lifecycle.opening(ticket, datetime.now(UTC)).state
        attributes = starting_search_attributes(opened)
    return await client.start_workflow(
        TicketWorkflow.run,
        ticket,
        id=workflow_id_for(ticket_id),
        task_queue=task_queue,
        static_summary=fields.title,
        search_attributes=attributes,
    )


async def eventually(
    probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], *, seconds: float = 10.0
) -> T:
    """Poll ``probe`` in real time until ``check`` holds; fail with the last value.

    A workflow that does not exist yet (a child about to start) counts as not yet.
    """
    deadline = asyncio.get_running_loop().time() + seconds
    value: T | RPCError | None = None
    while True:
        try:
            value = await probe()
        except RPCError as error:
            if error.status is not RPCStatusCode.NOT_FOUND:
                raise
            value = error
        else:
            if check(value):
                return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {seconds}s; last value: {value!r}")
        await asyncio.sleep(0.05)


async def travel_to(env: WorkflowEnvironment, moment: datetime) -> None:
    now = await env.get_current_time()
    if moment <= now:
        raise AssertionError(f"cannot travel back from {now} to {moment}")
    await env.sleep(moment - now)


async def next_local(
    env: WorkflowEnvironment, weekday: int, at: time, timezone: str = "America/Sao_Paulo"
) -> datetime:
    """The next moment, at least a day away, that is ``weekday`` (ISO) at ``at`` locally."""
    zone = ZoneInfo(timezone)
    day = ((await env.get_current_time()) + timedelta(days=1)).astimezone(zone).date()
    while day.isoweekday() != weekday:
        day += timedelta(days=1)
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


async def search_attributes(client: Client, workflow_id: str) -> dict[str, object]:
    """A workflow's search attributes as plain values, unset ones left out.

    Read raw because the time-skipping server reports an unset Datetime attribute as a
    ``binary/null`` payload that ``describe()`` cannot decode (the real server drops it).
    """
    response = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
        )
    )
    fields = response.workflow_execution_info.search_attributes.indexed_fields
    return {
        name: json.loads(payload.data)
        for name, payload in fields.items()
        if payload.metadata.get("encoding") != b"binary/null"
    }


async def update(
    handle: WorkflowHandle[TicketWorkflow, TicketView], message: Command
) -> CommandResult:
    """Send ``message`` as the Update of its command (named in ``workflows.commands``)."""
    result: CommandResult = await handle.execute_update(
        spec_of(message).name, message, result_type=CommandResult
    )
    return result


async def signal(handle: WorkflowHandle[TicketWorkflow, TicketView], message: Command) -> None:
    """Send ``message`` as the Signal of its command, as an operator would."""
    await handle.signal(spec_of(message).name, message)


async def command(
    handle: WorkflowHandle[TicketWorkflow, TicketView], message: Command
) -> TicketView:
    """Apply a command, then read the whole view (updates answer only an acknowledgement)."""
    await update(handle, message)
    return await handle.query(TicketWorkflow.view)


def events_of(view: TicketView, kind: EventType) -> list[dict[str, object]]:
    return [e.data for e in view.timeline if e.type is kind]
