"""Operators find and read tickets in the Temporal Web UI (headless Debian Chromium).

The dev server is started by the test with its UI; Playwright drives /usr/bin/chromium
(no browser download). Screenshots land in the test's temporary directory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import Locator, Page, async_playwright
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from config import Settings
from tests.conftest import DEV_SERVER
from tests.support.smtp import free_port
from tests.support.temporal import FIELDS, command, eventually, start_ticket, strict_worker, update
from workflows.messages import AssignCommand, WaitCommand
from workflows.models import (
    WaitReason,
)
from workflows.search import ALL_KEYS

CHROMIUM = Path("/usr/bin/chromium")
QUEUE = "tramita-web-ui-tests"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Chromium is not installed (make test installs Debian's chromium as root)",
)
WAITING_QUERY = quote('TicketStatus="waiting"')


def visible(page: Page, text: str) -> Locator:
    return page.get_by_text(text).filter(visible=True).first


async def in_frames(page: Page, text: str, seconds: float = 60) -> None:
    """Wait until some frame of the page shows ``text``."""
    for _ in range(int(seconds * 4)):
        for frame in page.frames:
            if text in await frame.inner_text("body"):
                return
        await page.wait_for_timeout(250)
    raise AssertionError(f"{text!r} never appeared in any frame")


@pytest.fixture(scope="module")
async def ui_env() -> AsyncIterator[tuple[WorkflowEnvironment, int]]:
    ui_port = free_port()
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(DEV_SERVER),
        search_attributes=ALL_KEYS,
        ui=True,
        ui_port=ui_port,
        dev_server_log_level="error",
    )
    try:
        yield env, ui_port
    finally:
        await env.shutdown()


async def test_ticket_is_found_by_status_and_shows_summary_details_and_timer(
    ui_env: tuple[WorkflowEnvironment, int],
    worker_settings: Settings,
    http_client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    env, ui_port = ui_env
    settings = worker_settings.model_copy(update={"task_queue": QUEUE})
    async with strict_worker(env.client, settings, http_client):
        handle = await start_ticket(env.client, QUEUE)
        await update(handle, AssignCommand(actor="ana", assignee="ana"))
        view = await command(handle, WaitCommand(actor="ana", reason=WaitReason.CUSTOMER))
        assert view.deadlines[0].label == "Lembrete 1 de 2 ao cliente"

        # The attributes an operator filters on answer queries.
        soon = (datetime.now(UTC) + timedelta(days=30)).isoformat()
        for query in (
            f"TicketStatus = 'waiting' AND WorkflowId = '{handle.id}'",
            f"TicketAssignee = 'ana' AND WorkflowId = '{handle.id}'",
            f"TicketNextDeadline < '{soon}' AND WorkflowId = '{handle.id}'",
        ):

            async def matches(q: str = query) -> int:
                return (await env.client.count_workflows(q)).count

            assert await eventually(matches, lambda n: n == 1, seconds=20) == 1, query

        base = f"http://127.0.0.1:{ui_port}/namespaces/default/workflows"
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM),
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 900})
                await page.goto(f"{base}?query={WAITING_QUERY}")
                await visible(page, handle.id).wait_for(timeout=60_000)
                await page.screenshot(path=str(tmp_path / "list.png"), full_page=True)

                await page.get_by_role("link", name=handle.id).first.click()
                # The armed timer, named by its summary, on the ticket's timeline.
                await visible(page, "Lembrete 1 de 2 ao cliente").wait_for(timeout=60_000)
                await page.screenshot(path=str(tmp_path / "ticket.png"), full_page=True)
                # Title (static summary) and status line (current details).
                await page.get_by_text("User Metadata").first.click()
                # The UI renders summary and details (Markdown) in sandboxed iframes.
                await in_frames(page, FIELDS.title or "")
                await in_frames(page, "Aguardando resposta cliente")
                await page.screenshot(path=str(tmp_path / "metadata.png"), full_page=True)
            finally:
                await browser.close()
        await handle.terminate("test done")
    for shot in ("list.png", "ticket.png", "metadata.png"):
        assert (tmp_path / shot).stat().st_size > 10_000
