"""The measurements. Each drives real tickets through the real stack and times them."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.common import TypedSearchAttributes
from temporalio.converter import decode_typed_search_attributes
from temporalio.service import RPCError

from activities.calendar import build_calendar_snapshot
from bench.ceiling_models import (
    Advance,
    NoopInput,
    Poke,
    ShapedAttribute,
    ShapedInput,
    ShapedReply,
    ShapedStep,
)
from bench.noop import NoopWorkflow
from bench.profiles import (
    AGENT,
    FEEDBACK_WINDOW,
    FIELDS,
    alert_policy,
    reminder_policy,
    standard_policy,
    standard_steps,
    with_sla,
)
from bench.serve_worker import noop_queue
from bench.shaped import TicketShapedWorkflow
from bench.stack import CpuMeter, MailSink, Part, worker_metrics
from config import Settings
from workflows import lifecycle
from workflows.commands import spec_of
from workflows.messages import AssignCommand, WaitCommand
from workflows.models import (
    BuiltInProfile,
    CalendarRequest,
    CalendarSnapshot,
    CommandResult,
    EventType,
    ProfileName,
    Status,
    TicketInput,
    TicketView,
    WaitReason,
    workflow_id_for,
)
from workflows.search import starting_search_attributes
from workflows.ticket import TITLE_MEMO, TicketWorkflow

logger = logging.getLogger("tramita.bench")

AGENT_KEY = "dev-agent-key"
REQUESTER_KEY = "dev-requester-key"
QUERY_PARALLELISM = 16
QUERY_ATTEMPTS = 3
QUERY_TIMEOUT = timedelta(seconds=30)
CREATE_PARALLELISM = 64
HTTP_ATTEMPTS = 5
# How long after the last due time the timer run still waits for reminder emails.
STRAGGLER_PATIENCE = 60.0
LOAD_POLL_SECONDS = 1.0
# Tickets whose histories are read to split the lateness into its parts.
LATENESS_SAMPLE = 200
LATENESS_PARTS = ("armed", "fired", "picked_up")


def calendar_for(settings: Settings) -> CalendarSnapshot:
    request = CalendarRequest.like(
        settings.calendar_template(),
        from_year=datetime.now(UTC).year,
        years_ahead=settings.calendar_years_ahead,
    )
    return build_calendar_snapshot(request)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, round(fraction * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 0.50) * 1000, 1),
        "p99_ms": round(percentile(values, 0.99) * 1000, 1),
        "max_ms": round(max(values, default=0.0) * 1000, 1),
    }


@dataclass
class Throughput:
    name: str
    completed: int
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)
    """Per step: requests answered 503 and sent again."""

    def merged(self, other: Throughput) -> Throughput:
        latencies = {step: list(values) for step, values in self.latencies.items()}
        for step, values in other.latencies.items():
            latencies.setdefault(step, []).extend(values)
        retries = dict(self.retries)
        for step, count in other.retries.items():
            retries[step] = retries.get(step, 0) + count
        return Throughput(
            self.name,
            self.completed + other.completed,
            self.seconds + other.seconds,
            latencies,
            retries,
        )

    @property
    def per_second(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "completed": self.completed,
            "seconds": round(self.seconds, 2),
            "per_second": round(self.per_second, 2),
            "latency": {step: summary_ms(values) for step, values in self.latencies.items()},
            "retries": self.retries,
        }


async def _closed_loop(
    name: str, count: int, concurrency: int, one: Callable[[int, Throughput], Awaitable[None]]
) -> Throughput:
    """Runs ``count`` lifecycles with at most ``concurrency`` in flight."""
    result = Throughput(name, 0, 0.0)
    gate = asyncio.Semaphore(concurrency)

    async def guarded(number: int) -> None:
        async with gate:
            await one(number, result)
            result.completed += 1

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for number in range(count):
            group.create_task(guarded(number))
    result.seconds = time.perf_counter() - started
    return result


Phase = Callable[[Client, Settings, int, int, str], Awaitable[Throughput]]
"""A throughput measurement: (client, settings, lifecycles, concurrency, run id)."""


def _timed(result: Throughput, step: str, started: float) -> None:
    result.latencies.setdefault(step, []).append(time.perf_counter() - started)


# ------------------------------------------------------------------ (1) ceiling


async def ceiling(
    client: Client, settings: Settings, count: int, concurrency: int, run: str
) -> Throughput:
    updates = len(standard_steps(BuiltInProfile.SUPPORT))

    async def one(number: int, result: Throughput) -> None:
        started = time.perf_counter()
        handle = await client.start_workflow(
            NoopWorkflow.run,
            NoopInput(updates=updates, window=FEEDBACK_WINDOW),
            id=f"noop-{run}-{number}",
            task_queue=noop_queue(settings),
        )
        _timed(result, "create", started)
        for step in range(updates):
            started = time.perf_counter()
            await handle.execute_update(NoopWorkflow.poke, Poke(step=str(step)))
            _timed(result, f"update {step + 1}", started)
        await handle.result()

    return await _closed_loop("ceiling", count, concurrency, one)


# ------------------------------------------------------------------ (1b) ticket-shaped ceiling


@dataclass(frozen=True)
class TicketShape:
    """What :class:`TicketShapedWorkflow` needs to leave the history of ``reference``."""

    input: ShapedInput
    search_attributes: TypedSearchAttributes
    reference: dict[str, Any]
    """:func:`history_summary` of the ticket the shape was read from."""


def _payload_bytes(payloads: Payloads) -> int:
    return sum(len(payload.data) for payload in payloads.payloads)


async def ticket_shape(client: Client, settings: Settings, run: str) -> TicketShape:
    """The shape of one real standard support lifecycle, read from its history.

    The size of its input, of each update's answer and of its result, the timer each
    update left armed, and the search attributes it started with.
    """
    handle = await run_standard_lifecycle(
        client, settings, f"shape{run}", BuiltInProfile.SUPPORT, calendar_for(settings)
    )
    history = await handle.fetch_history()
    names = [step.name for step in standard_steps(BuiltInProfile.SUPPORT)]
    steps: list[ShapedStep] = []
    closing: list[ShapedAttribute] = []
    in_update = patched = False
    input_bytes = result_bytes = opening = closing_local = 0
    attributes = TypedSearchAttributes.empty
    for event in history.events:
        match event.event_type:
            case HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                started = event.workflow_execution_started_event_attributes
                input_bytes = _payload_bytes(started.input)
                attributes = decode_typed_search_attributes(started.search_attributes)
            case HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
                steps.append(ShapedStep(name=names[len(steps)], reply_bytes=0))
                in_update = True
            case HistoryEventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
                upserted = event.upsert_workflow_search_attributes_event_attributes
                shaped = _shaped_attributes(upserted.search_attributes.indexed_fields)
                if in_update:
                    steps[-1].attributes.extend(shaped)
                else:
                    closing.extend(shaped)
            case HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
                outcome = event.workflow_execution_update_completed_event_attributes.outcome
                steps[-1].reply_bytes = _payload_bytes(outcome.success)
                in_update = False
            case HistoryEventType.EVENT_TYPE_TIMER_STARTED if steps:
                timer = event.timer_started_event_attributes.start_to_fire_timeout
                steps[-1].timer = timer.ToTimedelta()
            case HistoryEventType.EVENT_TYPE_MARKER_RECORDED:
                marker = event.marker_recorded_event_attributes.marker_name
                patched |= marker == PATCH_MARKER
                if marker == LOCAL_ACTIVITY_MARKER:
                    if not steps:
                        opening += 1
                    elif in_update:
                        steps[-1].local_activities += 1
                    else:
                        steps[-1].local_activities_after += 1
            case HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED if steps:
                steps[-1].activities_after += 1
            case HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
                result = event.workflow_execution_completed_event_attributes.result
                result_bytes = _payload_bytes(result)
    # What followed the last update (the feedback window's end) is the close.
    if steps:
        closing_local, steps[-1].local_activities_after = steps[-1].local_activities_after, 0
    shaped_input = ShapedInput(
        steps=steps,
        closing_attributes=closing,
        result_bytes=result_bytes,
        patched=patched,
        opening_local_activities=opening,
        closing_local_activities=closing_local,
    )
    ballast = "x" * max(0, input_bytes - len(shaped_input.model_dump_json()))
    return TicketShape(
        input=shaped_input.model_copy(update={"ballast": ballast}),
        search_attributes=attributes,
        reference=history_summary(history),
    )


# The markers the SDK records for ``workflow.patched`` and for a local activity.
PATCH_MARKER = "core_patch"
LOCAL_ACTIVITY_MARKER = "core_local_activity"
SEARCH_ATTRIBUTE_KINDS: dict[bytes, Literal["keyword", "datetime", "bool"]] = {
    b"Keyword": "keyword",
    b"Datetime": "datetime",
    b"Bool": "bool",
}


def _shaped_attributes(fields: Mapping[str, Payload]) -> list[ShapedAttribute]:
    """An upsert's attributes as the shaped workflow repeats them.

    The SDK's own (``TemporalChangeVersion``, from ``workflow.patched``) are left out: the
    shaped workflow's patch, if the ticket had one, makes its own.
    """
    shaped = []
    for name, payload in fields.items():
        if name.startswith("Temporal"):
            continue
        kind = SEARCH_ATTRIBUTE_KINDS[payload.metadata["type"]]
        value = None
        if payload.metadata.get("encoding") != b"binary/null":
            decoded = json.loads(payload.data)
            value = json.dumps(decoded) if kind == "bool" else decoded
        shaped.append(ShapedAttribute(name=name, kind=kind, value=value))
    return shaped


async def run_shaped_lifecycle(
    client: Client,
    settings: Settings,
    shape: TicketShape,
    workflow_id: str,
    result: Throughput | None = None,
) -> WorkflowHandle[TicketShapedWorkflow, ShapedReply]:
    """Started as the API starts a ticket (the same attributes, memo and summary), then
    sent one update per step of the ticket."""
    started = time.perf_counter()
    handle = await client.start_workflow(
        TicketShapedWorkflow.run,
        shape.input,
        id=workflow_id,
        task_queue=noop_queue(settings),
        static_summary=FIELDS.title,
        memo={TITLE_MEMO: FIELDS.title},
        search_attributes=shape.search_attributes,
    )
    if result is not None:
        _timed(result, "create", started)
    for step in shape.input.steps:
        started = time.perf_counter()
        await handle.execute_update(TicketShapedWorkflow.advance, Advance(step=step.name))
        if result is not None:
            _timed(result, step.name, started)
    await handle.result()
    return handle


async def shaped_history(
    client: Client, settings: Settings, shape: TicketShape, run: str
) -> dict[str, Any]:
    handle = await run_shaped_lifecycle(client, settings, shape, f"shaped-{run}-history")
    return history_summary(await handle.fetch_history())


def shaped_ceiling_for(shape: TicketShape) -> Phase:
    """The ticket-shaped ceiling as a throughput phase, for ``shape``."""

    async def shaped_ceiling(
        client: Client, settings: Settings, count: int, concurrency: int, run: str
    ) -> Throughput:
        async def one(number: int, result: Throughput) -> None:
            await run_shaped_lifecycle(client, settings, shape, f"shaped-{run}-{number}", result)

        return await _closed_loop("ticket-shaped ceiling", count, concurrency, one)

    return shaped_ceiling


# ------------------------------------------------------------------ (2) Temporal client


def standard_input(
    settings: Settings,
    ticket_id: str,
    profile: ProfileName,
    calendar: CalendarSnapshot,
    *,
    keep_store: bool = True,
    sla: bool = False,
) -> TicketInput:
    """What the API starts for ``POST /tickets`` (submit true), with the bench's timers;
    without the ticket store only to measure what keeping it costs, with SLA clocks to
    measure what they cost."""
    policy = standard_policy(profile)
    return TicketInput(
        ticket_id=ticket_id,
        policy=with_sla(policy) if sla else policy,
        calendar=calendar,
        fields=FIELDS,
        submit=True,
        actor=AGENT,
        deliver_webhooks=bool(settings.webhook_urls),
        notify_agents=bool(settings.agent_emails),
        archive_locally=True,
        keep_store=keep_store,
    )


async def start_ticket(
    client: Client, settings: Settings, ticket: TicketInput
) -> WorkflowHandle[TicketWorkflow, TicketView]:
    """Starts ``ticket`` the way the API does: a new one dated and listed from its start.

    A ticket handed its ``state`` (the timer run's waiting tickets) starts without search
    attributes: the upsert of its first workflow task is how the run knows it is armed.
    """
    attributes = TypedSearchAttributes.empty
    if ticket.state is None:
        opened_at = datetime.now(UTC)
        ticket = ticket.model_copy(update={"opened_at": opened_at})
        attributes = starting_search_attributes(lifecycle.opening(ticket, opened_at).state)
    return await client.start_workflow(
        TicketWorkflow.run,
        ticket,
        id=workflow_id_for(ticket.ticket_id),
        task_queue=settings.task_queue,
        static_summary=FIELDS.title,
        memo={TITLE_MEMO: FIELDS.title},
        search_attributes=attributes,
    )


async def run_standard_lifecycle(
    client: Client,
    settings: Settings,
    ticket_id: str,
    profile: ProfileName,
    calendar: CalendarSnapshot,
    result: Throughput | None = None,
    *,
    keep_store: bool = True,
    sla: bool = False,
) -> WorkflowHandle[TicketWorkflow, TicketView]:
    started = time.perf_counter()
    ticket = standard_input(settings, ticket_id, profile, calendar, keep_store=keep_store, sla=sla)
    handle = await start_ticket(client, settings, ticket)
    if result is not None:
        _timed(result, "create", started)
    for step in standard_steps(profile):
        started = time.perf_counter()
        await handle.execute_update(
            spec_of(step.command).name, step.command, result_type=CommandResult
        )
        if result is not None:
            _timed(result, step.name, started)
    view = await handle.result()
    if view.status is not Status.CLOSED:
        raise RuntimeError(f"ticket {ticket_id} ended {view.status}, not closed")
    return handle


def _client_phase(name: str, title: str, prefix: str, about: str, **options: bool) -> Phase:
    """A throughput phase of standard support lifecycles through the Temporal client;
    ``options`` go to :func:`run_standard_lifecycle` (the store kept, SLA clocks on)."""

    async def phase(
        client: Client, settings: Settings, count: int, concurrency: int, run: str
    ) -> Throughput:
        calendar = calendar_for(settings)

        async def one(number: int, result: Throughput) -> None:
            ticket_id = f"{prefix}{run}{number}"
            await run_standard_lifecycle(
                client, settings, ticket_id, BuiltInProfile.SUPPORT, calendar, result, **options
            )

        return await _closed_loop(title, count, concurrency, one)

    phase.__name__ = name  # the phase's name in results.json and the table
    phase.__doc__ = about
    return phase


client_lifecycles = _client_phase(
    "client_lifecycles", "temporal client", "c", "(2): the standard lifecycle."
)
client_lifecycles_without_store = _client_phase(
    "client_lifecycles_without_store",
    "temporal client, no store",
    "n",
    "The same lifecycles, with no ticket store kept: what keeping it costs.",
    keep_store=False,
)
client_lifecycles_with_sla = _client_phase(
    "client_lifecycles_with_sla",
    "temporal client, SLA on",
    "a",
    "The same lifecycles with SLA clocks on every metric: what the clocks cost.",
    sla=True,
)


# ------------------------------------------------------------------ (3) HTTP API


def _worth_retrying(response: httpx.Response) -> bool:
    """The 503 body says whether asking again can help (``retryable``)."""
    try:
        return bool(response.json().get("retryable", True))
    except ValueError:
        return True


def _retry_after(response: httpx.Response | None, attempt: int) -> float:
    """The API's ``Retry-After`` when it gives one, else a doubling pause."""
    given = response.headers.get("retry-after") if response is not None else None
    if given and given.isdigit():
        return float(given)
    return float(min(0.25 * 2.0 ** (attempt - 1), 4.0))


async def http_lifecycles(
    client: Client, settings: Settings, count: int, concurrency: int, run: str
) -> Throughput:
    base = f"http://{settings.api_host}:{settings.api_port}"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    steps = standard_steps(BuiltInProfile.SUPPORT)
    agent = {"Authorization": f"Bearer {AGENT_KEY}"}
    requester = {"Authorization": f"Bearer {REQUESTER_KEY}"}
    body = {
        "profile": BuiltInProfile.SUPPORT.value,
        **FIELDS.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
    }

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60.0) as http:

        async def call(
            step: str,
            path: str,
            json: dict[str, Any],
            headers: dict[str, str],
            expected: int,
            result: Throughput,
        ) -> None:
            # As a careful client does: an Idempotency-Key, and a retry when the API
            # answers 503 (Temporal slower than its deadline) or a pooled connection
            # fails as it is reused (the server may close an idle one just as the
            # request goes out); the key applies it once.
            keyed = headers | {"Idempotency-Key": secrets.token_hex(8)}
            started = time.perf_counter()
            response: httpx.Response | None = None
            for attempt in range(1, HTTP_ATTEMPTS + 1):
                try:
                    response = await http.post(path, json=json, headers=keyed)
                except httpx.TransportError:
                    if attempt == HTTP_ATTEMPTS:
                        raise
                else:
                    if response.status_code != 503 or not _worth_retrying(response):
                        break
                result.retries[step] = result.retries.get(step, 0) + 1
                await asyncio.sleep(_retry_after(response, attempt))
            _timed(result, step, started)
            if response is None or response.status_code != expected:
                answer = f"{response.status_code} {response.text}" if response else "no answer"
                raise RuntimeError(f"{step}: {answer}")

        async def one(number: int, result: Throughput) -> None:
            ticket_id = f"h{run}{number}"
            await call("create", "/tickets", {**body, "id": ticket_id}, agent, 201, result)
            for step in steps:
                await call(
                    step.name,
                    f"/tickets/{ticket_id}/{step.path}",
                    step.body,
                    requester if step.requester else agent,
                    200,
                    result,
                )
            view = await client.get_workflow_handle_for(
                TicketWorkflow.run, workflow_id_for(ticket_id)
            ).result()
            if view.status is not Status.CLOSED:
                raise RuntimeError(f"ticket {ticket_id} ended {view.status}, not closed")

        return await _closed_loop("http api", count, concurrency, one)


