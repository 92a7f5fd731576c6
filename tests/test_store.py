"""The ticket store: every ticket's current view in SQL, kept by the ticket itself.

On SQLite and on a real PostgreSQL: what a list asks is checked against an independent
filter and sort of the same views; a ticket driven by a random sequence of commands,
signals and timers reads the same in the store as in its workflow after every step; a
rebuild from Temporal and the archive after the store is emptied gives back the same
rows; and a standard lifecycle pays one history event per change for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.archive import ArchiveStore
from activities.store import PRIORITY_RANK, StoreQuery, TicketParties, TicketStore, tickets
from config import Settings
from maintenance import rebuild_store
from tests.support import postgres as pg
from tests.support.temporal import eventually, start_ticket, strict_worker
from tests.support.tickets import Driver, state_named
from tests.test_archive import closed_view
from tests.workflows.test_lifecycle_properties import COMMANDS, DELAYS
from workflows import lifecycle
from workflows.commands import spec_of
from workflows.messages import (
    AssignCommand,
    CustomerReplyCommand,
    NoteCommand,
    ResolveCommand,
    WaitCommand,
)
from workflows.models import (
    Assignee,
    BuiltInProfile,
    Command,
    CommandResult,
    EventType,
    Priority,
    ResolutionMethod,
    Status,
    TicketView,
    WaitReason,
)
from workflows.policy import policy_for
from workflows.ticket import TicketWorkflow

# ---------------------------------------------------------------- lists, against an oracle

PEOPLE = ["ana", "bruno", None]
STATES = ["draft", "new", "in_progress", "w_customer", "w_follow_up", "resolved", "closed"]


def varied_views(count: int, seed: int = 7) -> list[TicketView]:
    """Tickets of both profiles in every status (driven there through the pure core),
    with varied fields, assignees and times."""
    chance = random.Random(seed)
    views = []
    for number in range(count):
        profile = chance.choice(list(BuiltInProfile))
        state = state_named(profile, chance.choice(STATES))
        fields = state.fields.model_copy(
            update={
                "title": chance.choice(["Nota rejeitada", "Printer on fire", "Erro 500 na NF-e"]),
                "category": chance.choice(["fiscal", "hardware"]),
                "priority": chance.choice(list(Priority)),
                "requester": chance.choice(["Cliente@Example.com", "maria@empresa.com.br"]),
            }
        )
        person = chance.choice(PEOPLE)
        shift = timedelta(minutes=chance.randint(0, 5000))
        state = state.model_copy(
            update={
                "id": f"S{number:03d}",
                "fields": fields,
                "assignee": Assignee(id=person) if person else None,
                "created_at": state.created_at - shift,
                "updated_at": state.updated_at + timedelta(minutes=chance.randint(0, 5000)),
            }
        )
        views.append(lifecycle.view(state, policy_for(profile)))
    return views


def oracle(views: list[TicketView], query: StoreQuery) -> list[str]:
    def keep(view: TicketView) -> bool:
        assignee = view.assignee.id if view.assignee else None
        checks = [
            view.status is not Status.CLOSED
            if query.status is None
            else view.status is query.status,
            query.assignee is None or assignee == query.assignee,
            not query.unassigned or assignee is None,
            query.category is None or view.category == query.category,
            query.priority is None or view.priority is query.priority,
            query.requester is None or (view.requester or "").lower() == query.requester.lower(),
            query.text is None
            or all(
                word in f"{view.id} {view.title} {view.requester}".lower()
                for word in query.text.lower().split()
            ),
        ]
        return all(checks)

    def value(view: TicketView) -> Any:
        if query.sort == "next_deadline":
            return min((d.due_at for d in view.deadlines), default=None)
        if query.sort == "priority":
            return PRIORITY_RANK[view.priority]
        return getattr(view, query.sort)

    found = [v for v in views if keep(v)]
    present = sorted(
        (v for v in found if value(v) is not None),
        key=lambda v: (value(v), v.id),
        reverse=query.descending,
    )
    if query.descending:  # ties stay in id order, as the store pages them
        present = sorted(present, key=lambda v: v.id)
        present = sorted(present, key=value, reverse=True)
    absent = sorted((v for v in found if value(v) is None), key=lambda v: v.id)
    return [v.id for v in present + absent]


QUERIES = [
    StoreQuery(),
    StoreQuery(status=Status.WAITING, sort="next_deadline", descending=False),
    StoreQuery(sort="next_deadline", descending=True),
    StoreQuery(unassigned=True, sort="priority", descending=False),
    StoreQuery(assignee="bruno", sort="updated_at"),
    StoreQuery(status=Status.CLOSED, sort="created_at", descending=False),
    StoreQuery(category="fiscal", priority=Priority.URGENT),
    StoreQuery(requester="CLIENTE@example.com", sort="priority", descending=True),
    StoreQuery(text="NF-E", sort="created_at", descending=False),
    StoreQuery(text="s01"),
    StoreQuery(text="na  NF-E erro", sort="created_at"),
    StoreQuery(text="rejeitada nota"),
    StoreQuery(text="100%_"),
]


def test_lists_filter_sort_search_and_page_as_asked(database_url: str) -> None:
    views = varied_views(60)
    store = TicketStore.from_url(database_url)
    assert store.put_many(views) == len(views)
    statuses = {view.status for view in views}
    assert {Status.NEW, Status.IN_PROGRESS, Status.WAITING, Status.CLOSED} <= statuses
    for query in QUERIES:
        expected = oracle(views, query)
        pages = [store.list(query, offset=offset, limit=7) for offset in range(0, 70, 7)]
        got = [row.id for page in pages for row in page]
        assert got == expected, query


def test_listed_times_are_the_views_moments_in_utc(database_url: str) -> None:
    """SQLite keeps no offset: a row must not come back as a naive local time."""
    store = TicketStore.from_url(database_url)
    driver = Driver(BuiltInProfile.SUPPORT)
    driver.do(AssignCommand(actor="ana", assignee="ana"))
    view = lifecycle.view(driver.state, driver.policy)
    shifted = view.model_copy(
        update={"updated_at": view.updated_at.astimezone(ZoneInfo("America/Sao_Paulo"))}
    )
    store.put(shifted)
    (row,) = store.list(StoreQuery(), offset=0, limit=5)
    assert row.updated_at == view.updated_at and row.updated_at.utcoffset() == timedelta(0)
    assert row.created_at == view.created_at and row.created_at.tzinfo is not None


def test_an_older_view_never_overwrites_a_newer_one(database_url: str) -> None:
    store = TicketStore.from_url(database_url)
    driver = Driver(BuiltInProfile.SUPPORT)
    older = lifecycle.view(driver.state, driver.policy)
    driver.do(AssignCommand(actor="ana", assignee="ana"))
    newer = lifecycle.view(driver.state, driver.policy)
    assert store.put(newer) is True
    assert store.put(older) is False, "a late writer with an older view"
    assert store.get(newer.id) == newer
    assert store.put(newer) is True, "the same view again (a retried write) is harmless"
    assert store.count() == 1


def test_what_routing_reads_of_a_ticket_is_what_its_view_says(database_url: str) -> None:
    """Routing a message reads a ticket's status and customer side without its whole
    view; on either database it is the view's."""
    store = TicketStore.from_url(database_url)
    views = varied_views(24)
    with_contacts = views[0].model_copy(
        update={
            "primary_contact": "Contato <contato@empresa.com.br>",
            "contacts": ("a@x.com", "b@y.com"),
        }
    )
    for view in (with_contacts, *views[1:]):
        store.put(view)
        assert store.parties(view.id) == TicketParties.of(view)
    assert store.parties(with_contacts.id) == TicketParties(
        id=with_contacts.id,
        profile=str(with_contacts.profile),
        status=with_contacts.status,
        requester=with_contacts.requester,
        primary_contact="Contato <contato@empresa.com.br>",
        contacts=("a@x.com", "b@y.com"),
    )
    assert store.parties("nowhere") is None


