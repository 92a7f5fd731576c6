"""Re-record the histories the replay test guards: ``make record-histories``.

Runs representative lifecycles of both profiles on the time-skipping server (timers
fire, emails reach a loopback SMTP sink, the archive is a temporary SQLite file) and
writes each workflow's history as JSON beside this file. Re-record only when a change is
meant to alter running-workflow logic, and put that change behind ``workflow.patched``
first (README, "Changing workflow code").
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from config import Settings
from tests.conftest import TEST_SERVER, register_search_attributes
from tests.support.smtp import SmtpSink
from tests.support.temporal import start_ticket, update
from worker import build_worker
from workflows.messages import (
    AssignCommand,
    CustomerReplyCommand,
    EditCommand,
    NoteCommand,
    RateCommand,
    ReleasePublishedCommand,
    ResolveCommand,
    SendEmailCommand,
    SplitCommand,
    StartCommand,
    SubmitCommand,
    WaitCommand,
)
from workflows.models import (
    BuiltInProfile,
    NewTicket,
    ResolutionMethod,
    TicketFields,
    TicketView,
    WaitReason,
    workflow_id_for,
)
from workflows.ticket import TicketWorkflow

HERE = Path(__file__).resolve().parent
QUEUE = "tramita-histories"
Handle = WorkflowHandle[TicketWorkflow, TicketView]


async def support_customer_wait_and_validation(env: WorkflowEnvironment) -> list[Handle]:
    handle = await start_ticket(env.client, QUEUE, ticket_id="support-full")
    await update(handle, AssignCommand(actor="ana", assignee="ana"))
    await update(handle, SendEmailCommand(actor="ana", body="Pode enviar o XML?"))
    await update(handle, WaitCommand(actor="ana", reason=WaitReason.CUSTOMER))
    await env.sleep(timedelta(days=3))  # first reminder
    await update(handle, CustomerReplyCommand(actor="c@example.com", body="Segue"))
    await update(
        handle,
        ResolveCommand(actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE),
    )
    await update(handle, RateCommand(actor="c@example.com", score=5))
    await env.sleep(timedelta(days=14))  # reminders and automatic close
    await handle.result()
    return [handle]


async def support_release(env: WorkflowEnvironment) -> list[Handle]:
    handle = await start_ticket(env.client, QUEUE, ticket_id="support-release")
    await update(handle, AssignCommand(actor="ana", assignee="ana"))
    await update(handle, WaitCommand(actor="ana", reason=WaitReason.RELEASE, version="8.4.2"))
    await update(handle, ReleasePublishedCommand(version="8.4.2"))
    await env.sleep(timedelta(days=14))
    await handle.result()
    return [handle]


async def support_listed_standard(env: WorkflowEnvironment) -> list[Handle]:
    """The commonest lifecycle, started as the API starts tickets: with its attributes."""
    handle = await start_ticket(env.client, QUEUE, ticket_id="support-listed", listed=True)
    await update(handle, AssignCommand(actor="ana", assignee="ana"))
    await update(handle, WaitCommand(actor="ana", reason=WaitReason.CUSTOMER))
    await update(handle, CustomerReplyCommand(actor="c@example.com", body="Feito"))
    await update(
        handle,
        ResolveCommand(actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE),
    )
    await env.sleep(timedelta(days=14))  # the feedback window closes it
    await handle.result()
    return [handle]


async def enate_draft_wait_and_feedback(env: WorkflowEnvironment) -> list[Handle]:
    handle = await start_ticket(
        env.client,
        QUEUE,
        ticket_id="enate-full",
        profile=BuiltInProfile.ENATE,
        fields=TicketFields(primary_contact="c@example.com"),
        submit=False,
    )
    await update(
        handle,
        SendEmailCommand(actor="ana", subject="Invoice 42", body="Where is it?"),
    )
    await update(handle, EditCommand(actor="ana", category="billing", requester="c@example.com"))
    await update(handle, SubmitCommand(actor="ana"))
    await update(handle, NoteCommand(actor="ana", body="Looking"))
    await update(
        handle,
        WaitCommand(actor="ana", reason=WaitReason.CUSTOMER, days=2, close_if_no_response=True),
    )
    await env.sleep(timedelta(days=10))
    await handle.result()
    return [handle]


async def enate_split(env: WorkflowEnvironment) -> list[Handle]:
    parent = await start_ticket(
        env.client, QUEUE, ticket_id="enate-split", profile=BuiltInProfile.ENATE
    )
    await update(parent, StartCommand(actor="ana"))
    await update(
        parent,
        SplitCommand(actor="ana", children=(NewTicket(title="A"), NewTicket(title="B"))),
    )
    await asyncio.sleep(1)  # the children start
    for child_id in ("enate-split-1", "enate-split-2"):
        child = env.client.get_workflow_handle_for(TicketWorkflow.run, workflow_id_for(child_id))
        await update(child, ResolveCommand(actor="ana", method=ResolutionMethod.SPAM))
    await env.sleep(timedelta(days=10))
    await parent.result()
    return [parent]


LIFECYCLES: dict[str, Callable[[WorkflowEnvironment], Awaitable[list[Handle]]]] = {
    "support_customer_wait_and_validation": support_customer_wait_and_validation,
    "support_release": support_release,
    "support_listed_standard": support_listed_standard,
    "enate_draft_wait_and_feedback": enate_draft_wait_and_feedback,
    "enate_split": enate_split,
}


async def record(
    client_env: WorkflowEnvironment, settings: Settings, names: list[str]
) -> list[Path]:
    written = []
    async with build_worker(client_env.client, settings):
        for name in names:
            lifecycle = LIFECYCLES[name]
            handles = await lifecycle(client_env)
            history = await handles[0].fetch_history()
            path = HERE / f"{name}.json"
            path.write_text(history.to_json())
            written.append(path)
    return written


async def main(names: list[str]) -> None:
    sink = SmtpSink()
    sink.start()
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(
            task_queue=QUEUE,
            smtp_host=sink.host,
            smtp_port=sink.port,
            mail_from="Tramita <tramita@tramita.test>",
            archive_url=f"sqlite:///{scratch}/archive.db",
        )
        env = await WorkflowEnvironment.start_time_skipping(
            data_converter=pydantic_data_converter, test_server_existing_path=str(TEST_SERVER)
        )
        try:
            await register_search_attributes(env.client)
            for path in await record(env, settings, names):
                sys.stderr.write(f"recorded {path.relative_to(HERE.parent.parent)}\n")
        finally:
            await env.shutdown()
            sink.stop()


if __name__ == "__main__":
    # Names given (``python -m tests.histories.record support_release``): only those.
    chosen = sys.argv[1:] or list(LIFECYCLES)
    unknown = sorted(set(chosen) - set(LIFECYCLES))
    if unknown:
        sys.exit(f"unknown lifecycles {unknown}; known: {sorted(LIFECYCLES)}")
    asyncio.run(main(chosen))
    sys.stderr.flush()
    os._exit(0)  # the SDK's runtime may abort at interpreter exit (sdk-python#300)