# ------------------------------------------------------------------ (6) history


async def history_of_standard_lifecycle(
    client: Client, settings: Settings, profile: ProfileName, run: str
) -> dict[str, Any]:
    handle = await run_standard_lifecycle(
        client, settings, f"s{run}{profile}", profile, calendar_for(settings)
    )
    return history_summary(await handle.fetch_history())


def history_summary(history: WorkflowHistory) -> dict[str, Any]:
    """Events (by kind), bytes and activities of one workflow's history."""
    kinds = Counter(
        (event.WhichOneof("attributes") or "unknown").removesuffix("_event_attributes")
        for event in history.events
    )
    activities = Counter(
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    )
    return {
        "activities": dict(activities.most_common()),
        "events": len(history.events),
        "bytes": sum(event.ByteSize() for event in history.events),
        "by_kind": dict(kinds.most_common()),
    }


# ------------------------------------------------------------------ (4) and (5) timers


def waiting_ticket(
    settings: Settings,
    ticket_id: str,
    calendar: CalendarSnapshot,
    reminder_due: datetime,
    first_reminder: timedelta,
    *,
    keep_store: bool = False,
) -> TicketInput:
    """A support ticket already assigned and waiting for the customer.

    Its state comes from the pure lifecycle core (the same calls the workflow makes), so
    one start puts it where three commands would; the workflow then arms the reminder
    from that state exactly as after a continue-as-new. With ``keep_store`` it writes its
    row in the ticket store on every change, as the API's tickets do.
    """
    policy = reminder_policy(BuiltInProfile.SUPPORT, first_reminder)
    waited_at = reminder_due - first_reminder
    state = lifecycle.new_ticket(
        ticket_id=ticket_id,
        policy=policy,
        calendar=calendar,
        fields=FIELDS,
        now=waited_at,
        actor=AGENT,
        submit=True,
    ).state
    for command in (
        AssignCommand(actor=AGENT, assignee=AGENT),
        WaitCommand(actor=AGENT, reason=WaitReason.CUSTOMER),
    ):
        state = lifecycle.decide(state, command, waited_at, policy, calendar).state
    due = lifecycle.next_deadline(state)
    if due is None or abs((due.due_at - reminder_due).total_seconds()) > 0.001:
        raise RuntimeError(f"expected a reminder due at {reminder_due}, got {due}")
    return TicketInput(
        ticket_id=ticket_id,
        policy=policy,
        calendar=calendar,
        state=state,
        deliver_webhooks=bool(settings.webhook_urls),
        archive_locally=True,
        keep_store=keep_store,
    )


