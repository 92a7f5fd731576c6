"""``python -m bench.serve_worker``: the Tramita worker plus the two ceiling workflows.

The ticket worker is :func:`worker.build_worker`, exactly as in production; the no-op and
ticket-shaped workflows get a worker of their own on ``<task queue>-noop`` in the same
process, so all compete for the same CPU the way the measurements compare them.
"""

from __future__ import annotations

import asyncio
import compileall
import logging
import os
import signal
from pathlib import Path

import httpx
from temporalio.worker import Worker

from bench.noop import NoopWorkflow
from bench.shaped import TicketShapedWorkflow, archive, effect
from config import Settings, connect, get_settings
from observability import configure_logging, worker_runtime
from worker import POLLERS, build_worker, precompile_workflows

logger = logging.getLogger("tramita.bench.worker")


def noop_queue(settings: Settings) -> str:
    return f"{settings.task_queue}-noop"


async def serve(settings: Settings) -> None:
    precompile_workflows()
    # The ceilings' modules are loaded afresh per workflow too: the same head start.
    compileall.compile_dir(Path(__file__).parent, quiet=2)
    client = await connect(settings, runtime=worker_runtime(settings))
    async with httpx.AsyncClient(timeout=settings.webhook_timeout_seconds) as http_client:
        tickets = build_worker(client, settings, http_client=http_client)
        noop = Worker(
            client,
            task_queue=noop_queue(settings),
            workflows=[NoopWorkflow, TicketShapedWorkflow],
            activities=[archive, effect],
            workflow_task_poller_behavior=POLLERS,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with tickets, noop:
            logger.info("bench worker started")
            await stop.wait()


def main() -> None:
    settings = get_settings()
    configure_logging(settings)
    status = 0
    try:
        asyncio.run(serve(settings))
    except Exception:
        logger.exception("bench worker failed")
        status = 1
    # The SDK's runtime may abort at interpreter exit (sdk-python#300); leave at once.
    os._exit(status)


if __name__ == "__main__":
    main()
