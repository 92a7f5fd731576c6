"""``make run``'s stack for real: start, use, Ctrl-C, start again on the same data."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import smtplib
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.api.helpers import AGENT, ticket_body
from tests.support.http import wait_until_ready
from tests.support.smtp import free_port

ROOT = Path(__file__).resolve().parents[2]


async def start_stack(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devstack.run",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def interrupt(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGINT)
    async with asyncio.timeout(90):
        return await process.wait()


def deliver(port: int, message: str) -> None:
    """As a mail server would; the listener answers 250 only once the mail is taken."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.sendmail("cliente@example.com", ["suporte@localhost"], message.encode())


async def test_stack_survives_a_restart_with_its_tickets_timers_and_mail(tmp_path: Path) -> None:
    data = tmp_path / "data"
    api_port = free_port()
    inbound_port = free_port()
    env = {
        "TRAMITA_INBOUND_SMTP_PORT": str(inbound_port),
        **os.environ,
        "TRAMITA_DATA_DIR": str(data),
        "TRAMITA_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "TRAMITA_UI_PORT": str(free_port()),
        "TRAMITA_API_PORT": str(api_port),
        "TRAMITA_SMTP_PORT": str(free_port()),
        # make run hands the profiles file to every part it starts.
        "TRAMITA_PROFILES_FILE": str(ROOT / "docs" / "profiles.example.toml"),
    }
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=30) as api:
        stack = await start_stack(env)
        try:
            await wait_until_ready(f"http://127.0.0.1:{api_port}", stack, seconds=120)
            profiles = (await api.get("/profiles", headers=AGENT)).json()["profiles"]
            assert {"desk-sp", "lisbon"} <= {p["name"] for p in profiles}
            created = (
                await api.post("/tickets", json=ticket_body(profile="desk-sp"), headers=AGENT)
            ).json()
            tid = created["id"]
            await api.post(f"/tickets/{tid}/assign", json={"assignee": "ana"}, headers=AGENT)
            await api.post(
                f"/tickets/{tid}/emails", json={"body": "Pode enviar o log?"}, headers=AGENT
            )
            before = (
                await api.post(f"/tickets/{tid}/wait", json={"reason": "customer"}, headers=AGENT)
            ).json()
            assert before["status"] == "waiting"
            for _ in range(100):  # the email activity runs after the update answered
                if list((data / "mail").glob(f"*-{tid}.eml")):
                    break
                await asyncio.sleep(0.1)
        finally:
            first_exit = await interrupt(stack)
        assert first_exit == 0
        assert (data / "temporal.db").exists()
        mails = list((data / "mail").glob(f"*-{tid}.eml"))
        assert len(mails) == 1 and f"[#{tid}]".encode() in mails[0].read_bytes()

        stack = await start_stack(env)
        try:
            await wait_until_ready(f"http://127.0.0.1:{api_port}", stack, seconds=120)
            after = (await api.get(f"/tickets/{tid}", headers=AGENT)).json()
            assert after["status"] == "waiting"
            assert after["deadlines"] == before["deadlines"]
            assert after["timeline"] == before["timeline"]

            # The customer answers by mail, through the stack's own SMTP listener.
            reply = (
                "From: cliente@example.com\r\nTo: suporte@localhost\r\n"
                f"Subject: Re: log [#{tid}]\r\nMessage-ID: <log-{tid}@example.com>\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n\r\nSegue o log.\r\n"
            )
            await asyncio.to_thread(deliver, inbound_port, reply)
            replied = (await api.get(f"/tickets/{tid}", headers=AGENT)).json()
            assert replied["status"] == "in_progress"
            assert replied["timeline"][-1]["type"] in ("customer_reply", "wait_ended")
        finally:
            assert await interrupt(stack) == 0


def log_entries(text: str) -> list[dict[str, object]]:
    entries = []
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                entries.append(json.loads(line))
    return entries


async def wait_for_entry(
    path: Path, matches: Callable[[dict[str, object]], bool]
) -> dict[str, object]:
    text = ""
    for _ in range(1200):
        text = await asyncio.to_thread(path.read_text, errors="replace")
        found = [entry for entry in log_entries(text) if matches(entry)]
        if found:
            return found[-1]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no matching log entry in {path}:\n{text[-3000:]}")


async def test_stack_says_it_runs_only_when_the_api_answers_and_restarts_a_crashed_worker(
    tmp_path: Path,
) -> None:
    api_port = free_port()
    log = tmp_path / "stack.log"
    env = {
        **os.environ,
        "TRAMITA_LOG_FORMAT": "json",
        "TRAMITA_DATA_DIR": str(tmp_path / "data"),
        "TRAMITA_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "TRAMITA_UI_PORT": str(free_port()),
        "TRAMITA_API_PORT": str(api_port),
        "TRAMITA_SMTP_PORT": str(free_port()),
    }
    with log.open("wb") as output:
        stack = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "devstack.run", cwd=ROOT, env=env, stdout=output, stderr=output
        )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=30) as api:
        try:
            await wait_for_entry(log, lambda e: "Tramita is running" in str(e.get("message")))
            # Announced: the API answers right now, not seconds later.
            assert (await api.get("/readyz")).status_code == 200

            started = await wait_for_entry(
                log, lambda e: e.get("message") == "started" and e.get("part") == "worker"
            )
            os.kill(int(str(started["pid"])), signal.SIGKILL)
            crashed = await wait_for_entry(
                log, lambda e: e.get("message") == "part exited; restarting"
            )
            assert crashed["part"] == "worker" and crashed["exit_code"] == -signal.SIGKILL
            again = await wait_for_entry(
                log,
                lambda e: (
                    e.get("message") == "started"
                    and e.get("part") == "worker"
                    and e.get("pid") != started["pid"]
                ),
            )
            assert again["pid"] != started["pid"]
            assert stack.returncode is None, "the stack keeps running"
            ticket = (await api.post("/tickets", json=ticket_body(), headers=AGENT)).json()
            assigned = await api.post(
                f"/tickets/{ticket['id']}/assign", json={"assignee": "ana"}, headers=AGENT
            )
            assert assigned.status_code == 200, assigned.text  # the new worker serves it
            # The archive lives in the data directory with the rest of the stack's state.
            closed = await api.get("/tickets", params={"status": "closed"}, headers=AGENT)
            assert closed.status_code == 200
            assert (tmp_path / "data" / "archive.db").exists()
        finally:
            assert await interrupt(stack) == 0
