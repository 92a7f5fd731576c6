"""The ticket's rules run inside Temporal's workflow sandbox; only data and I/O pass
through it.

The sandbox loads a workflow's modules afresh for every workflow it runs, and inside it
reading the clock, the network or a module's mutable state fails the workflow task: the
guard that keeps a decision replayable. Models, activities and zone objects pass through
(built once per worker). This loads the ticket exactly as the worker does for each
ticket and looks at which module objects it got.
"""

from __future__ import annotations

import sys
import types

import temporalio.workflow
from temporalio.worker.workflow_sandbox import SandboxRestrictions
from temporalio.worker.workflow_sandbox._importer import Importer
from temporalio.worker.workflow_sandbox._restrictions import RestrictionContext

import workflows.ticket  # noqa: F401  (loaded outside first, as in the worker)

RULES = {
    "workflows.ticket",
    "workflows.lifecycle",
    "workflows.commands",
    "workflows.transaction",
    "workflows.timers",
    "workflows.audiences",
    "workflows.texts",
    "workflows.calendar",
    "workflows.sla",
    "workflows.search",
    "workflows.addresses",
}
DATA = {"workflows.models", "workflows.messages", "workflows.records", "workflows.zones"}


def load_in_sandbox() -> dict[str, types.ModuleType]:
    importer = Importer(
        SandboxRestrictions.default, RestrictionContext(), workflow_module_name="workflows.ticket"
    )
    scope = {"__file__": "workflow_sandbox.py", "importer": importer}
    temporalio.workflow.unsafe._set_in_sandbox(True)
    try:
        exec(
            "with importer.applied():\n  from workflows.ticket import TicketWorkflow\n",
            scope,
            scope,
        )
    finally:
        temporalio.workflow.unsafe._set_in_sandbox(False)
    return importer.new_modules


def test_the_rules_load_inside_the_sandbox_and_only_data_passes_through() -> None:
    loaded = load_in_sandbox()
    inside = {name for name, module in loaded.items() if module is not sys.modules.get(name)}
    passed = {name for name, module in loaded.items() if module is sys.modules.get(name)}
    assert inside >= RULES, f"rules passed through the sandbox: {sorted(RULES & passed)}"
    assert passed >= DATA, f"data loaded per ticket: {sorted(DATA & inside)}"
    tramita = {name for name in inside if name.split(".")[0] in {"workflows", "activities"}}
    assert tramita <= RULES | {"workflows"}, f"unexpected modules inside: {tramita - RULES}"


def test_each_ticket_gets_its_own_rules() -> None:
    # A module's state cannot leak from one ticket to the next.
    first, second = load_in_sandbox(), load_in_sandbox()
    assert first["workflows.lifecycle"] is not second["workflows.lifecycle"]
    assert first["workflows.models"] is second["workflows.models"]
