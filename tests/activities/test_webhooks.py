"""Signed webhooks for status changes, delivered to a real receiver on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.testing import WorkflowEnvironment

from activities.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, redacted, sign, verify
from config import Settings
from tests.support.http import Receiver, Recorded
from tests.support.temporal import eventually, start_ticket, strict_worker, update
from workflows.messages import AssignCommand, NoteCommand

SECRET = "s3cr3t-for-tests"
QUEUE = "tramita-webhook-tests"


async def pending_activities(env: WorkflowEnvironment, workflow_id: str) -> list[Any]:
    response = await env.client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=env.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
        )
    )
    return [p for p in response.pending_activities if p.last_failure.message]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(fail_first=1)
    server.start()
    yield server
    server.stop()


def test_the_signature_covers_a_timestamp_and_the_body() -> None:
    body = b'{"ticket_id":"1"}'
    now = int(time.time())
    signature = sign(body, SECRET, now)
    assert signature.startswith(f"t={now},v1=") and len(signature.split("v1=")[1]) == 64
    assert verify(body, SECRET, signature)
    assert not verify(body + b" ", SECRET, signature)
    assert not verify(body, "other", signature)
    forged_time = signature.replace(f"t={now}", f"t={now + 1}")
    assert not verify(body, SECRET, forged_time)
    # A delivery captured and replayed ten minutes later is refused by its time.
    assert not verify(body, SECRET, signature, now=now + 600)
    assert verify(body, SECRET, signature, now=now + 60)


def test_urls_are_named_without_their_path_or_query() -> None:
    assert redacted("https://hooks.example.com/T0KEN/abc?key=s3cret") == (
        "https://hooks.example.com/…"
    )
    assert redacted("http://127.0.0.1:8080") == "http://127.0.0.1:8080"


async def test_status_changes_reach_the_receiver_signed_and_retried(
    time_env: WorkflowEnvironment,
    worker_settings: Settings,
    http_client: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    # A receiver URL with a token in it, as chat services hand out.
    url_with_token = f"{receiver.url}/T0KEN-in-path?key=T0KEN-in-query"
    settings = worker_settings.model_copy(
        update={
            "task_queue": QUEUE,
            "webhook_urls": (url_with_token,),
            "webhook_secret": SecretStr(SECRET),
        }
    )
    worker = strict_worker(time_env.client, settings, http_client)
    async with worker:
        handle = await start_ticket(time_env.client, QUEUE)

        async def requests() -> list[Recorded]:
            return receiver.recorded()

        await eventually(requests, lambda r: len(r) >= 1)  # "submitted", refused once with 503
        # The refused attempt is on record in Temporal (the Web UI shows it): by host only.
        pending = await eventually(
            lambda: pending_activities(time_env, handle.id), lambda found: bool(found)
        )
        failure = pending[0].last_failure.message
        assert "127.0.0.1" in failure and "T0KEN" not in failure, failure
        assert "T0KEN" not in str(pending[0].heartbeat_details)
        await time_env.sleep(timedelta(seconds=30))  # the retry comes after its backoff
        await update(handle, NoteCommand(actor="ana", body="no status change"))
        await update(handle, AssignCommand(actor="ana", assignee="ana"))
        recorded = await eventually(requests, lambda r: len(r) >= 3)
        await time_env.sleep(timedelta(minutes=2))
        recorded = receiver.recorded()
        history = await handle.fetch_history()
        # No worker will poll this queue again; a live ticket on it would stop time skipping.
        await handle.terminate("test cleanup")
    assert "T0KEN" not in history.to_json()

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
