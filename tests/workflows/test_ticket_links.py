"""Tickets that talk to each other: split into child workflows, merge into another."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.conftest import TEST_TASK_QUEUE
from tests.support.temporal import command, events_of, eventually, fresh_id, start_ticket, update
from workflows.messages import MergeCommand, NoteCommand, ResolveCommand, SplitCommand, StartCommand
from workflows.models import (
    BuiltInProfile,
    EventType,
    NewTicket,
    ResolutionMethod,
    Status,
    workflow_id_for,
)
from workflows.ticket import TicketWorkflow

pytestmark = pytest.mark.usefixtures("time_worker")


async def test_split_resolves_the_parent_when_every_child_is_closed(
    time_env: WorkflowEnvironment,
) -> None:
    client = time_env.client
    parent = await start_ticket(client, TEST_TASK_QUEUE, profile=BuiltInProfile.ENATE)
    await update(parent, StartCommand(actor="ana"))
    view = await command(
        parent,
        SplitCommand(
            actor="ana",
            children=(NewTicket(title="Parte A"), NewTicket(title="Parte B")),
        ),
    )
    assert view.status_label == "Wait / Aguarde: Split into multiple tickets"
    first_id, second_id = view.links.children
    assert first_id == f"{view.id}-1"

    first = client.get_workflow_handle_for(TicketWorkflow.run, workflow_id_for(first_id))
    second = client.get_workflow_handle_for(TicketWorkflow.run, workflow_id_for(second_id))
    child = await eventually(
        lambda: first.query(TicketWorkflow.view), lambda v: v.status is Status.NEW
    )
    assert child.links.parent == view.id
    assert child.requester == view.requester  # inherited from the parent
    assert await (await first.describe()).static_summary() == "Parte A"

    await update(first, ResolveCommand(actor="ana", method=ResolutionMethod.SPAM))
    await eventually(
        lambda: parent.query(TicketWorkflow.view),
        lambda v: first_id in str(events_of(v, EventType.NOTE)),
    )
    assert (await parent.query(TicketWorkflow.view)).status is Status.WAITING

    await update(second, StartCommand(actor="bruno"))
    await update(
        second,
        ResolveCommand(actor="bruno", method=ResolutionMethod.CUSTOMER_RESPONSE, note="Feito"),
    )
    await time_env.sleep(timedelta(days=6))  # the child's feedback window ends, it closes
    assert (await second.result()).status is Status.CLOSED
    resolved = await eventually(
        lambda: parent.query(TicketWorkflow.view), lambda v: v.status is Status.RESOLVED
    )
    assert resolved.resolution is not None
    assert resolved.resolution.method is ResolutionMethod.SPLIT_COMPLETED


async def test_merge_moves_the_content_to_the_target(time_env: WorkflowEnvironment) -> None:
    client = time_env.client
    source = await start_ticket(client, TEST_TASK_QUEUE, profile=BuiltInProfile.ENATE)
    target = await start_ticket(client, TEST_TASK_QUEUE, profile=BuiltInProfile.ENATE)
    target_id = target.id.removeprefix("ticket-")
    await update(source, NoteCommand(actor="ana", body="Mesmo problema do outro"))
    view = await command(source, MergeCommand(actor="ana", into=target_id))
    assert view.status is Status.RESOLVED and view.links.merged_into == target_id
    merged = await eventually(
        lambda: target.query(TicketWorkflow.view), lambda v: bool(events_of(v, EventType.MERGED))
    )
    content = events_of(merged, EventType.MERGED)[0]
    assert content["from"] == view.id
    assert content["title"] == view.title
    assert "Mesmo problema do outro" in content["messages"]  # type: ignore[operator]
    assert merged.highlighted


async def test_merge_into_an_unknown_ticket_is_reported_on_the_source(
    time_env: WorkflowEnvironment,
) -> None:
    source = await start_ticket(time_env.client, TEST_TASK_QUEUE, profile=BuiltInProfile.ENATE)
    await update(source, MergeCommand(actor="ana", into="does-not-exist"))
    view = await eventually(
        lambda: source.query(TicketWorkflow.view),
        lambda v: any(
            "could not be told" in str(n.get("body")) for n in events_of(v, EventType.NOTE)
        ),
    )
    assert view.status is Status.RESOLVED


async def test_a_ticket_with_the_longest_id_still_splits_and_completes(
    time_env: WorkflowEnvironment,
) -> None:
    """Its children were ``<id>-1``: 66 characters, refused inside the workflow, the error
    lost and the parent stuck waiting for them (security finding 9)."""
    client = time_env.client
    longest = "L" + "x" * 59 + fresh_id("")[-4:]  # 64 characters, the most an id may have
    parent = await start_ticket(
        client, TEST_TASK_QUEUE, profile=BuiltInProfile.ENATE, ticket_id=longest
    )
    await update(parent, StartCommand(actor="ana"))
    view = await command(
        parent,
        SplitCommand(actor="ana", children=(NewTicket(title="A"), NewTicket(title="B"))),
    )
    assert all(len(child) <= 64 for child in view.links.children)
    assert len(set(view.links.children)) == 2
    for child_id in view.links.children:
        child = client.get_workflow_handle_for(TicketWorkflow.run, workflow_id_for(child_id))
        await eventually(
            lambda handle=child: handle.query(TicketWorkflow.view),  # type: ignore[misc]
            lambda v: v.status is Status.NEW,
        )
        await update(child, ResolveCommand(actor="ana", method=ResolutionMethod.SPAM))
    resolved = await eventually(
        lambda: parent.query(TicketWorkflow.view), lambda v: v.status is Status.RESOLVED
    )
    assert resolved.resolution is not None
    assert resolved.resolution.method is ResolutionMethod.SPLIT_COMPLETED
