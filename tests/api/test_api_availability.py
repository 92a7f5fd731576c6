"""503 when no worker answers, readiness that reflects Temporal, liveness."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from config import Settings
from tests.api.helpers import AGENT, ticket_body
from tests.support.temporal import eventually, strict_worker
from workflows.models import (
    workflow_id_for,
)


async def test_without_a_worker_create_is_kept_and_reads_answer_503(
    dev_env: WorkflowEnvironment, api_settings: Settings, http_client: httpx.AsyncClient
) -> None:
    # On the dev server: the time-skipping server stops skipping for good once a workflow
    # sits on a queue nobody polls.
    settings = api_settings.model_copy(
        update={"task_queue": "nobody-polls-yet", "api_rpc_timeout_seconds": 1.0}
    )
    app = create_app(settings, client=dev_env.client)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as api:
        # Starting a ticket needs Temporal, not a worker: it is accepted durably.
        category = "no-worker-category"
        created = await api.post(
            "/tickets", json=ticket_body(id="no-worker-1", category=category), headers=AGENT
        )
        assert created.status_code == 201, created.text

        unanswered = await api.get("/tickets/no-worker-1", headers=AGENT)
        assert unanswered.status_code == 503
        assert unanswered.json()["error"] == "unavailable"
        assert unanswered.headers["Retry-After"] == "5"

        # Started with its search attributes, it is listed with its status all the same.
        async def listed() -> list[dict[str, Any]]:
            page = await api.get("/tickets", params={"category": category}, headers=AGENT)
            assert page.status_code == 200, page.text
            items: list[dict[str, Any]] = page.json()["items"]
            return items

        rows = await eventually(listed, lambda items: bool(items))
        assert [(row["id"], row["status"], row["title"]) for row in rows] == [
            ("no-worker-1", "new", created.json()["title"])
        ]

        worker = strict_worker(dev_env.client, settings, http_client)
        async with worker:
            read = await api.get("/tickets/no-worker-1", headers=AGENT)
    # Other dev-server tests list tickets: leave none of this one's behind.
    await dev_env.client.get_workflow_handle(workflow_id_for("no-worker-1")).terminate("cleanup")
    assert read.status_code == 200
    assert read.json() == created.json()


async def test_readiness_follows_temporal(
    time_env: WorkflowEnvironment, api_settings: Settings
) -> None:
    ready = create_app(api_settings, client=time_env.client)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=ready), base_url="http://t"
    ) as api:
        assert (await api.get("/readyz")).json() == {"status": "ok", "detail": None}
        assert (await api.get("/healthz")).status_code == 200

    nowhere = api_settings.model_copy(update={"temporal_address": "127.0.0.1:1"})
    unready = create_app(nowhere)
    async with (
        unready.router.lifespan_context(unready),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=unready), base_url="http://t") as api,
    ):
        response = await api.get("/readyz")
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"
        assert (await api.get("/healthz")).status_code == 200
        response = await api.get("/tickets/abc", headers=AGENT)
        assert response.status_code == 503


async def test_lifespan_connects_when_temporal_is_there(
    time_env: WorkflowEnvironment, api_settings: Settings
) -> None:
    address = time_env.client.service_client.config.target_host
    app = create_app(api_settings.model_copy(update={"temporal_address": address}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
    ):
        statuses = []
        for _ in range(100):
            statuses.append((await api.get("/readyz")).status_code)
            if statuses[-1] == 200:
                break
            await asyncio.sleep(0.05)
        assert statuses[-1] == 200, statuses
