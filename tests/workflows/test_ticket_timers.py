"""Every timer path on the time-skipping server: due times, emails, closes, calendars.

Expected instants are written as local wall-clock times picked by the test (a quiet week,
a real Brazilian holiday, a real DST change), not computed by the calendar code under
test. Each reminder is checked one second before and one second after its due time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from tests.conftest import TEST_TASK_QUEUE
from tests.support.smtp import SmtpSink
from tests.support.temporal import (
    brazil_calendar,
    command,
    events_of,
    eventually,
    next_local,
    start_ticket,
    travel_to,
    update,
)
from workflows.messages import (
    AssignCommand,
    CustomerReplyCommand,
    ResolveCommand,
    SendEmailCommand,
    StartCommand,
    WaitCommand,
)
from workflows.models import (
    BuiltInProfile,
    CalendarSnapshot,
    EventType,
    Qualification,
    ResolutionMethod,
    Status,
    TicketView,
    WaitReason,
)
from workflows.ticket import TicketWorkflow

pytestmark = pytest.mark.usefixtures("time_worker")

SP = ZoneInfo("America/Sao_Paulo")
SECOND = timedelta(seconds=1)
Handle = WorkflowHandle[TicketWorkflow, TicketView]


def local(day: date, at: time, zone: ZoneInfo = SP) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def same_time(day: date, action: datetime, zone: ZoneInfo = SP) -> datetime:
    """``day`` at the local wall-clock time of ``action`` (which took a few real ms)."""
    return local(day, action.astimezone(zone).time(), zone)


def on_time(happened: datetime | None, due: datetime) -> bool:
    """At the due time: not before it, and within a second (timer start latency)."""
    return happened is not None and timedelta(0) <= happened - due < SECOND


async def view_of(handle: Handle) -> TicketView:
    return await handle.query(TicketWorkflow.view)


async def reminders_after(handle: Handle, count: int) -> TicketView:
    return await eventually(
        lambda: view_of(handle), lambda v: len(events_of(v, EventType.REMINDER_SENT)) >= count
    )


async def expect_reminder_at(
    env: WorkflowEnvironment, handle: Handle, due: datetime, number: int
) -> TicketView:
    """Nothing one second before ``due``; reminder ``number`` one second after.

    The event records the exact due time; it happens a few milliseconds after it (the
    timer starts a little after the workflow task that armed it), never before.
    """
    await travel_to(env, due - SECOND)
    before = await view_of(handle)
    assert len(events_of(before, EventType.REMINDER_SENT)) == number - 1, (
        f"reminder {number} came early"
    )
    await travel_to(env, due + SECOND)
    view = await reminders_after(handle, number)
    event = [e for e in view.timeline if e.type is EventType.REMINDER_SENT][number - 1]
    assert event.data["number"] == number
    assert event.data["due_at"] == due.isoformat()
    assert on_time(event.at, due), f"reminder {number} fired at {event.at}, due {due}"
    return view


async def quiet_monday(env: WorkflowEnvironment, calendar: CalendarSnapshot) -> date:
    """A Monday at least a day ahead whose next nine days hold no holiday."""
    monday = (await next_local(env, 1, time(10))).astimezone(SP).date()
    while any(monday + timedelta(days=i) in calendar.holidays for i in range(10)):
        monday += timedelta(days=7)
    return monday


async def support_ticket_in_progress(
    env: WorkflowEnvironment, calendar: CalendarSnapshot
) -> Handle:
    handle = await start_ticket(env.client, TEST_TASK_QUEUE, calendar=calendar)
    await update(handle, AssignCommand(actor="ana", assignee="ana"))
    return handle


async def test_support_customer_wait_reminds_twice_then_closes_for_lack_of_information(
    time_env: WorkflowEnvironment, smtp_sink: SmtpSink
) -> None:
    calendar = brazil_calendar((await time_env.get_current_time()).year)
    monday = await quiet_monday(time_env, calendar)
    await travel_to(time_env, local(monday, time(10)))
    handle = await support_ticket_in_progress(time_env, calendar)
    view = await command(handle, WaitCommand(actor="ana", reason=WaitReason.CUSTOMER))
    assert view.qualification is Qualification.UNDEFINED_LACK_OF_INFO
    action = view.timeline[-1].at
    assert action.astimezone(SP).replace(tzinfo=None) - datetime.combine(monday, time(10)) < SECOND
    wednesday, friday, next_tuesday = (
        same_time(monday + timedelta(days=d), action) for d in (2, 4, 8)
    )
    assert [d.due_at for d in view.deadlines] == [wednesday, friday, next_tuesday]

    view = await expect_reminder_at(time_env, handle, wednesday, 1)
    mails = smtp_sink.copies_for(handle.id.removeprefix("ticket-"))
    # One message, in two copies: the requester's carries their page's link; the
    # contact's does not (the link acts as the requester).
    assert sorted(m.envelope_to[0] for m in mails) == ["cliente@example.com", "contato@example.com"]
    mail = next(m for m in mails if m.envelope_to == ["cliente@example.com"])
    contact = next(m for m in mails if m.envelope_to == ["contato@example.com"])
    assert contact.message["Message-ID"] == mail.message["Message-ID"]
    assert "/c/" in mail.text and "/c/" not in contact.text and "/c/" not in contact.html
    assert mail.message["To"] == contact.message["To"] == "contato@example.com, cliente@example.com"
    ticket_id = view.id
    seq = next(e.seq for e in view.timeline if e.type is EventType.REMINDER_SENT)
    assert f"[#{ticket_id}]" in mail.message["Subject"]
    assert mail.message["Subject"].startswith("Lembrete: aguardamos sua resposta")
    assert mail.message["Message-ID"] == f"<ticket-{ticket_id}.{seq}@tramita.test>"
    assert "Este é o lembrete 1 de 2" in mail.text
    assert mail.message["Auto-Submitted"] == "auto-generated"
    assert mail.message["X-Tramita-Loop"] == "tramita.test"
    assert next_tuesday.astimezone(SP).strftime("%d/%m/%Y %H:%M") in mail.text

    await expect_reminder_at(time_env, handle, friday, 2)  # over the weekend comes next
    await travel_to(time_env, next_tuesday - SECOND)
    assert (await view_of(handle)).status is Status.WAITING
    await travel_to(time_env, next_tuesday + SECOND)
    closed = await handle.result()
    assert closed.status is Status.CLOSED
    assert on_time(closed.closed_at, next_tuesday)
    assert closed.qualification is Qualification.UNDEFINED_LACK_OF_INFO
    assert len(smtp_sink.for_ticket(ticket_id)) == 2
    assert len(smtp_sink.copies_for(ticket_id)) == 4, "two reminders, two copies each"


async def test_support_validation_after_17_30_on_friday_reminds_monday_morning(
    time_env: WorkflowEnvironment, smtp_sink: SmtpSink
) -> None:
    calendar = brazil_calendar((await time_env.get_current_time()).year)
    friday = await quiet_monday(time_env, calendar) - timedelta(days=3)
    while any(friday + timedelta(days=i) in calendar.holidays for i in range(12)):
        friday += timedelta(days=7)
    await travel_to(time_env, local(friday, time(17, 30)))
    handle = await support_ticket_in_progress(time_env, calendar)
    view = await command(
        handle,
        ResolveCommand(actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE),
    )
    assert view.status_label == "Validação cliente"
    action = view.timeline[-1].at
    monday_opening = local(friday + timedelta(days=3), time(8))  # 1 hour later is 18:30: closed
    tuesday = same_time(friday + timedelta(days=4), action)  # 2 business days
    next_friday = same_time(friday + timedelta(days=7), action)  # 5 business days
    close = same_time(friday + timedelta(days=10), action)  # 6 business days
    assert [d.due_at for d in view.deadlines] == [monday_opening, tuesday, next_friday, close]

    for number, due in enumerate((monday_opening, tuesday, next_friday), start=1):
        await expect_reminder_at(time_env, handle, due, number)
    mails = smtp_sink.for_ticket(view.id)
    assert [m.message["Subject"].split(" - ")[0] for m in mails] == [
        "Lembrete: valide a solução do seu chamado"
    ] * 3
    await travel_to(time_env, close + SECOND)
    closed = await handle.result()
    assert closed.status is Status.CLOSED and on_time(closed.closed_at, close)


async def test_reminders_skip_a_brazilian_national_holiday(
    time_env: WorkflowEnvironment, smtp_sink: SmtpSink
) -> None:
    now = await time_env.get_current_time()
    calendar = brazil_calendar(now.year)
    holidays = set(calendar.holidays)
    # Christmas Eve of the first year still ahead, moved back to a business day.
    year = now.year if now.astimezone(SP).date() < date(now.year, 12, 20) else now.year + 1
    start = date(year, 12, 24)
    while start.isoweekday() > 5 or start in holidays:
        start -= timedelta(days=1)
    christmas = date(year, 12, 25)
    await travel_to(time_env, local(start, time(10)))
    handle = await support_ticket_in_progress(time_env, calendar)
    view = await command(handle, WaitCommand(actor="ana", reason=WaitReason.CUSTOMER))

    def business_days_after(day: date, count: int) -> date:
        while count:
            day += timedelta(days=1)
            if day.isoweekday() <= 5 and day not in holidays:
                count -= 1
        return day

    action = view.timeline[-1].at
    first = same_time(business_days_after(start, 2), action)
    assert christmas in holidays and start < christmas < first.astimezone(SP).date()
    assert view.deadlines[0].due_at == first
    await expect_reminder_at(time_env, handle, first, 1)
    close = same_time(business_days_after(start, 6), action)
    assert view.deadlines[-1].due_at == close  # also past New Year's Day


async def test_support_email_restarts_the_clock(time_env: WorkflowEnvironment) -> None:
    calendar = brazil_calendar((await time_env.get_current_time()).year)
    monday = await quiet_monday(time_env, calendar)
    await travel_to(time_env, local(monday, time(10)))
    handle = await support_ticket_in_progress(time_env, calendar)
    await update(handle, WaitCommand(actor="ana", reason=WaitReason.CUSTOMER))
    await travel_to(time_env, local(monday + timedelta(days=1), time(10)))
    view = await command(handle, SendEmailCommand(actor="ana", body="Alguma novidade?"))
    thursday = same_time(monday + timedelta(days=3), view.timeline[-1].at)
    assert view.deadlines[0].due_at == thursday
    await travel_to(time_env, local(monday + timedelta(days=2), time(10)) + SECOND)
    assert events_of(await view_of(handle), EventType.REMINDER_SENT) == []
    await expect_reminder_at(time_env, handle, thursday, 1)


async def test_customer_reply_stops_the_reminders(
    time_env: WorkflowEnvironment, smtp_sink: SmtpSink
) -> None:
    handle = await support_ticket_in_progress(
        time_env, brazil_calendar((await time_env.get_current_time()).year)
    )
    await update(handle, WaitCommand(actor="ana", reason=WaitReason.CUSTOMER))
    await time_env.sleep(timedelta(hours=20))
    view = await command(
        handle,
        CustomerReplyCommand(actor="cliente@example.com", body="Segue o log"),
    )
    assert (view.status, view.highlighted, view.deadlines) == (Status.IN_PROGRESS, True, ())
    assert view.qualification is None  # the automatic qualification is undone
    await time_env.sleep(timedelta(days=15))
    view = await view_of(handle)
    assert view.status is Status.IN_PROGRESS
    assert events_of(view, EventType.REMINDER_SENT) == []
    assert smtp_sink.for_ticket(view.id) == []


@pytest.mark.parametrize(
    "wait",
    [
        WaitCommand(actor="ana", reason=WaitReason.RELEASE, version="9.4.1"),
        WaitCommand(actor="ana", reason=WaitReason.OTHER_TEAM, area="desenvolvimento"),
    ],
)
async def test_release_and_joint_analysis_waits_never_close(
    time_env: WorkflowEnvironment, wait: WaitCommand
) -> None:
    handle = await support_ticket_in_progress(
        time_env, brazil_calendar((await time_env.get_current_time()).year)
    )
    await update(handle, wait)
    await time_env.sleep(timedelta(days=45))
    view = await view_of(handle)
    assert (view.status, view.deadlines) == (Status.WAITING, ())
    assert events_of(view, EventType.REMINDER_SENT) == []


async def enate_in_progress(env: WorkflowEnvironment) -> Handle:
    handle = await start_ticket(env.client, TEST_TASK_QUEUE, profile=BuiltInProfile.ENATE)
    await update(handle, StartCommand(actor="ana"))
    return handle


async def test_enate_wait_for_info_returns_highlighted_after_its_days(
    time_env: WorkflowEnvironment,
) -> None:
    handle = await enate_in_progress(time_env)
    view = await command(handle, WaitCommand(actor="ana", reason=WaitReason.CUSTOMER, days=3))
    since = view.timeline[-1].at
    assert view.status_label == "Wait / Aguarde: Wait for more info"
    due = since + timedelta(days=3)  # calendar days; São Paulo has no DST
    await travel_to(time_env, due - SECOND)
    assert (await view_of(handle)).status is Status.WAITING
    await travel_to(time_env, due + SECOND)
    view = await eventually(lambda: view_of(handle), lambda v: v.status is Status.IN_PROGRESS)
    assert view.highlighted
    assert events_of(view, EventType.WAIT_ENDED)[0]["reason"] == "customer"


async def test_enate_close_if_no_response_resolves_then_closes_after_the_feedback_window(
    time_env: WorkflowEnvironment,
) -> None:
    calendar = brazil_calendar((await time_env.get_current_time()).year)
    monday = await quiet_monday(time_env, calendar)
    await travel_to(time_env, local(monday, time(9)))
    handle = await start_ticket(
        time_env.client, TEST_TASK_QUEUE, profile=BuiltInProfile.ENATE, calendar=calendar
    )
    await update(handle, StartCommand(actor="ana"))
    await update(
        handle,
        WaitCommand(actor="ana", reason=WaitReason.CUSTOMER, days=2, close_if_no_response=True),
    )
    wednesday = same_time(monday + timedelta(days=2), (await view_of(handle)).timeline[-1].at)
    await travel_to(time_env, wednesday + SECOND)
    view = await eventually(lambda: view_of(handle), lambda v: v.status is Status.RESOLVED)
    assert view.resolution is not None
    assert view.resolution.method is ResolutionMethod.NO_CUSTOMER_RESPONSE
    assert on_time(view.resolution.at, wednesday)
    next_monday = same_time(monday + timedelta(days=7), view.resolution.at)  # 3 business days later
    assert [d.due_at for d in view.deadlines] == [next_monday]
    await travel_to(time_env, next_monday - SECOND)
    assert (await view_of(handle)).status is Status.RESOLVED
    await travel_to(time_env, next_monday + SECOND)
    closed = await handle.result()
    assert closed.status is Status.CLOSED and on_time(closed.closed_at, next_monday)


async def test_enate_customer_reply_inside_the_feedback_window_reopens(
    time_env: WorkflowEnvironment,
) -> None:
    handle = await enate_in_progress(time_env)
    await update(
        handle,
        ResolveCommand(actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE, note="Resolvido."),
    )
    await time_env.sleep(timedelta(hours=20))
    view = await command(
        handle,
        CustomerReplyCommand(actor="cliente@example.com", body="Não resolveu"),
    )
    assert (view.status, view.highlighted) == (Status.IN_PROGRESS, True)
    await time_env.sleep(timedelta(days=10))
    assert (await view_of(handle)).status is Status.IN_PROGRESS


async def test_follow_up_comes_back_at_its_date(time_env: WorkflowEnvironment) -> None:
    handle = await enate_in_progress(time_env)
    until = (await time_env.get_current_time()).replace(microsecond=0) + timedelta(days=9, hours=5)
    await update(handle, WaitCommand(actor="ana", reason=WaitReason.FOLLOW_UP, until=until))
    await travel_to(time_env, until - SECOND)
    assert (await view_of(handle)).status is Status.WAITING
    await travel_to(time_env, until + SECOND)
    view = await eventually(lambda: view_of(handle), lambda v: v.status is Status.IN_PROGRESS)
    assert view.highlighted
    wait_ended = next(e for e in view.timeline if e.type is EventType.WAIT_ENDED)
    assert on_time(wait_ended.at, until)


async def test_reminder_across_a_dst_change_keeps_the_local_time(
    time_env: WorkflowEnvironment,
) -> None:
    """New York springs forward (or falls back) on a Sunday; Tuesday's 10:00 stays 10:00."""
    new_york = ZoneInfo("America/New_York")
    calendar = CalendarSnapshot(timezone="America/New_York")
    day = (await time_env.get_current_time()).astimezone(new_york).date() + timedelta(days=1)
    while (
        datetime.combine(day, time(12), new_york).utcoffset()
        == datetime.combine(day + timedelta(days=1), time(12), new_york).utcoffset()
    ):
        day += timedelta(days=1)
    sunday_of_change = day + timedelta(days=1)
    assert sunday_of_change.isoweekday() == 7
    friday = sunday_of_change - timedelta(days=2)
    start = local(friday, time(10), new_york)
    if start <= await time_env.get_current_time():
        pytest.skip("the DST change is too close to plan a Friday before it")
    await travel_to(time_env, start)
    handle = await support_ticket_in_progress(time_env, calendar)
    view = await command(handle, WaitCommand(actor="ana", reason=WaitReason.CUSTOMER))
    tuesday = same_time(friday + timedelta(days=4), view.timeline[-1].at, new_york)
    assert view.deadlines[0].due_at == tuesday
    assert tuesday - start != timedelta(days=4)  # an hour more or less of real time
    await expect_reminder_at(time_env, handle, tuesday, 1)
