"""``make run``: Temporal dev server (SQLite file, Web UI), worker, API, the SMTP
listener for inbound mail and a sink for outgoing mail.

Runs in the foreground; Ctrl-C (or SIGTERM) stops every part and waits for it. State
lives under ``TRAMITA_DATA_DIR`` (``.data/``), so a second run finds every ticket and
timer where it was. Ports: Temporal from ``TRAMITA_TEMPORAL_ADDRESS`` (7233), the Web UI
on ``TRAMITA_UI_PORT`` (8233), the API on ``TRAMITA_API_PORT`` (8000), the mail sink on
``TRAMITA_SMTP_PORT`` (1025), the inbound listener on ``TRAMITA_INBOUND_SMTP_PORT`` (2525).

Every part is supervised: one that exits on its own is logged and started again after
a pause that doubles up to a minute (and starts over once the part has stayed up for a
minute), so a crashed worker never takes the stack down. "Tramita is running" is logged
once the API answers ``/readyz``, not before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from config import Settings, connect
from observability import run_process
from workflows.search import ALL_KEYS

logger = logging.getLogger("tramita.run")

BIN = Path(sys.executable).parent
TEMPORAL_READY_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
FIRST_RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 60.0
# A part that stayed up this long is healthy again: its next restart starts over.
STABLE_AFTER = 60.0
READY_POLL_SECONDS = 0.25
NOT_READY_WARNING_SECONDS = 30.0

_SEARCH_ATTRIBUTE_TYPES = {"KEYWORD": "Keyword", "DATETIME": "Datetime", "BOOL": "Bool"}


def temporal_command(settings: Settings) -> list[str]:
    host, _, port = settings.temporal_address.rpartition(":")
    command = [
        str(BIN / "temporal"),
        "server",
        "start-dev",
        "--db-filename",
        str(settings.data_dir / "temporal.db"),
        "--ip",
        host or "127.0.0.1",
        "--port",
        port,
        "--ui-port",
        str(settings.ui_port),
        "--namespace",
        settings.temporal_namespace,
        "--log-level",
        "warn",
    ]
    for key in ALL_KEYS:
        kind = _SEARCH_ATTRIBUTE_TYPES[key.indexed_value_type.name]
        command += ["--search-attribute", f"{key.name}={kind}"]
    return command


async def wait_for_temporal(settings: Settings) -> None:
    deadline = asyncio.get_running_loop().time() + TEMPORAL_READY_TIMEOUT
    while True:
        try:
            client = await connect(settings)
            await client.service_client.check_health()
            return
        except Exception as error:  # not up yet; give up only after the deadline
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(
                    f"Temporal did not start within {TEMPORAL_READY_TIMEOUT}s"
                ) from error
            await asyncio.sleep(0.5)


@dataclass
class Part:
    """One process of the stack, kept running until the stack stops."""

    name: str
    command: Sequence[str]
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(*self.command, start_new_session=True)
        logger.info("started", extra={"part": self.name, "pid": self.process.pid})

    async def supervise(self, stopping: asyncio.Event) -> None:
        """Restart the part whenever it exits on its own, with a growing pause."""
        delay = FIRST_RESTART_DELAY
        loop = asyncio.get_running_loop()
        while not stopping.is_set():
            if self.process is None:
                await self.start()
            assert self.process is not None
            started_at = loop.time()
            code = await self.process.wait()
            if stopping.is_set():
                return
            if loop.time() - started_at >= STABLE_AFTER:
                delay = FIRST_RESTART_DELAY
            self.restarts += 1
            logger.error(
                "part exited; restarting",
                extra={
                    "part": self.name,
                    "exit_code": code,
                    "restart_in_seconds": delay,
                    "restarts": self.restarts,
                },
            )
            self.process = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
            delay = min(delay * 2, MAX_RESTART_DELAY)

    async def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            logger.warning("did not stop in time; killing", extra={"part": self.name})
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        logger.info("stopped", extra={"part": self.name, "exit_code": process.returncode})


async def announce_when_ready(settings: Settings, stopping: asyncio.Event) -> None:
    """Log "Tramita is running" once the API answers /readyz (Temporal reachable)."""
    url = f"http://{settings.api_host}:{settings.api_port}/readyz"
    loop = asyncio.get_running_loop()
    warn_at = loop.time() + NOT_READY_WARNING_SECONDS
    async with httpx.AsyncClient(timeout=2) as client:
        while not stopping.is_set():
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    logger.info(
                        "Tramita is running (Ctrl-C stops it)",
                        extra={
                            "web_ui": f"http://localhost:{settings.ui_port}",
                            "api_docs": f"http://{settings.api_host}:{settings.api_port}/docs",
                            "outgoing_mail": str(settings.data_dir / "mail"),
                            "inbound_smtp": f"{settings.inbound_smtp_host}:"
                            f"{settings.inbound_smtp_port}",
                        },
                    )
                    return
            if loop.time() > warn_at:
                logger.warning("the API does not answer yet; still waiting", extra={"url": url})
                warn_at = loop.time() + NOT_READY_WARNING_SECONDS
            await asyncio.sleep(READY_POLL_SECONDS)


async def run(settings: Settings) -> int:
    (settings.data_dir / "mail").mkdir(parents=True, exist_ok=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)

    python = sys.executable
    temporal = Part("temporal", temporal_command(settings))
    later = [
        Part("worker", [python, "worker.py"]),
        Part("api", [python, "-m", "api"]),
        Part("mail listener", [python, "-m", "mail.listener"]),
    ]
    parts = [temporal, Part("mail sink", [python, "-m", "devstack.mailsink"]), *later]
    tasks: list[asyncio.Task[None]] = []
    try:
        for part in parts[:2]:
            tasks.append(asyncio.create_task(part.supervise(stopping)))
        await wait_for_temporal(settings)
        for part in later:
            tasks.append(asyncio.create_task(part.supervise(stopping)))
        tasks.append(asyncio.create_task(announce_when_ready(settings, stopping)))
        await stopping.wait()
        return 0
    finally:
        stopping.set()
        # Reverse order: API and worker first, Temporal last, so in-flight work can finish.
        for part in reversed(parts):
            await part.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def main() -> None:
    run_process("make run", run)


if __name__ == "__main__":
    main()
