"""TicketWorkflow on the time-skipping test server: messages, visibility, effects."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.archive import ArchiveStore
from config import Settings
from tests.conftest import TEST_TASK_QUEUE
from tests.support.temporal import (
    FIELDS,
    command,
    events_of,
    eventually,
    search_attributes,
    signal,
    start_ticket,
    update,
)
from workflows.messages import (
    AssignCommand,
    NoteCommand,
    ReopenCommand,
    ResolveCommand,
    StartCommand,
    SubmitCommand,
    WaitCommand,
)
from workflows.models import (
    BuiltInProfile,
    EventType,
    ResolutionMethod,
    Status,
    TicketFields,
    TicketView,
    WaitReason,
)
from workflows.search import (
    TICKET_ASSIGNEE,
    TICKET_HIGHLIGHTED,
    TICKET_NEXT_DEADLINE,
    TICKET_PROFILE,
    TICKET_REQUESTER,
    TICKET_STATUS,
    TICKET_WAIT_REASON,
)
from workflows.ticket import TicketWorkflow

pytestmark = pytest.mark.usefixtures("time_worker")


async def test_update_answers_the_new_view(time_env: WorkflowEnvironment) -> None:
    handle = await start_ticket(time_env.client, TEST_TASK_QUEUE)
    view = await command(handle, AssignCommand(actor="sofia", assignee="ana"))
    assert view.status is Status.IN_PROGRESS
    assert view.assignee is not None and view.assignee.id == "ana"
    assert (await handle.query(TicketWorkflow.view)).status is Status.IN_PROGRESS


async def test_illegal_update_is_rejected_with_the_reason(time_env: WorkflowEnvironment) -> None:
    handle = await start_ticket(time_env.client, TEST_TASK_QUEUE)
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await update(handle, ReopenCommand(actor="ana"))
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "invalid_transition"
    assert "'reopen' is not allowed while the ticket is new" in cause.message
    assert cause.details[0]["status"] == "new"
    assert (await handle.query(TicketWorkflow.view)).status is Status.NEW


async def test_submit_rejection_lists_missing_fields(time_env: WorkflowEnvironment) -> None:
    handle = await start_ticket(
        time_env.client, TEST_TASK_QUEUE, fields=TicketFields(title="only title"), submit=False
    )
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await update(handle, SubmitCommand(actor="ana"))
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "missing_fields"
    assert cause.details[0]["missing"] == [
        "description",
        "category",
        "primary_contact",
        "requester",
    ]


async def test_signal_of_the_same_name_applies_and_rejections_land_on_the_timeline(
    time_env: WorkflowEnvironment,
) -> None:
    handle = await start_ticket(time_env.client, TEST_TASK_QUEUE)
    await signal(handle, AssignCommand(actor="sofia", assignee="ana"))
    await signal(handle, ReopenCommand(actor="bruno"))
    await signal(handle, NoteCommand(actor="ana", body="still alive"))
    view = await eventually(
        lambda: handle.query(TicketWorkflow.view),
        lambda v: bool(events_of(v, EventType.NOTE)[1:]),
    )
    assert view.status is Status.IN_PROGRESS
    rejected = events_of(view, EventType.REJECTED_COMMAND)
    assert rejected == [
        {
            "command": "reopen",
            "reason": rejected[0]["reason"],
            "code": "invalid_transition",
        }
    ]
    assert "not allowed while the ticket is in_progress" in str(rejected[0]["reason"])


async def test_search_attributes_and_summary_follow_the_ticket(
    time_env: WorkflowEnvironment,
) -> None:
    handle = await start_ticket(time_env.client, TEST_TASK_QUEUE, profile=BuiltInProfile.ENATE)
    await update(handle, AssignCommand(actor="sofia", assignee="bruno"))

    attributes = await eventually(
        lambda: search_attributes(time_env.client, handle.id),
        lambda sa: sa.get(TICKET_ASSIGNEE.name) == "bruno",
    )
    assert attributes[TICKET_STATUS.name] == "new"
    assert attributes[TICKET_PROFILE.name] == "enate"
    assert attributes[TICKET_REQUESTER.name] == FIELDS.requester
    assert TICKET_NEXT_DEADLINE.name not in attributes
    assert attributes[TICKET_HIGHLIGHTED.name] is False
    await update(handle, StartCommand(actor="bruno"))
    await update(
        handle,
        WaitCommand(
            actor="bruno",
            reason=WaitReason.FOLLOW_UP,
            until=await time_env.get_current_time() + timedelta(days=2),
        ),
    )
    attributes = await search_attributes(time_env.client, handle.id)
    assert attributes[TICKET_WAIT_REASON.name] == "follow_up"
    assert TICKET_NEXT_DEADLINE.name in attributes

    described = await handle.describe()
    assert await described.static_summary() == FIELDS.title


async def upserted(handle: WorkflowHandle[TicketWorkflow, TicketView]) -> list[set[str]]:
    """The attributes each upsert event of the ticket's history set or unset."""
    return [
        set(
            event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        )
        async for event in handle.fetch_history_events()
        if event.event_type == HistoryEventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    ]


