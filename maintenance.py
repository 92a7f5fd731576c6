"""Operators' commands: ``python -m maintenance <command>`` (README, "Operations").

``rebuild-store``
    Writes the ticket store again from Temporal and the archive: the current view of
    every ticket of this deployment (``TRAMITA_TASK_QUEUE``) that Temporal still has
    (open, or closed within its retention; asked with the ``view`` query, so a worker
    must be running) and the final view of every archived ticket. ``--from-scratch``
    empties the store first. A ticket that changes meanwhile writes its own, newer row,
    which the rebuild does not overwrite.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from temporalio.client import Client
from temporalio.service import RPCError

from activities.archive import ArchiveStore, archived_tickets
from activities.store import TicketStore
from api.listing import quote
from config import Settings, connect
from observability import run_process
from workflows.models import TicketView

logger = logging.getLogger("tramita.maintenance")

QUERY_PARALLELISM = 16
QUERY_TIMEOUT = timedelta(seconds=30)


@dataclass(frozen=True)
class Rebuilt:
    from_temporal: int
    from_archive: int
    unreadable: tuple[str, ...]


async def rebuild_store(
    client: Client,
    store: TicketStore,
    archive: ArchiveStore,
    *,
    task_queue: str,
    from_scratch: bool = False,
) -> Rebuilt:
    """Every ticket of ``task_queue`` (this deployment's) that Temporal has, and every
    archived one, written to the store."""
    if from_scratch:
        await asyncio.to_thread(store.clear)
    gate = asyncio.Semaphore(QUERY_PARALLELISM)
    unreadable: list[str] = []
    seen: set[str] = set()

    async def read(workflow_id: str) -> TicketView | None:
        async with gate:
            try:
                view: TicketView = await client.get_workflow_handle(workflow_id).query(
                    "view", result_type=TicketView, rpc_timeout=QUERY_TIMEOUT
                )
            except RPCError as error:
                logger.warning(
                    "ticket not readable", extra={"workflow_id": workflow_id, "error": str(error)}
                )
                unreadable.append(workflow_id)
                return None
            return view

    query = f"WorkflowType = 'TicketWorkflow' AND TaskQueue = {quote(task_queue)}"
    ids = [execution.id async for execution in client.list_workflows(query)]
    # The latest run of each ticket: visibility lists every run of a continued ticket.
    views = [view for view in await asyncio.gather(*map(read, dict.fromkeys(ids))) if view]
    for view in views:
        seen.add(view.id)
    from_temporal = await asyncio.to_thread(store.put_many, views)

    archived = await asyncio.to_thread(_archived_views, archive, seen)
    from_archive = await asyncio.to_thread(store.put_many, archived)
    # A ticket Temporal could not answer for may still be in the archive.
    still_missing = tuple(
        wid for wid in unreadable if wid.removeprefix("ticket-") not in {v.id for v in archived}
    )
    return Rebuilt(from_temporal, from_archive, still_missing)


def _archived_views(archive: ArchiveStore, skip: set[str]) -> list[TicketView]:
    with archive.engine.connect() as connection:
        rows = connection.execute(select(archived_tickets.c.id, archived_tickets.c.view)).all()
    return [TicketView.model_validate(view) for ticket_id, view in rows if ticket_id not in skip]


async def _rebuild(settings: Settings, from_scratch: bool) -> int:
    client = await connect(settings)
    result = await rebuild_store(
        client,
        TicketStore.from_url(settings.archive_url),
        ArchiveStore.from_url(settings.archive_url),
        task_queue=settings.task_queue,
        from_scratch=from_scratch,
    )
    logger.info(
        "ticket store rebuilt",
        extra={
            "from_temporal": result.from_temporal,
            "from_archive": result.from_archive,
            "unreadable": list(result.unreadable),
        },
    )
    return 1 if result.unreadable else 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m maintenance", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    rebuild = commands.add_parser("rebuild-store", help="write the ticket store again")
    rebuild.add_argument(
        "--from-scratch", action="store_true", help="empty the store before writing it"
    )
    args = parser.parse_args(argv)
    run_process("maintenance command", lambda settings: _rebuild(settings, args.from_scratch))


if __name__ == "__main__":
    main()
