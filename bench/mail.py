"""(8) to (10) Inbound mail: routed per second against the same commands sent directly,
IMAP APPEND to the timeline event with IDLE, and memory for a 20 MB message.

(8) Both phases answer customers' emails on tickets waiting for them: the direct phase
    sends each ``customer_reply`` Update with the Temporal client; the inbound phase posts
    the raw reply (threaded to Tramita's email, as a mail client writes it) to
    ``/inbound/mime``, which parses it, keeps it whole, classifies it, threads it and
    sends the same command. Alternating rounds share the dev server's drift.
(9) A Dovecot server on loopback: a reply is APPENDed to the followed mailbox, and the
    time until its ticket shows the customer's reply is measured, one at a time.
(10) One 20 MB message (text and three attachments) posted to ``/inbound/mime``: the API
    process's peak resident memory above what it used just before.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import httpx
from temporalio.client import Client

from activities.calendar import build_calendar_snapshot
from activities.store import TicketStore
from bench.profiles import FAR, REQUESTER
from bench.scenarios import start_ticket, waiting_ticket
from bench.stack import CpuMeter, Part
from config import Settings
from tests.support.dovecot import Dovecot
from workflows import lifecycle
from workflows.commands import spec_of
from workflows.messages import CustomerReplyCommand
from workflows.models import CalendarRequest, CommandResult, workflow_id_for

SYSTEM_KEY = {"Authorization": "Bearer dev-system-key"}
IMAP_USER, IMAP_PASSWORD = "suporte", "bench-password"
OPEN_PARALLELISM = 16


@dataclass
class Rate:
    messages: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def _calendar() -> Any:
    now = datetime.now(UTC)
    return build_calendar_snapshot(
        CalendarRequest(
            timezone="America/Sao_Paulo",
            work_days=(1, 2, 3, 4, 5),
            opens_at=datetime.strptime("08:00", "%H:%M").time(),
            closes_at=datetime.strptime("18:00", "%H:%M").time(),
            country="BR",
            subdivision=None,
            from_year=now.year,
        )
    )


async def open_waiting(client: Client, settings: Settings, prefix: str, count: int) -> list[str]:
    """``count`` support tickets waiting for their customer, their reminders hours away;
    each listed in the ticket store and keeping its row there, as the API's tickets do
    (routing reads a ticket from the store)."""
    calendar = _calendar()
    store = TicketStore.from_url(settings.archive_url)
    gate = asyncio.Semaphore(OPEN_PARALLELISM)
    ids = [f"{prefix}{n}" for n in range(count)]

    async def one(ticket_id: str) -> None:
        async with gate:
            ticket = waiting_ticket(
                settings, ticket_id, calendar, datetime.now(UTC) + FAR, FAR, keep_store=True
            )
            assert ticket.state is not None
            await start_ticket(client, settings, ticket)
            await asyncio.to_thread(store.put, lifecycle.view(ticket.state, ticket.policy))

    await asyncio.gather(*(one(ticket_id) for ticket_id in ids))
    return ids


def reply_mime(ticket_id: str, run: str, domain: str) -> bytes:
    """A customer's reply to Tramita's email on ``ticket_id``, as a mail client writes it."""
    message = EmailMessage()
    message["From"] = f"Cliente <{REQUESTER}>"
    message["To"] = f"suporte@{domain}"
    message["Subject"] = f"Re: Erro ao emitir nota fiscal [#{ticket_id}]"
    message["Message-ID"] = f"<reply-{run}-{ticket_id}@mail.example.com>"
    message["In-Reply-To"] = f"<ticket-{ticket_id}.4@{domain}>"
    message["References"] = f"<ticket-{ticket_id}.4@{domain}>"
    # Each its own, as real mail's (a header seen before costs the parser less).
    sent = time.time() - int(hashlib.sha256(ticket_id.encode()).hexdigest()[:8], 16) % 86_400
    message["Date"] = formatdate(sent, localtime=True)
    message.set_content(
        "Segue o print do erro.\n\nEm seg., 30 de nov. de 2026, Suporte escreveu:\n"
        "> ##- Por favor, responda acima desta linha -##\n> Poderia enviar um print?\n"
    )
    return message.as_bytes()


async def direct_replies(client: Client, ids: list[str], concurrency: int, run: str) -> Rate:
    gate = asyncio.Semaphore(concurrency)
    # Made before the clock starts, as the inbound phase's messages are.
    commands = {
        ticket_id: CustomerReplyCommand(
            actor=REQUESTER,
            body="Segue o print do erro.",
            subject=f"Re: Erro ao emitir nota fiscal [#{ticket_id}]",
            message_id=f"<reply-{run}-{ticket_id}@mail.example.com>",
            from_address=REQUESTER,
        )
        for ticket_id in ids
    }

    async def one(ticket_id: str) -> None:
        async with gate:
            command = commands[ticket_id]
            handle = client.get_workflow_handle(workflow_id_for(ticket_id))
            await handle.execute_update(spec_of(command).name, command, result_type=CommandResult)

    started = time.perf_counter()
    await asyncio.gather(*(one(ticket_id) for ticket_id in ids))
    return Rate(len(ids), time.perf_counter() - started)


async def inbound_replies(
    http: httpx.AsyncClient, ids: list[str], concurrency: int, run: str, domain: str
) -> Rate:
    gate = asyncio.Semaphore(concurrency)
    headers = {**SYSTEM_KEY, "Content-Type": "message/rfc822"}
    # Written before the clock starts: a mail server delivers bytes it already has (the
    # email package takes about a millisecond to write one, on the cores measured).
    messages = {ticket_id: reply_mime(ticket_id, run, domain) for ticket_id in ids}

    async def one(ticket_id: str) -> None:
        async with gate:
            response = await http.post(
                "/inbound/mime", content=messages[ticket_id], headers=headers
            )
            outcome = response.json().get("outcome") if response.status_code == 200 else None
            if outcome != "reply":
                raise RuntimeError(f"{ticket_id}: {response.status_code} {response.text[:300]}")

    started = time.perf_counter()
    await asyncio.gather(*(one(ticket_id) for ticket_id in ids))
    return Rate(len(ids), time.perf_counter() - started)


async def routing_throughput(
    client: Client,
    settings: Settings,
    api_url: str,
    cpu: CpuMeter,
    messages: int,
    concurrency: int,
    rounds: int,
    run: str,
) -> dict[str, Any]:
    """(8): inbound replies per second through /inbound/mime, and direct ones, with the
    CPU each process spent per message in each."""
    direct: list[Rate] = []
    inbound: list[Rate] = []
    spent: dict[str, dict[str, float]] = {"direct": {}, "inbound": {}}

    def add_spent(phase: str) -> None:
        for part, seconds in cpu.spent().items():
            spent[phase][part] = spent[phase].get(part, 0.0) + seconds

    async with httpx.AsyncClient(base_url=api_url, timeout=60) as http:
        for round_number in range(rounds):
            # Each phase's tickets opened just before it, so that they are the ones the
            # worker has cached (a phase finding its tickets evicted would replay them).
            direct_ids = await open_waiting(client, settings, f"md{run}r{round_number}-", messages)
            await asyncio.sleep(2)  # let the worker load them: openings are not measured
            cpu.start()
            direct.append(await direct_replies(client, direct_ids, concurrency, run))
            add_spent("direct")
            inbound_ids = await open_waiting(client, settings, f"mi{run}r{round_number}-", messages)
            await asyncio.sleep(2)
            cpu.start()
            inbound.append(
                await inbound_replies(http, inbound_ids, concurrency, run, settings.mail_domain)
            )
            add_spent("inbound")
    direct_rate = sum(r.messages for r in direct) / sum(r.seconds for r in direct)
    inbound_rate = sum(r.messages for r in inbound) / sum(r.seconds for r in inbound)
    return {
        "messages_per_phase_and_round": messages,
        "concurrency": concurrency,
        "direct_per_second": round(direct_rate, 2),
        "inbound_per_second": round(inbound_rate, 2),
        "inbound_to_direct": round(inbound_rate / direct_rate, 3),
        "by_round": [
            round(i.per_second / d.per_second, 3) for i, d in zip(inbound, direct, strict=True)
        ],
        "cpu_ms_per_message": {
            phase: {
                part: round(seconds * 1000 / (messages * rounds), 1)
                for part, seconds in parts.items()
            }
            for phase, parts in spent.items()
        },
    }


def dovecot_mailbox(server: Dovecot) -> dict[str, str]:
    return {
        "TRAMITA_IMAP_MAILBOXES": json.dumps(
            [
                {
                    "host": "127.0.0.1",
                    "port": server.port,
                    "tls": False,
                    "username": IMAP_USER,
                    "password": IMAP_PASSWORD,
                }
            ]
        ),
    }


async def imap_latency(
    client: Client, settings: Settings, server: Dovecot, samples: int, run: str
) -> dict[str, Any]:
    """(9): APPEND to the followed mailbox, until the ticket shows the customer's reply."""
    ids = await open_waiting(client, settings, f"mx{run}-", samples)
    await asyncio.sleep(2)
    latencies = []
    for ticket_id in ids:
        handle = client.get_workflow_handle(workflow_id_for(ticket_id))
        raw = reply_mime(ticket_id, run, settings.mail_domain)
        started = time.perf_counter()
        await asyncio.to_thread(server.append, IMAP_USER, raw)
        while True:
            view = await handle.query("view")
            if any(event["type"] == "customer_reply" for event in view["timeline"]):
                break
            if time.perf_counter() - started > 60:
                raise RuntimeError(f"{ticket_id}: no reply on the timeline after 60 s")
            await asyncio.sleep(0.02)
        latencies.append(time.perf_counter() - started)
    ordered = sorted(latencies)
    return {
        "samples": samples,
        "p50_ms": round(statistics.median(ordered) * 1000),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000),
        "max_ms": round(ordered[-1] * 1000),
    }


