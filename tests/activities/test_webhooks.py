"""Signed webhooks for status changes, delivered to a real receiver on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from activities.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, sign, verify
from config import Settings
from tests.support.http import Receiver, Recorded
from tests.support.temporal import eventually, start_ticket, strict_worker, update
from workflows.commands import (
    AssignCommand,
    NoteCommand,
)

SECRET = "s3cr3t-for-tests"
QUEUE = "tramita-webhook-tests"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(fail_first=1)
    server.start()
    yield server
    server.stop()


def test_signature_is_hmac_sha256_of_the_body() -> None:
    body = b'{"ticket_id":"1"}'
    signature = sign(body, SECRET)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify(body, SECRET, signature)
    assert not verify(body + b" ", SECRET, signature)
    assert not verify(body, "other", signature)


async def test_status_changes_reach_the_receiver_signed_and_retried(
    time_env: WorkflowEnvironment,
    worker_settings: Settings,
    http_client: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    settings = worker_settings.model_copy(
        update={
            "task_queue": QUEUE,
            "webhook_urls": (receiver.url,),
            "webhook_secret": SecretStr(SECRET),
        }
    )
    worker = strict_worker(time_env.client, settings, http_client)
    async with worker:
        handle = await start_ticket(time_env.client, QUEUE)

        async def requests() -> list[Recorded]:
            return receiver.recorded()

        await eventually(requests, lambda r: len(r) >= 1)  # "submitted", refused once with 503
        await time_env.sleep(timedelta(seconds=30))  # the retry comes after its backoff
        await update(handle, NoteCommand(actor="ana", body="no status change"))
        await update(handle, AssignCommand(actor="ana", assignee="ana"))
        recorded = await eventually(requests, lambda r: len(r) >= 3)
        await time_env.sleep(timedelta(minutes=2))
        recorded = receiver.recorded()
        # No worker will poll this queue again; a live ticket on it would stop time skipping.
        await handle.terminate("test cleanup")

    ticket_id = handle.id.removeprefix("ticket-")
    payloads = [json.loads(r.body) for r in recorded]
    assert [(p["event"], p["from_status"], p["to_status"]) for p in payloads] == [
        ("submitted", "draft", "new"),
        ("submitted", "draft", "new"),  # the retry after the 503
        ("started", "new", "in_progress"),
    ]
    assert payloads[2]["status_label"] == "Em análise"
    assert recorded[0].headers[DELIVERY_HEADER] == recorded[1].headers[DELIVERY_HEADER]
    for request in recorded:
        assert verify(request.body, SECRET, request.headers[SIGNATURE_HEADER])
        assert request.headers[DELIVERY_HEADER].startswith(f"{ticket_id}.")


async def test_a_ticket_opened_without_receivers_schedules_no_webhook_work(
    time_env: WorkflowEnvironment,
    worker_settings: Settings,
    http_client: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    # The worker has a receiver, but the ticket was opened where none was configured.
    settings = worker_settings.model_copy(
        update={"task_queue": QUEUE, "webhook_urls": (receiver.url,)}
    )
    worker = strict_worker(time_env.client, settings, http_client)
    async with worker:
        handle = await start_ticket(time_env.client, QUEUE, deliver_webhooks=False)
        result = await update(handle, AssignCommand(actor="ana", assignee="ana"))
        history = await handle.fetch_history()
        await handle.terminate("test cleanup")

    assert result.status == "in_progress"
    scheduled = [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]
    assert "deliver_webhook" not in scheduled
    assert receiver.recorded() == []
