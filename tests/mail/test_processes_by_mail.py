"""Both source processes, end to end through real mail.

Tramita's emails land in a real SMTP sink; the customer answers them as a mail client
would (a reply to that very message: its subject, In-Reply-To and quoted text) through
the SMTP listener. Time passes on the time-skipping server.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from config import Settings
from mail.listener import InboundHandler, listen
from tests.api.helpers import AGENT, create, post, ticket_body
from tests.mail.conftest import Listener
from tests.mail.messages import corpus_mail
from tests.support.smtp import Received, SmtpSink, free_port
from tests.support.temporal import travel_to

CUSTOMER = "cliente@example.com"


async def mails_of(sink: SmtpSink, ticket_id: str, count: int) -> list[Received]:
    for _ in range(400):
        found = sink.for_ticket(ticket_id)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(sink.for_ticket(ticket_id))} mails, not {count}")


def reply_to(mail: Received, text: str, *, sender: str = CUSTOMER) -> bytes:
    """The customer's answer to one of Tramita's emails, as Gmail would write it."""
    original = mail.message
    quoted = "\n".join(f"> {line}" for line in mail.text.splitlines())
    reply = EmailMessage()
    reply["From"] = f"Cliente <{sender}>"
    reply["To"] = str(original["From"])
    reply["Subject"] = f"Re: {original['Subject']}"
    reply["Message-ID"] = make_msgid(domain="mail.example.com")
    reply["In-Reply-To"] = str(original["Message-ID"])
    reply["References"] = str(original["Message-ID"])
    reply["Date"] = format_datetime(datetime.now().astimezone())
    reply.set_content(f"{text}\n\nEm seg., 30 de nov. de 2026, Suporte escreveu:\n{quoted}\n")
    return reply.as_bytes()


async def read(api: httpx.AsyncClient, ticket_id: str) -> dict[str, Any]:
    view: dict[str, Any] = (await api.get(f"/tickets/{ticket_id}", headers=AGENT)).json()
    return view


async def test_support_wait_reminders_and_the_reply_by_mail(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, listener: Listener, smtp_sink: SmtpSink
) -> None:
    ticket = await create(api)
    tid = ticket["id"]
    await post(api, f"/tickets/{tid}/assign", {"assignee": "ana"})
    await post(api, f"/tickets/{tid}/emails", {"body": "Pode enviar o log do erro?"})
    waiting = await post(api, f"/tickets/{tid}/wait", {"reason": "customer"})
    (asked,) = await mails_of(smtp_sink, tid, 1)
    (sender,) = asked.message["From"].addresses
    assert sender.display_name == "Ana Souza (Suporte Tramita)"
    assert asked.text.startswith("##- Por favor")

    reminders = [d for d in waiting["deadlines"] if d["kind"] == "reminder"]
    await travel_to(time_env, datetime.fromisoformat(reminders[1]["due_at"]) + timedelta(minutes=1))
    mails = await mails_of(smtp_sink, tid, 3)
    second = mails[2].message
    assert second["Subject"].startswith("Lembrete: aguardamos sua resposta")
    assert second["Auto-Submitted"] == "auto-generated"
    assert asked.message["Message-ID"] in second["References"], "one thread"

    code, answer = await listener.send(reply_to(mails[2], "Segue o log em anexo."))
    assert (code, answer.split()[1]) == (250, "reply")
    view = await read(api, tid)
    assert view["status"] == "in_progress" and view["highlighted"]
    reply = next(e for e in view["timeline"] if e["type"] == "customer_reply")
    assert reply["data"]["body"] == "Segue o log em anexo."
    await time_env.sleep(timedelta(days=10))
    assert len(smtp_sink.for_ticket(tid)) == 3, "no reminder after the answer"


async def test_an_auto_reply_during_a_wait_changes_nothing(
    api: httpx.AsyncClient, listener: Listener
) -> None:
    ticket = await create(api)
    await post(api, f"/tickets/{ticket['id']}/assign", {"assignee": "ana"})
    waiting = await post(api, f"/tickets/{ticket['id']}/wait", {"reason": "customer"})
    code, answer = await listener.send(corpus_mail("ooo-exchange-pt.eml", ticket["id"]))
    assert (code, answer.split()[1]) == (250, "auto_reply")
    view = await read(api, ticket["id"])
    assert view["status"] == "waiting" and view["deadlines"] == waiting["deadlines"]


async def test_enate_by_mail_draft_feedback_window_follow_up(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, listener: Listener, smtp_sink: SmtpSink
) -> None:
    draft = await post(
        api,
        "/tickets",
        ticket_body(profile="enate", title=None, description=None, submit=False),
        expect=201,
    )
    tid = draft["id"]
    filled = await post(
        api,
        f"/tickets/{tid}/emails",
        {"subject": "Acesso ao sistema de folha", "body": "Seu acesso foi liberado."},
    )
    assert (filled["title"], filled["description"]) == (
        "Acesso ao sistema de folha",
        "Seu acesso foi liberado.",
    )
    (sent,) = await mails_of(smtp_sink, tid, 1)
    await post(api, f"/tickets/{tid}/submit")
    resolved = await post(api, f"/tickets/{tid}/resolve", {"method": "customer_response"})
    assert resolved["status"] == "resolved"

    code, answer = await listener.send(reply_to(sent, "Ainda não consigo entrar."))
    assert (code, answer.split()[1]) == (250, "reopen"), answer
    assert (await read(api, tid))["status"] == "in_progress"

    closing = await post(
        api, f"/tickets/{tid}/resolve", {"method": "customer_response", "note": "Senha redefinida."}
    )
    close_at = next(d for d in closing["deadlines"] if d["kind"] == "auto_close")["due_at"]
    await travel_to(time_env, datetime.fromisoformat(close_at) + timedelta(minutes=1))
    for _ in range(200):
        if (await read(api, tid))["status"] == "closed":
            break
        await asyncio.sleep(0.05)
    code, answer = await listener.send(reply_to(sent, "Voltou a falhar."))
    assert (code, answer.split()[1]) == (250, "follow_up")
    follow_up = await read(api, answer.split()[2])
    assert follow_up["links"]["follow_up_of"] == tid


async def test_enate_rejects_mail_from_unknown_senders(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, api_settings: Settings
) -> None:
    settings = api_settings.model_copy(
        update={
            "inbound_smtp_port": free_port(),
            "inbound_addresses": {"enate@tramita.test": "enate"},
            "known_senders": ("empresa.com.br",),
        }
    )
    handler = InboundHandler(settings)
    handler.connected(time_env.client)
    server = await listen(handler, settings)
    enate = Listener(settings.inbound_smtp_host, settings.inbound_smtp_port, handler)
    try:
        stranger = corpus_mail("gmail-reply-en.eml", **{"Re: Printer": "Printer"})
        code, answer = await enate.send(stranger, to="enate@tramita.test")
        assert (code, answer.split()[1]) == (250, "unknown_sender")
        rejected = await read(api, answer.split()[2])
        assert (rejected["profile"], rejected["status"]) == ("enate", "closed")
        assert rejected["resolution"]["method"] == "unknown_sender"
        known = corpus_mail("iso-8859-1-request.eml")
        code, answer = await enate.send(known, to="enate@tramita.test")
        assert (code, answer.split()[1]) == (250, "new_ticket")
        assert (await read(api, answer.split()[2]))["profile"] == "enate"
    finally:
        server.close()
        await server.wait_closed()
