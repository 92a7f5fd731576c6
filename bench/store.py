"""(7) The ticket store under a full desk: the console's queue page and the API's list,
searched and sorted, with ``--store-tickets`` tickets in the store.

The tickets are made by the pure core (no workflow runs them: only the store is
measured) and written straight into the store the bench API reads. Each page is asked
for one request at a time over loopback, so its wall time is the API's time.
"""

from __future__ import annotations

import logging
import random
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from activities.store import TicketStore
from bench.scenarios import calendar_for, percentile
from config import Settings
from workflows import lifecycle
from workflows.messages import AssignCommand, NoteCommand, ResolveCommand, WaitCommand
from workflows.models import (
    BuiltInProfile,
    Nature,
    Priority,
    ResolutionMethod,
    TicketFields,
    TicketView,
    WaitReason,
)
from workflows.policy import policy_for

logger = logging.getLogger("bench.store")

AGENT_KEY = "dev-agent-key"
WORDS = ["nota", "fiscal", "boleto", "impressora", "erro", "senha", "relatório", "XML"]
SEARCH = "nota fiscal"  # two words, as an agent types them
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def desk(count: int, settings: Settings) -> list[TicketView]:
    """``count`` tickets in the mix of a working desk: new, in progress, waiting for the
    customer, resolved, with varied titles, requesters, agents and priorities."""
    chance = random.Random(7)
    calendar = calendar_for(settings)
    policy = policy_for(BuiltInProfile.SUPPORT)
    started = datetime.now(UTC) - timedelta(days=30)
    views = []
    for number in range(count):
        now = started + timedelta(minutes=4 * number)
        fields = TicketFields(
            title=" ".join(chance.sample(WORDS, 3)) + f" {number}",
            description="Bench ticket.",
            category=chance.choice(["fiscal", "financeiro", "hardware"]),
            nature=Nature.INCIDENT,
            priority=chance.choice(list(Priority)),
            requester=f"cliente{number % 900}@example.com",
            primary_contact=f"cliente{number % 900}@example.com",
        )
        state = lifecycle.new_ticket(
            ticket_id=f"s{number:07d}",
            policy=policy,
            calendar=calendar,
            fields=fields,
            now=now,
            actor="ana",
            submit=True,
        ).state
        agent = chance.choice(["ana", "bruno", "carla", None])
        steps: list[Any] = []
        if agent is not None:
            steps.append(AssignCommand(actor="ana", assignee=agent))
            fate = chance.random()
            if fate < 0.4:
                steps.append(WaitCommand(actor=agent, reason=WaitReason.CUSTOMER))
            elif fate < 0.6:
                steps.append(NoteCommand(actor=agent, body="Resolvido."))
                steps.append(ResolveCommand(actor=agent, method=ResolutionMethod.CUSTOMER_RESPONSE))
        for step in steps:
            now += timedelta(minutes=1)
            state = lifecycle.decide(state, step, now, policy, calendar).state
        views.append(lifecycle.view(state, policy))
    return views


async def list_latency(settings: Settings, tickets: int, requests: int) -> dict[str, Any]:
    store = TicketStore.from_url(settings.archive_url)
    logger.info("store: writing %s tickets", tickets)
    store.put_many(desk(tickets, settings))
    base = f"http://{settings.api_host}:{settings.api_port}"
    pages = {
        "console queue page (all open, next deadline, search)": (
            "/console/",
            {"queue": "all", "sort": "next_deadline", "q": SEARCH},
        ),
        "console unassigned queue": ("/console/", {"queue": "unassigned"}),
        "GET /tickets?sort=next_deadline&q=...": (
            "/tickets",
            {"sort": "next_deadline", "q": SEARCH, "page_size": "25"},
        ),
    }
    found: dict[str, dict[str, float]] = {}
    async with httpx.AsyncClient(base_url=base, timeout=30) as web:
        form = await web.get("/console/sign-in")
        token = CSRF.search(form.text)
        if token is None:
            raise RuntimeError("the console's sign-in page has no form")
        signed = await web.post("/console/sign-in", data={"key": AGENT_KEY, "csrf": token[1]})
        if signed.status_code != 303:
            raise RuntimeError(f"sign-in answered {signed.status_code}")
        headers = {"Authorization": f"Bearer {AGENT_KEY}"}
        for name, (path, params) in pages.items():
            times = []
            for _ in range(requests):
                began = time.perf_counter()
                answer = await web.get(path, params=params, headers=headers)
                times.append(time.perf_counter() - began)
                if answer.status_code != 200:
                    raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text[:200]}")
            found[name] = {
                "p50_ms": round(percentile(times, 0.50) * 1000, 1),
                "p95_ms": round(percentile(times, 0.95) * 1000, 1),
                "max_ms": round(max(times) * 1000, 1),
            }
    return {"tickets": store.count(), "requests_per_page": requests, "pages": found}
