"""IMAP mailboxes followed by durable workflows, against a real Dovecot server.

The worker runs as its own process (``python worker.py``), as in production, so it can
be killed in the middle of a fetch. Messages are put in the mailbox with IMAP APPEND, as
a mail client would.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.archive import ArchiveStore
from activities.content import ContentStore
from activities.imap import ImapActivities, WaitRequest
from activities.mail_ledger import MailLedger
from api.schemas import InboundResult
from config import ImapMailbox, Settings
from tests.support import dovecot
from tests.support.dovecot import Dovecot
from tests.support.processes import ROOT
from tests.support.smtp import SmtpSink
from worker import mailbox_workflow_id
from workflows.models import ProfileName, workflow_id_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not dovecot.AVAILABLE,
        reason="Dovecot is not installed (make test installs dovecot-imapd as root)",
    ),
]

USER, PASSWORD = "suporte", "senha-de-teste"


def request_mail(number: int, *, sender: str = "cliente@example.com") -> bytes:
    return (
        f"From: Cliente <{sender}>\r\n"
        "To: suporte@tramita.test\r\n"
        f"Subject: Pedido {number}\r\n"
        f"Message-ID: <pedido-{number}-{os.getpid()}@example.com>\r\n"
        "Date: Mon, 30 Nov 2026 10:00:00 -0300\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"Preciso de ajuda com o pedido {number}.\r\n"
    ).encode()


def ticket_of(raw: bytes) -> str:
    message_id = raw.split(b"Message-ID: ")[1].split(b"\r\n")[0].decode()
    return "m" + hashlib.sha256(message_id.encode()).hexdigest()[:15]


@pytest.fixture
def imap(request: pytest.FixtureRequest) -> Iterator[Dovecot]:
    """Dovecot; a test may ask for one without IDLE (``indirect`` parameter ``idle``)."""
    server = Dovecot({USER: PASSWORD}, idle=getattr(request, "param", {}).get("idle", True))
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


class WorkerProcess:
    """``python worker.py`` following the mailbox, startable and killable."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "worker.py", cwd=ROOT, env=self.env, stdout=output, stderr=output
            )

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(40):
                    await self.process.wait()
            except TimeoutError:
                await self.kill()


