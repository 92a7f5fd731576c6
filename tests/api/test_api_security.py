"""Authentication, roles, requester isolation and the error contract."""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import AGENT, REQUESTER, ROBOT, SUPERVISOR, SYSTEM, create, post, ticket_body


async def test_no_key_or_unknown_key_is_401(api: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = await api.get("/tickets/abc", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("method", "path", "headers", "body"),
    [
        ("POST", "/tickets", REQUESTER, ticket_body()),
        ("POST", "/tickets", SYSTEM, ticket_body()),
        (
            "POST",
            "/inbound/email",
            AGENT,
            {"message_id": "<a@b>", "from": "a@b.com", "to": "s@t.com"},
        ),
        ("POST", "/releases/1.0/publish", AGENT, None),
        ("POST", "/tickets/abc/assign", REQUESTER, {"assignee": "x"}),
        ("POST", "/tickets/abc/notes", SYSTEM, {"body": "x"}),
    ],
)
async def test_roles_that_may_not_act_get_403(
    api: httpx.AsyncClient, method: str, path: str, headers: dict[str, str], body: object
) -> None:
    response = await api.request(method, path, json=body, headers=headers)
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden"


async def test_requester_sees_and_acts_only_on_its_own_tickets(api: httpx.AsyncClient) -> None:
    own = await create(api)
    other = await create(api, requester="outro@example.com", primary_contact="outro@example.com")
    assert (await api.get(f"/tickets/{own['id']}", headers=REQUESTER)).status_code == 200
    for path, body in (
        (f"/tickets/{other['id']}", None),
        (f"/tickets/{other['id']}/replies", {"body": "let me in"}),
        (f"/tickets/{other['id']}/survey", {"score": 1}),
    ):
        response = await (
            api.get(path, headers=REQUESTER)
            if body is None
            else api.post(path, json=body, headers=REQUESTER)
        )
        assert response.status_code == 404, response.text
        assert "outro@example.com" not in response.text
    # Nothing changed on the other ticket.
    untouched = (await api.get(f"/tickets/{other['id']}", headers=AGENT)).json()
    assert [e["type"] for e in untouched["timeline"]] == [e["type"] for e in other["timeline"]]
    replied = await post(
        api, f"/tickets/{own['id']}/replies", {"body": "Mais detalhes"}, headers=REQUESTER
    )
    reply = replied["timeline"][-1]
    assert reply["type"] == "customer_reply" and reply["actor"] == "cliente@example.com"


async def test_robot_and_supervisor_work_tickets(api: httpx.AsyncClient) -> None:
    ticket = await create(api, profile="enate")
    await post(
        api,
        f"/tickets/{ticket['id']}/assign",
        {"assignee": "robo-1", "kind": "robot"},
        headers=SUPERVISOR,
    )
    view = await post(
        api, f"/tickets/{ticket['id']}/robot-reject", {"reason": "PDF ilegível"}, headers=ROBOT
    )
    assert view["status"] == "new" and view["needs_human"] is True and view["assignee"] is None


async def test_unknown_ticket_is_404(api: httpx.AsyncClient) -> None:
    for response in (
        await api.get("/tickets/does-not-exist", headers=AGENT),
        await api.post("/tickets/does-not-exist/notes", json={"body": "x"}, headers=AGENT),
    ):
        assert response.status_code == 404
        assert response.json() == {
            "error": "not_found",
            "detail": "ticket does-not-exist not found",
        }


async def test_invalid_transition_is_409_with_the_reason_and_status(api: httpx.AsyncClient) -> None:
    ticket = await create(api)
    response = await api.post(f"/tickets/{ticket['id']}/reopen", headers=AGENT)
    assert response.status_code == 409
    assert response.json() == {
        "error": "invalid_transition",
        "detail": "'reopen' is not allowed while the ticket is new; allowed from: resolved",
        "status": "new",
    }


async def test_submit_with_missing_fields_is_422_listing_every_field(
    api: httpx.AsyncClient,
) -> None:
    response = await api.post("/tickets", json={"title": "Só o título"}, headers=AGENT)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "missing_fields"
    assert body["missing"] == ["description", "category", "primary_contact", "requester"]
    draft = (
        await api.post("/tickets", json={"title": "Rascunho", "submit": False}, headers=AGENT)
    ).json()
    assert draft["status"] == "draft" and draft["status_label"] == "Rascunho"
    response = await api.post(f"/tickets/{draft['id']}/submit", headers=AGENT)
    assert response.status_code == 422
    assert response.json()["missing"] == ["description", "category", "primary_contact", "requester"]
    assert response.json()["status"] == "draft"


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("/tickets", {**ticket_body(), "colour": "blue"}, "extra_forbidden"),
        ("/tickets", ticket_body(requester="not-an-email"), "value_error"),
        ("/tickets", ticket_body(priority="whenever"), "enum"),
        ("/tickets", ticket_body(id="bad id!"), "string_pattern_mismatch"),
    ],
)
async def test_invalid_bodies_are_422(
    api: httpx.AsyncClient, path: str, body: object, fragment: str
) -> None:
    response = await api.post(path, json=body, headers=AGENT)
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    assert fragment in response.text


