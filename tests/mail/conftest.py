"""The SMTP listener in the test's event loop, on the time-skipping server's client."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from config import Settings
from mail.listener import InboundHandler, listen
from tests.support.smtp import free_port


@dataclass(frozen=True)
class Listener:
    host: str
    port: int
    handler: InboundHandler

    async def send(
        self, raw: bytes, *, sender: str = "cliente@example.com", to: str = "suporte@tramita.test"
    ) -> tuple[int, str]:
        """Deliver ``raw`` as a sending server would; the final SMTP reply."""
        # On the wire every line ends in CRLF (RFC 5321); smtplib leaves bytes as given.
        wire = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

        def deliver() -> tuple[int, str]:
            with smtplib.SMTP(self.host, self.port, timeout=60) as smtp:
                smtp.ehlo("mx.example.com")
                smtp.mail(sender)
                smtp.rcpt(to)
                code, text = smtp.data(wire)
                return code, text.decode()

        return await asyncio.to_thread(deliver)


@pytest.fixture(scope="module")
async def listener(
    time_env: WorkflowEnvironment, api_settings: Settings, time_worker: Worker
) -> AsyncIterator[Listener]:
    settings = api_settings.model_copy(update={"inbound_smtp_port": free_port()})
    handler = InboundHandler(settings)
    handler.connected(time_env.client)
    server = await listen(handler, settings)
    try:
        yield Listener(settings.inbound_smtp_host, settings.inbound_smtp_port, handler)
    finally:
        server.close()
        await server.wait_closed()