async def _wait_until_loaded(
    client: Client, prefix: str, status: Status, count: int, until: datetime
) -> int:
    """How many of the run's tickets armed their timers before ``until`` (all, or fewer).

    A ticket is armed once the worker ran its first workflow task, which also publishes
    its status: the count comes from visibility. Timers that fall due while tickets are
    still being loaded would measure the creation backlog, not the timers.
    """
    query = (
        f'WorkflowId STARTS_WITH "{workflow_id_for(prefix)}" AND TicketStatus = "{status.value}"'
    )
    while True:
        loaded = (await client.count_workflows(query)).count
        if loaded >= count or datetime.now(UTC) >= until:
            return loaded
        await asyncio.sleep(LOAD_POLL_SECONDS)


async def _open_at_rate(
    client: Client,
    settings: Settings,
    ticket_ids: list[str],
    ticket_for: Callable[[str], TicketInput],
    create_rate: float,
) -> float:
    """Starts the tickets at a steady rate, as a desk's arrive; the seconds it took."""
    gate = asyncio.Semaphore(CREATE_PARALLELISM)

    async def create(ticket_id: str) -> None:
        async with gate:
            await start_ticket(client, settings, ticket_for(ticket_id))

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for number, ticket_id in enumerate(ticket_ids):
            await asyncio.sleep(max(0.0, started + number / create_rate - time.perf_counter()))
            group.create_task(create(ticket_id))
    return time.perf_counter() - started


