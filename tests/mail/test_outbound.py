"""What Tramita's emails carry: one thread, a sender with a name, local time, both a text
and an HTML version, copies when asked, and marks on everything automatic."""

from __future__ import annotations

import asyncio
from email.utils import parsedate_to_datetime

import httpx

from tests.api.helpers import AGENT, SYSTEM, create, post
from tests.mail.messages import corpus_mail, message_id_of
from tests.mail.test_inbound_routing import MIME
from tests.support.smtp import Received, SmtpSink


async def mails(sink: SmtpSink, ticket_id: str, count: int) -> list[Received]:
    for _ in range(400):
        found = sink.for_ticket(ticket_id)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} mails for {ticket_id}")


async def test_an_agents_answer_continues_the_customers_thread(
    api: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    ticket = await create(api, contacts=["financeiro@example.com"])
    tid = ticket["id"]
    await post(api, f"/tickets/{tid}/assign", {"assignee": "ana"})
    await post(api, f"/tickets/{tid}/emails", {"body": "Poderia enviar o XML da nota?"})
    (first,) = await mails(smtp_sink, tid, 1)
    reply = corpus_mail("gmail-reply-pt.eml", tid).replace(
        b"<ticket-" + tid.encode() + b".4@tramita.test>", first.message["Message-ID"].encode()
    )
    routed = (await api.post("/inbound/mime", content=reply, headers=MIME)).json()
    assert routed["outcome"] == "reply"
    await post(
        api,
        f"/tickets/{tid}/emails",
        {"body": "Obrigado!\nVeja <script>alert(1)</script> aqui.", "cc": True},
    )
    second = (await mails(smtp_sink, tid, 2))[1]
    message = second.message

    assert message["In-Reply-To"] == message_id_of(reply)
    assert message["References"].split() == [
        str(first.message["Message-ID"]),
        message_id_of(reply),
    ]
    (sender,) = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        "Ana Souza (Suporte Tramita)",
        "suporte@tramita.test",
    )
    assert message["Cc"] == "financeiro@example.com"
    # One message, two copies: the requester's with their page's link, the contact's
    # without it.
    copies = [
        c for c in smtp_sink.copies_for(tid) if c.message["Message-ID"] == message["Message-ID"]
    ]
    assert sorted(c.envelope_to[0] for c in copies) == [
        "cliente@example.com",
        "financeiro@example.com",
    ]
    assert second.envelope_to == ["cliente@example.com"] and "/c/" in second.text
    contact = next(c for c in copies if c.envelope_to == ["financeiro@example.com"])
    assert "/c/" not in contact.text and contact.message["Cc"] == "financeiro@example.com"
    offset = parsedate_to_datetime(str(message["Date"])).utcoffset()
    assert offset is not None and offset.total_seconds() == -3 * 3600, "São Paulo's time"
    assert message["Auto-Submitted"] is None, "an agent's email may be answered"
    assert message["X-Tramita-Loop"] is None
    assert second.text.splitlines()[0] == "##- Por favor, responda acima desta linha -##"
    assert "Obrigado!\nVeja <script>alert(1)</script> aqui." in second.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in second.html
    assert "<script>" not in second.html


async def test_tramitas_own_automatic_mail_coming_back_changes_nothing(
    api: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    """A customer's mailbox that forwards everything back (a loop) meets the loop mark."""
    ticket = await create(api, profile="enate")
    await post(api, f"/tickets/{ticket['id']}/emails", {"body": "Alguma novidade?"})
    (sent,) = await mails(smtp_sink, ticket["id"], 1)
    looped = sent.message
    looped.replace_header("Message-ID", "<looped-1@mail.example.com>")
    looped["X-Tramita-Loop"] = "tramita.test"
    before = (await api.get(f"/tickets/{ticket['id']}", headers=AGENT)).json()
    routed = (await api.post("/inbound/mime", content=looped.as_bytes(), headers=MIME)).json()
    assert routed["outcome"] == "auto_reply"
    after = (await api.get(f"/tickets/{ticket['id']}", headers=SYSTEM)).json()
    assert after["status"] == before["status"]
    assert len(smtp_sink.for_ticket(ticket["id"])) == 1, "never answered"
