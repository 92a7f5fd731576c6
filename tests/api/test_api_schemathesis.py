"""A bounded schemathesis run against the API served by uvicorn on loopback: no 5xx.

The API process connects to the dev server; this test process runs its worker.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from tests.support.http import wait_until_ready
from tests.support.smtp import free_port

ROOT = Path(__file__).resolve().parents[2]
ST = Path(sys.executable).parent / "st"


async def test_fuzzing_the_schema_finds_no_server_error(
    dev_env: WorkflowEnvironment, dev_api: httpx.AsyncClient, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "TRAMITA_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TRAMITA_TASK_QUEUE": "tramita-dev-tests",
        "TRAMITA_API_RPC_TIMEOUT_SECONDS": "10",
        "TRAMITA_SMTP_PORT": str(free_port()),  # nothing listens: emails just retry
    }
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "api.main:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        cwd=ROOT,
        env=env,
    )
    try:
        await wait_until_ready(f"http://127.0.0.1:{port}", server, seconds=20)
        agent = await fuzz(port, tmp_path / "agent", "dev-agent-key", seconds=60)
        system = await fuzz(
            port,
            tmp_path / "system",
            "dev-system-key",
            seconds=20,
            only=r"^/(inbound|releases)/",
        )
        # A hostile customer: every route with the requester's key.
        requester = await fuzz(port, tmp_path / "requester", "dev-requester-key", seconds=20)
        assert agent > 500 and system > 100 and requester > 100, (agent, system, requester)
    finally:
        server.terminate()
        await server.wait()


SUMMARY = re.compile(r"Test cases:\s+(\d+) generated, (\d+) passed")


async def fuzz(port: int, workdir: Path, key: str, *, seconds: int, only: str | None = None) -> int:
    """One time-bounded run; fails on any 5xx. Returns how many cases ran."""
    await asyncio.to_thread(workdir.mkdir)
    selection = ["--include-path-regex", only] if only else []
    run = await asyncio.create_subprocess_exec(
        str(ST),
        "run",
        f"http://127.0.0.1:{port}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--header",
        f"Authorization: Bearer {key}",
        "--phases",
        "examples,fuzzing",
        "--seed",
        "20261122",
        "--workers",
        "2",
        "--request-timeout",
        "30",
        "--max-time",
        str(seconds),
        "--report-dir",
        str(workdir),
        *selection,
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={
            **os.environ,
            "NO_COLOR": "1",
            "PYTHONPATH": str(ROOT),
            "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks",
        },
    )
    output, _ = await run.communicate()
    text = output.decode(errors="replace")
    assert run.returncode == 0, text[-6000:]
    summary = SUMMARY.search(text)
    assert summary is not None, text[-3000:]
    generated, passed = int(summary[1]), int(summary[2])
    assert generated == passed, text[-6000:]
    return generated