async def _read_views(client: Client, ticket_ids: list[str]) -> dict[str, TicketView]:
    """Every ticket's view; most are out of the worker's cache, so each query replays one."""
    gate = asyncio.Semaphore(QUERY_PARALLELISM)
    views: dict[str, TicketView] = {}

    async def read(ticket_id: str) -> None:
        handle = client.get_workflow_handle_for(TicketWorkflow.run, workflow_id_for(ticket_id))
        async with gate:
            for attempt in range(1, QUERY_ATTEMPTS + 1):
                try:
                    views[ticket_id] = await handle.query(
                        TicketWorkflow.view, rpc_timeout=QUERY_TIMEOUT
                    )
                    return
                except RPCError:
                    if attempt == QUERY_ATTEMPTS:
                        raise

    logger.info("reading %s views", len(ticket_ids))
    async with asyncio.TaskGroup() as group:
        for ticket_id in ticket_ids:
            group.create_task(read(ticket_id))
    return views


@dataclass
class TimerRun:
    tickets: int
    created_seconds: float
    loaded_seconds: float
    loaded_before_first_due: bool
    firing_cpu_percent: dict[str, float]
    """CPU use of each process while the reminders fell due (100 = one core busy)."""
    lateness_parts: dict[str, list[float]]
    first_due_after: float
    window_seconds: float
    event_lateness: list[float]
    email_lateness: list[float]
    missing_reminders: int
    peak_rss_bytes: int
    metrics_before: dict[str, float]
    metrics_after: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        def delta(name: str) -> float:
            return self.metrics_after.get(name, 0.0) - self.metrics_before.get(name, 0.0)

        cache = {
            name: delta(name)
            for name in sorted(self.metrics_after)
            if "sticky_cache" in name and not name.endswith("_size")
        }
        return {
            "tickets": self.tickets,
            "creation_seconds": round(self.created_seconds, 1),
            "loaded_seconds": round(self.loaded_seconds, 1),
            "loaded_before_first_due": self.loaded_before_first_due,
            "firing_cpu_percent": {
                part: round(percent) for part, percent in self.firing_cpu_percent.items()
            },
            "first_due_after_seconds": self.first_due_after,
            "due_window_seconds": self.window_seconds,
            "reminders_per_second": round(self.tickets / self.window_seconds, 1),
            "reminder_event_lateness": summary_ms(self.event_lateness),
            "reminder_email_lateness": summary_ms(self.email_lateness),
            "lateness_parts_sampled": {
                name: summary_ms(values) for name, values in self.lateness_parts.items()
            },
            "missing_reminders": self.missing_reminders,
            "worker_peak_rss_mib": round(self.peak_rss_bytes / 2**20, 1),
            "worker_cache": cache,
        }


