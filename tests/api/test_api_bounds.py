"""The largest input each route accepts, again and again: the ticket lives on.

Before the bounds, five replies of 100,000 emoji made Temporal terminate the workflow
("GrpcMessageTooLarge"): never archived, listed as open, answering 404 and 409. Now the
ticket keeps excerpts, the whole texts are readable from the content store, every
answer stays small, and the ticket closes and is archived as usual.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.api.helpers import AGENT, REQUESTER, SYSTEM, create

HUGE = "😀" * 100_000  # the longest text a body may hold: 400 KB of UTF-8
SECRET = "🔒" * 100_000  # as long, for notes only (contents are stored by their digest)
ANSWER_BUDGET = 300_000


async def send(
    api: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str] = AGENT
) -> dict[str, Any]:
    content = json.dumps(body, ensure_ascii=False).encode()
    response = await api.post(
        path, content=content, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code in (200, 201), response.text[:300]
    assert len(response.content) < ANSWER_BUDGET, (path, len(response.content))
    answer: dict[str, Any] = response.json()
    return answer


async def test_the_largest_inputs_of_every_route_leave_a_healthy_ticket(
    api: httpx.AsyncClient,
) -> None:
    ticket = await send(
        api,
        "/tickets",
        {
            "profile": "enate",
            "title": "t" * 200,
            "description": HUGE,
            "category": "c" * 200,
            "requester": "cliente@example.com",
            "primary_contact": "cliente@example.com",
        },
    )
    tid = ticket["id"]
    assert ticket["description_ref"]["bytes"] == len(HUGE.encode())
    for _ in range(5):
        await send(api, f"/tickets/{tid}/replies", {"body": HUGE}, REQUESTER)
        await send(api, f"/tickets/{tid}/notes", {"body": SECRET})
        await send(api, f"/tickets/{tid}/emails", {"body": HUGE, "subject": "s" * 200})
    await send(api, f"/tickets/{tid}/replies", {"body": HUGE}, SYSTEM)
    await send(api, f"/tickets/{tid}/wait", {"reason": "customer", "days": 1})
    await send(api, f"/tickets/{tid}/resume", {})
    view = await send(
        api, f"/tickets/{tid}/resolve", {"method": "customer_response", "note": SECRET}
    )
    assert view["status"] == "resolved"

    staff = (await api.get(f"/tickets/{tid}", headers=AGENT)).json()
    replies = [e for e in staff["timeline"] if e["type"] == "customer_reply"]
    assert len(replies) == 6
    whole = await api.get(
        f"/tickets/{tid}/contents/{replies[0]['data']['body_ref']}", headers=AGENT
    )
    assert whole.status_code == 200 and whole.text == HUGE
    mine = await api.get(
        f"/tickets/{tid}/contents/{replies[0]['data']['body_ref']}", headers=REQUESTER
    )
    assert mine.status_code == 200 and mine.text == HUGE
    note = next(
        e for e in staff["timeline"] if e["type"] == "note" and e["data"]["body"].startswith("🔒")
    )
    hidden = await api.get(f"/tickets/{tid}/contents/{note['data']['body_ref']}", headers=REQUESTER)
    assert hidden.status_code == 404, "a note's text is staff's only"
    assert (
        await api.get(f"/tickets/{tid}/contents/{note['data']['body_ref']}", headers=AGENT)
    ).text == SECRET
    description = await api.get(
        f"/tickets/{tid}/contents/{staff['description_ref']['sha256']}", headers=REQUESTER
    )
    assert description.text == HUGE

    # The feedback window runs out: the ticket closes and is archived, as any other.
    await api.post(f"/tickets/{tid}/reopen", headers=AGENT)
    await send(api, f"/tickets/{tid}/resolve", {"method": "spam"})
    for _ in range(200):
        closed = (await api.get("/tickets", params={"status": "closed"}, headers=AGENT)).json()
        if any(row["id"] == tid for row in closed["items"]):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the ticket was never archived")
    archived = (await api.get(f"/tickets/{tid}", headers=REQUESTER)).json()
    assert archived["status"] == "closed"


async def test_inbound_mail_of_the_largest_size_is_stored_whole(api: httpx.AsyncClient) -> None:
    message = {
        "message_id": "<huge-1@example.com>",
        "from": "cliente@example.com",
        "to": "suporte@tramita.test",
        "subject": "Um e-mail enorme",
        "text": HUGE,
    }
    routed = await send(api, "/inbound/email", message, SYSTEM)
    created = (await api.get(f"/tickets/{routed['ticket_id']}", headers=AGENT)).json()
    ref = created["description_ref"]["sha256"]
    whole = await api.get(f"/tickets/{routed['ticket_id']}/contents/{ref}", headers=AGENT)
    assert whole.text == HUGE
    reply = {**message, "message_id": "<huge-2@example.com>", "subject": f"Re: [#{created['id']}]"}
    await send(api, "/inbound/email", reply, SYSTEM)
    view = (await api.get(f"/tickets/{created['id']}", headers=AGENT)).json()
    assert view["timeline"][-1]["data"]["body_bytes"] == len(HUGE.encode())


async def test_an_unknown_or_foreign_content_is_404(api: httpx.AsyncClient) -> None:
    ticket = await create(api)
    missing = await api.get(f"/tickets/{ticket['id']}/contents/{'0' * 64}", headers=AGENT)
    assert missing.status_code == 404
    malformed = await api.get(f"/tickets/{ticket['id']}/contents/nothex", headers=AGENT)
    assert malformed.status_code == 422
