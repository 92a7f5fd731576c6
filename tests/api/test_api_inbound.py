"""Inbound email as JSON fields: reply, reopen, follow-up, new ticket, duplicate."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.api.helpers import SYSTEM, create, event_types, post
from tests.support.smtp import SmtpSink
from tests.support.temporal import eventually

_numbers = itertools.count(1)


def email(**overrides: Any) -> dict[str, Any]:
    body = {
        "message_id": f"<inbound-{next(_numbers)}@mail.empresa.com.br>",
        "from": "cliente@example.com",
        "to": "suporte@tramita.test",
        "subject": "Dúvida sobre a nota",
        "text": "Olá, tenho uma dúvida.",
    }
    body.update(overrides)
    return body


async def inbound(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """The outcome and ticket of a routed message (its Message-ID is the one sent)."""
    routed = await post(api, "/inbound/email", body, headers=SYSTEM)
    assert routed.pop("message_id") == body["message_id"]
    return routed


async def test_reference_in_the_subject_is_a_customer_reply(api: httpx.AsyncClient) -> None:
    ticket = await create(api)
    await post(api, f"/tickets/{ticket['id']}/assign", {"assignee": "ana"})
    await post(api, f"/tickets/{ticket['id']}/wait", {"reason": "customer"})
    message = email(subject=f"Re: Erro [#{ticket['id']}]", text="Segue o log.")
    assert await inbound(api, message) == {"outcome": "reply", "ticket_id": ticket["id"]}
    view = (await api.get(f"/tickets/{ticket['id']}", headers=SYSTEM)).json()
    assert view["status"] == "in_progress" and view["highlighted"] is True
    reply = next(e for e in view["timeline"] if e["type"] == "customer_reply")
    assert (
        reply["data"]["body"] == "Segue o log."
        and reply["data"]["message_id"] == message["message_id"]
    )
    assert await inbound(api, message) == {"outcome": "duplicate", "ticket_id": ticket["id"]}
    again = (await api.get(f"/tickets/{ticket['id']}", headers=SYSTEM)).json()
    assert event_types(again).count("customer_reply") == 1


async def test_in_reply_to_one_of_our_emails_finds_the_ticket(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, smtp_sink: SmtpSink
) -> None:
    ticket = await create(api, profile="enate")
    await post(api, f"/tickets/{ticket['id']}/emails", {"body": "Which invoice?"})

    async def sent() -> list[Any]:
        return smtp_sink.for_ticket(ticket["id"])

    mails = await eventually(sent, lambda m: len(m) == 1)
    our_id = mails[0].message["Message-ID"]
    result = await inbound(api, email(subject="Re: your question", in_reply_to=our_id))
    assert result == {"outcome": "reply", "ticket_id": ticket["id"]}


async def test_answer_to_a_resolved_ticket_reopens_it(api: httpx.AsyncClient) -> None:
    ticket = await create(api, profile="enate")
    await post(
        api, f"/tickets/{ticket['id']}/resolve", {"method": "customer_response", "note": "Done"}
    )
    result = await inbound(api, email(subject=f"Re: [#{ticket['id']}] não resolveu"))
    assert result == {"outcome": "reopen", "ticket_id": ticket["id"]}
    view = (await api.get(f"/tickets/{ticket['id']}", headers=SYSTEM)).json()
    assert view["status"] == "in_progress" and "reopened" in event_types(view)


async def test_answer_to_a_closed_ticket_opens_a_linked_one(api: httpx.AsyncClient) -> None:
    ticket = await create(api, profile="enate")
    await post(api, f"/tickets/{ticket['id']}/resolve", {"method": "spam"})
    message = email(subject=f"Re: [#{ticket['id']}] de novo", text="O problema voltou")
    result = await inbound(api, message)
    assert result["outcome"] == "follow_up" and result["ticket_id"] != ticket["id"]
    new = (await api.get(f"/tickets/{result['ticket_id']}", headers=SYSTEM)).json()
    assert new["links"]["follow_up_of"] == ticket["id"]
    assert new["title"] == "de novo"  # the reference and the reply prefix are cut out
    assert new["description"] == "O problema voltou" and new["requester"] == "cliente@example.com"
    assert new["status"] == "new" and new["profile"] == "support"
    assert await inbound(api, message) == {"outcome": "duplicate", "ticket_id": result["ticket_id"]}


@pytest.mark.parametrize("subject", ["Nova dúvida", "Re: [#no-such-ticket] hello"])
async def test_unknown_email_opens_a_new_ticket_once(api: httpx.AsyncClient, subject: str) -> None:
    message = email(subject=subject)
    result = await inbound(api, message)
    assert result["outcome"] == "new_ticket"
    view = (await api.get(f"/tickets/{result['ticket_id']}", headers=SYSTEM)).json()
    assert view["status"] == "new" and view["category"] == "email"
    assert view["links"]["follow_up_of"] is None
    assert await inbound(api, message) == {"outcome": "duplicate", "ticket_id": result["ticket_id"]}


@pytest.mark.parametrize(
    "override",
    [
        {"subject": "Hello\r\nBcc: victim@example.com"},
        {"message_id": "<a@b>\nX-Evil: 1"},
        {"from": "not an address"},
        {"in_reply_to": "<x@y>\r\nTo: z@example.com"},
        {"unexpected": "field"},
    ],
)
async def test_header_injection_and_bad_fields_are_refused(
    api: httpx.AsyncClient, override: dict[str, Any]
) -> None:
    response = await api.post("/inbound/email", json=email(**override), headers=SYSTEM)
    assert response.status_code == 422, response.text
