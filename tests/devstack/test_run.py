"""``make run``'s stack for real: start, use, Ctrl-C, start again on the same data."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
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


async def test_stack_survives_a_restart_with_its_tickets_timers_and_mail(tmp_path: Path) -> None:
    data = tmp_path / "data"
    api_port = free_port()
    env = {
        **os.environ,
        "TRAMITA_DATA_DIR": str(data),
        "TRAMITA_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "TRAMITA_UI_PORT": str(free_port()),
        "TRAMITA_API_PORT": str(api_port),
        "TRAMITA_SMTP_PORT": str(free_port()),
    }
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=30) as api:
        stack = await start_stack(env)
        try:
            await wait_until_ready(f"http://127.0.0.1:{api_port}", stack, seconds=120)
            created = (await api.post("/tickets", json=ticket_body(), headers=AGENT)).json()
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
        finally:
            assert await interrupt(stack) == 0
