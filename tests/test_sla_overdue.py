"""A ticket whose SLA ran out while no worker ran (opened during an outage): on the real
dev server, the overdue warning and breach are told once, as soon as a worker takes the
ticket, and the ticket goes on taking commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from temporalio.testing import WorkflowEnvironment

from tests.api.helpers import post
from tests.support.temporal import FIELDS, brazil_calendar, fresh_id
from workflows import lifecycle
from workflows.models import (
    Priority,
    SlaMetric,
    SlaPolicy,
    TicketInput,
    workflow_id_for,
)
from workflows.policy import SUPPORT
from workflows.search import starting_search_attributes
from workflows.ticket import TicketWorkflow


async def test_an_overdue_breach_is_told_once_and_commands_still_work(
    dev_env: WorkflowEnvironment, dev_api: httpx.AsyncClient
) -> None:
    policy = SUPPORT.model_copy(
        update={
            "sla": SlaPolicy.model_validate(
                {"targets": {SlaMetric.FIRST_REPLY: {p: "10 minutes" for p in Priority}}}
            )
        }
    )
    opened_at = datetime.now(UTC) - timedelta(hours=1)
    ticket = TicketInput(
        ticket_id=fresh_id("O"),
        policy=policy,
        calendar=brazil_calendar(opened_at.year),
        opened_at=opened_at,
        fields=FIELDS,
        submit=True,
        actor="ana",
        archive_locally=True,
        keep_store=True,
    )
    opening = lifecycle.opening(ticket, opened_at).state
    handle = await dev_env.client.start_workflow(
        TicketWorkflow.run,
        ticket,
        id=workflow_id_for(ticket.ticket_id),
        task_queue="tramita-dev-tests",
        search_attributes=starting_search_attributes(opening),
    )
    view = await post(dev_api, f"/tickets/{ticket.ticket_id}/assign", {"assignee": "ana"})
    assert view["status"] == "in_progress"
    for _ in range(100):
        current = await handle.query(TicketWorkflow.view)
        told = [e.type.value for e in current.timeline if e.type.value.startswith("sla_")]
        if "sla_breached" in told:
            break
        await dev_env.sleep(timedelta(milliseconds=100))
    # Both were owed on arrival: the breach makes the warning moot, and is told once.
    assert told == ["sla_breached"]
    first = next(c for c in current.sla if c.metric is SlaMetric.FIRST_REPLY)
    assert first.breached_at == opened_at + timedelta(minutes=10)
    await post(dev_api, f"/tickets/{ticket.ticket_id}/emails", {"body": "Sorry for the wait."})
    answered = await handle.query(TicketWorkflow.view)
    assert [e.type.value for e in answered.timeline].count("sla_breached") == 1
    assert next(c for c in answered.sla if c.metric is SlaMetric.FIRST_REPLY).state.value == "met"
