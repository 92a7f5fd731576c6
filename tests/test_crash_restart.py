"""Crashes and restarts lose nothing and double nothing.

A real dev server on a SQLite file (restartable), the real ``worker.py`` process (killed
with SIGKILL), a real SMTP sink on loopback. Timers use a profile with offsets in seconds,
so real time is enough. Afterwards every ticket is where it should be and every email
reached the sink exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from config import Settings
from devstack.run import temporal_command
from tests.support.smtp import SmtpSink, free_port
from tests.support.temporal import events_of, eventually, update
from workflows.messages import AssignCommand, SendEmailCommand, WaitCommand
from workflows.models import (
    CalendarSnapshot,
    EventType,
    Offset,
    OffsetUnit,
    Status,
    TicketInput,
    TicketView,
    WaitReason,
    workflow_id_for,
)
from workflows.policy import SUPPORT
from workflows.ticket import TicketWorkflow

ROOT = Path(__file__).resolve().parent.parent
QUEUE = "tramita-crash-tests"


def seconds(amount: int) -> Offset:
    return Offset(amount=amount, unit=OffsetUnit.SECONDS)


# The support desk with its clocks in seconds: reminders at 6 s and 24 s, close at 30 s.
# A killed worker's sticky queue holds its next workflow task ~10 s before the server
# hands it to another worker, so the reminders are far enough apart not to both fall due.
FAST_SUPPORT = SUPPORT.model_copy(
    update={
        "timers": SUPPORT.timers.model_copy(
            update={
                "customer_wait_reminders": (seconds(6), seconds(24)),
                "customer_wait_close": seconds(30),
                "defer_reminders_to_business_hours": False,
            }
        )
    }
)


@dataclass
class Stack:
    settings: Settings
    sink: SmtpSink
    data: Path
    server: asyncio.subprocess.Process | None = None
    worker: asyncio.subprocess.Process | None = None
    client: Client | None = None

    async def start_server(self) -> None:
        command = [*temporal_command(self.settings), "--headless"]
        self.server = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        for _ in range(300):
            try:
                self.client = await Client.connect(
                    self.settings.temporal_address, data_converter=pydantic_data_converter
                )
                await self.client.service_client.check_health()
                return
            except Exception:  # not up yet
                await asyncio.sleep(0.1)
        pytest.fail("the dev server did not come up")

    async def stop_server(self) -> None:
        assert self.server is not None
        self.server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self.server.wait(), 30)

    async def start_worker(self) -> None:
        env = {
            **os.environ,
            **{f"TRAMITA_{k.upper()}": str(v) for k, v in self._worker_env().items()},
        }
        self.worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "worker.py",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

    def _worker_env(self) -> dict[str, object]:
        s = self.settings
        return {
            "temporal_address": s.temporal_address,
            "task_queue": s.task_queue,
            "smtp_host": s.smtp_host,
            "smtp_port": s.smtp_port,
            "mail_from": s.mail_from,
            "archive_url": s.archive_url,
        }

    async def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.kill()  # SIGKILL: no graceful anything
        await self.worker.wait()

    def handle(self, ticket_id: str) -> WorkflowHandle[TicketWorkflow, TicketView]:
        assert self.client is not None
        return self.client.get_workflow_handle_for(TicketWorkflow.run, workflow_id_for(ticket_id))

    async def new_ticket(self, ticket_id: str) -> WorkflowHandle[TicketWorkflow, TicketView]:
        assert self.client is not None
        from tests.support.temporal import FIELDS

        return await self.client.start_workflow(
            TicketWorkflow.run,
            TicketInput(
                ticket_id=ticket_id,
                policy=FAST_SUPPORT,
                calendar=CalendarSnapshot(),
                fields=FIELDS,
                submit=True,
                actor="ana",
                archive_locally=True,
            ),
            id=workflow_id_for(ticket_id),
            task_queue=QUEUE,
        )


@pytest.fixture
async def stack(smtp_sink: SmtpSink, tmp_path: Path) -> AsyncIterator[Stack]:
    settings = Settings(
        temporal_address=f"127.0.0.1:{free_port()}",
        ui_port=free_port(),
        data_dir=tmp_path,
        task_queue=QUEUE,
        smtp_host=smtp_sink.host,
        smtp_port=smtp_sink.port,
        mail_from="Tramita <tramita@tramita.test>",
        archive_url=f"sqlite:///{tmp_path}/archive.db",
    )
    running = Stack(settings, smtp_sink, tmp_path)
    await running.start_server()
    await running.start_worker()
    try:
        yield running
    finally:
        for process in (running.worker, running.server):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()


def delivered(sink: SmtpSink, ticket_id: str) -> list[str]:
    return [str(r.message["Message-ID"]) for r in sink.for_ticket(ticket_id)]


async def closed_view(stack: Stack, ticket_id: str) -> TicketView:
    return await asyncio.wait_for(stack.handle(ticket_id).result(), 90)


async def test_worker_killed_while_a_timer_is_armed(stack: Stack) -> None:
    handle = await stack.new_ticket("crash-timer")
    await update(handle, AssignCommand(actor="ana", assignee="ana"))
    await update(handle, WaitCommand(actor="ana", reason=WaitReason.CUSTOMER))
    await stack.kill_worker()
    await asyncio.sleep(8)  # the first reminder falls due while no worker runs
    await stack.start_worker()
    final = await closed_view(stack, "crash-timer")
    assert final.status is Status.CLOSED
    reminders = events_of(final, EventType.REMINDER_SENT)
    assert [(r["number"], r["skipped"]) for r in reminders] == [(1, 0), (2, 0)]
    mails = delivered(stack.sink, "crash-timer")
    assert len(mails) == 2 and len(set(mails)) == 2


async def test_worker_killed_inside_an_email_activity(stack: Stack) -> None:
    handle = await stack.new_ticket("crash-email")
    stack.sink.slow["held@example.com"] = 5.0  # the SMTP conversation stalls mid-way
    await update(
        handle,
        SendEmailCommand(actor="ana", body="Olá", to=("held@example.com",)),
    )

    async def sending() -> bool:
        return "held@example.com" in stack.sink.started_slow

    await eventually(sending, bool, seconds=20)
    await stack.kill_worker()  # inside the email activity, talking to SMTP
    await stack.start_worker()

    async def mails() -> list[str]:
        return delivered(stack.sink, "crash-email")

    # Retried once the dead attempt misses its heartbeat (15 s).
    received = await eventually(mails, lambda m: len(m) == 1, seconds=60)
    await asyncio.sleep(3)
    assert delivered(stack.sink, "crash-email") == received, "delivered once"
    view = await handle.query(TicketWorkflow.view)
    seq = next(e.seq for e in view.timeline if e.type is EventType.EMAIL_SENT)
    assert received == [f"<ticket-crash-email.{seq}@tramita.test>"]


async def test_worker_killed_between_a_command_and_its_effect(stack: Stack) -> None:
    handle = await stack.new_ticket("crash-between")
    await update(handle, SendEmailCommand(actor="ana", body="Olá"))
    await stack.kill_worker()  # the command is recorded; its email may not be sent yet
    await stack.start_worker()

    async def mails() -> list[str]:
        return delivered(stack.sink, "crash-between")

    await eventually(mails, lambda m: len(m) == 1, seconds=60)
    await asyncio.sleep(3)
    assert len(delivered(stack.sink, "crash-between")) == 1
    view = await handle.query(TicketWorkflow.view)
    assert len(events_of(view, EventType.EMAIL_SENT)) == 1


async def test_dev_server_restarted_on_its_sqlite_file(stack: Stack) -> None:
    handle = await stack.new_ticket("restart-server")
    await update(handle, AssignCommand(actor="ana", assignee="ana"))
    await update(handle, WaitCommand(actor="ana", reason=WaitReason.CUSTOMER))
    await stack.stop_server()
    await asyncio.sleep(2)
    await stack.start_server()  # same file, same port; the worker reconnects by itself
    final = await closed_view(stack, "restart-server")
    assert final.status is Status.CLOSED
    assert [r["number"] for r in events_of(final, EventType.REMINDER_SENT)] == [1, 2]
    mails = delivered(stack.sink, "restart-server")
    assert len(mails) == 2 and len(set(mails)) == 2