def big_message(size: int) -> bytes:
    """A message of about ``size`` bytes: a text and three attachments of random data."""
    message = EmailMessage()
    message["From"] = f"Cliente <{REQUESTER}>"
    message["To"] = "suporte@tramita.bench"
    message["Subject"] = "Logs completos do servidor"
    message["Message-ID"] = f"<big-{os.getpid()}-{time.time_ns()}@mail.example.com>"
    message.set_content("Seguem os logs completos, como pedido.")
    # Base64 grows data by a third: three attachments of this size make ``size`` in all.
    each = size * 3 // 4 // 3
    for number in range(3):
        message.add_attachment(
            os.urandom(each), maintype="application", subtype="gzip", filename=f"log-{number}.gz"
        )
    return message.as_bytes()


async def big_message_memory(api_url: str, api: Part, size: int) -> dict[str, Any]:
    """(10): the API's peak resident memory while it takes one ``size``-byte message."""
    raw = big_message(size)
    await asyncio.sleep(1)
    api.reset_peak()
    before = api.rss_bytes()
    async with httpx.AsyncClient(base_url=api_url, timeout=120) as http:
        response = await http.post(
            "/inbound/mime",
            content=raw,
            headers={**SYSTEM_KEY, "Content-Type": "message/rfc822"},
        )
    await asyncio.sleep(0.5)
    if response.status_code != 200 or response.json()["outcome"] != "new_ticket":
        raise RuntimeError(f"the big message: {response.status_code} {response.text[:300]}")
    return {
        "message_bytes": len(raw),
        "api_rss_before_mib": round(before / 2**20),
        "api_extra_peak_rss_mib": round((api.peak_rss_bytes - before) / 2**20),
    }
