"""The console and the customer page in a real browser (Playwright driving Debian's
Chromium), served over real HTTP by uvicorn, on the dev server with a worker, mail going
to the SMTP sink. Every page passes an axe accessibility check with no serious or
critical violation.

``TRAMITA_SCREENSHOTS=1`` (``make screenshots``) also saves the console's ticket page as
``docs/images/console.png``, the README's picture.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright, expect
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from config import Settings
from tests.api.helpers import AGENT, REQUESTER, ticket_body
from tests.support.processes import ROOT
from tests.support.smtp import Received, SmtpSink, free_port
from tests.support.temporal import eventually, strict_worker
from tests.web.pages import CUSTOMER_LINK

CHROMIUM = Path("/usr/bin/chromium")
QUEUE = "tramita-web-browser-tests"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Chromium is not installed (make test installs Debian's chromium as root)",
    ),
]


@dataclass(frozen=True)
class Site:
    url: str
    api: httpx.AsyncClient


@pytest.fixture(scope="module")
async def site(
    dev_env: WorkflowEnvironment, api_settings: Settings, http_client: httpx.AsyncClient
) -> AsyncIterator[Site]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = api_settings.model_copy(update={"task_queue": QUEUE, "public_url": url})
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, client=dev_env.client),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
        )
    )
    serving = asyncio.create_task(server.serve())
    async with strict_worker(dev_env.client, settings, http_client):
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert server.started, "uvicorn did not start"
        async with httpx.AsyncClient(base_url=url, timeout=30) as api:
            yield Site(url, api)
        server.should_exit = True
        await serving


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
        )
        try:
            yield launched
        finally:
            await launched.close()


async def accessible(page: Page) -> None:
    """axe finds no serious or critical violation on the page as it is now."""
    results = await Axe().run(page)
    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not serious, f"{page.url}:\n" + "\n".join(serious)


async def new_ticket(site: Site, **overrides: object) -> str:
    answer = await site.api.post("/tickets", json=ticket_body(**overrides), headers=AGENT)
    assert answer.status_code == 201, answer.text
    ticket_id: str = answer.json()["id"]
    return ticket_id


async def staff(site: Site, ticket_id: str) -> dict[str, object]:
    answer = await site.api.get(f"/tickets/{ticket_id}", headers=AGENT)
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


async def test_an_agent_takes_a_ticket_asks_the_customer_and_resolves_it(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    title = f"Impressora fiscal {secrets.token_hex(3)} não imprime o cupom"
    tid = await new_ticket(site, title=title)
    page = await browser.new_page(viewport={"width": 1360, "height": 900})
    await page.goto(f"{site.url}/console/")
    await expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    await accessible(page)
    await page.get_by_label("Your API key").fill("dev-agent-key")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="My inbox")).to_be_visible()
    await accessible(page)

    await page.get_by_role("link", name="Unassigned").click()
    await expect(page.get_by_role("heading", name="Unassigned")).to_be_visible()
    await accessible(page)
    await page.get_by_role("searchbox", name="Search").fill(title.split(" não")[0])
    await page.get_by_role("button", name="Show").click()
    await page.get_by_role("link", name=title).click()
    await expect(page.get_by_role("heading", name=title)).to_be_visible()
    await accessible(page)

    assign = page.locator("#command-assign")
    await assign.get_by_label("Assignee").fill("ana")
    await assign.get_by_role("button").click()
    await expect(page.get_by_text("Done: Assign to a resource.")).to_be_visible()

    email = page.locator("#command-send_email")
    if not await email.get_attribute("open"):
        await email.locator("summary").click()
    await email.get_by_label("Body").fill("Pode enviar uma foto do erro na impressora?")
    await email.get_by_role("button").click()
    await expect(page.get_by_text("Done: Send an email")).to_be_visible()

    wait = page.locator("#command-wait")
    await wait.locator("summary").click()
    await wait.get_by_label("Reason").select_option("customer")
    await wait.get_by_role("button").click()
    await expect(page.get_by_text("Aguardando resposta cliente").first).to_be_visible()
    await expect(page.get_by_text("Lembrete 1 de 2 ao cliente")).to_be_visible()
    await accessible(page)

    # The customer answers meanwhile: the open page shows it without a reload by hand.
    reply = await site.api.post(
        f"/tickets/{tid}/replies", json={"body": "Foto enviada por e-mail."}, headers=REQUESTER
    )
    assert reply.status_code == 200, reply.text
    await expect(page.get_by_text("Foto enviada por e-mail.")).to_be_visible(timeout=15_000)

    resolve = page.locator("#command-resolve")
    await resolve.locator("summary").click()
    await resolve.get_by_label("Method").select_option("customer_response")
    await resolve.get_by_role("button").click()
    await expect(page.get_by_text("Validação cliente").first).to_be_visible()
    await accessible(page)
    view = await staff(site, tid)
    assert (view["status"], view["assignee"]) == ("resolved", {"id": "ana", "kind": "human"})

    shot = tmp_path / "console.png"
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(shot), full_page=False)
    if os.environ.get("TRAMITA_SCREENSHOTS"):
        target = ROOT / "docs" / "images" / "console.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
    await page.close()


async def customer_link(sink: SmtpSink, ticket_id: str) -> str:
    async def mails() -> list[Received]:
        return sink.for_ticket(ticket_id)

    (mail, *_) = await eventually(mails, lambda found: len(found) >= 1)
    found = CUSTOMER_LINK.search(mail.text)
    assert found, mail.text
    return found.group(0)


async def test_a_customer_follows_the_emailed_link_replies_and_rates(
    site: Site, browser: Browser, smtp_sink: SmtpSink
) -> None:
    tid = await new_ticket(site)
    for path, body in (
        ("assign", {"assignee": "ana"}),
        ("emails", {"body": "Pode enviar o XML da nota?"}),
        ("wait", {"reason": "customer"}),
    ):
        answer = await site.api.post(f"/tickets/{tid}/{path}", json=body, headers=AGENT)
        assert answer.status_code == 200, answer.text
    link = await customer_link(smtp_sink, tid)
    assert link.startswith(site.url + "/c/")

    page = await browser.new_page()
    await page.goto(link)
    await expect(page.get_by_role("heading", name="Erro ao emitir nota fiscal")).to_be_visible()
    await expect(page.get_by_text("Pode enviar o XML da nota?")).to_be_visible()
    await accessible(page)
    await page.get_by_label("Sua mensagem").fill("Segue o XML da nota 42.")
    await page.get_by_role("button", name="Enviar", exact=True).click()
    await expect(page.get_by_text("sua mensagem foi adicionada")).to_be_visible()
    await expect(page.get_by_text("Segue o XML da nota 42.")).to_be_visible()
    assert (await staff(site, tid))["status"] == "in_progress"

    answer = await site.api.post(
        f"/tickets/{tid}/resolve", json={"method": "customer_response"}, headers=AGENT
    )
    assert answer.status_code == 200
    await page.reload()
    await expect(page.get_by_role("heading", name="Como foi o atendimento?")).to_be_visible()
    await accessible(page)
    await page.locator('input[name="score"][value="4"]').check()
    await page.get_by_label("Comentário (opcional)").fill("Rápido e claro.")
    await page.get_by_role("button", name="Enviar avaliação").click()
    await expect(page.get_by_text("Obrigado pela avaliação.")).to_be_visible()
    survey = (await staff(site, tid))["survey"]
    assert isinstance(survey, dict) and (survey["score"], survey["comment"]) == (
        4,
        "Rápido e claro.",
    )
    await page.close()


async def test_a_closed_tickets_page_refuses_changes_and_a_bad_link_is_a_plain_404(
    site: Site, browser: Browser, smtp_sink: SmtpSink
) -> None:
    # Enate closes a spam ticket at once (support only ever closes by itself, days later).
    tid = await new_ticket(site, profile="enate", nature=None)
    await site.api.post(f"/tickets/{tid}/assign", json={"assignee": "ana"}, headers=AGENT)
    await site.api.post(f"/tickets/{tid}/emails", json={"body": "Hello!"}, headers=AGENT)
    link = await customer_link(smtp_sink, tid)
    page = await browser.new_page()
    await page.goto(link)
    csrf = await page.locator('input[name="csrf"]').first.get_attribute("value")
    closed = await site.api.post(f"/tickets/{tid}/resolve", json={"method": "spam"}, headers=AGENT)
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"

    await page.reload()
    await expect(page.get_by_text("This ticket is closed")).to_be_visible()
    await expect(page.get_by_label("Your message")).to_have_count(0)
    await expect(page.get_by_role("heading", name="Open a new ticket about this")).to_be_visible()
    await accessible(page)
    forced = await page.request.post(
        f"{link}/reply", form={"body": "depois de fechado", "csrf": csrf or ""}
    )
    assert forced.status == 409
    assert "depois de fechado" not in str((await staff(site, tid))["timeline"])

    response = await page.goto(link[:-4] + "AAAA" if not link.endswith("AAAA") else link + "B")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    await expect(page.get_by_text("Página não encontrada")).to_be_visible()
    await accessible(page)
    await page.close()
