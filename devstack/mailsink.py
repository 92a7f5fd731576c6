"""A local SMTP sink: every message Tramita sends lands in ``<data_dir>/mail/`` as .eml.

``python -m devstack.mailsink`` listens on ``TRAMITA_SMTP_HOST``:``TRAMITA_SMTP_PORT``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
from datetime import UTC, datetime
from email import message_from_bytes, policy
from itertools import count
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from observability import configure_logging, settings_or_exit

logger = logging.getLogger("tramita.mailsink")

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class MailDirectory:
    """aiosmtpd handler that writes each accepted message to its own file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._numbers = count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        ticket = _UNSAFE.sub("_", str(message.get("X-Tramita-Ticket", "no-ticket")))
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.directory / f"{stamp}-{next(self._numbers):05d}-{ticket}.eml"
        path.write_bytes(envelope.content)
        logger.info(
            "mail received",
            extra={
                "to": envelope.rcpt_tos,
                "subject": str(message.get("Subject")),
                "file": str(path),
            },
        )
        return "250 Message accepted"


def serve_forever(directory: Path, host: str, port: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    controller = Controller(MailDirectory(directory), hostname=host, port=port)
    controller.start()
    logger.info(
        "mail sink listening", extra={"host": host, "port": port, "directory": str(directory)}
    )

    async def wait_for_stop() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    try:
        asyncio.run(wait_for_stop())
    finally:
        controller.stop()
        logger.info("mail sink stopped")


def main() -> None:
    settings = settings_or_exit()
    configure_logging(settings)
    serve_forever(settings.data_dir / "mail", settings.smtp_host, settings.smtp_port)


if __name__ == "__main__":
    main()
