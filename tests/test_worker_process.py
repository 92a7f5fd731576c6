"""``python worker.py`` against a real server: starts, polls, stops on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_worker_process_stops_gracefully(
    time_env: WorkflowEnvironment, stop_signal: signal.Signals
) -> None:
    address = time_env.client.service_client.config.target_host
    env = {
        **os.environ,
        "TRAMITA_TEMPORAL_ADDRESS": address,
        "TRAMITA_TASK_QUEUE": "tramita-process-test",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "worker.py"), cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            while "worker started" not in "".join(lines):
                line = await process.stderr.readline()
                assert line, f"worker exited early: {''.join(lines)}"
                lines.append(line.decode())
        process.send_signal(stop_signal)
        async with asyncio.timeout(30):
            rest = await process.stderr.read()
            status = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
    output = "".join(lines) + rest.decode()
    assert status == 0, output
    assert "worker stopped" in output