def test_the_archive_brings_the_store_row_to_the_final_view(database_url: str) -> None:
    archive = ArchiveStore.from_url(database_url)
    store = TicketStore.from_url(database_url)
    view = closed_view("Z1", timeline=())
    archive.put(view)
    assert store.get("Z1") == view
    archive.add_follow_up("Z1", "Z2")
    stored = store.get("Z1")
    assert stored is not None and stored.links.follow_ups == ("Z2",)


# ---------------------------------------------------------------- kept by the workflow


Backend = tuple[Settings, TicketStore, ArchiveStore]


@pytest.fixture(scope="module")
async def backends(
    time_env: WorkflowEnvironment,
    worker_settings: Settings,
    http_client: httpx.AsyncClient,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[dict[str, Backend]]:
    """A worker for each database, each on a task queue of its own, alive for the whole
    module: a ticket left open by one test keeps its worker, so time can still skip."""
    urls = {"sqlite": f"sqlite:///{tmp_path_factory.mktemp('store')}/tramita.db"}
    if pg.AVAILABLE:
        cluster: pg.Postgres = request.getfixturevalue("postgres")
        urls["postgresql"] = cluster.create_database(f"store_{next(_queues)}")
    found: dict[str, Backend] = {}
    async with contextlib.AsyncExitStack() as stack:
        for name, url in urls.items():
            settings = worker_settings.model_copy(
                update={"archive_url": url, "task_queue": f"store-{name}-{next(_queues)}"}
            )
            worker: Worker = strict_worker(time_env.client, settings, http_client)
            await stack.enter_async_context(worker)
            found[name] = (settings, TicketStore.from_url(url), ArchiveStore.from_url(url))
        yield found


@pytest.fixture(params=["sqlite", "postgresql"])
def store_worker(backends: dict[str, Backend], request: pytest.FixtureRequest) -> Backend:
    if request.param not in backends:
        pytest.skip("PostgreSQL is not installed (make test installs it as root)")
    return backends[request.param]


_queues = itertools.count(1)


async def same_in_store_and_workflow(
    handle: WorkflowHandle[TicketWorkflow, TicketView], store: TicketStore
) -> TicketView:
    view = await handle.query(TicketWorkflow.view)
    stored = await asyncio.to_thread(store.get, view.id)
    assert stored == view, f"store and workflow differ after {view.timeline[-1].type}"
    return view


async def send(
    handle: WorkflowHandle[TicketWorkflow, TicketView], command: Command
) -> CommandResult | None:
    try:
        answer: CommandResult = await handle.execute_update(
            spec_of(command).name, command, result_type=CommandResult
        )
    except WorkflowUpdateFailedError:
        return None
    return answer


async def eventually_the_same(
    handle: WorkflowHandle[TicketWorkflow, TicketView], store: TicketStore
) -> TicketView:
    """After a Signal or a timer there is no answer to wait for: the ticket writes the
    store in the workflow task that took them."""
    for _ in range(100):
        view = await handle.query(TicketWorkflow.view)
        if await asyncio.to_thread(store.get, view.id) == view:
            return view
        await asyncio.sleep(0.05)
    return await same_in_store_and_workflow(handle, store)


@pytest.mark.parametrize("seed", [1, 2])
async def test_the_store_reads_as_the_workflow_after_every_command(
    time_env: WorkflowEnvironment,
    store_worker: Backend,
    seed: int,
) -> None:
    settings, store, _ = store_worker
    chance = random.Random(seed)
    for profile in BuiltInProfile:
        handle = await start_ticket(time_env.client, settings.task_queue, profile=profile)
        view = await same_in_store_and_workflow(handle, store)
        steps = 0
        while steps < 14 and view.status is not Status.CLOSED:
            roll = chance.random()
            if roll < 0.15:
                await time_env.sleep(chance.choice(DELAYS))
                view = await eventually_the_same(handle, store)
            elif roll < 0.25:
                await handle.signal("note", NoteCommand(actor="ana", body="by Signal"))
                view = await eventually_the_same(handle, store)
            else:
                command = chance.choice(COMMANDS)
                answer = None if spec_of(command).internal else await send(handle, command)
                if answer is None:
                    continue  # refused: nothing changed
                # An Update's answer comes once the store has its change: no waiting.
                stored = await asyncio.to_thread(store.get, handle.id.removeprefix("ticket-"))
                assert stored is not None and stored.timeline[-1].seq >= answer.seq
                # What the ticket did after answering (an effect's outcome) follows.
                view = await eventually_the_same(handle, store)
            steps += 1


async def test_an_updates_answer_is_already_in_the_store(
    time_env: WorkflowEnvironment, store_worker: Backend
) -> None:
    settings, store, _ = store_worker
    handle = await start_ticket(time_env.client, settings.task_queue)
    for command in (
        AssignCommand(actor="ana", assignee="ana"),
        WaitCommand(actor="ana", reason=WaitReason.CUSTOMER),
        CustomerReplyCommand(actor="cliente@example.com", body="Segue."),
    ):
        answer = await handle.execute_update(
            spec_of(command).name, command, result_type=CommandResult
        )
        assert answer.view is not None
        # Read at once, not eventually: the answer comes only once the store has it.
        assert await asyncio.to_thread(store.get, answer.view.id) == answer.view


async def test_a_standard_lifecycle_writes_the_store_once_per_change(
    time_env: WorkflowEnvironment, store_worker: Backend
) -> None:
    settings, store, archive = store_worker
    handle = await start_ticket(time_env.client, settings.task_queue)
    for command in (
        AssignCommand(actor="ana", assignee="ana"),
        WaitCommand(actor="ana", reason=WaitReason.CUSTOMER),
        CustomerReplyCommand(actor="cliente@example.com", body="Segue."),
        ResolveCommand(actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE),
    ):
        assert await send(handle, command)
    closed = await handle.result()  # the validation window runs out
    history = [event async for event in handle.fetch_history_events()]
    markers = [e for e in history if e.event_type == HistoryEventType.EVENT_TYPE_MARKER_RECORDED]
    reminders = sum(e.type is EventType.REMINDER_SENT for e in closed.timeline)
    assert reminders == 3, "the validation reminders at 1 hour, 2 and 5 business days"
    # One write for the opening, each command and each reminder; the archive writes the
    # closed row with the final view, in the same local activity as ever.
    assert len(markers) == 1 + 4 + reminders + 1
    assert await asyncio.to_thread(store.get, closed.id) == closed
    assert await asyncio.to_thread(archive.get, closed.id) == closed


@pytest.fixture(params=["sqlite", "postgresql"])
async def dev_backend(
    dev_env: WorkflowEnvironment,
    worker_settings: Settings,
    http_client: httpx.AsyncClient,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Backend]:
    """A worker of its own on the dev server (the rebuild lists tickets through
    visibility, which the time-skipping server lacks), with a database of its own."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/tramita.db"
    else:
        if not pg.AVAILABLE:
            pytest.skip("PostgreSQL is not installed (make test installs it as root)")
        cluster: pg.Postgres = request.getfixturevalue("postgres")
        url = cluster.create_database(f"rebuild_{next(_queues)}")
    settings = worker_settings.model_copy(
        update={"archive_url": url, "task_queue": f"rebuild-{next(_queues)}"}
    )
    async with strict_worker(dev_env.client, settings, http_client):
        yield settings, TicketStore.from_url(url), ArchiveStore.from_url(url)


async def test_a_rebuild_gives_back_the_same_rows(
    dev_env: WorkflowEnvironment, dev_backend: Backend
) -> None:
    settings, store, archive = dev_backend
    client = dev_env.client
    for profile in BuiltInProfile:
        handle = await start_ticket(client, settings.task_queue, profile=profile)
        await send(handle, AssignCommand(actor="ana", assignee="bruno"))
        closing = await start_ticket(client, settings.task_queue, profile=profile)
        await send(closing, AssignCommand(actor="ana", assignee="ana"))
        if profile is BuiltInProfile.ENATE:
            await send(closing, ResolveCommand(actor="ana", method=ResolutionMethod.SPAM))
            await closing.result()
    # A ticket closed so long ago that Temporal has forgotten it: only the archive has it.
    archive.put(closed_view("OLD1"))
    listed = f"WorkflowType = 'TicketWorkflow' AND TaskQueue = '{settings.task_queue}'"

    async def all_listed() -> int:
        return (await client.count_workflows(listed)).count

    await eventually(all_listed, lambda count: count == 4)  # visibility lags a little

    def rows() -> dict[str, dict[str, Any]]:
        with store.engine.connect() as connection:
            return {row.id: dict(row._mapping) for row in connection.execute(select(tickets))}

    before = await asyncio.to_thread(rows)
    assert len(before) == 5 and "OLD1" in before
    await asyncio.to_thread(store.clear)
    assert await asyncio.to_thread(store.count) == 0
    result = await rebuild_store(client, store, archive, task_queue=settings.task_queue)
    assert result.unreadable == ()
    assert (result.from_temporal, result.from_archive) == (4, 1)
    assert await asyncio.to_thread(rows) == before
