"""Inbound mail through the API's raw-MIME route: one router, every outcome.

Messages come from the project's corpus (``tests/mail/corpus``), their ``TICKET``
placeholder set to a real ticket's id, exactly as a mail client or an MTA would send
them after Tramita's email.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.main import create_app
from config import Settings
from tests.api.helpers import AGENT, REQUESTER, SYSTEM, create, post
from tests.mail.messages import corpus_mail, message_id_of
from tests.support.smtp import SmtpSink
from workflows.models import ProfileName, ProfilePolicy
from workflows.policy import policy_for
from workflows.search import TICKET_REQUESTER, TICKET_STATUS

MIME = {**SYSTEM, "Content-Type": "message/rfc822"}


async def route(api: httpx.AsyncClient, raw: bytes, **params: str) -> dict[str, Any]:
    response = await api.post("/inbound/mime", content=raw, headers=MIME, params=params)
    assert response.status_code == 200, response.text
    routed: dict[str, Any] = response.json()
    return routed


async def staff_view(api: httpx.AsyncClient, ticket_id: str) -> dict[str, Any]:
    view: dict[str, Any] = (await api.get(f"/tickets/{ticket_id}", headers=AGENT)).json()
    return view


async def waiting_support_ticket(api: httpx.AsyncClient) -> dict[str, Any]:
    ticket = await create(api)
    await post(api, f"/tickets/{ticket['id']}/assign", {"assignee": "ana"})
    await post(api, f"/tickets/{ticket['id']}/emails", {"body": "Poderia enviar o XML da nota?"})
    return await post(api, f"/tickets/{ticket['id']}/wait", {"reason": "customer"})


async def test_a_customers_reply_ends_the_wait_with_only_what_they_wrote(
    api: httpx.AsyncClient,
) -> None:
    ticket = await waiting_support_ticket(api)
    mail = corpus_mail("gmail-reply-pt.eml", ticket["id"])
    routed = await route(api, mail)
    assert routed == {
        "outcome": "reply",
        "ticket_id": ticket["id"],
        "message_id": message_id_of(mail),
    }
    view = await staff_view(api, ticket["id"])
    assert (view["status"], view["highlighted"]) == ("in_progress", True)
    reply = next(e for e in view["timeline"] if e["type"] == "customer_reply")
    assert reply["data"]["body"] == (
        'Segue o arquivo XML da nota. O erro aparece ao clicar em "Emitir".\n\nObrigado,\nJoão'
    )
    assert reply["data"]["from"] == "cliente@example.com"
    whole = await api.get(
        f"/tickets/{ticket['id']}/contents/{reply['data']['full_body_ref']}", headers=AGENT
    )
    assert "Poderia enviar o XML da nota?" in whole.text, "the quote is kept, for staff"
    raw = await api.get(
        f"/tickets/{ticket['id']}/contents/{reply['data']['raw_ref']}", headers=AGENT
    )
    assert raw.content == mail
    not_theirs = await api.get(
        f"/tickets/{ticket['id']}/contents/{reply['data']['raw_ref']}", headers=REQUESTER
    )
    assert not_theirs.status_code == 404, "the raw message is for staff"
    again = await route(api, mail)
    assert again["outcome"] == "duplicate"
    view = await staff_view(api, ticket["id"])
    assert sum(e["type"] == "customer_reply" for e in view["timeline"]) == 1


async def test_an_out_of_office_reply_during_a_wait_changes_nothing(
    api: httpx.AsyncClient,
) -> None:
    ticket = await waiting_support_ticket(api)
    for name in ("ooo-exchange-pt.eml", "ooo-gmail-vacation-en.eml"):
        routed = await route(api, corpus_mail(name, ticket["id"]))
        assert (routed["outcome"], routed["ticket_id"]) == ("auto_reply", ticket["id"])
    view = await staff_view(api, ticket["id"])
    assert view["status"] == "waiting" and view["deadlines"] == ticket["deadlines"]
    assert not view["highlighted"]
    noted = [e for e in view["timeline"] if e["type"] == "auto_reply_received"]
    assert len(noted) == 2 and noted[0]["data"]["reason"] == "Auto-Submitted: auto-generated"
    customer = (await api.get(f"/tickets/{ticket['id']}", headers=REQUESTER)).json()
    assert all(e["type"] != "auto_reply_received" for e in customer["timeline"])


@pytest.mark.parametrize(
    ("name", "recipient", "permanent"),
    [
        ("bounce-postfix-dsn.eml", "contato-errado@example.com", True),
        ("bounce-exim.eml", "antigo@example.net", True),
        ("bounce-exchange-ndr.eml", "ninguem@empresa.com", True),
        ("bounce-gmail.eml", "naoexiste@gmail.com", True),
        ("bounce-delay-warning.eml", "lento@example.org", False),
    ],
)
async def test_a_bounce_is_recorded_on_its_ticket_naming_who_was_not_reached(
    api: httpx.AsyncClient, name: str, recipient: str, permanent: bool
) -> None:
    ticket = await waiting_support_ticket(api)
    routed = await route(api, corpus_mail(name, ticket["id"]))
    assert (routed["outcome"], routed["ticket_id"]) == ("bounce", ticket["id"])
    view = await staff_view(api, ticket["id"])
    bounce = next(e for e in view["timeline"] if e["type"] == "bounce_received")
    assert bounce["data"]["recipients"] == [recipient]
    assert bounce["data"]["permanent"] is permanent
    assert view["status"] == "waiting" and view["highlighted"]


async def test_a_strangers_mail_on_a_ticket_is_a_third_partys_message(
    api: httpx.AsyncClient,
) -> None:
    ticket = await waiting_support_ticket(api)
    raw = corpus_mail(
        "gmail-reply-en.eml",
        ticket["id"],
        **{
            "Jane Doe <cliente@example.com>": "Someone <intruso@example.org>",
        },
    )
    routed = await route(api, raw)
    assert routed["outcome"] == "third_party"
    view = await staff_view(api, ticket["id"])
    assert view["status"] == "waiting", "a stranger cannot end the customer's wait"
    assert view["highlighted"]
    message = next(e for e in view["timeline"] if e["type"] == "third_party_message")
    assert message["data"]["from"] == "intruso@example.org"
    assert all(e["type"] != "customer_reply" for e in view["timeline"])


async def test_list_and_bulk_mail_open_nothing(api: httpx.AsyncClient) -> None:
    for name in ("list-mail.eml", "newsletter-bulk.eml"):
        routed = await route(api, corpus_mail(name))
        assert (routed["outcome"], routed["ticket_id"]) == ("bulk", None)


async def test_a_new_ticket_keeps_the_attachments_its_sender_may_download(
    api: httpx.AsyncClient,
) -> None:
    routed = await route(api, corpus_mail("attachments-inline-image.eml"))
    assert routed["outcome"] == "new_ticket"
    view = await staff_view(api, routed["ticket_id"])
    assert (view["title"], view["requester"]) == (
        "Screenshot of the error",
        "cliente@example.com",
    )
    created = view["timeline"][0]
    files = {a["filename"]: a for a in created["data"]["attachments"]}
    assert set(files) == {"screenshot.png", "relatório de erros.pdf"}
    pdf = await api.get(
        f"/tickets/{view['id']}/contents/{files['relatório de erros.pdf']['sha256']}",
        headers=REQUESTER,  # cliente@example.com sent it: it is theirs
    )
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert "relat%C3%B3rio" in pdf.headers["content-disposition"]
    assert pdf.headers["content-type"] == "application/pdf"


async def test_mail_to_a_closed_ticket_opens_a_linked_follow_up(api: httpx.AsyncClient) -> None:
    ticket = await create(api, profile="enate")
    await post(api, f"/tickets/{ticket['id']}/resolve", {"method": "spam"})
    raw = corpus_mail("gmail-reply-en.eml", ticket["id"])
    routed = await route(api, raw)
    assert routed["outcome"] == "follow_up"
    follow_up = await staff_view(api, routed["ticket_id"])
    assert follow_up["links"]["follow_up_of"] == ticket["id"]
    assert follow_up["title"] == "Printer on fire"
    assert follow_up["status"] == "new"


async def test_json_mail_goes_through_the_same_router(api: httpx.AsyncClient) -> None:
    ticket = await waiting_support_ticket(api)
    body = {
        "message_id": "<json-ooo@example.com>",
        "from": "cliente@example.com",
        "to": "suporte@tramita.test",
        "subject": f"Automatic reply [#{ticket['id']}]",
        "text": "Away",
        "html": "<p>Away</p>",
        "headers": {"Auto-Submitted": "auto-replied"},
    }
    routed = (await api.post("/inbound/email", json=body, headers=SYSTEM)).json()
    assert routed["outcome"] == "auto_reply"
    bad = await api.post(
        "/inbound/email", json={**body, "headers": {"X-Bad": "a\r\nb"}}, headers=SYSTEM
    )
    assert bad.status_code == 422
    for broken in ({"to": "Suporte <"}, {"headers": {"Cc": "<"}}):
        unreadable = await api.post("/inbound/email", json={**body, **broken}, headers=SYSTEM)
        assert unreadable.status_code == 422, unreadable.text
        assert "cannot be read" in unreadable.json()["detail"]
    wrong_type = await api.post(
        "/inbound/mime", content=b"x", headers={**SYSTEM, "Content-Type": "application/json"}
    )
    assert wrong_type.status_code == 415


async def test_json_mail_may_carry_utf8_headers(api: httpx.AsyncClient) -> None:
    # Internationalised mail (RFC 6532): addresses and ids outside ASCII.
    body = {
        "message_id": "<pedido-ação-1@correio.exemplo.br>",
        "from": "joao@exemplo.br",
        "to": "Suporte Técnico <suporte@tramita.test>",
        "subject": "Não consigo emitir a nota ¯\\_(ツ)_/¯",
        "text": "Erro na emissão.",
        "headers": {"X-Origem": "formulário"},
    }
    response = await api.post("/inbound/email", json=body, headers=SYSTEM)
    assert response.status_code == 200, response.text
    routed = response.json()
    assert (routed["outcome"], routed["message_id"]) == ("new_ticket", body["message_id"])
    view = await staff_view(api, routed["ticket_id"])
    assert view["title"] == body["subject"]


# ---------------------------------------------------------------- a stricter desk


def acknowledging(profile: ProfileName) -> ProfilePolicy:
    return policy_for(profile).model_copy(update={"acknowledge_new_tickets": True})


@pytest.fixture
async def strict_desk(
    time_env: WorkflowEnvironment, api_settings: Settings, time_worker: Worker
) -> AsyncIterator[httpx.AsyncClient]:
    """A desk that knows only one company's senders, takes two new tickets an hour from
    each, and acknowledges new tickets."""
    settings = api_settings.model_copy(
        update={"known_senders": ("empresa.com.br",), "inbound_max_new_per_sender_hour": 2}
    )
    app = create_app(settings, client=time_env.client, policies=acknowledging)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://tramita.test", timeout=30
    ) as client:
        yield client


async def test_enate_rejects_unknown_senders_and_acknowledges_known_ones(
    strict_desk: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    # A sender of its own: the desk's quota of new tickets counts per sender.
    raw = corpus_mail("gmail-reply-en.eml", **{"cliente@example.com": "estranho@example.org"})
    stranger = await route(strict_desk, raw, profile="enate")
    assert stranger["outcome"] == "unknown_sender"
    closed = await staff_view(strict_desk, stranger["ticket_id"])
    assert closed["status"] == "closed"
    assert closed["resolution"]["method"] == "unknown_sender"

    opening = corpus_mail("html-only-request.eml")
    known = await route(strict_desk, opening, profile="enate")
    assert known["outcome"] == "new_ticket"
    for _ in range(200):
        acks = smtp_sink.for_ticket(known["ticket_id"])
        if acks:
            break
        await asyncio.sleep(0.05)
    ack = acks[0].message
    assert ack["Auto-Submitted"] == "auto-generated", "nobody should answer it automatically"
    assert ack["X-Tramita-Loop"] == "tramita.test", "our own marker, should it come back"
    text = acks[0].text
    assert "We received your message and opened ticket" in text, "Enate speaks English"
    assert f"[#{known['ticket_id']}]" in str(ack["Subject"])
    assert "/c/" in text and "Follow the ticket:" in text
    assert ack["In-Reply-To"] == message_id_of(opening)
    assert ack["To"] == "maria@empresa.com.br"
    assert smtp_sink.for_ticket(stranger["ticket_id"]) == [], "no acknowledgement to strangers"


async def test_new_tickets_are_rate_limited_per_sender(strict_desk: httpx.AsyncClient) -> None:
    outcomes = []
    for _ in range(3):
        raw = corpus_mail("windows-1252-request.eml")
        outcomes.append((await route(strict_desk, raw))["outcome"])
    assert outcomes == ["new_ticket", "new_ticket", "rate_limited"]


# ---------------------------------------------------------------- threading and senders


def plain_mail(sender: str, subject: str, body: str, **headers: str) -> bytes:
    """A message as a simple mail client writes it: no tag, threading headers as given."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (
        f"From: {sender}\r\nTo: suporte@tramita.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <plain-{next(PLAIN)}-{id(body)}@example.com>\r\n{extra}"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()


