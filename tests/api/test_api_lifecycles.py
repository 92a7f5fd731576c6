"""Whole tickets through real HTTP, from creation to the automatic close (time skipping)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from temporalio.testing import WorkflowEnvironment

from tests.api.helpers import AGENT, REQUESTER, SYSTEM, create, event_types, post, ticket_body
from tests.support.smtp import SmtpSink


async def read(api: httpx.AsyncClient, ticket_id: str) -> dict[str, object]:
    response = await api.get(f"/tickets/{ticket_id}", headers=AGENT)
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


async def test_support_ticket_from_creation_to_automatic_close(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, smtp_sink: SmtpSink
) -> None:
    ticket = await create(api)
    tid = ticket["id"]
    assert (ticket["status"], ticket["status_label"]) == ("new", "Novo")
    view = await post(api, f"/tickets/{tid}/assign", {"assignee": "ana"})
    assert (view["status"], view["status_label"]) == ("in_progress", "Em análise")
    await post(api, f"/tickets/{tid}/emails", {"body": "Pode enviar o XML?"})
    view = await post(api, f"/tickets/{tid}/wait", {"reason": "customer"})
    assert view["status_label"] == "Aguardando resposta cliente"
    assert view["qualification"] == "undefined_lack_of_info"
    assert [d["kind"] for d in view["deadlines"]] == ["reminder", "reminder", "auto_close"]
    answer = await post(api, f"/tickets/{tid}/replies", {"body": "Segue o XML"}, headers=REQUESTER)
    assert (answer["audience"], answer["status"]) == ("customer", "in_progress")
    view = await read(api, tid)
    assert (view["status"], view["highlighted"], view["deadlines"]) == ("in_progress", True, [])
    view = await post(api, f"/tickets/{tid}/wait", {"reason": "release", "version": "8.4.2"})
    assert view["status_label"] == "Aguardando solução definitiva"
    await time_env.sleep(timedelta(days=20))  # never auto-closed
    assert (await read(api, tid))["status"] == "waiting"
    view = await post(api, f"/tickets/{tid}/resume")
    view = await post(api, f"/tickets/{tid}/resolve", {"method": "customer_response"})
    assert view["status_label"] == "Validação cliente"
    view = await post(
        api, f"/tickets/{tid}/survey", {"score": 5, "comment": "Ótimo"}, headers=REQUESTER
    )
    assert view["survey"]["score"] == 5
    await time_env.sleep(timedelta(days=12))  # 6 business days and more
    closed = await read(api, tid)
    assert closed["status"] == "closed" and closed["closed_at"] is not None
    types = event_types(closed)
    # Rated at once: none of the reminders (1 hour, 2 and 5 business days) is sent.
    assert types.count("reminder_sent") == 0
    assert types[-1] == "closed"
    mails = smtp_sink.for_ticket(tid)
    assert len(mails) == 1  # the agent's email only
    assert all(f"[#{tid}]" in m.message["Subject"] for m in mails)
    response = await api.post(f"/tickets/{tid}/replies", json={"body": "late"}, headers=REQUESTER)
    assert response.status_code == 409


async def test_enate_ticket_from_draft_to_automatic_close(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment
) -> None:
    draft = await post(
        api,
        "/tickets",
        {"profile": "enate", "submit": False, "primary_contact": "c@example.com"},
        expect=201,
    )
    tid = draft["id"]
    assert draft["status_label"] == "Draft / Rascunho"
    view = await post(
        api,
        f"/tickets/{tid}/emails",
        {"subject": "Invoice 42 missing", "body": "Where is invoice 42?"},
    )
    assert (view["title"], view["description"]) == ("Invoice 42 missing", "Where is invoice 42?")
    edited = await api.patch(
        f"/tickets/{tid}", json={"category": "billing", "requester": "c@example.com"}, headers=AGENT
    )
    assert edited.status_code == 200
    view = await post(api, f"/tickets/{tid}/submit")
    assert view["status_label"] == "To Do / A Fazer"
    view = await post(api, f"/tickets/{tid}/notes", {"body": "Looking into it"})
    assert view["status"] == "in_progress" and view["assignee"]["id"] == "ana"
    view = await post(api, f"/tickets/{tid}/wait", {"reason": "customer", "days": 2})
    await time_env.sleep(timedelta(days=2, minutes=1))
    view = await read(api, tid)
    assert (view["status"], view["highlighted"]) == ("in_progress", True)
    response = await api.post(
        f"/tickets/{tid}/resolve", json={"method": "customer_response"}, headers=AGENT
    )
    assert response.status_code == 409
    assert "resolution note" in response.json()["detail"]
    view = await post(api, f"/tickets/{tid}/emails", {"body": "Invoice re-sent.", "resolve": True})
    assert view["status"] == "resolved"
    assert view["resolution"]["method"] == "customer_response"
    await time_env.sleep(timedelta(days=7))
    assert (await read(api, tid))["status"] == "closed"


async def test_idempotency_key_applies_once_and_returns_the_first_answer(
    api: httpx.AsyncClient,
) -> None:
    ticket = await create(api)
    headers = {**AGENT, "Idempotency-Key": "note-1"}
    first = await api.post(f"/tickets/{ticket['id']}/notes", json={"body": "once"}, headers=headers)
    second = await api.post(
        f"/tickets/{ticket['id']}/notes", json={"body": "once"}, headers=headers
    )
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert event_types(await read(api, ticket["id"])).count("note") == 2  # submission note + one

    key = {**AGENT, "Idempotency-Key": "create-abc"}
    made = await api.post(
        "/tickets", json={"profile": "enate", "title": "x", "submit": False}, headers=key
    )
    again = await api.post(
        "/tickets", json={"profile": "enate", "title": "x", "submit": False}, headers=key
    )
    assert made.status_code == again.status_code == 201
    assert made.json()["id"] == again.json()["id"]

    chosen = await post(
        api, "/tickets", {"id": "client-chosen-1", "title": "y", "submit": False}, expect=201
    )
    repeat = await post(
        api, "/tickets", {"id": "client-chosen-1", "title": "y", "submit": False}, expect=201
    )
    assert chosen["id"] == repeat["id"] == "client-chosen-1"
    assert repeat["created_at"] == chosen["created_at"]


async def test_create_answers_the_ticket_exactly_as_it_then_reads(
    api: httpx.AsyncClient,
) -> None:
    # The API answers a create without asking the workflow: the answer must be the very
    # view the started workflow holds, timeline times and labels included.
    for body in (
        ticket_body(),
        ticket_body(profile="enate"),
        {"profile": "enate", "title": "Draft", "submit": False},
    ):
        created = await post(api, "/tickets", body, expect=201)
        assert await read(api, created["id"]) == created


async def test_creating_with_a_closed_tickets_id_is_409(api: httpx.AsyncClient) -> None:
    ticket = await create(api, profile="enate")
    await post(api, f"/tickets/{ticket['id']}/resolve", {"method": "spam"})
    again = await api.post(
        "/tickets", json=ticket_body(profile="enate", id=ticket["id"]), headers=AGENT
    )
    assert again.status_code == 409, again.text
    assert again.json()["status"] == "closed"


async def test_follow_up_only_from_a_closed_ticket(api: httpx.AsyncClient) -> None:
    ticket = await create(api, profile="enate")
    response = await api.post(f"/tickets/{ticket['id']}/follow-ups", headers=AGENT)
    assert response.status_code == 409
    await post(api, f"/tickets/{ticket['id']}/resolve", {"method": "unknown_sender"})
    follow_up = await post(
        api, f"/tickets/{ticket['id']}/follow-ups", {"description": "It is back"}, expect=201
    )
    assert follow_up["links"]["follow_up_of"] == ticket["id"]
    assert follow_up["title"] == f"Follow-up: {ticket['title']}"
    assert follow_up["status"] == "new" and follow_up["requester"] == ticket["requester"]
    assert "follow_up_created" in event_types(follow_up)


async def test_split_and_merge_over_http(api: httpx.AsyncClient) -> None:
    parent = await create(api, profile="enate")
    await post(api, f"/tickets/{parent['id']}/start")
    response = await api.post(
        f"/tickets/{parent['id']}/split",
        json={"children": [{"title": "A", "profile": "support"}]},
        headers=AGENT,
    )
    assert response.status_code == 422
    assert "keeps its parent's profile (enate)" in response.json()["detail"]
    chosen = f"{parent['id']}-mine"
    view = await post(
        api,
        f"/tickets/{parent['id']}/split",
        {
            "children": [
                {"title": "Parte A", "profile": "enate"},
                {"title": "Parte B", "id": chosen},
            ]
        },
    )
    assert view["links"]["children"] == [f"{parent['id']}-1", chosen]

    source, target = await create(api, profile="enate"), await create(api, profile="enate")
    view = await post(api, f"/tickets/{source['id']}/merge", {"into": target["id"]})
    assert view["links"]["merged_into"] == target["id"] and view["resolution"]["method"] == "merged"
    closed_target = await create(api, profile="enate")
    await post(api, f"/tickets/{closed_target['id']}/resolve", {"method": "spam"})
    other = await create(api, profile="enate")
    response = await api.post(
        f"/tickets/{other['id']}/merge", json={"into": closed_target["id"]}, headers=AGENT
    )
    assert response.status_code == 409
    response = await api.post(
        f"/tickets/{other['id']}/merge", json={"into": "nowhere"}, headers=AGENT
    )
    assert response.status_code == 422
    assert response.json()["detail"] == "there is no ticket nowhere to merge into"


async def test_case_launched_and_completed(api: httpx.AsyncClient) -> None:
    ticket = await create(api, profile="enate")
    await post(api, f"/tickets/{ticket['id']}/start")
    view = await post(
        api, f"/tickets/{ticket['id']}/wait", {"reason": "case", "case_ref": "CASE-9"}
    )
    assert view["status_label"] == "Wait / Aguarde: Case launched"
    response = await api.post(f"/tickets/{ticket['id']}/resume", headers=AGENT)
    assert response.status_code == 409
    view = await post(api, f"/tickets/{ticket['id']}/case/complete", {"note": "Done by legal"})
    assert view["resolution"]["method"] == "case_completed"


async def test_system_role_may_reply_for_inbound_channels(api: httpx.AsyncClient) -> None:
    ticket = await create(api)
    view = await post(
        api, f"/tickets/{ticket['id']}/replies", {"body": "via phone"}, headers=SYSTEM
    )
    assert view["timeline"][-1]["actor"] == ticket["requester"]


async def test_a_long_ticket_still_answers_its_whole_view(api: httpx.AsyncClient) -> None:
    ticket = await create(api)
    tid = ticket["id"]
    for number in range(70):  # past the size at which updates stop carrying the view
        view = await post(api, f"/tickets/{tid}/notes", {"body": f"note {number}"})
    notes = [e for e in view["timeline"] if e["type"] == "note"]
    assert [n["data"]["body"] for n in notes][-70:] == [f"note {n}" for n in range(70)]
    assert view == (await api.get(f"/tickets/{tid}", headers=AGENT)).json()
