"""Hostile input: clear 4xx every time, and nothing changes."""

from __future__ import annotations

import httpx

from activities.webhooks import SIGNATURE_HEADER, sign
from tests.api.helpers import AGENT, REQUESTER, SYSTEM, create, post, ticket_body

COMMAND_ROUTES = [
    "submit",
    "assign",
    "start",
    "unassign",
    "requeue",
    "robot-reject",
    "wait",
    "resume",
    "notes",
    "emails",
    "resolve",
    "reopen",
    "qualification",
    "merge",
    "split",
    "case/complete",
    "follow-ups",
]


async def test_very_long_titles_and_subjects_are_refused(api: httpx.AsyncClient) -> None:
    response = await api.post("/tickets", json=ticket_body(title="x" * 201), headers=AGENT)
    assert response.status_code == 422
    inbound = {"message_id": "<long@x>", "from": "a@example.com", "to": "s@t", "subject": "s" * 999}
    response = await api.post("/inbound/email", json=inbound, headers=SYSTEM)
    assert response.status_code == 422
    response = await api.post(
        "/inbound/email", json={**inbound, "message_id": "<" + "m" * 1000 + ">"}, headers=SYSTEM
    )
    assert response.status_code == 422


async def test_a_signature_header_grants_nothing(api: httpx.AsyncClient) -> None:
    body = b'{"message_id": "<forged@x>", "from": "a@example.com", "to": "s@t", "subject": "hi"}'
    forged = {
        SIGNATURE_HEADER: sign(body, "guessed-secret", 0),
        "Content-Type": "application/json",
    }
    assert (await api.post("/inbound/email", content=body, headers=forged)).status_code == 401
    response = await api.post("/inbound/email", content=body, headers={**forged, **AGENT})
    assert response.status_code == 403
    assert (await api.post("/releases/1.0/publish", headers=forged)).status_code == 401


async def test_a_requester_probing_another_ticket_learns_and_changes_nothing(
    api: httpx.AsyncClient,
) -> None:
    other = await create(api, requester="outro@example.com", primary_contact="outro@example.com")
    before = (await api.get(f"/tickets/{other['id']}", headers=AGENT)).json()
    answers = []
    # Routes a requester may use answer an invalid body with 422 before looking at any
    # ticket (so that says nothing); valid bodies for them follow below.
    requester_routes = {"replies", "survey", "qualification"}
    for route in COMMAND_ROUTES:
        if route in requester_routes:
            continue
        answers.append(
            (
                await api.post(f"/tickets/{other['id']}/{route}", json={}, headers=REQUESTER)
            ).status_code
        )
    answers.append(
        (
            await api.patch(f"/tickets/{other['id']}", json={"title": "mine"}, headers=REQUESTER)
        ).status_code
    )
    answers.append((await api.get(f"/tickets/{other['id']}", headers=REQUESTER)).status_code)
    for route, body in (
        ("replies", {"body": "x"}),
        ("survey", {"score": 1}),
        ("qualification", {"qualification": "solved"}),
    ):
        answers.append(
            (
                await api.post(f"/tickets/{other['id']}/{route}", json=body, headers=REQUESTER)
            ).status_code
        )
    assert set(answers) <= {403, 404}, answers
    after = (await api.get(f"/tickets/{other['id']}", headers=AGENT)).json()
    assert after == before


async def test_unknown_routes_and_methods_are_4xx(api: httpx.AsyncClient) -> None:
    ticket = await create(api)
    assert (
        await api.post(f"/tickets/{ticket['id']}/close", headers=AGENT)
    ).status_code == 404  # no manual close
    assert (await api.delete(f"/tickets/{ticket['id']}", headers=AGENT)).status_code == 405
    await post(api, f"/tickets/{ticket['id']}/notes", {"body": "still fine"})
