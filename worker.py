"""The Tramita worker: every workflow and activity, on the configured task queue.

``python worker.py`` connects with the settings and runs until SIGINT or SIGTERM, then
finishes the activities in flight (within the graceful shutdown timeout) and exits.
"""

from __future__ import annotations

import asyncio
import compileall
import hashlib
import logging
import signal
from collections.abc import Sequence
from datetime import timedelta

import httpx
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import PollerBehaviorAutoscaling, Worker

import workflows
from activities.archive import ArchiveActivities, ArchiveStore
from activities.calendar import CalendarActivities
from activities.content import ContentStore
from activities.email import EmailActivities, SmtpMailSender
from activities.imap import ImapActivities
from activities.store import StoreActivities, TicketStore
from activities.webhooks import WebhookActivities
from api.schemas import InboundResult
from api.service import TicketService
from config import Settings, connect, get_settings
from observability import run_process, worker_runtime
from workflows.mailbox import MailboxInput, MailboxWorkflow
from workflows.models import ProfileName
from workflows.ticket import TicketWorkflow

logger = logging.getLogger("tramita.worker")

GRACEFUL_SHUTDOWN = timedelta(seconds=30)
# Pollers scale with the backlog the server reports. The fixed default gives the shared
# (non-sticky) queue a single poller, and every new ticket's first workflow task waits
# in that queue: it capped the bench at one first task per poll round trip.
POLLERS = PollerBehaviorAutoscaling()


def build_worker(
    client: Client,
    settings: Settings | None = None,
    *,
    http_client: httpx.AsyncClient | None = None,
    archive_store: ArchiveStore | None = None,
    workflow_failure_exception_types: Sequence[type[BaseException]] = (),
) -> Worker:
    """A worker with every workflow and activity of Tramita registered."""
    settings = settings or get_settings()
    sender = SmtpMailSender(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        starttls=settings.smtp_starttls,
        tls=settings.smtp_tls,
        ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
        credentials_need_tls=settings.env == "production",
        timeout=settings.smtp_timeout_seconds,
    )
    email = EmailActivities(
        sender,
        mail_from=settings.mail_from,
        domain=settings.mail_domain,
        timezone=settings.calendar_timezone,
        contents=ContentStore(settings.content_directory),
        display_names=settings.display_names,
        agent_emails=settings.agent_emails,
        public_url=settings.public_url,
        secret_key=settings.secret_key.get_secret_value(),
    )
    webhooks = WebhookActivities(
        http_client or httpx.AsyncClient(timeout=settings.webhook_timeout_seconds),
        urls=settings.webhook_urls,
        secret=settings.webhook_secret_value,
    )
    archive_db = archive_store or ArchiveStore.from_url(settings.archive_url)
    archive = ArchiveActivities(archive_db)
    ticket_store = TicketStore.from_url(settings.archive_url)
    contents = ContentStore(settings.content_directory)
    # Mailboxes route their mail through the same service and router as the API.
    tickets = TicketService(
        client,
        settings,
        archive_db,
        rpc_timeout=timedelta(seconds=settings.api_rpc_timeout_seconds),
        store=ticket_store,
    )

    async def route(raw: bytes, profile: ProfileName | None) -> InboundResult:
        return await tickets.inbound.route_raw(raw, profile=profile)

    imap = ImapActivities(settings, contents, route)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[TicketWorkflow, MailboxWorkflow],
        activities=[
            email.send,
            email.notify_agent,
            email.tell_of_sla,
            webhooks.deliver,
            archive.archive,
            StoreActivities(ticket_store).store,
            CalendarActivities().build_snapshot,
            imap.fetch,
            imap.route,
            imap.wait,
        ],
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        max_cached_workflows=settings.worker_max_cached_workflows,
        workflow_task_poller_behavior=POLLERS,
        activity_task_poller_behavior=POLLERS,
        workflow_failure_exception_types=workflow_failure_exception_types,
    )


def precompile_workflows() -> None:
    """Writes the bytecode of the workflow modules if it is missing or stale.

    The sandbox imports the workflow module afresh for every ticket a worker loads (a new
    ticket, or one evicted from the cache that wakes up). Without cached bytecode, as
    under ``PYTHONDONTWRITEBYTECODE``, every such load compiles the source: a fifth of
    the worker's CPU in the bench. Best effort: a read-only tree is left as it is.
    """
    for directory in workflows.__path__:
        compileall.compile_dir(directory, quiet=2)


async def follow_mailboxes(client: Client, settings: Settings) -> None:
    """Start the workflow of each configured IMAP mailbox (one already running is kept)."""
    for mailbox in settings.imap_mailboxes:
        await client.start_workflow(
            MailboxWorkflow.run,
            MailboxInput(mailbox=mailbox.key, poll_seconds=settings.imap_poll_seconds),
            id=mailbox_workflow_id(mailbox.key),
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"Mailbox {mailbox.key}",
        )
        logger.info("following mailbox", extra={"mailbox": mailbox.key})


def mailbox_workflow_id(key: str) -> str:
    return "mailbox-" + hashlib.sha256(key.encode()).hexdigest()[:16]


async def serve(settings: Settings) -> None:
    precompile_workflows()
    client = await connect(settings, runtime=worker_runtime(settings))
    await follow_mailboxes(client, settings)
    async with httpx.AsyncClient(timeout=settings.webhook_timeout_seconds) as http_client:
        worker = build_worker(client, settings, http_client=http_client)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        logger.info("worker started", extra={"task_queue": settings.task_queue})
        async with worker:
            await stop.wait()
            logger.info("worker stopping")
    logger.info("worker stopped")


def main() -> None:
    run_process("worker", serve)


if __name__ == "__main__":
    main()
