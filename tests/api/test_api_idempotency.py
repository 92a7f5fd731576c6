"""An Idempotency-Key is its caller's (security finding 1), and a retry is always safe.

Before: the key was the Update id as given, and Temporal answers a repeated id with the
first answer before any check runs, so a requester replaying an agent's key read
another customer's ticket, internal notes included; release publication always used
``release:<version>``; and a retry after Temporal refused the first attempt kept
failing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.main import create_app
from config import Settings
from tests.api.helpers import AGENT, REQUESTER, create, post
from tests.support.temporal import strict_worker

SECRET = "nota interna: a senha do ambiente de testes"


async def test_another_callers_key_replays_nothing(api: httpx.AsyncClient) -> None:
    theirs = await create(api, requester="outro@example.com", primary_contact="outro@example.com")
    keyed = {**AGENT, "Idempotency-Key": "note-1"}
    noted = await api.post(f"/tickets/{theirs['id']}/notes", json={"body": SECRET}, headers=keyed)
    assert noted.status_code == 200
    stolen = {**REQUESTER, "Idempotency-Key": "note-1"}
    for route, body in (("replies", {"body": "oi"}), ("survey", {"score": 5})):
        answer = await api.post(f"/tickets/{theirs['id']}/{route}", json=body, headers=stolen)
        assert answer.status_code == 404, answer.text
        assert SECRET not in answer.text and theirs["title"] not in answer.text


async def test_a_key_on_one_command_does_not_answer_another(api: httpx.AsyncClient) -> None:
    ticket = await create(api, profile="enate")
    keyed = {**AGENT, "Idempotency-Key": "same-key"}
    await api.post(f"/tickets/{ticket['id']}/notes", json={"body": "n"}, headers=keyed)
    resolved = await api.post(
        f"/tickets/{ticket['id']}/resolve", json={"method": "rejected"}, headers=keyed
    )
    assert resolved.status_code == 422, "not the note's answer, replayed"
    current = (await api.get(f"/tickets/{ticket['id']}", headers=AGENT)).json()
    assert current["status"] != "resolved"


async def test_a_requesters_key_never_collides_with_a_release(dev_api: httpx.AsyncClient) -> None:
    version = f"9.1-{id(dev_api)}"
    ticket = await create(dev_api)
    await post(dev_api, f"/tickets/{ticket['id']}/assign", {"assignee": "ana"})
    await post(dev_api, f"/tickets/{ticket['id']}/wait", {"reason": "release", "version": version})
    reply = await dev_api.post(
        f"/tickets/{ticket['id']}/replies",
        json={"body": "Alguma previsão?"},
        headers={**REQUESTER, "Idempotency-Key": f"release:{version}"},
    )
    assert reply.status_code == 200
    moved: list[str] = []
    for _ in range(100):  # visibility catches up with the wait
        published = await dev_api.post(
            f"/releases/{version}/publish", headers={"Authorization": "Bearer dev-system-key"}
        )
        moved += published.json()["ticket_ids"]
        if moved:
            break
        await asyncio.sleep(0.1)
    assert moved == [ticket["id"]]
    view = (await dev_api.get(f"/tickets/{ticket['id']}", headers=AGENT)).json()
    assert view["status"] == "resolved", "it moved, as the publication said"


@workflow.defn(name="TicketWorkflow", sandboxed=False)  # nothing to guard: it only fails
class BrokenDeploy:
    """A worker with a broken build: every workflow task of a ticket fails."""

    @workflow.run
    async def run(self, ticket: dict[str, Any]) -> None:
        raise RuntimeError("a broken deploy")


@pytest.fixture
async def broken_deploy_api(
    dev_env: WorkflowEnvironment, api_settings: Settings
) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    settings = api_settings.model_copy(update={"task_queue": "tramita-broken-deploy"})
    app = create_app(settings, client=dev_env.client)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://tramita.test", timeout=60
    ) as client:
        yield client, settings


async def test_a_retry_with_the_same_key_succeeds_once_the_worker_is_fixed(
    dev_env: WorkflowEnvironment,
    broken_deploy_api: tuple[httpx.AsyncClient, Settings],
    http_client: httpx.AsyncClient,
) -> None:
    api, settings = broken_deploy_api
    ticket = await create(api)
    keyed = {**AGENT, "Idempotency-Key": "note-while-broken"}
    async with Worker(dev_env.client, task_queue=settings.task_queue, workflows=[BrokenDeploy]):
        await asyncio.sleep(1.5)  # its workflow task fails, again and again
        refused = await api.post(
            f"/tickets/{ticket['id']}/notes", json={"body": "Anotação"}, headers=keyed
        )
    assert refused.status_code == 503, refused.text
    assert refused.json()["retryable"] is True
    assert int(refused.headers["Retry-After"]) > 0

    async with strict_worker(dev_env.client, settings, http_client):
        for _ in range(60):
            retried = await api.post(
                f"/tickets/{ticket['id']}/notes", json={"body": "Anotação"}, headers=keyed
            )
            if retried.status_code == 200:
                break
            assert retried.json()["retryable"] is True
            await asyncio.sleep(0.5)
        assert retried.status_code == 200, retried.text
        again = await api.post(
            f"/tickets/{ticket['id']}/notes", json={"body": "Anotação"}, headers=keyed
        )
        assert again.json() == retried.json()
        notes = [
            e
            for e in retried.json()["timeline"]
            if e["type"] == "note" and e["data"]["body"] == "Anotação"
        ]
        assert len(notes) == 1, "applied once"
        await dev_env.client.get_workflow_handle(f"ticket-{ticket['id']}").terminate("done")
