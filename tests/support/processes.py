"""Tramita's own processes started for a test, as an operator would start them."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.support.http import wait_until_ready
from tests.support.smtp import free_port

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def api_process(
    env: WorkflowEnvironment, stderr: int, settings: Mapping[str, str] = {}
) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """``python -m api`` against ``env``, once it answers; killed if still running after."""
    port = free_port()
    environment = {
        **os.environ,
        "TRAMITA_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "TRAMITA_API_PORT": str(port),
        **settings,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api", cwd=ROOT, env=environment, stderr=stderr
    )
    try:
        await wait_until_ready(f"http://127.0.0.1:{port}", process, seconds=20)
        yield process, port
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
