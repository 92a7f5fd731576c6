"""Outbound email through the workflow to a real SMTP server on loopback."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.email import message_id_for, ticket_from_message_id, with_reference
from tests.conftest import TEST_TASK_QUEUE
from tests.support.smtp import Received, SmtpSink
from tests.support.temporal import command, events_of, eventually, start_ticket, update
from workflows.messages import SendEmailCommand
from workflows.models import (
    BuiltInProfile,
    EventType,
    TicketView,
)
from workflows.ticket import TicketWorkflow


def test_message_ids_lead_back_to_their_ticket() -> None:
    message_id = message_id_for("ABC-12", 7, "tramita.test")
    assert message_id == "<ticket-ABC-12.7@tramita.test>"
    assert ticket_from_message_id(message_id) == "ABC-12"
    assert ticket_from_message_id("<CAF3x@mail.gmail.com>") is None
    assert with_reference("Re: nota [#ABC-12]", "ABC-12") == "Re: nota [#ABC-12]"
    assert with_reference("Re: nota", "ABC-12") == "Re: nota [#ABC-12]"


@pytest.mark.usefixtures("time_worker")
async def test_agent_email_retried_after_a_temporary_failure_keeps_its_message_id(
    time_env: WorkflowEnvironment, smtp_sink: SmtpSink
) -> None:
    handle = await start_ticket(time_env.client, TEST_TASK_QUEUE, profile=BuiltInProfile.ENATE)
    ticket_id = handle.id.removeprefix("ticket-")
    smtp_sink.refuse(ticket_id, 1)
    view = await command(
        handle,
        SendEmailCommand(
            actor="ana",
            subject="Sobre a nota",
            body="Pode enviar o XML?",
            to=("outro@example.com",),
        ),
    )
    seq = next(e.seq for e in view.timeline if e.type is EventType.EMAIL_SENT)
    expected = f"<ticket-{ticket_id}.{seq}@tramita.test>"

    async def refused() -> list[str]:
        return list(smtp_sink.refused)

    await eventually(refused, lambda ids: expected in ids)
    await time_env.sleep(timedelta(seconds=30))  # past the retry interval

    async def delivered() -> list[Received]:
        return smtp_sink.for_ticket(ticket_id)

    mails = await eventually(delivered, lambda m: len(m) == 1)
    await time_env.sleep(timedelta(minutes=5))
    assert len(smtp_sink.for_ticket(ticket_id)) == 1, "delivered once, not again"
    message = mails[0].message
    assert message["Message-ID"] == expected
    assert message["Subject"] == f"Sobre a nota [#{ticket_id}]"
    assert mails[0].envelope_to == ["outro@example.com"]
    assert "\n\nPode enviar o XML?\n\n" in mails[0].text
    assert "<p>Pode enviar o XML?</p>" in mails[0].html


@pytest.mark.usefixtures("time_worker")
async def test_a_refused_recipient_is_reported_on_the_timeline(
    time_env: WorkflowEnvironment, smtp_sink: SmtpSink
) -> None:
    handle = await start_ticket(time_env.client, TEST_TASK_QUEUE, profile=BuiltInProfile.ENATE)
    await update(
        handle,
        SendEmailCommand(actor="ana", body="Olá", to=("bounce@example.com",)),
    )

    def failure_noted(view: TicketView) -> bool:
        return any(
            "could not be delivered" in str(n.get("body")) for n in events_of(view, EventType.NOTE)
        )

    view = await eventually(lambda: handle.query(TicketWorkflow.view), failure_noted)
    note = next(
        n for n in events_of(view, EventType.NOTE) if "could not be delivered" in str(n.get("body"))
    )
    assert "refused" in str(note["body"])
    assert smtp_sink.for_ticket(view.id) == []


def test_a_subject_with_line_breaks_cannot_break_the_headers(tmp_path: Path) -> None:
    from activities.content import ContentStore
    from activities.email import EmailActivities
    from workflows.models import (
        EmailInput,
        EmailKind,
        SendEmailEffect,
    )

    class NoSender:
        async def send(self, message: object, recipients: object = None) -> None:
            raise AssertionError("not sent in this test")

    activities = EmailActivities(
        NoSender(), "Tramita <t@tramita.test>", "tramita.test", "UTC", ContentStore(tmp_path)
    )
    message = activities.compose(
        EmailInput(
            ticket_id="T1",
            profile=BuiltInProfile.ENATE,
            language="en",
            title="Hello\r\nBcc: victim@example.com",
            email=SendEmailEffect(kind=EmailKind.AGENT, seq=3, to=("a@example.com",), body="x"),
        )
    )
    assert message["Subject"] == "Hello Bcc: victim@example.com [#T1]"
    assert message["Bcc"] is None
