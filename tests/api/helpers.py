"""Shared bits of the HTTP tests."""

from __future__ import annotations

from typing import Any

import httpx

AGENT = {"Authorization": "Bearer dev-agent-key"}
SUPERVISOR = {"Authorization": "Bearer dev-supervisor-key"}
ROBOT = {"Authorization": "Bearer dev-robot-key"}
REQUESTER = {"Authorization": "Bearer dev-requester-key"}  # cliente@example.com
SYSTEM = {"Authorization": "Bearer dev-system-key"}

REQUESTER_EMAIL = "cliente@example.com"


def ticket_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "profile": "support",
        "title": "Erro ao emitir nota fiscal",
        "description": "O sistema mostra erro 500 ao emitir a nota.",
        "category": "fiscal",
        "nature": "incident",
        "requester": REQUESTER_EMAIL,
        "primary_contact": REQUESTER_EMAIL,
    }
    body.update(overrides)
    return body


async def create(api: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await api.post("/tickets", json=ticket_body(**overrides), headers=AGENT)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def post(
    api: httpx.AsyncClient,
    path: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] = AGENT,
    expect: int = 200,
) -> dict[str, Any]:
    response = await api.post(path, json=body, headers=headers)
    assert response.status_code == expect, response.text
    answer: dict[str, Any] = response.json()
    return answer


def event_types(view: dict[str, Any]) -> list[str]:
    return [event["type"] for event in view["timeline"]]
