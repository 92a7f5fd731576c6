"""The agent console over HTTP: sign-in and session, CSRF, queues, the ticket page, the
commands it offers, errors in words, escaping, and the notices to agents."""

from __future__ import annotations

import re
import secrets

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.main import create_app
from config import DEVELOPMENT_SECRET_KEY, Settings
from tests.api.helpers import AGENT, REQUESTER, SUPERVISOR, create, post
from tests.support.smtp import Received, SmtpSink
from tests.support.temporal import eventually
from tests.web.pages import csrf_of, sign_in, text_of
from web import links
from workflows import lifecycle
from workflows.models import TicketView
from workflows.policy import policy_for

FORM_ACTION = re.compile(r'action="/console/tickets/[^/]+/commands/([a-z_]+)"')


async def staff_view(web: httpx.AsyncClient, ticket_id: str) -> TicketView:
    answer = await web.get(f"/tickets/{ticket_id}", headers=AGENT)
    assert answer.status_code == 200, answer.text
    return TicketView.model_validate(answer.json())


async def console_post(
    web: httpx.AsyncClient, ticket_id: str, command: str, csrf: str, **fields: str
) -> httpx.Response:
    return await web.post(
        f"/console/tickets/{ticket_id}/commands/{command}", data={"csrf": csrf, **fields}
    )


