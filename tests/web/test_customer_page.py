"""The customer page over HTTP: the link from the customer's email, the customer view
only, reply, survey, qualification review, read-only when closed, follow-ups, and a
plain 404 for any link that does not read. Opening the page never records anything."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from temporalio.testing import WorkflowEnvironment

from config import DEVELOPMENT_SECRET_KEY
from tests.api.helpers import AGENT, REQUESTER, create, event_types, post
from tests.support.smtp import Received, SmtpSink
from tests.support.temporal import eventually, travel_to
from tests.web.pages import csrf_of, customer_path_of, text_of
from web import links


async def mail_with_link(sink: SmtpSink, ticket_id: str, count: int = 1) -> Received:
    async def mails() -> list[Received]:
        return sink.for_ticket(ticket_id)

    return (await eventually(mails, lambda found: len(found) >= count))[count - 1]


async def staff(web: httpx.AsyncClient, ticket_id: str) -> dict[str, Any]:
    answer = await web.get(f"/tickets/{ticket_id}", headers=AGENT)
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


async def emailed_ticket(
    web: httpx.AsyncClient, sink: SmtpSink, **overrides: object
) -> tuple[str, str]:
    """A ticket whose agent wrote to the customer; its id and the page's path from the mail."""
    ticket = await create(web, **overrides)
    tid = ticket["id"]
    await post(web, f"/tickets/{tid}/assign", {"assignee": "ana"})
    await post(web, f"/tickets/{tid}/notes", {"body": "Senha do sistema de testes: hunter2"})
    await post(web, f"/tickets/{tid}/emails", {"body": "Pode enviar o XML da nota?"})
    return tid, customer_path_of(await mail_with_link(sink, tid))


async def send(web: httpx.AsyncClient, path: str, form: str, **fields: str) -> httpx.Response:
    page = await web.get(path)
    assert page.status_code == 200, page.text
    return await web.post(f"{path}/{form}", data={"csrf": csrf_of(page.text), **fields})


