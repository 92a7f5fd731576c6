"""A command declared in the core reaches every place that must know it.

Each command of ``workflows.commands.SPECS`` must reach the workflow as an Update (read
as its own model) and a Signal, its route in the API (or a documented other way in), and a
row in both transition tables; a message between tickets has only its Signal. A new
command missing any of these fails here.
"""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from api.routes.commands import ROUTED_ELSEWHERE, ROUTES, body_model
from config import Settings
from tests.support.temporal import start_ticket
from tests.workflows.test_lifecycle_table import CELLS, SAMPLES
from workflows.commands import BY_NAME, SPECS
from workflows.messages import NoteCommand
from workflows.models import BuiltInProfile, Command, CommandResult, DeadlineKind, EventType
from workflows.policy import PROFILES
from workflows.ticket import TicketWorkflow
from workflows.timers import LABEL_KEYS, TIMERS


@pytest.mark.usefixtures("time_worker")
async def test_every_command_reaches_the_ticket_by_its_name(
    time_env: WorkflowEnvironment, worker_settings: Settings
) -> None:
    """Each command is an Update read as its own model (a body that fits no model is
    refused naming it), a message between tickets is no Update, and any command also
    arrives as a Signal, which never fails the ticket."""
    handle = await start_ticket(time_env.client, worker_settings.task_queue)
    misfit = {"actor": "ana", "not_a_field": 1}
    for spec in SPECS:
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(spec.name, misfit, result_type=CommandResult)
        cause = refused.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "invalid_command"
        expected = "is not a command" if spec.internal else "the arguments do not fit"
        assert expected in cause.message, (spec.name, cause.message)
    with pytest.raises(WorkflowUpdateFailedError) as unknown:
        await handle.execute_update("escalate", misfit, result_type=CommandResult)
    assert "'escalate' is not a command of a ticket" in str(unknown.value.cause)

    await handle.signal("note", misfit)  # unreadable: dropped
    await handle.signal("escalate", misfit)  # no such command: dropped
    await handle.signal("note", NoteCommand(actor="ana", body="by Signal"))
    view = await handle.query(TicketWorkflow.view)
    notes = [e for e in view.timeline if e.type is EventType.NOTE]
    assert [n.data.get("body") for n in notes][-1] == "by Signal"


def test_every_command_someone_sends_has_a_route() -> None:
    routed = {route.spec.name for route in ROUTES}
    for spec in SPECS:
        if spec.internal:
            assert spec.name not in routed
        else:
            assert spec.name in routed | ROUTED_ELSEWHERE, f"{spec.name} has no route"
    served = create_app(Settings()).openapi()["paths"]
    paths = {(method.upper(), path) for path, item in served.items() for method in item}
    for route in ROUTES:
        assert ("POST", f"/tickets/{{ticket_id}}/{route.path}") in paths
    assert ("PATCH", "/tickets/{ticket_id}") in paths  # edit
    assert ("POST", "/releases/{version}/publish") in paths  # release_published


def test_every_command_has_a_row_in_both_transition_tables() -> None:
    assert set(SAMPLES) == set(BY_NAME)
    for profile in BuiltInProfile:
        assert {command for p, _, command, _ in CELLS if p is profile} == set(BY_NAME)


def test_route_bodies_are_the_commands_arguments_without_what_tramita_fills() -> None:
    for route in ROUTES:
        model: type[Command] = route.spec.model
        body = body_model(model)
        hidden = model.ENVELOPE | model.INTERNAL_FIELDS
        assert set(body.model_fields) == set(model.model_fields) - hidden
        for name, field in body.model_fields.items():
            assert field.annotation == model.model_fields[name].annotation
        assert not set(route.fixed) - set(model.model_fields)


def test_every_deadline_kind_is_one_timer_with_labels_in_both_profiles() -> None:
    kinds = [timer.kind for timer in TIMERS]
    assert sorted(kinds) == sorted(DeadlineKind) and len(kinds) == len(set(kinds))
    for policy in PROFILES.values():
        assert set(LABEL_KEYS) <= set(policy.deadline_labels)
