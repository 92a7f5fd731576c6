"""``make run``: Temporal dev server (SQLite file, Web UI), worker, API and mail sink.

Runs in the foreground; Ctrl-C (or SIGTERM) stops every part and waits for it. State
lives under ``TRAMITA_DATA_DIR`` (``.data/``), so a second run finds every ticket and
timer where it was. Ports: Temporal from ``TRAMITA_TEMPORAL_ADDRESS`` (7233), the Web UI
on ``TRAMITA_UI_PORT`` (8233), the API on ``TRAMITA_API_PORT`` (8000), the mail sink on
``TRAMITA_SMTP_PORT`` (1025).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from config import Settings, connect, get_settings
from observability import configure_logging
from workflows.search import ALL_KEYS

logger = logging.getLogger("tramita.run")

BIN = Path(sys.executable).parent
TEMPORAL_READY_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0

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


async def start(name: str, command: Sequence[str]) -> asyncio.subprocess.Process:
    logger.info("starting", extra={"part": name})
    return await asyncio.create_subprocess_exec(*command, start_new_session=True)


async def stop_all(parts: dict[str, asyncio.subprocess.Process]) -> None:
    # Reverse order: API and worker first, Temporal last, so in-flight work can finish.
    for name, process in reversed(parts.items()):
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                logger.warning("did not stop in time; killing", extra={"part": name})
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        logger.info("stopped", extra={"part": name, "exit_code": process.returncode})


async def run(settings: Settings) -> int:
    (settings.data_dir / "mail").mkdir(parents=True, exist_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    parts: dict[str, asyncio.subprocess.Process] = {}
    try:
        parts["temporal"] = await start("temporal", temporal_command(settings))
        parts["mail sink"] = await start("mail sink", [sys.executable, "-m", "devstack.mailsink"])
        await wait_for_temporal(settings)
        parts["worker"] = await start("worker", [sys.executable, "worker.py"])
        parts["api"] = await start("api", [sys.executable, "-m", "api"])
        logger.info(
            "Tramita is running (Ctrl-C stops it)",
            extra={
                "web_ui": f"http://localhost:{settings.ui_port}",
                "api_docs": f"http://{settings.api_host}:{settings.api_port}/docs",
                "mail": str(settings.data_dir / "mail"),
            },
        )
        exits = [asyncio.create_task(p.wait()) for p in parts.values()]
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([stopping, *exits], return_when=asyncio.FIRST_COMPLETED)
        for name, process in parts.items():
            if process.returncode is not None and not stop.is_set():
                logger.error(
                    "a part exited; stopping the rest",
                    extra={"part": name, "exit_code": process.returncode},
                )
        for task in [stopping, *exits]:
            task.cancel()
        return 0 if stop.is_set() else 1
    finally:
        await stop_all(parts)


def main() -> None:
    settings = get_settings()
    configure_logging(settings)
    try:
        status = asyncio.run(run(settings))
    except Exception:
        logger.exception("make run failed")
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # the Temporal SDK may abort at interpreter exit (sdk-python#300)


if __name__ == "__main__":
    main()
