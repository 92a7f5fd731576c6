"""No answer a requester can get holds anything internal (DESIGN section 10).

Every path a requester reaches is tried: reading, listing, the answers to its own
commands, a closed (archived) ticket; both profiles. Internal content carries a marker
that must never come back.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.api.helpers import AGENT, REQUESTER, REQUESTER_EMAIL, SYSTEM, create, post

SECRET = "SEGREDO-senha-do-sistema-de-teste"


def assert_customer_view(answer: dict[str, Any]) -> None:
    assert answer["audience"] == "customer", answer
    assert SECRET not in str(answer)
    for field in ("assignee", "highlighted", "needs_human", "deadlines", "contacts"):
        assert field not in answer
    assert all(event["type"] != "note" for event in answer["timeline"])


async def internal_work(api: httpx.AsyncClient, tid: str) -> None:
    await post(api, f"/tickets/{tid}/notes", {"body": f"password for the test system: {SECRET}"})
    await post(api, f"/tickets/{tid}/emails", {"body": "Pode enviar o log do erro?"})


async def wait_until_archived(api: httpx.AsyncClient, tid: str) -> dict[str, Any]:
    for _ in range(200):
        listed = (await api.get("/tickets", params={"status": "closed"}, headers=AGENT)).json()
        if any(row["id"] == tid for row in listed["items"]):
            found: dict[str, Any] = listed
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{tid} was never archived")


@pytest.mark.parametrize("profile", ["support", "enate"])
async def test_a_requester_never_reads_an_internal_note(
    api: httpx.AsyncClient, profile: str
) -> None:
    ticket = await create(api, profile=profile)
    tid = ticket["id"]
    if profile == "enate":
        await post(api, f"/tickets/{tid}/start")
    else:
        await post(api, f"/tickets/{tid}/assign", {"assignee": "ana"})
    await internal_work(api, tid)

    staff = (await api.get(f"/tickets/{tid}", headers=AGENT)).json()
    assert SECRET in str(staff) and staff["audience"] == "staff"

    read = (await api.get(f"/tickets/{tid}", headers=REQUESTER)).json()
    assert_customer_view(read)
    assert [e["type"] for e in read["timeline"]][:3] == ["created", "submitted", "started"]
    assert read["timeline"][-1]["data"] == {
        "subject": f"Re: {ticket['title']}",
        "body": "Pode enviar o log do erro?",
    }
    assert read["agent"] == "ana"

    reply = await post(api, f"/tickets/{tid}/replies", {"body": "Segue o log."}, REQUESTER)
    assert_customer_view(reply)
    assert reply["timeline"][-1]["data"] == {"body": "Segue o log."}

    await post(api, f"/tickets/{tid}/resolve", {"method": "customer_response", "note": SECRET})
    rated = await post(api, f"/tickets/{tid}/survey", {"score": 4}, REQUESTER)
    assert_customer_view(rated)
    assert rated["survey_open"] is True and rated["survey"]["score"] == 4


async def test_a_requester_lists_its_tickets_as_customer_rows(dev_api: httpx.AsyncClient) -> None:
    ticket = await create(dev_api)
    await post(dev_api, f"/tickets/{ticket['id']}/assign", {"assignee": "ana"})
    for _ in range(100):  # visibility is eventually consistent
        listed = (await dev_api.get("/tickets", headers=REQUESTER)).json()
        if any(row["id"] == ticket["id"] for row in listed["items"]):
            break
        await asyncio.sleep(0.05)
    row = next(row for row in listed["items"] if row["id"] == ticket["id"])
    assert row["audience"] == "customer" and row["status_label"] == "Em análise"
    for row in listed["items"]:
        assert not {"assignee", "highlighted", "requester", "category"} & set(row)


@pytest.mark.parametrize(
    ("profile", "closed_label"), [("enate", "Closed / Fechado"), ("support", "Fechado")]
)
async def test_an_archived_ticket_answers_its_requester_with_the_customer_view(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, profile: str, closed_label: str
) -> None:
    ticket = await create(api, profile=profile)
    tid = ticket["id"]
    if profile == "enate":
        await internal_work(api, tid)  # the note starts the Enate ticket
        await post(api, f"/tickets/{tid}/resolve", {"method": "spam", "note": SECRET})  # closes
    else:
        await post(api, f"/tickets/{tid}/assign", {"assignee": "ana"})
        await internal_work(api, tid)
        await post(api, f"/tickets/{tid}/resolve", {"method": "customer_response", "note": SECRET})
        await time_env.sleep(timedelta(days=12))  # support closes only by itself
    await wait_until_archived(api, tid)

    read = (await api.get(f"/tickets/{tid}", headers=REQUESTER)).json()
    assert_customer_view(read)
    assert read["status"] == "closed" and read["status_label"] == closed_label
    closed_listing = (
        await api.get("/tickets", params={"status": "closed"}, headers=REQUESTER)
    ).json()
    assert any(row["id"] == tid for row in closed_listing["items"])
    assert all(row["audience"] == "customer" for row in closed_listing["items"])
    late = await api.post(f"/tickets/{tid}/replies", json={"body": "x"}, headers=REQUESTER)
    assert late.status_code == 409 and SECRET not in late.text


async def test_consultants_review_the_qualification_in_customer_validation(
    api: httpx.AsyncClient,
) -> None:
    ticket = await create(api, requester_kind="consultant")
    tid = ticket["id"]
    await post(api, f"/tickets/{tid}/assign", {"assignee": "ana"})
    await post(api, f"/tickets/{tid}/qualification", {"qualification": "configuration"})
    early = await api.post(
        f"/tickets/{tid}/qualification", json={"qualification": "solved"}, headers=REQUESTER
    )
    assert early.status_code == 409
    assert "customer validation" in early.json()["detail"]

    validating = await post(api, f"/tickets/{tid}/resolve", {"method": "customer_response"})
    read = (await api.get(f"/tickets/{tid}", headers=REQUESTER)).json()
    assert read["qualification"] == "configuration" and read["qualification_review_open"]
    assert validating["status"] == "resolved"
    changed = await post(
        api, f"/tickets/{tid}/qualification", {"qualification": "product_defect"}, REQUESTER
    )
    assert changed["qualification"] == "product_defect"
    assert_customer_view(changed)


async def test_a_plain_customer_neither_sees_nor_reviews_the_qualification(
    api: httpx.AsyncClient,
) -> None:
    ticket = await create(api)
    tid = ticket["id"]
    await post(api, f"/tickets/{tid}/assign", {"assignee": "ana"})
    await post(api, f"/tickets/{tid}/qualification", {"qualification": "configuration"})
    await post(api, f"/tickets/{tid}/resolve", {"method": "customer_response"})
    read = (await api.get(f"/tickets/{tid}", headers=REQUESTER)).json()
    assert read["qualification"] is None and not read["qualification_review_open"]
    refused = await api.post(
        f"/tickets/{tid}/qualification", json={"qualification": "solved"}, headers=REQUESTER
    )
    assert refused.status_code == 403


async def test_the_system_role_relaying_a_reply_reads_the_staff_view(
    api: httpx.AsyncClient,
) -> None:
    ticket = await create(api)
    answer = await post(api, f"/tickets/{ticket['id']}/replies", {"body": "por telefone"}, SYSTEM)
    assert answer["audience"] == "staff"
    assert answer["timeline"][-1]["actor"] == REQUESTER_EMAIL


async def test_a_merge_moves_no_content_into_another_customers_view(
    api: httpx.AsyncClient,
) -> None:
    theirs = await create(
        api,
        profile="enate",
        requester="outro@example.com",
        primary_contact="outro@example.com",
        description=f"their description {SECRET}",
    )
    await post(api, f"/tickets/{theirs['id']}/notes", {"body": SECRET})
    mine = await create(api, profile="enate")
    await post(api, f"/tickets/{theirs['id']}/merge", {"into": mine["id"]})
    for _ in range(100):  # the target hears of the merge by signal, just after
        staff = (await api.get(f"/tickets/{mine['id']}", headers=AGENT)).json()
        if any(e["type"] == "merged" for e in staff["timeline"]):
            break
        await asyncio.sleep(0.05)
    assert SECRET in str(staff), "staff see the merged content"
    assert_customer_view((await api.get(f"/tickets/{mine['id']}", headers=REQUESTER)).json())
