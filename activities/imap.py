"""IMAP mailboxes, for the workflow that follows each one (``workflows.mailbox``).

Three activities, each safe to run again: ``fetch`` stores the new messages whole in
the content store (by SHA-256: a second fetch stores nothing new) and names them by
UID; ``route`` hands one stored message to the inbound router (a message routed already
is a ``duplicate``, by its Message-ID); ``wait`` holds an IDLE until the mailbox
changes, or returns at once where the server has no IDLE (the workflow then polls).
Credentials stay in the settings: workflow inputs and histories name a mailbox by its
key (``user@host:port/folder``), never its password.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import imaplib
import logging
import re
import ssl
from collections.abc import Awaitable, Callable

import aioimaplib
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.content import ContentStore
from activities.heartbeats import heartbeating
from api.schemas import InboundResult
from config import ImapMailbox, Settings
from workflows.models import ProfileName

logger = logging.getLogger(__name__)

_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_FETCHED_UID = re.compile(rb"UID (\d+)")
# Untagged answers during IDLE that mean "look again": new mail, or the server leaving.
_CHANGE = re.compile(rb"\b(EXISTS|RECENT|BYE)\b")
HEARTBEAT_SECONDS = 10.0

Router = Callable[[bytes, ProfileName | None], Awaitable[InboundResult]]


class FetchRequest(BaseModel):
    mailbox: str
    uidvalidity: int | None
    after_uid: int
    limit: int = 50


class FetchedMessage(BaseModel):
    uid: int
    sha256: str
    size: int


class FetchBatch(BaseModel):
    uidvalidity: int
    messages: list[FetchedMessage]
    more: bool
    """More new messages wait past ``limit``."""
    idle: bool
    """The server offers IDLE."""
    changed: bool = False
    """UIDVALIDITY is not the one asked for: the UIDs start over."""


class RouteRequest(BaseModel):
    mailbox: str
    uid: int
    sha256: str


class RouteResult(BaseModel):
    outcome: str
    ticket_id: str | None
    message_id: str


class WaitRequest(BaseModel):
    mailbox: str
    seconds: float
    after_uid: int = 0
    """The last UID the workflow has seen: mail that came after it, but before the
    IDLE began, ends the wait at once (IDLE only tells of changes from its start)."""


class ImapActivities:
    def __init__(self, settings: Settings, contents: ContentStore, router: Router) -> None:
        self._mailboxes = {mailbox.key: mailbox for mailbox in settings.imap_mailboxes}
        self._contents = contents
        self._router = router

    def _mailbox(self, key: str) -> ImapMailbox:
        found = self._mailboxes.get(key)
        if found is None:
            raise ApplicationError(
                f"mailbox {key} is no longer in TRAMITA_IMAP_MAILBOXES",
                type="UnknownMailbox",
                non_retryable=True,
            )
        return found

    @activity.defn(name="imap_fetch")
    async def fetch(self, request: FetchRequest) -> FetchBatch:
        mailbox = self._mailbox(request.mailbox)
        loop = asyncio.get_running_loop()
        # The fetch blocks (imaplib) in a thread; an async activity heartbeats only from
        # its event loop, in its own context.
        context = contextvars.copy_context()

        def heartbeat(uid: int) -> None:
            loop.call_soon_threadsafe(activity.heartbeat, uid, context=context)

        return await asyncio.to_thread(self._fetch, mailbox, request, heartbeat)

    def _fetch(
        self, mailbox: ImapMailbox, request: FetchRequest, heartbeat: Callable[[int], None]
    ) -> FetchBatch:
        with _connect(mailbox) as imap:
            status, data = imap.select(_quoted(mailbox.folder), readonly=True)
            if status != "OK":
                raise RuntimeError(f"cannot open folder {mailbox.folder}: {data!r}")
            uidvalidity = _uidvalidity(imap, mailbox.folder)
            idle = "IDLE" in imap.capabilities
            if request.uidvalidity is not None and uidvalidity != request.uidvalidity:
                return FetchBatch(
                    uidvalidity=uidvalidity, messages=[], more=True, idle=idle, changed=True
                )
            status, found = imap.uid("SEARCH", f"UID {request.after_uid + 1}:*")
            uids = sorted(
                uid for uid in map(int, (found[0] or b"").split()) if uid > request.after_uid
            )
            messages = []
            for uid in uids[: request.limit]:
                raw = _fetch_raw(imap, uid)
                if raw is None:
                    continue  # expunged since the search
                stored = self._contents.put(raw)
                messages.append(FetchedMessage(uid=uid, sha256=stored.sha256, size=stored.bytes))
                heartbeat(uid)
        return FetchBatch(
            uidvalidity=uidvalidity, messages=messages, more=len(uids) > request.limit, idle=idle
        )

    @activity.defn(name="imap_route")
    async def route(self, request: RouteRequest) -> RouteResult:
        mailbox = self._mailbox(request.mailbox)
        raw = await asyncio.to_thread(self._contents.read, request.sha256)
        if raw is None:
            raise ApplicationError(
                f"message {request.sha256} is missing from the content store",
                type="MissingMessage",
            )
        result = await heartbeating(self._router(raw, mailbox.profile))
        return RouteResult(
            outcome=result.outcome, ticket_id=result.ticket_id, message_id=result.message_id
        )

    @activity.defn(name="imap_wait")
    async def wait(self, request: WaitRequest) -> bool:
        """IDLE until the folder may have changed (True) or ``seconds`` pass (False).

        A new message, a goodbye from the server or a lost connection all count as a
        change: the workflow fetches again, and a server that is gone makes that fetch
        fail and retry. A stopping worker ends the wait at once (False), rather than
        holding its shutdown for the whole IDLE.
        """
        mailbox = self._mailbox(request.mailbox)
        lost = asyncio.Event()

        def connection_lost(_error: Exception | None) -> None:
            lost.set()

        client = (
            aioimaplib.IMAP4_SSL(
                host=mailbox.host,
                port=mailbox.port,
                ssl_context=_tls(),
                conn_lost_cb=connection_lost,
            )
            if mailbox.tls
            else aioimaplib.IMAP4(
                host=mailbox.host, port=mailbox.port, conn_lost_cb=connection_lost
            )
        )
        await client.wait_hello_from_server()
        try:
            await _ok(client.login(mailbox.username, mailbox.password.get_secret_value()))
            await _ok(client.select(mailbox.folder))
            if not client.has_capability("IDLE"):
                return False
            if await _newer_than(client, request.after_uid):
                return True
            idle = await client.idle_start(timeout=request.seconds)
            changed = await _idle_until_change(client, lost, request.seconds)
            if not lost.is_set():
                client.idle_done()
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(idle, 5)
            return changed
        finally:
            if not lost.is_set():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.logout(), 5)


async def _idle_until_change(client: aioimaplib.IMAP4, lost: asyncio.Event, seconds: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    shutdown = asyncio.ensure_future(activity.wait_for_worker_shutdown())
    gone = asyncio.ensure_future(lost.wait())
    try:
        while loop.time() < deadline:
            activity.heartbeat()
            push = asyncio.ensure_future(client.wait_server_push(timeout=HEARTBEAT_SECONDS))
            await asyncio.wait({push, shutdown, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not push.done():
                push.cancel()
                return gone.done()
            try:
                pushed = push.result()
            except TimeoutError:
                continue
            lines = pushed if isinstance(pushed, list) else [pushed]
            if any(isinstance(line, bytes) and _CHANGE.search(line) for line in lines):
                return True
        return False
    finally:
        shutdown.cancel()
        gone.cancel()


async def _newer_than(client: aioimaplib.IMAP4, uid: int) -> bool:
    """Whether the selected folder holds a message with a UID above ``uid``. (``n:*``
    always matches the last message, even one below ``n``, hence the comparison.)"""
    response = await client.uid_search(f"UID {uid + 1}:*", charset=None)
    if response.result != "OK":
        raise RuntimeError(f"IMAP refused: {response.lines!r}")
    found = (int(word) for line in response.lines[:1] for word in line.split() if word.isdigit())
    return any(found_uid > uid for found_uid in found)


async def _ok(call: Awaitable[object]) -> None:
    response = await call
    result = getattr(response, "result", "OK")
    if result != "OK":
        raise RuntimeError(f"IMAP refused: {getattr(response, 'lines', response)!r}")


def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


def _connect(mailbox: ImapMailbox) -> imaplib.IMAP4:
    imap: imaplib.IMAP4 = (
        imaplib.IMAP4_SSL(mailbox.host, mailbox.port, ssl_context=_tls(), timeout=30)
        if mailbox.tls
        else imaplib.IMAP4(mailbox.host, mailbox.port, timeout=30)
    )
    imap.login(mailbox.username, mailbox.password.get_secret_value())
    return imap


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _uidvalidity(imap: imaplib.IMAP4, folder: str) -> int:
    """The folder's UIDVALIDITY: from SELECT's answer, else asked with STATUS."""
    for value in imap.untagged_responses.get("UIDVALIDITY", []):
        if isinstance(value, bytes) and value.strip().isdigit():
            return int(value)
    status, data = imap.status(_quoted(folder), "(UIDVALIDITY)")
    found = _UIDVALIDITY.search(b" ".join(d for d in data if isinstance(d, bytes)))
    if status != "OK" or found is None:
        raise RuntimeError("the server named no UIDVALIDITY")
    return int(found.group(1))


def _fetch_raw(imap: imaplib.IMAP4, uid: int) -> bytes | None:
    status, data = imap.uid("FETCH", str(uid), "(UID BODY.PEEK[])")
    if status != "OK":
        raise RuntimeError(f"cannot fetch UID {uid}: {data!r}")
    for item in data:
        if isinstance(item, tuple) and len(item) == 2 and _FETCHED_UID.search(item[0]):
            return bytes(item[1])
    return None