async def test_the_console_asks_for_an_agents_key_and_keeps_a_strict_http_only_session(
    web: httpx.AsyncClient,
) -> None:
    first = await web.get("/console/tickets/abc123")
    assert first.status_code == 303
    assert first.headers["location"].startswith("/console/sign-in?next=")

    form = await web.get("/console/sign-in")
    token = csrf_of(form.text)
    refused = await web.post("/console/sign-in", data={"key": "dev-requester-key", "csrf": token})
    assert refused.status_code == 401
    assert "not an agent" in text_of(refused.text)
    assert "tramita_session" not in refused.headers.get("set-cookie", "")

    form = await web.get("/console/sign-in")
    forged = await web.post("/console/sign-in", data={"key": "dev-agent-key", "csrf": "forged"})
    assert forged.status_code == 403, "a sign-in form that is not ours"

    form = await web.get("/console/sign-in")
    signed = await web.post(
        "/console/sign-in",
        data={"key": "dev-agent-key", "csrf": csrf_of(form.text), "next": "https://evil.example/"},
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/console/", "never an open redirect"
    cookie = next(
        c for c in signed.headers.get_list("set-cookie") if c.startswith("tramita_session=")
    )
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "dev-agent-key" not in cookie, "the key itself is never in the cookie"

    queue = await web.get("/console/")
    assert queue.status_code == 200
    assert "Signed in as" in text_of(queue.text) and "ana" in text_of(queue.text)
    for header, value in {
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
    }.items():
        assert queue.headers[header] == value
    assert "default-src 'self'" in queue.headers["content-security-policy"]

    out = await web.post("/console/sign-out", data={"csrf": csrf_of(queue.text)})
    assert out.status_code == 303
    assert (await web.get("/console/")).status_code == 303, "signed out"


async def test_every_console_form_needs_its_sessions_csrf_token(
    web: httpx.AsyncClient, site: httpx.ASGITransport
) -> None:
    ticket = await create(web)
    tid = ticket["id"]
    csrf = await sign_in(web)
    for token in ("", "someone-elses-token"):
        answer = await console_post(web, tid, "note", token, body="should not be added")
        assert answer.status_code == 403
        assert "not this session" in text_of(answer.text)
    bodies = [e.data.get("body") for e in (await staff_view(web, tid)).timeline]
    assert "should not be added" not in bodies

    done = await console_post(web, tid, "note", csrf, body="Verified with the customer's bank.")
    assert done.status_code == 303
    assert done.headers["location"] == f"/console/tickets/{tid}?done=note#timeline"
    last = (await staff_view(web, tid)).timeline[-1]
    assert (last.type, last.actor, last.data["body"]) == (
        "note",
        "ana",
        "Verified with the customer's bank.",
    )
    # A console form is not an API call: no cookie, no CSRF token from another site.
    async with httpx.AsyncClient(transport=site, base_url="http://tramita.test") as other:
        answer = await console_post(other, tid, "note", csrf, body="cross-site")
        assert answer.status_code == 303 and answer.headers["location"].startswith(
            "/console/sign-in"
        )


async def test_queues_find_a_ticket_from_unassigned_to_my_inbox_and_my_waiting_work(
    web: httpx.AsyncClient,
) -> None:
    mark = secrets.token_hex(4)  # other tests' tickets share the store: find ours
    ticket = await create(web, title=f"Boleto duplicado {mark} na fatura de março")
    tid = ticket["id"]
    csrf = await sign_in(web)

    async def listed(queue: str, **params: str) -> bool:
        page = await web.get("/console/", params={"queue": queue, "q": mark, **params})
        assert page.status_code == 200, page.text
        return f"/console/tickets/{tid}" in page.text

    assert await listed("unassigned")
    assert not await listed("inbox")
    assert (await console_post(web, tid, "assign", csrf, assignee="ana")).status_code == 303
    assert not await listed("unassigned")
    assert await listed("inbox")

    answer = await console_post(web, tid, "wait", csrf, reason="customer")
    assert answer.status_code == 303
    assert await listed("waiting")
    assert not await listed("inbox")

    assert await listed("all", q=f"março {mark} duplicado")
    assert not await listed("all", q=f"{mark} nada-assim")
    assert await listed("all", status="waiting", sort="next_deadline")
    assert not await listed("all", status="new")

    unknown = await web.get("/console/", params={"queue": "all", "colour": "red"})
    assert unknown.status_code == 422
    assert "Colour" in text_of(unknown.text) and "Traceback" not in unknown.text
    bad_sort = await web.get("/console/", params={"sort": "title"})
    assert bad_sort.status_code == 422
    for name in ("q", "category", "assignee"):
        control = await web.get("/console/", params={"queue": "all", name: "nota\x00\nfiscal"})
        assert control.status_code == 422, name


async def test_the_ticket_page_offers_exactly_what_the_core_offers_in_each_status(
    web: httpx.AsyncClient,
) -> None:
    ticket = await create(web)
    tid = ticket["id"]
    csrf = await sign_in(web)
    policy = policy_for(ticket["profile"])

    async def forms_on_page() -> list[str]:
        page = await web.get(f"/console/tickets/{tid}")
        assert page.status_code == 200
        return FORM_ACTION.findall(page.text)

    seen = []
    for step in (
        None,
        ("assign", {"assignee": "ana"}),
        ("wait", {"reason": "customer"}),
        ("resume", {}),
        ("resolve", {"method": "customer_response"}),
    ):
        if step is not None:
            answer = await console_post(web, tid, step[0], csrf, **step[1])
            assert answer.status_code == 303, text_of(answer.text)
        view = await staff_view(web, tid)
        offered = list(lifecycle.offered(view, policy))
        assert await forms_on_page() == offered
        seen.append((view.status.value, offered))
    statuses = [status for status, _ in seen]
    assert statuses == ["new", "in_progress", "waiting", "in_progress", "resolved"]
    assert "resolve" not in seen[-1][1] and "reopen" in seen[-1][1]
    assert "resume" in seen[2][1] and "resume" not in seen[1][1]

    # A command the page did not offer, posted anyway: refused in words, nothing done.
    answer = await console_post(web, tid, "wait", csrf, reason="customer")
    assert answer.status_code == 409
    assert "not possible now" in text_of(answer.text)
    assert (await staff_view(web, tid)).status.value == "resolved"


async def test_a_refused_or_invalid_form_is_explained_in_words_and_keeps_what_was_typed(
    web: httpx.AsyncClient,
) -> None:
    ticket = await create(web)
    tid = ticket["id"]
    csrf = await sign_in(web)
    answer = await console_post(web, tid, "assign", csrf, assignee="")
    assert answer.status_code == 422
    text = text_of(answer.text)
    assert "Assignee" in text and "Traceback" not in text

    answer = await console_post(web, tid, "note", csrf, body="x" * 200_001)
    assert answer.status_code in (413, 422)
    assert "Traceback" not in answer.text

    await post(web, f"/tickets/{tid}/assign", {"assignee": "ana"})
    await post(web, f"/tickets/{tid}/resolve", {"method": "customer_response"})
    answer = await console_post(web, tid, "emails", csrf, body="Typed before it was resolved")
    assert answer.status_code == 409
    assert "Typed before it was resolved" in answer.text, "the text is not lost"

    missing = await web.get("/console/tickets/nosuchticket1")
    assert missing.status_code == 404
    assert "Ticket not found" in text_of(missing.text)


async def test_ticket_text_is_escaped_and_internal_events_are_marked(
    web: httpx.AsyncClient,
) -> None:
    ticket = await create(web, title="<script>alert('title')</script> Erro")
    tid = ticket["id"]
    await post(web, f"/tickets/{tid}/notes", {"body": "<img src=x onerror=alert(1)> senha 42"})
    await post(web, f"/tickets/{tid}/replies", {"body": "<b>bold?</b>"}, headers=REQUESTER)
    await sign_in(web)
    page = (await web.get(f"/console/tickets/{tid}")).text
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>bold?</b>" not in page
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt; senha 42" in page
    internal = re.search(r'<li class="event internal" id="event-\d+">(.*?)</li>', page, re.S)
    assert internal and "senha 42" in internal.group(1) and "Internal" in internal.group(1)
    public = re.findall(r'<li class="event public" id="event-\d+">(.*?)</li>', page, re.S)
    assert any("bold?" in block and "Public" in block for block in public)


async def test_agents_are_told_by_email_of_a_ticket_given_to_them_and_of_customer_replies(
    web: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    ticket = await create(web)
    tid = ticket["id"]
    await post(web, f"/tickets/{tid}/assign", {"assignee": "ana"}, headers=SUPERVISOR)

    async def notices() -> list[Received]:
        return smtp_sink.notices_for(tid)

    (assigned,) = await eventually(notices, lambda found: len(found) == 1)
    assert assigned.envelope_to == ["ana@example.com"]
    assert f"/console/tickets/{tid}" in assigned.text
    assert assigned.message["Auto-Submitted"] == "auto-generated"

    await post(web, f"/tickets/{tid}/replies", {"body": "Segue o anexo."}, headers=REQUESTER)
    both = await eventually(notices, lambda found: len(found) == 2)
    assert both[1].envelope_to == ["ana@example.com"]
    assert f"/console/tickets/{tid}" in both[1].text
    assert not smtp_sink.for_ticket(tid), "the customer got none of it"

    # Taking a ticket yourself, or relaying its customer's call yourself, tells no one.
    mine = await create(web)
    await post(web, f"/tickets/{mine['id']}/assign", {"assignee": "ana"})
    await post(web, f"/tickets/{mine['id']}/replies", {"body": "Ligou: já resolveu."})
    await post(web, f"/tickets/{mine['id']}/notes", {"body": "barrier"})
    assert smtp_sink.notices_for(mine["id"]) == []

    # A supervisor handing a ticket over tells the agent it goes to.
    handed = await create(web)
    await post(web, f"/tickets/{handed['id']}/unassign", {"to": "ana"}, headers=SUPERVISOR)

    async def handed_notices() -> list[Received]:
        return smtp_sink.notices_for(handed["id"])

    (notice,) = await eventually(handed_notices, lambda found: len(found) == 1)
    assert notice.envelope_to == ["ana@example.com"]


@pytest.mark.parametrize("path", ["/static/tramita.css", "/static/console.js"])
async def test_the_pages_assets_are_served_by_the_app(web: httpx.AsyncClient, path: str) -> None:
    answer = await web.get(path)
    assert answer.status_code == 200 and len(answer.content) > 500


async def test_pages_share_the_rate_limit_per_session_link_and_sign_in_address(
    time_env: WorkflowEnvironment, api_settings: Settings, time_worker: Worker
) -> None:
    settings = api_settings.model_copy(update={"rate_limit_per_minute": 3})
    app = create_app(settings, client=time_env.client)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://tramita.test"
    ) as web:
        page = (await web.get("/console/sign-in")).text
        answers = []
        for n in range(4):
            answer = await web.post(
                "/console/sign-in", data={"key": f"guess-{n}", "csrf": csrf_of(page)}
            )
            answers.append(answer)
            page = answer.text
        assert [a.status_code for a in answers] == [401, 401, 401, 429]
        assert answers[-1].headers["retry-after"].isdigit()
        assert "Too many requests" in text_of(answers[-1].text)

        link = "/c/" + links.sign(DEVELOPMENT_SECRET_KEY, "nosuch12345", "c@example.com")
        pages = [(await web.get(link)).status_code for _ in range(4)]
        assert pages == [404, 404, 404, 429]


async def test_a_wrong_address_or_an_expired_session_gets_a_page_not_json(
    web: httpx.AsyncClient,
) -> None:
    ticket = await create(web)
    tid = ticket["id"]
    await sign_in(web)
    for path in ("/console/nothing-here", f"/console/tickets/{tid}/commands/note"):
        page = await web.get(path)
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "Page not found" in text_of(page.text)
    bad_id = await web.get("/console/tickets/no such id")
    assert bad_id.status_code in (404, 422) and bad_id.headers["content-type"].startswith(
        "text/html"
    )

    web.cookies.clear()  # the session expired while the agent typed
    answer = await web.post(
        f"/console/tickets/{tid}/commands/note", data={"csrf": "x", "body": "typed"}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == (f"/console/sign-in?next=%2Fconsole%2Ftickets%2F{tid}"), (
        "back to the ticket's page after signing in, not to a POST-only address"
    )


async def test_stored_texts_and_emails_download_never_show_inline(
    web: httpx.AsyncClient,
) -> None:
    ticket = await create(web)
    tid = ticket["id"]
    view = await post(web, f"/tickets/{tid}/notes", {"body": "<html><script>x</script>" * 300})
    ref = view["timeline"][-1]["data"]["body_ref"]
    await sign_in(web)
    answer = await web.get(f"/console/tickets/{tid}/contents/{ref}")
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert answer.headers["x-content-type-options"] == "nosniff"
