"""SLA clocks on durable timers (time skipping): warnings and breaches reach a real
SMTP sink and a real webhook receiver at their due times, across weekends, holidays, a
change of daylight time and two time zones. One test: every ticket is opened before
virtual time moves (the API dates tickets by the real clock)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import httpx
from temporalio.testing import WorkflowEnvironment

from tests.api.conftest import NEW_YORK, NY_DAYS
from tests.api.helpers import AGENT, create, event_types, post
from tests.support.http import Receiver
from tests.support.smtp import SmtpSink
from tests.support.temporal import search_attributes
from workflows.models import workflow_id_for
from workflows.search import TICKET_SLA_DUE_AT


async def read(api: httpx.AsyncClient, ticket_id: str) -> dict[str, Any]:
    response = await api.get(f"/tickets/{ticket_id}", headers=AGENT)
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


# --------------------------------------------------------------------------- SLA timers


def _business_days_after(
    start: datetime, days: int, zone: str, opens: time, closes: time, closed: set[date]
) -> datetime:
    """Where ``days`` whole business days of business time from ``start`` end, counted
    here from the wall clock and the holiday list, independently of Tramita's calendar."""
    tz = ZoneInfo(zone)
    wall = start.astimezone(tz)

    def business(day: date) -> bool:
        return day.isoweekday() <= 5 and day not in closed

    def following(day: date) -> date:
        day += timedelta(days=1)
        while not business(day):
            day += timedelta(days=1)
        return day

    day = wall.date()
    if business(day) and opens <= wall.time() < closes:
        for _ in range(days):
            day = following(day)
        return datetime.combine(day, wall.time(), tzinfo=tz).astimezone(UTC)
    if not (business(day) and wall.time() < opens):
        day = following(day)
    for _ in range(days - 1):
        day = following(day)
    return datetime.combine(day, closes, tzinfo=tz).astimezone(UTC)


def _holidays(country: str, extra: tuple[date, ...] = ()) -> set[date]:
    this_year = datetime.now(UTC).year
    return set(holidays.country_holidays(country, years=range(this_year, this_year + 3))) | set(
        extra
    )


def _alerts(view: dict[str, Any], kind: str) -> dict[str, datetime]:
    return {
        e["data"]["metric"]: datetime.fromisoformat(e["at"])
        for e in view["timeline"]
        if e["type"] == kind
    }


def _close(one: datetime, other: datetime) -> bool:
    return abs(one - other) < timedelta(seconds=1)


