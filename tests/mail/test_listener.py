"""The SMTP listener answers 250 only once a message is taken, and 4xx otherwise."""

from __future__ import annotations

import httpx
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.content import ContentStore
from config import Settings
from mail.listener import InboundHandler, listen
from tests.api.helpers import AGENT, create, post
from tests.conftest import DEV_SERVER
from tests.mail.conftest import Listener
from tests.mail.messages import corpus_mail, message_id_of
from tests.mail.test_inbound_routing import MIME
from tests.support.smtp import free_port
from workflows.search import ALL_KEYS


async def test_a_reply_delivered_over_smtp_reaches_its_ticket(
    api: httpx.AsyncClient, listener: Listener, api_settings: Settings
) -> None:
    ticket = await create(api)
    await post(api, f"/tickets/{ticket['id']}/assign", {"assignee": "ana"})
    await post(api, f"/tickets/{ticket['id']}/wait", {"reason": "customer"})
    raw = corpus_mail("gmail-reply-en.eml", ticket["id"])
    code, text = await listener.send(raw)
    assert code == 250, text
    assert text.startswith(f"2.0.0 reply {ticket['id']}")
    view = (await api.get(f"/tickets/{ticket['id']}", headers=AGENT)).json()
    assert view["status"] == "in_progress"
    reply = next(e for e in view["timeline"] if e["type"] == "customer_reply")
    stored = ContentStore(api_settings.content_directory).read(reply["data"]["raw_ref"])
    assert stored is not None, "kept whole before the 250"
    assert message_id_of(raw).encode() in stored


async def test_the_same_message_by_two_paths_opens_one_ticket(
    api: httpx.AsyncClient, listener: Listener
) -> None:
    raw = corpus_mail("rfc2047-utf8-subject.eml")
    code, text = await listener.send(raw, sender="pedro@empresa.com.br")
    assert code == 250 and " new_ticket " in f" {text} "
    ticket_id = text.split()[2]
    again = (await api.post("/inbound/mime", content=raw, headers=MIME)).json()
    assert again == {
        "outcome": "duplicate",
        "ticket_id": ticket_id,
        "message_id": message_id_of(raw),
    }
    code, text = await listener.send(raw, sender="pedro@empresa.com.br")
    assert (code, text.split()[1]) == (250, "duplicate")


async def test_a_message_over_the_size_limit_is_refused_for_good(
    time_env: WorkflowEnvironment, api_settings: Settings
) -> None:
    settings = api_settings.model_copy(
        update={"inbound_smtp_port": free_port(), "inbound_max_bytes": 2048}
    )
    handler = InboundHandler(settings)
    handler.connected(time_env.client)
    server = await listen(handler, settings)
    try:
        code, _ = await Listener(
            settings.inbound_smtp_host, settings.inbound_smtp_port, handler
        ).send(corpus_mail("attachments-inline-image.eml") + (b"x" * 70 + b"\r\n") * 60)
    finally:
        server.close()
        await server.wait_closed()
    assert code == 552


@pytest.mark.slow
async def test_while_temporal_is_away_mail_is_deferred_not_lost(api_settings: Settings) -> None:
    settings = api_settings.model_copy(
        update={"inbound_smtp_port": free_port(), "api_rpc_timeout_seconds": 2.0}
    )
    handler = InboundHandler(settings)
    server = await listen(handler, settings)
    listener = Listener(settings.inbound_smtp_host, settings.inbound_smtp_port, handler)
    raw = corpus_mail("iso-8859-1-request.eml")
    try:
        code, text = await listener.send(raw, sender="andre@empresa.com.br")
        assert code == 451, "not connected yet: try again later"
        env = await WorkflowEnvironment.start_local(
            data_converter=pydantic_data_converter,
            dev_server_existing_path=str(DEV_SERVER),
            search_attributes=ALL_KEYS,
            dev_server_log_level="error",
        )
        handler.connected(env.client)
        await env.shutdown()  # Temporal goes away
        code, text = await listener.send(raw, sender="andre@empresa.com.br")
        assert code == 451, text
        assert "try again later" in text
    finally:
        server.close()
        await server.wait_closed()
