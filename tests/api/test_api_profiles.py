"""Profiles from TRAMITA_PROFILES_FILE through real HTTP: what is in force, an unknown
name, and a profile defined only in the file through a whole lifecycle (time skipping)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from config import Settings
from tests.api.helpers import AGENT, REQUESTER, create, event_types, post
from tests.support.smtp import SmtpSink
from tests.web.pages import sign_in, text_of


async def read(api: httpx.AsyncClient, ticket_id: str) -> dict[str, Any]:
    response = await api.get(f"/tickets/{ticket_id}", headers=AGENT)
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


async def test_profiles_lists_what_is_in_force(desk: httpx.AsyncClient) -> None:
    response = await desk.get("/profiles", headers=AGENT)
    assert response.status_code == 200
    profiles = {p["name"]: p for p in response.json()["profiles"]}
    assert list(profiles) == ["enate", "support", "desk-sp", "lisbon", "ny"]
    assert profiles["support"]["default"] is True and profiles["support"]["source"] == "built-in"
    lisbon = profiles["lisbon"]
    assert lisbon["extends"] is None and lisbon["source"].endswith("profiles.toml")
    assert lisbon["timers"]["customer_wait_reminders"] == ["2 business days"]
    assert lisbon["timers"]["resolved_close"] == "3 business days"
    assert lisbon["calendar"] == {
        "timezone": "Europe/Lisbon",
        "business_hours": "09:00-18:00",
        "work_days": ["mon", "tue", "wed", "thu", "fri"],
        "holidays_country": "PT",
        "holidays_subdivision": None,
        "closed_dates": ["2026-12-24", "2026-12-31"],
    }
    assert lisbon["switches"]["require_resolution_message"] is True
    assert lisbon["sla"]["targets"]["first_reply"]["normal"] == "8 business hours"
    assert profiles["desk-sp"]["timers"]["customer_wait_reminders"] == [
        "3 business days",
        "5 business days",
    ]
    assert profiles["desk-sp"]["status_labels"]["resolved"] == "Validação cliente"
    assert (await desk.get("/profiles", headers=REQUESTER)).status_code == 403


async def test_an_unknown_profile_is_refused_with_the_names_in_force(
    desk: httpx.AsyncClient,
) -> None:
    response = await desk.post("/tickets", json={"profile": "lisboa", "title": "x"}, headers=AGENT)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "unknown_profile"
    assert "lisboa" in body["detail"] and "lisbon" in body["detail"]
    response = await desk.post("/tickets", json={"profile": "Not A Name"}, headers=AGENT)
    assert response.status_code == 422


async def test_the_console_shows_the_sla_clocks_in_business_time(
    desk: httpx.AsyncClient,
) -> None:
    ticket = await create(desk, profile="lisbon", nature=None)
    await sign_in(desk)
    page = await desk.get(f"/console/tickets/{ticket['id']}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "SLA" in text and "8 business hours" in text and "5 business days" in text
    assert "of business time" in text
    assert "Times are in Europe/Lisbon" in text  # the profile's own calendar
    profiles_filter = (await desk.get("/console/?queue=all")).text
    assert 'value="lisbon"' in profiles_filter


async def test_a_ticket_keeps_the_rules_it_was_opened_with(
    desk: httpx.AsyncClient,
    time_env: WorkflowEnvironment,
    profiles_settings: Settings,
    tmp_path: Path,
) -> None:
    """The file changes (the feedback window of desk-sp from 5 to 2 business days) and
    the API restarts with it: new tickets get the new window, an open ticket keeps its."""
    before = await create(desk, profile="desk-sp")
    await post(desk, f"/tickets/{before['id']}/assign", {"assignee": "ana"})
    kept = await post(desk, f"/tickets/{before['id']}/resolve", {"method": "customer_response"})
    assert profiles_settings.profiles_file is not None
    changed = tmp_path / "profiles.toml"
    changed.write_text(
        profiles_settings.profiles_file.read_text(encoding="utf-8").replace(
            'resolved_close = "5 business days"', 'resolved_close = "2 business days"'
        ),
        encoding="utf-8",
    )
    restarted = Settings(**(profiles_settings.model_dump() | {"profiles_file": changed}))
    assert restarted.profiles("desk-sp").timers.resolved_close.amount == 2
    app = create_app(restarted, client=time_env.client)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://tramita.test", timeout=30
    ) as api:
        after = await create(api, profile="desk-sp")
        await post(api, f"/tickets/{after['id']}/assign", {"assignee": "ana"})
        fresh = await post(api, f"/tickets/{after['id']}/resolve", {"method": "customer_response"})
        # A note on the old ticket through the restarted API: its window is still 5 days.
        again = await post(api, f"/tickets/{before['id']}/notes", {"body": "Checked again."})

    def closes(view: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(
            next(d["due_at"] for d in view["deadlines"] if d["kind"] == "auto_close")
        )

    assert closes(again) == closes(kept)
    resolved_old = datetime.fromisoformat(kept["resolution"]["at"])
    resolved_new = datetime.fromisoformat(fresh["resolution"]["at"])
    assert closes(kept) - resolved_old > closes(fresh) - resolved_new


async def test_a_profile_defined_only_in_the_file_runs_a_whole_lifecycle(
    desk: httpx.AsyncClient, time_env: WorkflowEnvironment, smtp_sink: SmtpSink
) -> None:
    ticket = await create(desk, profile="lisbon", nature=None)
    tid = ticket["id"]
    assert (ticket["profile"], ticket["status_label"]) == ("lisbon", "New")
    view = await post(desk, f"/tickets/{tid}/assign", {"assignee": "ana"})
    assert view["status_label"] == "Open"  # assign_starts_work, from the file
    await post(desk, f"/tickets/{tid}/emails", {"body": "Could you send the log?"})
    view = await post(desk, f"/tickets/{tid}/wait", {"reason": "customer"})
    assert view["status_label"] == "Pending: Waiting for you"
    assert [d["kind"] for d in view["deadlines"]] == ["reminder", "auto_close"]
    await time_env.sleep(timedelta(days=4))  # 2 business days and more: the reminder
    reminded = await read(desk, tid)
    assert event_types(reminded).count("reminder_sent") == 1
    await post(desk, f"/tickets/{tid}/replies", {"body": "Here it is."}, headers=REQUESTER)
    refused = await desk.post(
        f"/tickets/{tid}/resolve", json={"method": "customer_response"}, headers=AGENT
    )
    assert refused.status_code == 409  # the file requires a resolution message
    view = await post(
        desk,
        f"/tickets/{tid}/resolve",
        {"method": "customer_response", "note": "Replaced the certificate."},
    )
    assert view["status_label"] == "Solved"
    await post(desk, f"/tickets/{tid}/survey", {"score": 4}, headers=REQUESTER)
    await time_env.sleep(timedelta(days=7))  # the 3-business-day feedback window
    closed = await read(desk, tid)
    assert (closed["status"], closed["status_label"]) == ("closed", "Closed")
    mails = smtp_sink.for_ticket(tid)
    # The acknowledgement is for tickets opened by email: here, the agent's email and
    # the one reminder, both in English.
    assert len(mails) == 2
    assert "Could you send the log?" in mails[0].text
    assert "reply" in mails[1].text.lower()
