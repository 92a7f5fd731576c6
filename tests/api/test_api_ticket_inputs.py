"""What the API puts into a new ticket: webhook delivery from its settings, the rules
from its policy source."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.main import create_app
from config import Settings
from tests.api.helpers import AGENT, ticket_body
from workflows.models import (
    BuiltInProfile,
    Offset,
    OffsetUnit,
    ProfileName,
    ProfilePolicy,
    TicketInput,
    workflow_id_for,
)
from workflows.policy import policy_for


@asynccontextmanager
async def serving(
    env: WorkflowEnvironment,
    settings: Settings,
    policies: Callable[[ProfileName], ProfilePolicy] = policy_for,
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, client=env.client, policies=policies)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tramita.test") as api:
        yield api


async def opened_input(env: WorkflowEnvironment, api: httpx.AsyncClient) -> TicketInput:
    response = await api.post("/tickets", json=ticket_body(), headers=AGENT)
    assert response.status_code == 201, response.text
    handle = env.client.get_workflow_handle(workflow_id_for(response.json()["id"]))
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [ticket] = await env.client.data_converter.decode(started.input.payloads, [TicketInput])
    assert isinstance(ticket, TicketInput)
    return ticket


async def test_tickets_deliver_webhooks_only_where_receivers_are_configured(
    time_env: WorkflowEnvironment, api_settings: Settings, time_worker: Worker
) -> None:
    async with serving(time_env, api_settings) as api:
        without = await opened_input(time_env, api)
    with_receiver = api_settings.model_copy(update={"webhook_urls": ("http://hooks.test/in",)})
    async with serving(time_env, with_receiver) as api:
        with_url = await opened_input(time_env, api)

    assert without.deliver_webhooks is False
    assert with_url.deliver_webhooks is True


async def test_new_tickets_take_their_rules_from_the_policy_source(
    time_env: WorkflowEnvironment, api_settings: Settings, time_worker: Worker
) -> None:
    support = policy_for(BuiltInProfile.SUPPORT)
    quick = support.model_copy(
        update={
            "timers": support.timers.model_copy(
                update={"resolved_close": Offset(amount=5, unit=OffsetUnit.SECONDS)}
            )
        }
    )
    async with serving(time_env, api_settings, lambda profile: quick) as api:
        ticket = await opened_input(time_env, api)

    assert ticket.policy == quick


async def test_new_tickets_skip_the_archive_patch_check(
    time_env: WorkflowEnvironment, api_settings: Settings, time_worker: Worker
) -> None:
    # Without the field the ticket would ask workflow.patched at its close: a marker and a
    # TemporalChangeVersion upsert in every history (test_ticket_workflow shows both forms).
    async with serving(time_env, api_settings) as api:
        ticket = await opened_input(time_env, api)

    assert ticket.archive_locally is True
