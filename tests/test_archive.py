"""Closed tickets outlive Temporal's retention through the archive.

This server refuses retentions under an hour, so the end-to-end test removes the closed
workflow the way retention does: DeleteWorkflowExecution (history and visibility gone).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.archive import ArchiveFilters, ArchiveStore
from activities.mail_ledger import MailLedger
from activities.store import TicketStore
from tests.api.helpers import AGENT, SYSTEM, post, ticket_body
from tests.support import postgres as pg
from tests.support.temporal import eventually
from workflows.models import (
    BuiltInProfile,
    Links,
    Priority,
    Status,
    TicketView,
    workflow_id_for,
)
from workflows.ticket import TicketWorkflow


def closed_view(ticket_id: str, **overrides: Any) -> TicketView:
    now = datetime(2026, 11, 23, 13, tzinfo=UTC)
    fields: dict[str, Any] = {
        "id": ticket_id,
        "profile": BuiltInProfile.ENATE,
        "status": Status.CLOSED,
        "status_label": "Closed / Fechado",
        "title": "t",
        "description": "d",
        "category": "c",
        "priority": Priority.NORMAL,
        "nature": None,
        "requester": "r@example.com",
        "primary_contact": None,
        "contacts": (),
        "assignee": None,
        "needs_human": False,
        "highlighted": False,
        "wait": None,
        "resolution": None,
        "qualification": None,
        "survey": None,
        "links": Links(),
        "deadlines": (),
        "timeline": (),
        "created_at": now,
        "updated_at": now,
        "closed_at": now,
    }
    fields.update(overrides)
    return TicketView(**fields)


def test_store_is_idempotent_keeps_follow_ups_and_pages(tmp_path: Path) -> None:
    store = ArchiveStore.from_url(f"sqlite:///{tmp_path}/nested/archive.db")
    first = closed_view("A1")
    assert first.closed_at is not None
    store.put(first)
    assert store.add_follow_up("A1", "F1") is True
    store.put(first)  # a retried archive activity
    stored = store.get("A1")
    assert stored is not None and stored.links.follow_ups == ("F1",)
    assert store.add_follow_up("nope", "F2") is False
    for n in range(5):
        store.put(
            closed_view(f"B{n}", category="billing", closed_at=first.closed_at + timedelta(hours=n))
        )
    page = store.list(ArchiveFilters(category="billing"), offset=0, limit=3)
    assert [v.id for v in page] == ["B4", "B3", "B2"]  # newest first
    assert [v.id for v in store.list(ArchiveFilters(category="billing"), offset=3, limit=3)] == [
        "B1",
        "B0",
    ]
    with pytest.raises(ValueError, match="only closed tickets"):
        store.put(closed_view("C1", status=Status.RESOLVED))


def test_archiving_goes_on_while_a_list_is_being_read(tmp_path: Path) -> None:
    store = ArchiveStore.from_url(f"sqlite:///{tmp_path}/archive.db")
    store.put(closed_view("R1"))
    # The API paging through closed tickets, in the middle of its read transaction.
    reader = sqlite3.connect(tmp_path / "archive.db", isolation_level=None)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM archived_tickets").fetchone() == (1,)
        started = time.monotonic()
        store.put(closed_view("R2"))  # a closing ticket's archive write
        assert time.monotonic() - started < 1.0
        reader.execute("COMMIT")
    finally:
        reader.close()
    assert store.get("R2") is not None


def test_processes_starting_together_create_the_tables_once(database_url: str) -> None:
    """API, worker and mail listener each create the tables on their first use; a burst of
    mail right after they start must not fail because another process created them first.
    Each thread here has engines of its own, as each process has."""
    starters = 8
    together = threading.Barrier(starters)

    def first_use(n: int) -> None:
        archive = ArchiveStore.from_url(database_url)
        ledger = MailLedger(archive)
        store = TicketStore.from_url(database_url)
        together.wait()
        assert ledger.routed(f"<first-{n}@example.com>") is None
        assert ledger.record(
            f"<first-{n}@example.com>",
            sender="c@example.com",
            ticket_id=None,
            outcome="bulk",
            at=datetime.now(UTC),
        )
        assert store.get(f"T{n}") is None
        assert archive.get(f"T{n}") is None

    with ThreadPoolExecutor(starters) as pool:
        list(pool.map(first_use, range(starters)))


def test_a_profile_of_the_longest_allowed_name_is_archived(database_url: str) -> None:
    """Profile names may be 40 characters long; the archive keeps every one of them."""
    store = ArchiveStore.from_url(database_url)
    longest = "p" + "-" * 38 + "x"
    store.put(closed_view("L1", profile=longest))
    stored = store.get("L1")
    assert stored is not None and stored.profile == longest
    assert [v.id for v in store.list(ArchiveFilters(), offset=0, limit=5)] == ["L1"]


def test_an_archive_made_for_shorter_profile_names_is_widened(postgres: pg.Postgres) -> None:
    """A PostgreSQL archive created when profile names had at most 16 characters takes a
    40-character one after the upgrade, its rows kept."""
    url = postgres.create_database(f"widen_{os.getpid()}")
    ArchiveStore.from_url(url).put(closed_view("OLD"))
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("ALTER TABLE archived_tickets ALTER COLUMN profile TYPE varchar(16)")
        )
    engine.dispose()
    upgraded = ArchiveStore.from_url(url)
    longest = "p" + "-" * 38 + "x"
    upgraded.put(closed_view("NEW", profile=longest))
    assert {v.id: v.profile for v in upgraded.list(ArchiveFilters(), offset=0, limit=5)} == {
        "NEW": longest,
        "OLD": BuiltInProfile.ENATE,
    }


async def forget(env: WorkflowEnvironment, ticket_id: str) -> None:
    """What retention does to a closed workflow: history and visibility deleted."""
    client = env.client
    await client.workflow_service.delete_workflow_execution(
        DeleteWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id_for(ticket_id)),
        )
    )

    async def gone() -> bool:
        try:
            await client.get_workflow_handle(workflow_id_for(ticket_id)).describe()
        except RPCError as error:
            return error.status is RPCStatusCode.NOT_FOUND
        return False

    await eventually(gone, bool, seconds=90)  # the server deletes through a delayed task (~35 s)


async def test_closed_ticket_is_read_listed_and_followed_up_after_its_history_is_gone(
    dev_env: WorkflowEnvironment, dev_api: httpx.AsyncClient
) -> None:
    category = f"archived-{datetime.now(UTC):%H%M%S%f}"
    ticket = await post(
        dev_api, "/tickets", ticket_body(profile="enate", category=category), expect=201
    )
    tid = ticket["id"]
    await post(dev_api, f"/tickets/{tid}/notes", {"body": "Spam from a bot"})
    closed = await post(dev_api, f"/tickets/{tid}/resolve", {"method": "spam"})
    assert closed["status"] == "closed"
    handle = dev_env.client.get_workflow_handle_for(TicketWorkflow.run, workflow_id_for(tid))
    final = await handle.result()  # completes only once the archive has the final view
    await forget(dev_env, tid)

    response = await dev_api.get(f"/tickets/{tid}", headers=AGENT)
    assert response.status_code == 200
    assert response.json() == final.model_dump(mode="json") == closed
    listing = (
        await dev_api.get(
            "/tickets", params={"status": "closed", "category": category}, headers=AGENT
        )
    ).json()
    assert [item["id"] for item in listing["items"]] == [tid]
    assert listing["items"][0]["closed_at"] is not None
    open_list = (await dev_api.get("/tickets", params={"category": category}, headers=AGENT)).json()
    assert open_list["items"] == []  # a list without status shows open tickets

    response = await dev_api.post(f"/tickets/{tid}/notes", json={"body": "late"}, headers=AGENT)
    assert response.status_code == 409 and response.json()["status"] == "closed"

    follow_up = await post(dev_api, f"/tickets/{tid}/follow-ups", expect=201)
    assert follow_up["links"]["follow_up_of"] == tid
    inbound = await post(
        dev_api,
        "/inbound/email",
        {
            "message_id": f"<late-{tid}@x>",
            "from": "cliente@example.com",
            "to": "s@t",
            "subject": f"Re: [#{tid}]",
        },
        headers=SYSTEM,
    )
    assert inbound["outcome"] == "follow_up"
    original = (await dev_api.get(f"/tickets/{tid}", headers=AGENT)).json()
    assert original["links"]["follow_ups"] == sorted([follow_up["id"], inbound["ticket_id"]])


async def test_archived_lists_page_with_signed_tokens(dev_api: httpx.AsyncClient) -> None:
    category = f"pages-{datetime.now(UTC):%H%M%S%f}"
    ids = set()
    for _ in range(3):
        ticket = await post(
            dev_api, "/tickets", ticket_body(profile="enate", category=category), expect=201
        )
        await post(dev_api, f"/tickets/{ticket['id']}/resolve", {"method": "unknown_sender"})
        ids.add(ticket["id"])

    async def archived() -> dict[str, Any]:
        response = await dev_api.get(
            "/tickets",
            params={"status": "closed", "category": category, "page_size": 2},
            headers=AGENT,
        )
        page: dict[str, Any] = response.json()
        return page

    first = await eventually(
        archived, lambda page: len(page["items"]) == 2 and page["next_page_token"]
    )
    second = (
        await dev_api.get(
            "/tickets",
            params={
                "status": "closed",
                "category": category,
                "page_size": 2,
                "page_token": first["next_page_token"],
            },
            headers=AGENT,
        )
    ).json()
    assert {i["id"] for i in first["items"]} | {i["id"] for i in second["items"]} == ids
    assert second["next_page_token"] is None
    forged = await dev_api.get(
        "/tickets", params={"status": "closed", "page_token": "YXJjaGl2ZTo5OQ=="}, headers=AGENT
    )
    assert forged.status_code == 422