PLAIN = itertools.count(1)


async def test_a_reply_to_the_customers_own_earlier_message_finds_its_ticket(
    api: httpx.AsyncClient,
) -> None:
    """A customer who answers their own first message (no tag, none of our ids): the
    ledger knows which ticket that first message opened."""
    first = plain_mail("cliente@example.com", "Nota fiscal rejeitada", "A nota 12 voltou.")
    opened = await route(api, first)
    assert opened["outcome"] == "new_ticket"
    more = plain_mail(
        "cliente@example.com",
        "Mais detalhes",  # a subject of its own: only the headers thread it
        "Esqueci de dizer: é a série 2.",
        **{"In-Reply-To": message_id_of(first), "References": message_id_of(first)},
    )
    routed = await route(api, more)
    assert (routed["outcome"], routed["ticket_id"]) == ("reply", opened["ticket_id"])


@pytest.mark.parametrize("prefix", ["Re:", "RES:", "Enc:", "AW:", "SV:", "VS:", "RV:"])
async def test_a_reply_with_only_a_prefix_finds_the_senders_open_ticket_by_title(
    dev_api: httpx.AsyncClient, dev_env: WorkflowEnvironment, prefix: str
) -> None:
    """A client that kept no threading headers and no tag: the prefix and the title of
    the sender's open ticket (read from Temporal visibility, hence the dev server)."""
    sender = f"prefixo-{prefix.strip(':').lower()}-{secrets.token_hex(3)}@example.com"
    title = f"Impressora {prefix.strip(':')} sem papel"
    opened = await route(dev_api, plain_mail(sender, title, "Não imprime."))
    assert opened["outcome"] == "new_ticket"
    # Visibility is eventually consistent: wait until it lists the ticket as open.
    listed = (
        f"WorkflowId = 'ticket-{opened['ticket_id']}' AND {TICKET_REQUESTER.name} = '{sender}'"
        f" AND {TICKET_STATUS.name} != 'closed'"
    )
    for _ in range(200):
        if (await dev_env.client.count_workflows(listed)).count == 1:
            break
        await asyncio.sleep(0.05)

    answer = await route(dev_api, plain_mail(sender, f"{prefix} {title}", "Ainda não."))
    assert (answer["outcome"], answer["ticket_id"]) == ("reply", opened["ticket_id"])


