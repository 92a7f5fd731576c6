"""Every recorded history replays with the current code: no nondeterminism."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.ticket import TicketWorkflow

ROOT = Path(__file__).parent / "histories"
# The current recordings, plus those kept from before each patched or input-decided
# change (in ``before_<patch id or field>/``), so every old branch still replays.
HISTORIES = sorted(ROOT.rglob("*.json"))


def test_histories_cover_both_profiles() -> None:
    names = {path.stem for path in ROOT.glob("*.json")}
    assert any(name.startswith("support_") for name in names)
    assert any(name.startswith("enate_") for name in names)


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: str(p.relative_to(ROOT)))
async def test_history_replays(path: Path) -> None:
    raw = await asyncio.to_thread(path.read_text)
    events = json.loads(raw)["events"]
    assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED", (
        "record whole lifecycles"
    )
    history = WorkflowHistory.from_json(f"ticket-{path.stem}", raw)
    replayer = Replayer(workflows=[TicketWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
