"""The SMTP listener: mail delivered to Tramita over SMTP (``python -m mail.listener``).

Point an MTA (or a provider's forwarding) at ``TRAMITA_INBOUND_SMTP_HOST``:
``TRAMITA_INBOUND_SMTP_PORT`` (127.0.0.1:2525). A message is answered 250 only once it
is durably taken: stored whole in the content store and routed to its ticket (the
outcome is in the reply text). While Temporal cannot be reached the answer is 451, a
temporary failure, so the sending server keeps the message and tries again later:
nothing is lost. A sender past its hourly quota of new tickets gets a 451 as well.
Messages over ``TRAMITA_INBOUND_MAX_BYTES`` are refused with 552.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import timedelta
from typing import Any

from aiosmtpd.smtp import SMTP
from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from activities.archive import ArchiveStore
from api.failures import Unavailable
from api.service import TicketService
from config import Settings, connect
from observability import run_process

logger = logging.getLogger("tramita.listener")

RECONNECT_SECONDS = 2.0
NOT_NOW = "451 4.3.0 Tramita cannot take mail right now; please try again later"


class InboundHandler:
    """aiosmtpd's handler: route each message, answer only once it is taken."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._archive = ArchiveStore.from_url(settings.archive_url)
        self.tickets: TicketService | None = None

    def connected(self, client: Client) -> None:
        self.tickets = TicketService(
            client,
            self._settings,
            self._archive,
            rpc_timeout=timedelta(seconds=self._settings.api_rpc_timeout_seconds),
        )

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.tickets is None:
            return NOT_NOW
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            raw = str(raw).encode()
        try:
            result = await self.tickets.inbound.route_raw(
                raw, recipients=tuple(str(r) for r in envelope.rcpt_tos)
            )
        except (Unavailable, RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as error:
            logger.warning("Temporal unavailable; mail deferred", extra={"error": repr(error)})
            return NOT_NOW
        except Exception:  # never lose a message: the sender keeps it and tries again
            logger.exception("inbound mail could not be routed; deferred")
            return NOT_NOW
        if result.outcome == "rate_limited":
            return "451 4.7.1 Too many new tickets from this sender; please try again later"
        return f"250 2.0.0 {result.outcome} {result.ticket_id or '-'} {result.message_id}"


async def connect_until_ready(handler: InboundHandler, settings: Settings) -> None:
    while True:
        try:
            client = await connect(settings)
        except Exception as error:  # Temporal not up yet: mail gets 451 meanwhile
            logger.warning("cannot reach Temporal yet; retrying", extra={"error": repr(error)})
            await asyncio.sleep(RECONNECT_SECONDS)
        else:
            handler.connected(client)
            logger.info("connected to Temporal", extra={"address": settings.temporal_address})
            return


async def listen(handler: InboundHandler, settings: Settings) -> asyncio.Server:
    """The SMTP server, on this event loop (the one the Temporal client lives on)."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(handler, data_size_limit=settings.inbound_max_bytes, ident="Tramita"),
        host=settings.inbound_smtp_host,
        port=settings.inbound_smtp_port,
    )


async def serve(settings: Settings) -> None:
    handler = InboundHandler(settings)
    server = await listen(handler, settings)
    connecting = asyncio.create_task(connect_until_ready(handler, settings))
    logger.info(
        "mail listener ready",
        extra={"host": settings.inbound_smtp_host, "port": settings.inbound_smtp_port},
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connecting
        server.close()
        await server.wait_closed()
        logger.info("mail listener stopped")


def main() -> None:
    run_process("mail listener", serve)


if __name__ == "__main__":
    main()