async def test_a_contacts_reply_is_the_customers_and_ends_the_wait(
    api: httpx.AsyncClient,
) -> None:
    ticket = await create(api, contacts=["financeiro@example.com"])
    await post(api, f"/tickets/{ticket['id']}/assign", {"assignee": "ana"})
    await post(api, f"/tickets/{ticket['id']}/wait", {"reason": "customer"})
    raw = corpus_mail(
        "gmail-reply-en.eml",
        ticket["id"],
        **{"Jane Doe <cliente@example.com>": "Financeiro <FINANCEIRO@Example.com>"},
    )
    routed = await route(api, raw)
    assert routed["outcome"] == "reply"
    view = await staff_view(api, ticket["id"])
    assert view["status"] == "in_progress"
    reply = next(e for e in view["timeline"] if e["type"] == "customer_reply")
    assert reply["data"]["from"] == "FINANCEIRO@Example.com"


@pytest.mark.parametrize(
    "name", ["ooo-zimbra.eml", "bounce-gmail.eml", "autoreply-x-autoreply.eml"]
)
async def test_machine_mail_for_no_known_ticket_opens_nothing_and_is_not_answered(
    api: httpx.AsyncClient, smtp_sink: SmtpSink, name: str
) -> None:
    raw = corpus_mail(name, "nosuchticket9")
    routed = await route(api, raw)
    assert routed["outcome"] in ("auto_reply", "bounce")
    assert routed["ticket_id"] is None
    await asyncio.sleep(0.3)
    answered = [
        r for r in smtp_sink.received if message_id_of(raw) in str(r.message["In-Reply-To"])
    ]
    assert answered == [], "machine mail is never answered"


