"""1,000 tickets driven concurrently with random valid and invalid commands (dev server).

Afterwards every ticket's invariants hold: timeline sequence, status versus deadlines,
closed is terminal. Marked ``slow``; ``make test`` runs it.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import timedelta

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.archive import ArchiveStore
from api.errors import rejection_body
from api.failures import TicketNotFound
from api.gateway import TicketGateway
from config import Settings
from tests.support.temporal import start_ticket, strict_worker
from workflows.messages import (
    AssignCommand,
    CustomerReplyCommand,
    NoteCommand,
    ReopenCommand,
    ResolveCommand,
    ResumeCommand,
    StartCommand,
    WaitCommand,
)
from workflows.models import (
    BuiltInProfile,
    Command,
    ResolutionMethod,
    Status,
    TicketView,
    WaitReason,
)
from workflows.transaction import CommandRejected

TICKETS = 1000
COMMANDS_PER_TICKET = 5
CONCURRENCY = 48
QUEUE = "tramita-load-tests"

CHOICES: list[Command] = [
    AssignCommand(actor="ana", assignee="ana"),
    StartCommand(actor="ana"),
    WaitCommand(actor="ana", reason=WaitReason.CUSTOMER),
    WaitCommand(actor="ana", reason=WaitReason.CUSTOMER, days=2),
    WaitCommand(actor="ana", reason=WaitReason.RELEASE, version="1.0"),
    ResumeCommand(actor="ana"),
    NoteCommand(actor="ana", body="n"),
    CustomerReplyCommand(actor="c@example.com", body="r"),
    ResolveCommand(actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE, note="x"),
    ResolveCommand(actor="ana", method=ResolutionMethod.SPAM),
    ReopenCommand(actor="ana"),
]


def check_invariants(view: TicketView) -> None:
    assert [e.seq for e in view.timeline] == list(range(1, len(view.timeline) + 1))
    if view.status is Status.CLOSED:
        assert view.closed_at is not None and view.deadlines == ()
        assert view.timeline[-1].type.value in ("closed", "rejected_command")
    elif view.status is Status.RESOLVED:
        assert view.deadlines and view.deadlines[-1].kind.value == "auto_close"
    elif (
        view.status is Status.WAITING
        and view.wait is not None
        and view.wait.reason in (WaitReason.CUSTOMER,)
    ):
        assert view.deadlines, "a customer wait arms its timers"
    else:
        assert view.deadlines == ()


@pytest.mark.slow
async def test_a_thousand_tickets_under_random_commands_keep_their_invariants(
    dev_env: WorkflowEnvironment, worker_settings: Settings, http_client: httpx.AsyncClient
) -> None:
    settings = worker_settings.model_copy(update={"task_queue": QUEUE})
    tickets = TicketGateway(
        dev_env.client,
        ArchiveStore.from_url(settings.archive_url),
        rpc_timeout=timedelta(seconds=60),
    )
    outcomes: Counter[str] = Counter()
    gate = asyncio.Semaphore(CONCURRENCY)
    rng = random.Random(20261122)
    plans = [
        (
            BuiltInProfile.ENATE if n % 2 else BuiltInProfile.SUPPORT,
            [rng.choice(CHOICES) for _ in range(COMMANDS_PER_TICKET)],
        )
        for n in range(TICKETS)
    ]

    async def drive(number: int) -> TicketView:
        profile, commands = plans[number]
        ticket_id = f"load-{number}"
        async with gate:
            await start_ticket(dev_env.client, QUEUE, profile=profile, ticket_id=ticket_id)
            for command in commands:
                try:
                    await tickets.send(ticket_id, command, update_id=None)
                    outcomes["applied"] += 1
                except CommandRejected as rejected:  # the core said no (or the ticket closed)
                    outcomes[f"rejected {rejection_body(rejected)[0]}"] += 1
                except TicketNotFound:
                    outcomes["rejected 404"] += 1
            return await tickets.read(ticket_id)

    async with strict_worker(dev_env.client, settings, http_client):
        views = await asyncio.gather(*(drive(n) for n in range(TICKETS)))
    for view in views:
        check_invariants(view)
    assert outcomes["applied"] > TICKETS, outcomes
    rejected = {k: v for k, v in outcomes.items() if k.startswith("rejected")}
    assert sum(rejected.values()) > TICKETS // 2, outcomes
    assert set(rejected) <= {"rejected 409", "rejected 422"}, outcomes