async def test_the_emailed_link_shows_the_customer_view_in_the_profiles_language(
    web: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    _, path = await emailed_ticket(web, smtp_sink, title="<b>Nota</b> rejeitada")
    page = await web.get(path)
    assert page.status_code == 200
    assert '<html lang="pt-BR">' in page.text
    text = text_of(page.text)
    assert "Seu chamado" in text and "Pode enviar o XML da nota?" in text
    assert "<b>Nota</b> rejeitada" in text and "<b>Nota</b>" not in page.text, "escaped"
    assert "hunter2" not in page.text, "no internal note on a customer page"
    assert "ana@" not in page.text and "assigned" not in text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert "set-cookie" not in page.headers, "the link is the credential; no cookie"


async def test_a_forged_expired_or_other_tickets_link_gets_the_same_plain_404(
    web: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    tid, path = await emailed_ticket(web, smtp_sink)
    token = path.removeprefix("/c/")
    other = await create(web, requester="outra@example.com", primary_contact="outra@example.com")

    class LongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 61 * 86_400

    expired = URLSafeTimedSerializer(DEVELOPMENT_SECRET_KEY, salt=links.SALT, signer=LongAgo).dumps(
        {"t": tid, "r": "cliente@example.com"}
    )
    wrong_person = links.sign(DEVELOPMENT_SECRET_KEY, other["id"], "cliente@example.com")
    wrong_secret = links.sign("another-secret-of-at-least-32-chars!!", tid, "cliente@example.com")
    altered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    mangled = (f"{token})", f"{token}%3E", "abc", f"{token}/no-such-page")
    pages = [
        await web.get(f"/c/{bad}")
        for bad in (expired, wrong_person, wrong_secret, altered, "not-a-token-at-all", *mangled)
    ]
    assert [p.status_code for p in pages] == [404] * 9
    assert all(p.headers["content-type"].startswith("text/html") for p in pages)
    assert len({text_of(p.text) for p in pages}) == 1, "no hint of which ticket exists"
    assert "Traceback" not in pages[0].text
    refused = await web.post(f"/c/{wrong_person}/reply", data={"body": "oi", "csrf": "x"})
    assert refused.status_code == 404
    assert "oi" not in event_types(await staff(web, other["id"]))


async def test_opening_the_page_records_nothing(
    web: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    tid, path = await emailed_ticket(web, smtp_sink)
    await post(web, f"/tickets/{tid}/resolve", {"method": "customer_response"})
    before = await staff(web, tid)
    for _ in range(3):  # a mail scanner following every link, twice
        assert (await web.get(path)).status_code == 200
        assert (await web.head(path)).status_code == 200
        assert (await web.get(f"{path}/survey")).status_code in (404, 405)
    after = await staff(web, tid)
    assert after["timeline"] == before["timeline"] and after["survey"] is None


async def test_a_reply_from_the_page_ends_the_customer_wait_and_is_the_requesters(
    web: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    tid, path = await emailed_ticket(web, smtp_sink)
    await post(web, f"/tickets/{tid}/wait", {"reason": "customer"})
    missing = await send(web, path, "reply", body="   ")
    assert missing.status_code == 422 and "Preencha este campo" in text_of(missing.text)
    no_csrf = await web.post(f"{path}/reply", data={"body": "sem token"})
    assert no_csrf.status_code == 403

    answer = await send(web, path, "reply", body="Segue o XML: <nota>42</nota>")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{path}?done=reply#top"
    view = await staff(web, tid)
    last = view["timeline"][-1]
    assert view["status"] == "in_progress"
    assert any(
        e["type"] == "customer_reply" and e["actor"] == "cliente@example.com"
        for e in view["timeline"]
    )
    assert last["type"] in ("customer_reply", "wait_ended")
    page = await web.get(answer.headers["location"])
    assert "sua mensagem foi adicionada" in text_of(page.text)
    assert "Segue o XML: <nota>42</nota>" in text_of(page.text)


async def test_the_survey_can_be_changed_until_the_close_then_the_page_is_read_only(
    web: httpx.AsyncClient, smtp_sink: SmtpSink, time_env: WorkflowEnvironment
) -> None:
    tid, path = await emailed_ticket(web, smtp_sink)
    assert "Como foi o atendimento?" not in text_of((await web.get(path)).text)
    await post(web, f"/tickets/{tid}/resolve", {"method": "customer_response"})
    assert "Como foi o atendimento?" in text_of((await web.get(path)).text)

    out_of_range = await send(web, path, "survey", score="9")
    assert out_of_range.status_code == 422
    assert "nota de 1 a 5" in text_of(out_of_range.text)
    assert (await send(web, path, "survey", score="3", comment="Demorou")).status_code == 303
    assert (await send(web, path, "survey", score="5", comment="Resolvido!")).status_code == 303
    view = await staff(web, tid)
    assert view["survey"]["score"] == 5
    assert event_types(view).count("rated") == 2
    page = await web.get(path)
    assert re.search(r'value="5" required checked', page.text), "the current rating is shown"

    await time_env.sleep(timedelta(days=12))  # the automatic close still comes
    assert (await staff(web, tid))["status"] == "closed"
    closed = await web.get(path)
    assert "Este chamado está fechado" in text_of(closed.text)
    assert 'action="' + path + '/reply"' not in closed.text
    assert 'action="' + path + '/survey"' not in closed.text
    late = await web.post(
        f"{path}/reply", data={"body": "mais uma coisa", "csrf": csrf_of(closed.text)}
    )
    assert late.status_code == 409
    assert "o chamado mudou" in text_of(late.text), "the refusal is said, in Portuguese"
    assert "mais uma coisa" in text_of(late.text), "and what was typed is not lost"
    assert "mais uma coisa" not in str((await staff(web, tid))["timeline"])

    follow_up = await send(
        web, path, "follow-up", title="O erro voltou", description="Depois da atualização."
    )
    assert follow_up.status_code == 303
    new_path = follow_up.headers["location"].split("?")[0]
    assert new_path != path and new_path.startswith("/c/")
    new_page = await web.get(new_path)
    assert "O erro voltou" in text_of(new_page.text)
    assert "Seu novo chamado foi aberto" in text_of(
        (await web.get(follow_up.headers["location"])).text
    )
    links_of = (await staff(web, tid))["links"]
    assert len(links_of["follow_ups"]) == 1


async def test_a_consultant_reviews_the_qualification_during_validation(
    web: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    tid, path = await emailed_ticket(web, smtp_sink, requester_kind="consultant")
    await post(web, f"/tickets/{tid}/resolve", {"method": "customer_response"})
    page = await web.get(path)
    assert "Como parceiro credenciado" in text_of(page.text)
    assert "Defeito do produto" in text_of(page.text), "the choices in the page's language"
    answer = await send(web, path, "qualification", qualification="product_defect")
    assert answer.status_code == 303
    assert (await staff(web, tid))["qualification"] == "product_defect"

    customer_tid, customer_path = await emailed_ticket(web, smtp_sink)
    await post(web, f"/tickets/{customer_tid}/resolve", {"method": "customer_response"})
    assert "Como parceiro credenciado" not in text_of((await web.get(customer_path)).text)
    refused = await send(web, customer_path, "qualification", qualification="product_defect")
    assert refused.status_code == 409


async def test_attachments_are_downloadable_from_public_events_only(
    web: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    tid, path = await emailed_ticket(web, smtp_sink)
    requester_view = await web.get(f"/tickets/{tid}", headers=REQUESTER)
    assert requester_view.status_code == 200
    stored = await web.get(f"{path}/contents/{'0' * 64}")
    assert stored.status_code == 404


def opened_by(path: str) -> links.CustomerLink | None:
    """The ticket and person a customer link opens."""
    return links.read(DEVELOPMENT_SECRET_KEY, path.removeprefix("/c/"), max_age_days=1)


async def test_once_rated_no_more_validation_reminders_but_the_close_still_comes(
    web: httpx.AsyncClient, smtp_sink: SmtpSink, time_env: WorkflowEnvironment
) -> None:
    tid, path = await emailed_ticket(web, smtp_sink)
    resolved = await post(web, f"/tickets/{tid}/resolve", {"method": "customer_response"})
    closes_at = next(d["due_at"] for d in resolved["deadlines"] if d["kind"] == "auto_close")
    first_reminder = min(
        datetime.fromisoformat(d["due_at"])
        for d in resolved["deadlines"]
        if d["kind"] == "reminder"
    )
    await travel_to(time_env, first_reminder + timedelta(seconds=5))  # it goes out
    reminder = await mail_with_link(smtp_sink, tid, count=2)
    # Each email's link is dated when it is written (its token differs by the second);
    # it opens the same ticket for the same person.
    page = opened_by(path)
    assert page == links.CustomerLink(tid, "cliente@example.com")
    assert opened_by(customer_path_of(reminder)) == page, "the reminder links to the same page"
    assert (await send(web, path, "survey", score="4")).status_code == 303
    view = await staff(web, tid)
    assert [d["kind"] for d in view["deadlines"]] == ["auto_close"]
    assert view["deadlines"][0]["due_at"] == closes_at

    await time_env.sleep(timedelta(days=12))
    closed = await staff(web, tid)
    assert closed["status"] == "closed"
    assert event_types(closed).count("reminder_sent") == 1
    assert len(smtp_sink.for_ticket(tid)) == 2, "the agent's email and one reminder"
