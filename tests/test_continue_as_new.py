"""A ticket with the longest timeline continues as new with everything intact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.archive import ArchiveStore
from api.gateway import TicketGateway
from config import Settings
from tests.conftest import DEV_SERVER
from tests.support.temporal import command, search_attributes, start_ticket, strict_worker, update
from workflows.messages import AssignCommand, NoteCommand, WaitCommand
from workflows.models import (
    EventType,
    Status,
    WaitReason,
)
from workflows.search import ALL_KEYS, TICKET_NEXT_DEADLINE, TICKET_STATUS, TICKET_WAIT_REASON
from workflows.texts import MAX_TIMELINE_EVENTS
from workflows.ticket import TicketWorkflow

QUEUE = "tramita-can-tests"
# As many notes as a ticket may hold (its event cap), less the few its lifecycle adds.
NOTES = MAX_TIMELINE_EVENTS - 20
SUGGEST_AFTER_EVENTS = 200


@pytest.fixture(scope="module")
async def can_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(DEV_SERVER),
        search_attributes=ALL_KEYS,
        dev_server_log_level="error",
        dev_server_extra_args=[
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={SUGGEST_AFTER_EVENTS}",
        ],
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def test_thousands_of_events_continue_as_new_with_state_deadlines_and_attributes(
    can_env: WorkflowEnvironment, worker_settings: Settings, http_client: httpx.AsyncClient
) -> None:
    settings = worker_settings.model_copy(update={"task_queue": QUEUE})
    async with strict_worker(can_env.client, settings, http_client):
        handle = await start_ticket(can_env.client, QUEUE)
        first_run = (await handle.describe()).run_id
        await update(handle, AssignCommand(actor="ana", assignee="ana"))
        waiting = await command(handle, WaitCommand(actor="ana", reason=WaitReason.CUSTOMER))
        gate = asyncio.Semaphore(4)  # commands racing the hand-over between runs

        # Through the API's command path: it hands commands over to the new run.
        tickets = TicketGateway(
            can_env.client,
            ArchiveStore.from_url(settings.archive_url),
            rpc_timeout=timedelta(seconds=30),
        )
        ticket_id = handle.id.removeprefix("ticket-")

        async def note(number: int) -> None:
            async with gate:
                await tickets.send(
                    ticket_id,
                    NoteCommand(actor="ana", body=f"note {number}"),
                    update_id=f"note-{number}",
                )

        await asyncio.gather(*(note(n) for n in range(NOTES)))
        view = await handle.query(TicketWorkflow.view)
        described = await handle.describe()
        attributes = await search_attributes(can_env.client, handle.id)
        history = await handle.fetch_history()
        await handle.terminate("test done")

    assert described.run_id != first_run, "the ticket continued as new"
    assert len(history.events) < NOTES, "the current run holds a fraction of the events"
    notes = [
        e
        for e in view.timeline
        if e.type is EventType.NOTE and str(e.data.get("body", "")).startswith("note ")
    ]
    assert sorted(int(str(e.data["body"]).split()[1]) for e in notes) == list(
        range(NOTES)
    )  # none lost or doubled
    assert [e.seq for e in view.timeline] == list(range(1, len(view.timeline) + 1))
    assert view.status is Status.WAITING and view.wait == waiting.wait
    assert view.deadlines == waiting.deadlines  # notes do not restart the support clock
    assert view.qualification == waiting.qualification
    assert attributes[TICKET_STATUS.name] == "waiting"
    assert attributes[TICKET_WAIT_REASON.name] == "customer"
    assert attributes[TICKET_NEXT_DEADLINE.name] is not None