@pytest.fixture
async def mailbox_worker(
    imap: Dovecot,
    dev_env: WorkflowEnvironment,
    worker_settings: Settings,
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> AsyncIterator[tuple[WorkerProcess, Settings]]:
    queue = f"tramita-imap-{imap.port}"
    mailbox = {
        "host": "127.0.0.1",
        "port": imap.port,
        "tls": False,
        "username": USER,
        "password": PASSWORD,
        "profile": "support",
    }
    env = {
        **os.environ,
        "TRAMITA_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TRAMITA_TASK_QUEUE": queue,
        "TRAMITA_ARCHIVE_URL": worker_settings.archive_url,
        "TRAMITA_ATTACHMENTS_DIR": str(worker_settings.content_directory),
        "TRAMITA_SMTP_HOST": smtp_sink.host,
        "TRAMITA_SMTP_PORT": str(smtp_sink.port),
        "TRAMITA_MAIL_FROM": "Suporte Tramita <suporte@tramita.test>",
        "TRAMITA_IMAP_MAILBOXES": json.dumps([mailbox]),
        "TRAMITA_IMAP_POLL_SECONDS": "1",
        "TRAMITA_INBOUND_MAX_NEW_PER_SENDER_HOUR": str(
            worker_settings.inbound_max_new_per_sender_hour
        ),
    }
    settings = worker_settings.model_copy(update={"task_queue": queue})
    worker = WorkerProcess(env, tmp_path / "worker.log")
    await worker.start()
    try:
        yield worker, settings
    finally:
        await worker.stop()
        handle = dev_env.client.get_workflow_handle(
            mailbox_workflow_id(f"{USER}@127.0.0.1:{imap.port}/INBOX")
        )
        with contextlib.suppress(RPCError):
            await handle.terminate("test done")


async def ticket_exists(env: WorkflowEnvironment, ticket_id: str) -> bool:
    try:
        described = await env.client.get_workflow_handle(workflow_id_for(ticket_id)).describe()
    except RPCError:
        return False
    return described.status is WorkflowExecutionStatus.RUNNING


async def wait_for(check: object, seconds: float = 60.0) -> None:
    assert callable(check)
    for _ in range(int(seconds * 10)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("not within the time given")


async def test_a_message_appended_to_the_mailbox_reaches_its_ticket(
    imap: Dovecot,
    dev_env: WorkflowEnvironment,
    mailbox_worker: tuple[WorkerProcess, Settings],
) -> None:
    worker, _ = mailbox_worker
    raw = request_mail(1)
    imap.append(USER, raw)
    ticket_id = ticket_of(raw)
    await wait_for(lambda: ticket_exists(dev_env, ticket_id))
    handle = dev_env.client.get_workflow_handle(workflow_id_for(ticket_id))
    view = await handle.query("view")
    assert view["title"] == "Pedido 1" and view["requester"] == "cliente@example.com"

    reply = (
        f"From: cliente@example.com\r\nTo: suporte@tramita.test\r\n"
        f"Subject: Re: Pedido 1 [#{ticket_id}]\r\nMessage-ID: <reply-{os.getpid()}@example.com>\r\n"
        "Content-Type: text/plain\r\n\r\nMais um detalhe: o pedido foi pago.\r\n"
    ).encode()
    imap.append(USER, reply)  # IDLE wakes the mailbox's workflow

    async def replied() -> bool:
        current = await handle.query("view")
        return any(e["type"] == "customer_reply" for e in current["timeline"])

    await wait_for(replied, seconds=30)
    assert worker.process is not None and worker.process.returncode is None


async def test_a_crash_of_worker_or_imap_server_mid_fetch_loses_and_doubles_nothing(
    imap: Dovecot,
    dev_env: WorkflowEnvironment,
    mailbox_worker: tuple[WorkerProcess, Settings],
    worker_settings: Settings,
) -> None:
    worker, _ = mailbox_worker
    messages = [request_mail(100 + n) for n in range(24)]
    for raw in messages:
        imap.append(USER, raw)
    ledger = MailLedger(ArchiveStore.from_url(worker_settings.archive_url))
    ids = [raw.split(b"Message-ID: ")[1].split(b"\r\n")[0].decode() for raw in messages]

    async def routed() -> int:
        found = [await asyncio.to_thread(ledger.routed, message_id) for message_id in ids]
        return sum(1 for r in found if r is not None)

    async def some_routed() -> bool:
        return await routed() >= 3

    await wait_for(some_routed)
    await worker.kill()  # in the middle of the batch
    imap.stop(crash=True)
    imap.start()
    await worker.start()

    async def all_routed() -> bool:
        return await routed() == len(ids)

    await wait_for(all_routed, seconds=120)
    outcomes = [await asyncio.to_thread(ledger.routed, message_id) for message_id in ids]
    assert all(o is not None and o.outcome == "new_ticket" for o in outcomes), outcomes
    for raw in messages:
        ticket_id = ticket_of(raw)
        view = await dev_env.client.get_workflow_handle(workflow_id_for(ticket_id)).query("view")
        assert sum(e["type"] == "created" for e in view["timeline"]) == 1


async def test_a_changed_uidvalidity_imports_no_old_mail_again(
    imap: Dovecot,
    dev_env: WorkflowEnvironment,
    mailbox_worker: tuple[WorkerProcess, Settings],
    worker_settings: Settings,
) -> None:
    ledger = MailLedger(ArchiveStore.from_url(worker_settings.archive_url))
    old = [request_mail(200 + n) for n in range(3)]
    for raw in old:
        imap.append(USER, raw)
    for raw in old:
        await wait_for(lambda raw=raw: ticket_exists(dev_env, ticket_of(raw)))
    imap.set_uidvalidity(USER, 4242)
    fresh = request_mail(299)
    imap.append(USER, fresh)
    # UIDs start over in order: the old messages are read again before the new one.
    await wait_for(lambda: ticket_exists(dev_env, ticket_of(fresh)))
    for raw in old:
        message_id = raw.split(b"Message-ID: ")[1].split(b"\r\n")[0].decode()
        routed = await asyncio.to_thread(ledger.routed, message_id)
        assert routed is not None and routed.outcome == "new_ticket"
        view = await dev_env.client.get_workflow_handle(workflow_id_for(ticket_of(raw))).query(
            "view"
        )
        assert sum(e["type"] == "created" for e in view["timeline"]) == 1


async def test_mail_that_came_just_before_the_idle_ends_the_wait_at_once(
    imap: Dovecot, worker_settings: Settings
) -> None:
    """IDLE tells only of changes after it starts: a message appended between the
    workflow's last fetch and the IDLE must not wait for the next message (or the
    nine-minute IDLE) to be read."""
    mailbox = ImapMailbox(
        host="127.0.0.1",
        port=imap.port,
        tls=False,
        username=USER,
        password=SecretStr(PASSWORD),
    )
    settings = worker_settings.model_copy(update={"imap_mailboxes": (mailbox,)})

    async def no_router(raw: bytes, profile: ProfileName | None) -> InboundResult:
        raise AssertionError("waiting routes nothing")

    activities = ImapActivities(settings, ContentStore(settings.content_directory), no_router)
    environment = ActivityEnvironment()
    imap.append(USER, request_mail(400))
    imap.append(USER, request_mail(401))  # after the workflow's last fetch (UID 1)

    async with asyncio.timeout(10):  # not the 60 seconds asked
        changed = await environment.run(
            activities.wait, WaitRequest(mailbox=mailbox.key, seconds=60, after_uid=1)
        )
    assert changed is True

    shutdown = asyncio.get_running_loop().call_later(1.5, environment.worker_shutdown)
    try:
        started = asyncio.get_running_loop().time()
        changed = await environment.run(
            activities.wait, WaitRequest(mailbox=mailbox.key, seconds=60, after_uid=2)
        )
    finally:
        shutdown.cancel()
    assert changed is False and asyncio.get_running_loop().time() - started >= 1, (
        "nothing new: it holds the IDLE"
    )


@pytest.mark.parametrize("imap", [{"idle": False}], indirect=True)
async def test_a_server_without_idle_is_polled(
    imap: Dovecot,
    dev_env: WorkflowEnvironment,
    mailbox_worker: tuple[WorkerProcess, Settings],
) -> None:
    raw = request_mail(500)
    imap.append(USER, raw)
    await wait_for(lambda: ticket_exists(dev_env, ticket_of(raw)), seconds=30)
    later = request_mail(501)
    imap.append(USER, later)  # found by the next poll (TRAMITA_IMAP_POLL_SECONDS=1)
    await wait_for(lambda: ticket_exists(dev_env, ticket_of(later)), seconds=30)
    handle = dev_env.client.get_workflow_handle(
        mailbox_workflow_id(f"{USER}@127.0.0.1:{imap.port}/INBOX")
    )
    activities = {
        event.activity_task_scheduled_event_attributes.activity_type.name
        async for event in handle.fetch_history_events()
        if event.HasField("activity_task_scheduled_event_attributes")
    }
    assert "imap_wait" not in activities and "imap_fetch" in activities
    timers = [
        event
        async for event in handle.fetch_history_events()
        if event.HasField("timer_started_event_attributes")
    ]
    assert timers, "it slept between polls"


async def test_the_worker_keeps_following_when_only_the_imap_server_restarts(
    imap: Dovecot,
    dev_env: WorkflowEnvironment,
    mailbox_worker: tuple[WorkerProcess, Settings],
) -> None:
    worker, _ = mailbox_worker
    first = request_mail(600)
    imap.append(USER, first)
    await wait_for(lambda: ticket_exists(dev_env, ticket_of(first)), seconds=30)
    imap.stop(crash=True)  # the IDLE connection drops; fetches fail and are retried
    await asyncio.sleep(2)
    imap.start()
    after = request_mail(601)
    imap.append(USER, after)
    await wait_for(lambda: ticket_exists(dev_env, ticket_of(after)), seconds=90)
    assert worker.process is not None and worker.process.returncode is None, "never restarted"