async def test_sla_warnings_and_breaches_arrive_at_their_times(
    desk: httpx.AsyncClient,
    time_env: WorkflowEnvironment,
    smtp_sink: SmtpSink,
    receiver: Receiver,
) -> None:
    # Lisbon: first reply within 8 business hours, resolution within 5 business days,
    # warnings at 80%; nobody assigned, so the supervisors are told. São Paulo
    # (desk-sp): first reply within 1 business day, warnings at 75%, assigned to Ana.
    lisbon = await create(desk, profile="lisbon", nature=None)
    sao_paulo = await create(desk, profile="desk-sp")
    await post(desk, f"/tickets/{sao_paulo['id']}/assign", {"assignee": "ana"})
    opened_lisbon = datetime.fromisoformat(lisbon["created_at"])
    opened_sp = datetime.fromisoformat(sao_paulo["created_at"])
    first = {c["metric"]: c for c in lisbon["sla"]}
    assert first["first_reply"]["state"] == "running"
    assert first["first_reply"]["target"] == "8 business hours"
    lisbon_breach = datetime.fromisoformat(first["first_reply"]["target_at"])
    portugal = _holidays("PT", (date(2026, 12, 24), date(2026, 12, 31)))
    # 8 business hours of a 9-hour day, then 5 business days (weekends and holidays out).
    expected_resolution = _business_days_after(
        opened_lisbon, 5, "Europe/Lisbon", time(9), time(18), portugal
    )
    assert datetime.fromisoformat(first["resolution"]["target_at"]) == expected_resolution
    sp_first = next(
        c for c in (await read(desk, sao_paulo["id"]))["sla"] if c["metric"] == "first_reply"
    )
    expected_sp = _business_days_after(
        opened_sp, 1, "America/Sao_Paulo", time(8), time(18), _holidays("BR")
    )
    assert datetime.fromisoformat(sp_first["target_at"]) == expected_sp
    # New York: business days past a change of daylight time. The breach keeps its
    # wall-clock time, so its UTC hour moves by one.
    new_york = await create(desk, profile="ny", nature=None, title="Invoice 42 missing")
    opened_ny = datetime.fromisoformat(new_york["created_at"])
    expected_ny = _business_days_after(
        opened_ny, NY_DAYS, "America/New_York", time(9), time(17), _holidays("US")
    )
    assert opened_ny.astimezone(NEW_YORK).dst() != expected_ny.astimezone(NEW_YORK).dst()
    ny_clock = next(c for c in new_york["sla"] if c["metric"] == "resolution")
    assert datetime.fromisoformat(ny_clock["target_at"]) == expected_ny

    # The Web UI lists tickets about to breach by TicketSlaDueAt: Lisbon's first reply.
    lisbon_id = workflow_id_for(lisbon["id"])
    attributes = await search_attributes(time_env.client, lisbon_id)
    due = str(attributes[TICKET_SLA_DUE_AT.name])
    assert _close(datetime.fromisoformat(due), lisbon_breach)

    await time_env.sleep(expected_ny - opened_ny + timedelta(days=1))

    # Every clock of the Lisbon ticket has run out: nothing left to breach.
    attributes = await search_attributes(time_env.client, lisbon_id)
    assert TICKET_SLA_DUE_AT.name not in attributes

    ny_view = await read(desk, new_york["id"])
    assert _close(_alerts(ny_view, "sla_breached")["resolution"], expected_ny)
    assert set(_alerts(ny_view, "sla_warning")) == {"resolution"}

    lisbon_view = await read(desk, lisbon["id"])
    breaches = _alerts(lisbon_view, "sla_breached")
    assert _close(breaches["first_reply"], lisbon_breach)
    assert _close(breaches["resolution"], expected_resolution)
    warnings = _alerts(lisbon_view, "sla_warning")
    assert set(warnings) == {"first_reply", "resolution"}
    assert warnings["first_reply"] < breaches["first_reply"]
    assert event_types(lisbon_view).count("sla_breached") == 2  # once each
    sp_view = await read(desk, sao_paulo["id"])
    assert _close(_alerts(sp_view, "sla_breached")["first_reply"], expected_sp)

    # Email: the supervisors for the unassigned Lisbon ticket, Ana for São Paulo's.
    lisbon_notices = smtp_sink.notices_for(lisbon["id"])
    assert sorted(m.message["X-Tramita-Notice"] for m in lisbon_notices) == [
        "sla_breached",
        "sla_breached",
        "sla_warning",
        "sla_warning",
    ]
    assert {m.message["To"] for m in lisbon_notices} == {"lead@example.com"}
    assert any(
        "breached its first reply target of 8 business hours" in m.text for m in lisbon_notices
    )
    sp_notices = smtp_sink.notices_for(sao_paulo["id"])
    assert {
        m.message["To"] for m in sp_notices if m.message["X-Tramita-Notice"].startswith("sla")
    } == {"ana@example.com"}
    assert any("violou a meta de primeira resposta" in m.text for m in sp_notices)

    # Webhooks, with the clock they are about.
    hooks = [json.loads(r.body) for r in receiver.recorded()]
    lisbon_hooks = [h for h in hooks if h["ticket_id"] == lisbon["id"] and "sla" in h]
    assert sorted((h["event"], h["sla"]["metric"]) for h in lisbon_hooks) == [
        ("sla_breached", "first_reply"),
        ("sla_breached", "resolution"),
        ("sla_warning", "first_reply"),
        ("sla_warning", "resolution"),
    ]
    breached = next(
        h
        for h in lisbon_hooks
        if h["event"] == "sla_breached" and h["sla"]["metric"] == "first_reply"
    )
    assert breached["sla"]["target"] == "8 business hours"
    assert any(h["ticket_id"] == new_york["id"] and h["event"] == "sla_breached" for h in hooks)
    assert {m.message["To"] for m in smtp_sink.notices_for(new_york["id"])} == {
        "ny-lead@example.com"
    }
