"""Operations: JSON logs, Prometheus metrics of API and worker, graceful API shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from config import DEVELOPMENT_SECRET_KEY, Settings
from observability import configure_logging, worker_runtime
from tests.api.helpers import AGENT
from tests.support.processes import api_process
from tests.support.smtp import free_port
from tests.support.temporal import start_ticket, strict_worker, update
from web import links
from workflows.messages import NoteCommand

ROOT = Path(__file__).resolve().parent.parent


def test_json_logs_carry_the_extra_fields(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging(Settings(log_format="json"))
        logging.getLogger("tramita.test").info(
            "email sent", extra={"ticket_id": "T1", "attempt": 2}
        )
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    entry = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert entry["message"] == "email sent" and entry["level"] == "INFO"
    assert (entry["ticket_id"], entry["attempt"], entry["logger"]) == ("T1", 2, "tramita.test")


async def test_api_metrics_count_requests_by_route_and_status(api: httpx.AsyncClient) -> None:
    await api.get("/tickets/no-such-ticket", headers=AGENT)
    body = (await api.get("/metrics")).text
    assert (
        'tramita_http_requests_total{method="GET",route="/tickets/{ticket_id}",status="404"}'
        in body
    )
    assert "tramita_http_request_duration_seconds_bucket" in body
    assert "no-such-ticket" not in body  # labelled by template, never by raw path


async def test_worker_serves_temporal_metrics_for_prometheus(
    time_env: WorkflowEnvironment, worker_settings: Settings, http_client: httpx.AsyncClient
) -> None:
    port = free_port()
    settings = worker_settings.model_copy(
        update={
            "worker_metrics_address": f"127.0.0.1:{port}",
            "task_queue": "tramita-metrics-tests",
        }
    )
    runtime = worker_runtime(settings)
    assert runtime is not None
    client = await Client.connect(
        time_env.client.service_client.config.target_host,
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )
    async with strict_worker(client, settings, http_client):
        handle = await start_ticket(client, settings.task_queue)
        await update(handle, NoteCommand(actor="ana", body="metrics"))
        body = (await http_client.get(f"http://127.0.0.1:{port}/metrics")).text
        await handle.terminate("test done")
    assert "temporal_workflow_task_execution_latency" in body or "temporal_request" in body
    assert 'task_queue="tramita-metrics-tests"' in body
    assert worker_runtime(Settings()) is None  # off unless configured


async def test_api_process_logs_json_and_stops_gracefully(time_env: WorkflowEnvironment) -> None:
    json_logs = {"TRAMITA_LOG_FORMAT": "json"}
    async with api_process(time_env, asyncio.subprocess.PIPE, json_logs) as (process, _):
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert process.stderr is not None
            output = (await process.stderr.read()).decode()
            # uvicorn shuts down, then re-raises the signal: the conventional exit status.
            assert await process.wait() in (0, -signal.SIGTERM), output
    entries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    messages = [entry["message"] for entry in entries]
    assert any("connected to Temporal" in m for m in messages), output
    assert any("Application startup complete" in m for m in messages), output
    assert any("Application shutdown complete" in m for m in messages), output
    assert not any("color_message" in entry for entry in entries)
    assert len(entries) == len(output.splitlines()), "every line is JSON"


async def test_api_keeps_an_idle_connection_open_past_uvicorns_five_seconds(
    time_env: WorkflowEnvironment,
) -> None:
    async with api_process(time_env, asyncio.subprocess.DEVNULL) as (_, port):
        request = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for pause in (0.0, 6.0):  # a client, or a balancer, idle between two requests
                await asyncio.sleep(pause)
                writer.write(request)
                await writer.drain()
                async with asyncio.timeout(10):
                    status = await reader.readline()
                    headers = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
                    length = int(headers.split("content-length:")[1].split("\r\n")[0])
                    await reader.readexactly(length)
                assert status.startswith(b"HTTP/1.1 200"), status
        finally:
            writer.close()


async def test_logs_name_no_customer_token_and_no_webhook_url(
    time_env: WorkflowEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    """A customer page's address is its credential, and webhook URLs carry tokens: the
    API's access log and the HTTP client's lines keep neither."""
    token = links.sign(DEVELOPMENT_SECRET_KEY, "abc123", "cliente@example.com")
    async with api_process(time_env, asyncio.subprocess.PIPE) as (process, port):
        async with httpx.AsyncClient(timeout=10) as client:
            page = await client.get(f"http://127.0.0.1:{port}/c/{token}")
        assert page.status_code == 404  # no such ticket; the line is logged all the same
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert process.stderr is not None
            output = (await process.stderr.read()).decode()
            await process.wait()
    assert "GET /c/[token]" in output, output
    assert token not in output

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging(Settings())
        app = create_app(Settings(), client=None)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://hooks.example"
        ) as client:
            await client.post("/deliver?token=s3cr3t-hook-token", json={})
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert "s3cr3t-hook-token" not in capsys.readouterr().err