async def timer_lateness(
    client: Client,
    settings: Settings,
    worker: Part,
    cpu: CpuMeter,
    sink: MailSink,
    count: int,
    create_rate: float,
    first_due_after: float,
    window: float,
    run: str,
) -> TimerRun:
    """``count`` waiting tickets whose first reminders fall evenly over ``window`` seconds.

    Lateness is measured from each reminder's due time to its ``reminder_sent`` timeline
    event (the workflow's clock when it fired) and to the email's arrival at the sink.
    """
    calendar = calendar_for(settings)
    first_reminder = timedelta(seconds=first_due_after + window + 60)
    opened = datetime.now(UTC)
    due = {
        f"r{run}{n}": opened + timedelta(seconds=first_due_after + window * n / count)
        for n in range(count)
    }
    metrics_before = await worker_metrics(settings)
    worker.reset_peak()
    emails_before = sink.count()

    def ticket_for(ticket_id: str) -> TicketInput:
        return waiting_ticket(settings, ticket_id, calendar, due[ticket_id], first_reminder)

    started = time.perf_counter()
    created_seconds = await _open_at_rate(client, settings, list(due), ticket_for, create_rate)
    logger.info("created %s waiting tickets in %.1f s", count, created_seconds)
    first_due = min(due.values())
    loaded = await _wait_until_loaded(client, f"r{run}", Status.WAITING, count, until=first_due)
    loaded_seconds = time.perf_counter() - started
    logger.info("%s tickets loaded (armed) after %.1f s", loaded, loaded_seconds)
    await asyncio.sleep(max(0.0, (first_due - datetime.now(UTC)).total_seconds()))
    cpu.start()
    firing_started = time.perf_counter()

    last_due = max(due.values())
    patience = (last_due - datetime.now(UTC)).total_seconds() + STRAGGLER_PATIENCE
    await sink.wait_for(emails_before + count, patience)
    firing_cpu = cpu.spent()
    firing_seconds = time.perf_counter() - firing_started
    metrics_after = await worker_metrics(settings)
    peak = worker.peak_rss_bytes

    email_lateness = [
        arrival.at - due[arrival.ticket_id].timestamp()
        for arrival in sink.arrivals[emails_before:]
        if arrival.ticket_id in due
    ]
    event_lateness: list[float] = []
    missing = 0
    for ticket_id, view in (await _read_views(client, list(due))).items():
        sent = [event for event in view.timeline if event.type is EventType.REMINDER_SENT]
        if not sent:
            missing += 1
            continue
        event_lateness.append((sent[0].at - due[ticket_id]).total_seconds())
    sample = list(due)[:: max(1, count // LATENESS_SAMPLE)]
    parts = [await reminder_lateness_parts(client, ticket_id) for ticket_id in sample]
    return TimerRun(
        tickets=count,
        created_seconds=created_seconds,
        loaded_seconds=loaded_seconds,
        loaded_before_first_due=loaded == count,
        firing_cpu_percent={
            part: 100 * seconds / firing_seconds for part, seconds in firing_cpu.items()
        },
        first_due_after=first_due_after,
        window_seconds=window,
        event_lateness=event_lateness,
        email_lateness=email_lateness,
        missing_reminders=missing,
        peak_rss_bytes=peak,
        metrics_before=metrics_before,
        metrics_after=metrics_after,
        lateness_parts={name: [part[name] for part in parts] for name in LATENESS_PARTS},
    )


def alert_ticket(
    settings: Settings,
    ticket_id: str,
    calendar: CalendarSnapshot,
    warning_due: datetime,
    warning_after: timedelta,
    breach_after: timedelta,
) -> TicketInput:
    """A support ticket assigned and not yet answered, whose first-reply SLA warns at
    ``warning_due`` and is breached ``breach_after - warning_after`` later. Its state
    comes from the pure core, as :func:`waiting_ticket`'s does."""
    policy = alert_policy(warning_after, breach_after)
    opened = warning_due - warning_after
    state = lifecycle.new_ticket(
        ticket_id=ticket_id,
        policy=policy,
        calendar=calendar,
        fields=FIELDS,
        now=opened,
        actor=AGENT,
        submit=True,
    ).state
    state = lifecycle.decide(
        state, AssignCommand(actor=AGENT, assignee=AGENT), opened, policy, calendar
    ).state
    due = lifecycle.next_deadline(state)
    if due is None or abs((due.due_at - warning_due).total_seconds()) > 0.001:
        raise RuntimeError(f"expected an SLA warning due at {warning_due}, got {due}")
    return TicketInput(
        ticket_id=ticket_id,
        policy=policy,
        calendar=calendar,
        state=state,
        deliver_webhooks=bool(settings.webhook_urls),
        notify_agents=bool(settings.agent_emails),
        archive_locally=True,
    )


@dataclass
class AlertRun:
    tickets: int
    created_seconds: float
    loaded_before_first_due: bool
    first_due_after: float
    window_seconds: float
    firing_cpu_percent: dict[str, float]
    """CPU use of each process while the alerts fell due (100 = one core busy)."""
    warning_lateness: list[float]
    breach_lateness: list[float]
    missing_alerts: int
    peak_rss_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "tickets": self.tickets,
            "creation_seconds": round(self.created_seconds, 1),
            "loaded_before_first_due": self.loaded_before_first_due,
            "first_due_after_seconds": self.first_due_after,
            "due_window_seconds": self.window_seconds,
            "firing_cpu_percent": {
                part: round(percent) for part, percent in self.firing_cpu_percent.items()
            },
            "warning_event_lateness": summary_ms(self.warning_lateness),
            "breach_event_lateness": summary_ms(self.breach_lateness),
            "alert_event_lateness": summary_ms(self.warning_lateness + self.breach_lateness),
            "missing_alerts": self.missing_alerts,
            "worker_peak_rss_mib": round(self.peak_rss_bytes / 2**20, 1),
        }


async def sla_lateness(
    client: Client,
    settings: Settings,
    worker: Part,
    cpu: CpuMeter,
    sink: MailSink,
    count: int,
    create_rate: float,
    first_due_after: float,
    window: float,
    run: str,
) -> AlertRun:
    """``count`` tickets whose SLA warnings fall evenly over ``window`` seconds, and
    their breaches half a window after each warning: two alerts a ticket, each an event
    and an email to the assignee. Lateness is measured as for the reminders: from the due
    time to the ``sla_warning`` or ``sla_breached`` event."""
    calendar = calendar_for(settings)
    warning_after = timedelta(seconds=first_due_after + window + 60)
    breach_after = warning_after + timedelta(seconds=window / 2)
    opened = datetime.now(UTC)
    warning_due = {
        f"s{run}{n}": opened + timedelta(seconds=first_due_after + window * n / count)
        for n in range(count)
    }
    worker.reset_peak()
    emails_before = sink.count()

    def ticket_for(ticket_id: str) -> TicketInput:
        due = warning_due[ticket_id]
        return alert_ticket(settings, ticket_id, calendar, due, warning_after, breach_after)

    ids = list(warning_due)
    created_seconds = await _open_at_rate(client, settings, ids, ticket_for, create_rate)
    logger.info("created %s unanswered tickets in %.1f s", count, created_seconds)
    first_due = min(warning_due.values())
    loaded = await _wait_until_loaded(client, f"s{run}", Status.IN_PROGRESS, count, until=first_due)
    await asyncio.sleep(max(0.0, (first_due - datetime.now(UTC)).total_seconds()))
    cpu.start()
    firing_started = time.perf_counter()
    last_breach = max(warning_due.values()) + (breach_after - warning_after)
    patience = (last_breach - datetime.now(UTC)).total_seconds() + STRAGGLER_PATIENCE
    await sink.wait_for(emails_before + 2 * count, patience)
    firing_cpu = cpu.spent()
    firing_seconds = time.perf_counter() - firing_started
    peak = worker.peak_rss_bytes
    warning_lateness: list[float] = []
    breach_lateness: list[float] = []
    missing = 0
    for ticket_id, view in (await _read_views(client, ids)).items():
        due = warning_due[ticket_id]
        for kind, expected, found in (
            (EventType.SLA_WARNING, due, warning_lateness),
            (EventType.SLA_BREACHED, due + (breach_after - warning_after), breach_lateness),
        ):
            told = [event for event in view.timeline if event.type is kind]
            if told:
                found.append((told[0].at - expected).total_seconds())
            else:
                missing += 1
    return AlertRun(
        tickets=count,
        created_seconds=created_seconds,
        loaded_before_first_due=loaded == count,
        first_due_after=first_due_after,
        window_seconds=window,
        firing_cpu_percent={
            part: 100 * seconds / firing_seconds for part, seconds in firing_cpu.items()
        },
        warning_lateness=warning_lateness,
        breach_lateness=breach_lateness,
        missing_alerts=missing,
        peak_rss_bytes=peak,
    )


async def reminder_lateness_parts(client: Client, ticket_id: str) -> dict[str, float]:
    """Where one reminder's lateness went, in seconds, from the ticket's history.

    ``armed``: the timer's length was computed at the start of the workflow task that
    armed it, but runs from that task's completion; ``fired``: the server's timer against
    its nominal length; ``picked_up``: from the timer firing to the worker starting the
    workflow task that sends the reminder. For a reminder armed before it fell due (the
    bench checks that), the three add up to the event's lateness.
    """
    handle = client.get_workflow_handle(workflow_id_for(ticket_id))
    events = [event async for event in handle.fetch_history_events()]

    def when(index: int) -> float:
        return events[index].event_time.ToDatetime(UTC).timestamp()

    def first(kind: HistoryEventType.ValueType, after: int = 0) -> int:
        return next(n for n, event in enumerate(events) if n > after and event.event_type == kind)

    timer = first(HistoryEventType.EVENT_TYPE_TIMER_STARTED)
    armed_by = max(
        n
        for n, event in enumerate(events[:timer])
        if event.event_type == HistoryEventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
    )
    length = events[timer].timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
    fired = first(HistoryEventType.EVENT_TYPE_TIMER_FIRED, timer)
    picked_up = first(HistoryEventType.EVENT_TYPE_WORKFLOW_TASK_STARTED, fired)
    return {
        "armed": when(timer) - when(armed_by),
        "fired": when(fired) - when(timer) - length.total_seconds(),
        "picked_up": when(picked_up) - when(fired),
    }