async def test_invalid_command_arguments_are_422(api: httpx.AsyncClient) -> None:
    ticket = await create(api)
    await post(api, f"/tickets/{ticket['id']}/assign", {"assignee": "ana"})
    response = await api.post(
        f"/tickets/{ticket['id']}/wait", json={"reason": "release"}, headers=AGENT
    )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_command"
    assert "needs 'version'" in response.json()["detail"]
    response = await api.post(
        f"/tickets/{ticket['id']}/wait",
        json={"reason": "follow_up", "until": "2026-01-01T10:00:00"},
        headers=AGENT,
    )
    assert response.status_code == 422  # no time zone
    response = await api.post(f"/tickets/{ticket['id']}/survey", json={"score": 6}, headers=AGENT)
    assert response.status_code == 422


async def test_broken_json_and_bad_encoding_are_422_not_500(api: httpx.AsyncClient) -> None:
    for content in (b"{not json", b'{"title": "\xff\xfe"}', b""):
        response = await api.post(
            "/tickets", content=content, headers={**AGENT, "Content-Type": "application/json"}
        )
        assert response.status_code == 422, (content, response.text)


async def test_oversized_body_is_413(api: httpx.AsyncClient) -> None:
    huge = {"body": "x" * 2_000_000}
    response = await api.post("/tickets/abc/notes", json=huge, headers=AGENT)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


async def test_closed_ticket_rejects_commands_with_409(api: httpx.AsyncClient) -> None:
    ticket = await create(api, profile="enate")
    closed = await post(api, f"/tickets/{ticket['id']}/resolve", {"method": "spam"})
    assert closed["status"] == "closed"
    for path, body in (
        (f"/tickets/{ticket['id']}/notes", {"body": "late"}),
        (f"/tickets/{ticket['id']}/replies", {"body": "hi"}),
    ):
        response = await api.post(path, json=body, headers=AGENT)
        assert response.status_code == 409, response.text
        assert response.json()["status"] == "closed"
    assert (await api.get(f"/tickets/{ticket['id']}", headers=AGENT)).json()["status"] == "closed"


async def test_titles_and_subjects_are_single_lines(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/tickets", json=ticket_body(title="Line one\nBcc: x@example.com"), headers=AGENT
    )
    assert response.status_code == 422
    ticket = await create(api, profile="enate")
    response = await api.post(
        f"/tickets/{ticket['id']}/emails", json={"body": "x", "subject": "a\r\nb"}, headers=AGENT
    )
    assert response.status_code == 422


async def test_closed_tickets_tell_a_stranger_nothing(api: httpx.AsyncClient) -> None:
    mine = await create(api, profile="enate")
    theirs = await create(
        api, profile="enate", requester="outro@example.com", primary_contact="outro@example.com"
    )
    for ticket in (mine, theirs):
        await post(api, f"/tickets/{ticket['id']}/resolve", {"method": "spam"})
    for route, body in (("replies", {"body": "x"}), ("survey", {"score": 1})):
        stranger = await api.post(f"/tickets/{theirs['id']}/{route}", json=body, headers=REQUESTER)
        assert stranger.status_code == 404, stranger.text
        assert "closed" not in stranger.text
        owner = await api.post(f"/tickets/{mine['id']}/{route}", json=body, headers=REQUESTER)
        assert owner.status_code == 409, owner.text
        assert owner.json()["status"] == "closed"
