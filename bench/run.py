"""``make bench`` (``python -m bench``): every measurement in one run, a table, results.json.

Options shrink the run for a quick look (``--lifecycles 100 --timer-tickets 1000``); the
figures in ``docs/benchmarks.md`` come from the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench import mail, store
from bench.scenarios import (
    AlertRun,
    Throughput,
    TimerRun,
    ceiling,
    client_lifecycles,
    client_lifecycles_with_sla,
    client_lifecycles_without_store,
    history_of_standard_lifecycle,
    http_lifecycles,
    shaped_ceiling_for,
    shaped_history,
    sla_lateness,
    ticket_shape,
    timer_lateness,
)
from bench.stack import (
    CpuMeter,
    MailSink,
    Part,
    bench_settings,
    machine,
    start_api,
    start_temporal,
    start_worker,
)
from config import Settings, connect
from tests.support.dovecot import Dovecot
from workflows.models import BuiltInProfile

logger = logging.getLogger("tramita.bench")

RESULTS = Path(__file__).with_name("results.json")

# The lifecycle is judged against the ticket-shaped ceiling (a workflow with a ticket's
# history and none of Tramita's code); the no-op ceiling stays in the table as information.
TARGETS = {
    "client_to_shaped_ceiling": 0.9,
    "http_to_client": 0.85,
    "reminder_lateness_p99_ms": 1000.0,
    "sla_alert_lateness_p99_ms": 1000.0,
    "sla_on_to_off": 0.9,
    "worker_peak_rss_mib": 500.0,
    "history_events": 60,
    "store_kept_to_not": 0.9,
    "store_list_p95_ms": 150.0,
    "inbound_to_direct": 0.8,
    "imap_append_p99_ms": 5000.0,
    "mime_20mb_extra_rss_mib": 150.0,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--lifecycles", type=int, default=300, help="per phase and round")
    parser.add_argument("--concurrency", type=int, default=48, help="lifecycles in flight")
    parser.add_argument("--rounds", type=int, default=3, help="alternating throughput rounds")
    parser.add_argument("--timer-tickets", type=int, default=10_000)
    parser.add_argument(
        "--create-rate", type=float, default=20.0, help="waiting tickets opened per second"
    )
    parser.add_argument(
        "--first-due-after", type=float, default=560.0, help="seconds from the first start"
    )
    parser.add_argument("--due-window", type=float, default=1000.0, help="reminders spread")
    parser.add_argument("--cache", type=int, default=500, help="worker's cached tickets")
    parser.add_argument(
        "--only",
        choices=["throughput", "history", "store", "timers", "sla", "mail"],
        action="append",
    )
    parser.add_argument("--mail-messages", type=int, default=400, help="per phase and round")
    parser.add_argument("--imap-samples", type=int, default=50)
    parser.add_argument("--store-tickets", type=int, default=10_000)
    parser.add_argument("--store-requests", type=int, default=200, help="per page measured")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.mail_messages > args.cache:
        parser.error("--mail-messages must fit the worker's --cache: evicted tickets replay")
    opening = args.timer_tickets / args.create_rate
    if opening >= args.first_due_after:
        parser.error(
            f"opening {args.timer_tickets} tickets at {args.create_rate}/s takes {opening:.0f} s:"
            " --first-due-after must leave the worker time to arm them all"
        )
    return args


async def measure(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    settings = bench_settings(data_dir).model_copy(
        update={"worker_max_cached_workflows": args.cache}
    )
    run = secrets.token_hex(2)
    wanted = set(args.only or ["throughput", "history", "store", "timers", "sla", "mail"])
    sink = MailSink(settings.smtp_host, settings.smtp_port)
    sink.start()
    parts: list[Part] = []
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": "make bench  # python -m bench " + " ".join(sys.argv[1:]),
        "settings": {
            "lifecycles": args.lifecycles,
            "concurrency": args.concurrency,
            "rounds": args.rounds,
            "timer_tickets": args.timer_tickets,
            "create_rate": args.create_rate,
            "first_due_after": args.first_due_after,
            "due_window": args.due_window,
            "worker_max_cached_workflows": args.cache,
        },
        "targets": TARGETS,
    }
    try:
        parts.append(await start_temporal(settings))
        client = await connect(settings)
        if wanted & {"throughput", "history"}:
            worker = await start_worker(settings, module="bench.serve_worker")
            parts.append(worker)
            if "throughput" in wanted:
                api = await start_api(settings)
                parts.append(api)
                await throughput(client, settings, args, run, results, CpuMeter(list(parts)))
            if "history" in wanted:
                results["history"] = {
                    str(profile): await history_of_standard_lifecycle(
                        client, settings, profile, run
                    )
                    for profile in BuiltInProfile
                }
            for part in parts[1:]:
                await part.stop()
            del parts[1:]
        if "store" in wanted:
            api = await start_api(settings)
            parts.append(api)
            results["store"] = await store.list_latency(
                settings, args.store_tickets, args.store_requests
            )
            await api.stop()
            parts.remove(api)
        timer_runs: dict[str, Callable[..., Awaitable[TimerRun | AlertRun]]] = {
            "timers": timer_lateness,
            "sla": sla_lateness,
        }
        for name, timer_run in timer_runs.items():
            if name not in wanted:
                continue
            # Each on a worker of its own, started empty: its peak memory is the run's.
            worker = await start_worker(settings)
            parts.append(worker)
            logger.info("%s run: %s tickets", name, args.timer_tickets)
            outcome = await timer_run(
                client,
                settings,
                worker,
                CpuMeter(list(parts)),
                sink,
                args.timer_tickets,
                args.create_rate,
                args.first_due_after,
                args.due_window,
                run,
            )
            results[name] = outcome.as_dict()
            await worker.stop()
            parts.remove(worker)
        if "mail" in wanted:
            results["mail"] = await mail_phases(client, settings, args, run, parts)
    finally:
        for part in reversed(parts):
            await part.stop()
        sink.stop()
    return results


async def mail_phases(
    client: Client, settings: Settings, args: argparse.Namespace, run: str, parts: list[Part]
) -> dict[str, Any]:
    """(8) to (10): the production worker following a Dovecot mailbox, and the API."""
    imap = Dovecot({mail.IMAP_USER: mail.IMAP_PASSWORD})
    imap.start()
    try:
        worker = await start_worker(settings, env=mail.dovecot_mailbox(imap))
        api = await start_api(settings)
        parts += [worker, api]
        api_url = f"http://{settings.api_host}:{settings.api_port}"
        logger.info("mail: routing throughput")
        routing = await mail.routing_throughput(
            client,
            settings,
            api_url,
            CpuMeter(list(parts)),
            args.mail_messages,
            args.concurrency,
            args.rounds,
            run,
        )
        logger.info("mail: IMAP APPEND to the timeline")
        latency = await mail.imap_latency(client, settings, imap, args.imap_samples, run)
        logger.info("mail: a 20 MB message")
        memory = await mail.big_message_memory(api_url, api, 20 * 2**20)
        return {"routing": routing, "imap_idle_latency": latency, "big_message": memory}
    finally:
        imap.cleanup()


async def throughput(
    client: Client,
    settings: Settings,
    args: argparse.Namespace,
    run: str,
    results: dict[str, Any],
    cpu: CpuMeter,
) -> None:
    """Both ceilings, client and HTTP lifecycles, in alternating rounds.

    The dev server's speed drifts during a run (its SQLite file grows); alternating the
    four measurements round by round exposes them to the same drift. The ticket-shaped
    ceiling is read from one real ticket first.
    """
    shape = await ticket_shape(client, settings, run)
    phases = (
        ceiling,
        shaped_ceiling_for(shape),
        client_lifecycles,
        client_lifecycles_without_store,
        client_lifecycles_with_sla,
        http_lifecycles,
    )
    warm_up = max(args.concurrency // 2, 8)
    for phase in phases:
        await phase(client, settings, warm_up, args.concurrency, f"{run}w")
    totals: dict[str, Throughput] = {}
    spent: dict[str, dict[str, float]] = {}
    by_round: list[dict[str, float]] = []
    for round_number in range(args.rounds):
        by_round.append({})
        for phase in phases:
            logger.info("round %s: %s", round_number + 1, phase.__name__)
            cpu.start()
            outcome = await phase(
                client, settings, args.lifecycles, args.concurrency, f"{run}r{round_number}"
            )
            for name, seconds in cpu.spent().items():
                spent.setdefault(phase.__name__, {}).setdefault(name, 0.0)
                spent[phase.__name__][name] += seconds
            by_round[-1][phase.__name__] = outcome.per_second
            totals[phase.__name__] = (
                totals[phase.__name__].merged(outcome) if phase.__name__ in totals else outcome
            )
    for name, total in totals.items():
        results[name] = total.as_dict() | {
            "cpu_ms_per_lifecycle": {
                part: round(seconds * 1000 / total.completed, 1)
                for part, seconds in spent[name].items()
            }
        }
    shaped = await shaped_history(client, settings, shape, run)
    results["shaped_ceiling"]["history"] = shaped
    results["shaped_ceiling"]["ticket_history"] = shape.reference
    results["shaped_ceiling"]["same_events_as_ticket"] = decided_events(shaped) == decided_events(
        shape.reference
    )
    results["ratios"] = ratios_of({name: total.per_second for name, total in totals.items()})
    # The targets are judged on the whole run; each round's ratios show how far one
    # round's noise reaches on this machine.
    results["ratios_by_round"] = [ratios_of(rates) for rates in by_round]


def ratios_of(rates: dict[str, float]) -> dict[str, float]:
    return {
        "client_to_ceiling": ratio(rates["client_lifecycles"], rates["ceiling"]),
        "http_to_client": ratio(rates["http_lifecycles"], rates["client_lifecycles"]),
        "shaped_ceiling_to_ceiling": ratio(rates["shaped_ceiling"], rates["ceiling"]),
        "client_to_shaped_ceiling": ratio(rates["client_lifecycles"], rates["shaped_ceiling"]),
        "store_kept_to_not": ratio(
            rates["client_lifecycles"], rates["client_lifecycles_without_store"]
        ),
        "sla_on_to_off": ratio(rates["client_lifecycles_with_sla"], rates["client_lifecycles"]),
    }


def decided_events(history: dict[str, Any]) -> dict[str, int]:
    """A history's events by kind, less its workflow tasks.

    How many workflow tasks a lifecycle takes depends on timing, not on the workflow: an
    update that reaches the server before the first task is dispatched rides along in it.
    """
    by_kind: dict[str, int] = history["by_kind"]
    return {kind: n for kind, n in by_kind.items() if not kind.startswith("workflow_task_")}


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3) if denominator else 0.0


def verdicts(results: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    rows: list[tuple[str, str, str, bool]] = []
    ratios = results.get("ratios")
    if ratios:
        for name in ("ceiling", "shaped_ceiling", "client_lifecycles", "http_lifecycles"):
            rows.append((f"{name} (lifecycles/s)", f"{results[name]['per_second']:.1f}", "", True))
        same = results["shaped_ceiling"]["same_events_as_ticket"]
        rows.append(
            (
                "shaped_ceiling history = a ticket's (events but workflow tasks)",
                "yes" if same else "no",
                "yes",
                same,
            )
        )
        rows.append(
            ("shaped_ceiling / ceiling", f"{ratios['shaped_ceiling_to_ceiling']:.2f}", "", True)
        )
        rows.append(
            (
                "client / shaped_ceiling",
                f"{ratios['client_to_shaped_ceiling']:.2f}",
                f">= {TARGETS['client_to_shaped_ceiling']}",
                ratios["client_to_shaped_ceiling"] >= TARGETS["client_to_shaped_ceiling"],
            )
        )
        rows.append(("client / ceiling (no-op)", f"{ratios['client_to_ceiling']:.2f}", "", True))
        rows.append(
            (
                "store kept / not (client lifecycles)",
                f"{ratios['store_kept_to_not']:.2f}",
                f">= {TARGETS['store_kept_to_not']}",
                ratios["store_kept_to_not"] >= TARGETS["store_kept_to_not"],
            )
        )
        rows.append(
            (
                "http / client",
                f"{ratios['http_to_client']:.2f}",
                f">= {TARGETS['http_to_client']}",
                ratios["http_to_client"] >= TARGETS["http_to_client"],
            )
        )
        rows.append(
            (
                "SLA on / off (client lifecycles)",
                f"{ratios['sla_on_to_off']:.2f}",
                f">= {TARGETS['sla_on_to_off']}",
                ratios["sla_on_to_off"] >= TARGETS["sla_on_to_off"],
            )
        )
        for name in (
            "client_to_shaped_ceiling",
            "http_to_client",
            "store_kept_to_not",
            "sla_on_to_off",
        ):
            each = " ".join(f"{r[name]:.2f}" for r in results.get("ratios_by_round", []))
            rows.append((f"{name.replace('_to_', ' / ')}, each round", each, "", True))
        for step, latency in results["http_lifecycles"]["latency"].items():
            rows.append(
                (
                    f"http {step} p50 / p99 (ms)",
                    f"{latency['p50_ms']} / {latency['p99_ms']}",
                    "",
                    True,
                )
            )
    timers = results.get("timers")
    if timers:
        event = timers["reminder_event_lateness"]
        email = timers["reminder_email_lateness"]
        rows.append(
            (
                "reminder lateness p50 / p99 / max (ms)",
                f"{event['p50_ms']} / {event['p99_ms']} / {event['max_ms']}",
                f"p99 <= {TARGETS['reminder_lateness_p99_ms']:.0f}",
                event["p99_ms"] <= TARGETS["reminder_lateness_p99_ms"]
                and timers["missing_reminders"] == 0
                and timers["loaded_before_first_due"],
            )
        )
        rows.append(
            (
                "every reminder armed before the first fell due",
                "yes" if timers["loaded_before_first_due"] else "no",
                "yes",
                timers["loaded_before_first_due"],
            )
        )
        rows.append(
            (
                "reminder email at sink p50 / p99 / max (ms)",
                f"{email['p50_ms']} / {email['p99_ms']} / {email['max_ms']}",
                "",
                True,
            )
        )
        rows.append(
            (
                f"worker peak RSS, {timers['tickets']} waiting tickets (MiB)",
                f"{timers['worker_peak_rss_mib']}",
                f"<= {TARGETS['worker_peak_rss_mib']:.0f}",
                timers["worker_peak_rss_mib"] <= TARGETS["worker_peak_rss_mib"],
            )
        )
    alerts = results.get("sla")
    if alerts:
        for kind in ("warning", "breach"):
            late = alerts[f"{kind}_event_lateness"]
            rows.append(
                (
                    f"SLA {kind} lateness p50 / p99 / max (ms), {alerts['tickets']} armed",
                    f"{late['p50_ms']} / {late['p99_ms']} / {late['max_ms']}",
                    f"p99 <= {TARGETS['sla_alert_lateness_p99_ms']:.0f}",
                    late["p99_ms"] <= TARGETS["sla_alert_lateness_p99_ms"]
                    and alerts["missing_alerts"] == 0
                    and alerts["loaded_before_first_due"],
                )
            )
    store_results = results.get("store")
    if store_results:
        for page, latency in store_results["pages"].items():
            rows.append(
                (
                    f"{page}, {store_results['tickets']} tickets: p50 / p95 (ms)",
                    f"{latency['p50_ms']} / {latency['p95_ms']}",
                    f"p95 <= {TARGETS['store_list_p95_ms']:.0f}",
                    latency["p95_ms"] <= TARGETS["store_list_p95_ms"],
                )
            )
    mail_results = results.get("mail")
    if mail_results:
        routing = mail_results["routing"]
        rows.append(
            (
                "inbound /inbound/mime / direct replies",
                f"{routing['inbound_to_direct']:.2f} ({routing['inbound_per_second']:.1f}/s)",
                f">= {TARGETS['inbound_to_direct']}",
                routing["inbound_to_direct"] >= TARGETS["inbound_to_direct"],
            )
        )
        idle = mail_results["imap_idle_latency"]
        rows.append(
            (
                "IMAP APPEND to timeline p50 / p99 / max (ms)",
                f"{idle['p50_ms']} / {idle['p99_ms']} / {idle['max_ms']}",
                f"p99 <= {TARGETS['imap_append_p99_ms']:.0f}",
                idle["p99_ms"] <= TARGETS["imap_append_p99_ms"],
            )
        )
        big = mail_results["big_message"]
        rows.append(
            (
                "20 MB message: API extra peak RSS (MiB)",
                f"{big['api_extra_peak_rss_mib']}",
                f"<= {TARGETS['mime_20mb_extra_rss_mib']:.0f}",
                big["api_extra_peak_rss_mib"] <= TARGETS["mime_20mb_extra_rss_mib"],
            )
        )
    for profile, history in results.get("history", {}).items():
        rows.append(
            (
                f"history, standard {profile} lifecycle",
                f"{history['events']} events, {history['bytes']} B",
                f"<= {TARGETS['history_events']} events",
                history["events"] <= TARGETS["history_events"],
            )
        )
    return rows


def print_table(rows: list[tuple[str, str, str, bool]]) -> None:
    width = max(len(row[0]) for row in rows)
    value_width = max(len(row[1]) for row in rows)
    for name, value, target, ok in rows:
        mark = "" if not target else ("ok" if ok else "MISSED")
        sys.stdout.write(f"{name:<{width}}  {value:>{value_width}}  {target:<16} {mark}\n")
    sys.stdout.flush()


FAILED_RUNS = Path(__file__).parent / "failed-runs"


def keep_logs(data: Path) -> Path:
    """A failed run's logs (API, worker, Temporal, mail), kept in ``bench/failed-runs/``:
    the API's log holds the Temporal status behind a 503."""
    kept = FAILED_RUNS / time.strftime("%Y%m%dT%H%M%S")
    kept.mkdir(parents=True, exist_ok=True)
    for log in data.glob("*.log"):
        shutil.copy2(log, kept / log.name)
    return kept


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("mail.log", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    data = Path(tempfile.mkdtemp(prefix="tramita-bench-"))
    try:
        results = asyncio.run(measure(args, data))
    except BaseException:
        kept = keep_logs(data)
        logging.getLogger("bench").error("the run failed; its logs are in %s", kept)
        raise
    shutil.rmtree(data, ignore_errors=True)
    results["machine"]["kernel"] = platform.release()
    results["duration_seconds"] = round(time.monotonic() - started)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    rows = verdicts(results)
    print_table(rows)
    sys.stdout.write(f"results: {args.output}\n")
    sys.stdout.flush()
    status = 0 if all(ok for *_, ok in rows) else 1
    # The SDK's runtime may abort at interpreter exit (sdk-python#300); leave at once.
    os._exit(status)
