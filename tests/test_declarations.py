"""A command declared in the core reaches every place that must know it.

Each command of ``workflows.commands.SPECS`` must have its Update (with a validator) and
its Signal on the workflow, its route in the API (or a documented other way in), and a
row in both transition tables; a message between tickets has only its Signal. A new
command missing any of these fails here.
"""

from __future__ import annotations

from temporalio.workflow import _Definition

from api.main import create_app
from api.routes.commands import ROUTED_ELSEWHERE, ROUTES, body_model
from config import Settings
from tests.workflows.test_lifecycle_table import CELLS, SAMPLES
from workflows.commands import BY_NAME, SPECS
from workflows.models import Command, DeadlineKind, ProfileName
from workflows.policy import PROFILES
from workflows.ticket import TicketWorkflow
from workflows.timers import LABEL_KEYS, TIMERS


def test_every_command_has_its_update_validator_and_signal() -> None:
    definition = _Definition.must_from_class(TicketWorkflow)
    for spec in SPECS:
        signal = definition.signals.get(spec.name)
        assert signal is not None, f"{spec.name} has no Signal"
        assert signal.arg_types == [spec.model], f"{spec.name}'s Signal decodes another type"
        update = definition.updates.get(spec.name)
        if spec.internal:
            assert update is None, f"{spec.name} is a message between tickets: no Update"
            continue
        assert update is not None, f"{spec.name} has no Update"
        assert update.validator is not None, f"{spec.name}'s Update has no validator"
        assert update.arg_types == [spec.model]


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
    for profile in ProfileName:
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