# ---------------------------------------------------------------- attachments


def with_attachment(size: int, filename: str) -> bytes:
    message = EmailMessage()
    message["From"] = "cliente@example.com"
    message["To"] = "suporte@tramita.test"
    message["Subject"] = f"Anexo {filename}"
    message["Message-ID"] = f"<anexo-{next(PLAIN)}-{size}@example.com>"
    message.set_content("Segue o anexo.")
    message.add_attachment(
        bytes(range(256)) * (size // 256),
        maintype="application",
        subtype="octet-stream",
        filename=filename,
    )
    return message.as_bytes()


async def test_an_attachment_over_the_limit_is_listed_not_kept_and_one_kept_once(
    site_with_small_attachments: httpx.AsyncClient, api_settings: Settings
) -> None:
    api = site_with_small_attachments
    big = await route(api, with_attachment(8 * 1024, "grande.bin"))
    created = (await staff_view(api, big["ticket_id"]))["timeline"][0]
    (listed,) = created["data"]["attachments"]
    assert listed["filename"] == "grande.bin" and listed["sha256"] is None
    assert "larger than 4096 bytes" in listed["refused"]

    first = await route(api, with_attachment(2048, "pequeno.bin"))
    second = await route(api, with_attachment(2048, "pequeno.bin"))
    shas = []
    for routed in (first, second):
        created = (await staff_view(api, routed["ticket_id"]))["timeline"][0]
        shas.append(created["data"]["attachments"][0]["sha256"])
    assert shas[0] == shas[1] and shas[0] is not None
    stored = list(api_settings.content_directory.rglob(f"*{shas[0]}*"))
    assert len(stored) == 1, "the same bytes are kept once"


async def test_a_requester_cannot_download_an_attachment_of_an_internal_event(
    api: httpx.AsyncClient,
) -> None:
    ticket = await waiting_support_ticket(api)
    raw = corpus_mail(
        "attachments-inline-image.eml",
        **{"cliente@example.com": "terceiro@example.org"},
    ).replace(b"Subject: ", f"Subject: [#{ticket['id']}] ".encode(), 1)
    routed = await route(api, raw)
    assert routed["outcome"] == "third_party"
    view = await staff_view(api, ticket["id"])
    message = next(e for e in view["timeline"] if e["type"] == "third_party_message")
    sha = message["data"]["attachments"][0]["sha256"]
    staff = await api.get(f"/tickets/{ticket['id']}/contents/{sha}", headers=AGENT)
    assert staff.status_code == 200
    customer = await api.get(f"/tickets/{ticket['id']}/contents/{sha}", headers=REQUESTER)
    assert customer.status_code == 404


@pytest.fixture
async def site_with_small_attachments(
    time_env: WorkflowEnvironment, api_settings: Settings, time_worker: Worker
) -> AsyncIterator[httpx.AsyncClient]:
    settings = api_settings.model_copy(update={"max_attachment_bytes": 4096})
    app = create_app(settings, client=time_env.client)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://tramita.test", timeout=30
    ) as client:
        yield client