async def test_ticket_started_listed_upserts_only_what_changes(
    time_env: WorkflowEnvironment,
) -> None:
    listed = await start_ticket(time_env.client, TEST_TASK_QUEUE, listed=True)
    unlisted = await start_ticket(time_env.client, TEST_TASK_QUEUE)
    for handle in (listed, unlisted):
        await update(handle, AssignCommand(actor="sofia", assignee="bruno"))

    # Listed from its start, the ticket's first upsert is the assignment's change alone.
    assert await upserted(listed) == [{TICKET_STATUS.name, TICKET_ASSIGNEE.name}]
    # Started bare (a child ticket, or one from before the API sent attributes), it
    # publishes them all in its first task, then the same change.
    first, then = await upserted(unlisted)
    assert {TICKET_STATUS.name, TICKET_PROFILE.name, TICKET_REQUESTER.name} <= first
    assert then == {TICKET_STATUS.name, TICKET_ASSIGNEE.name}
    assert await search_attributes(time_env.client, listed.id) == await search_attributes(
        time_env.client, unlisted.id
    )


@pytest.mark.parametrize("archive_locally", [True, False], ids=["current", "older_input"])
async def test_closed_ticket_is_archived_and_only_older_inputs_ask_the_patch(
    time_env: WorkflowEnvironment, worker_settings: Settings, archive_locally: bool
) -> None:
    handle = await start_ticket(
        time_env.client,
        TEST_TASK_QUEUE,
        profile=BuiltInProfile.ENATE,
        archive_locally=archive_locally,
        keep_store=False,  # the store's writes are tests/test_store.py's
    )
    # Enate closes spam at once: the ticket completes without waiting for any timer.
    await update(handle, ResolveCommand(actor="ana", method=ResolutionMethod.SPAM))
    closed = await handle.result()

    archived = await asyncio.to_thread(
        ArchiveStore.from_url(worker_settings.archive_url).get, closed.id
    )
    assert archived == closed
    history = [event async for event in handle.fetch_history_events()]
    markers = [
        event.marker_recorded_event_attributes.marker_name
        for event in history
        if event.event_type == HistoryEventType.EVENT_TYPE_MARKER_RECORDED
    ]
    patch_version_upserts = [
        event
        for event in history
        if event.event_type == HistoryEventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
        and "TemporalChangeVersion"
        in event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
    ]
    # The archive write is a local activity either way; a ticket whose input predates
    # ``archive_locally`` may have started before it existed, so it asks the patch.
    if archive_locally:
        assert markers == ["core_local_activity"]
        assert patch_version_upserts == []
    else:
        assert markers == ["core_patch", "core_local_activity"]
        assert len(patch_version_upserts) == 1
