"""Lists, filters, pagination and release publication on a real dev server."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from tests.api.helpers import AGENT, REQUESTER, SUPERVISOR, SYSTEM, post, ticket_body
from tests.support.temporal import eventually

_categories = itertools.count(1)


def unique_category() -> str:
    return f"cat-{next(_categories)}-{id(object())}"


async def make(api: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    return await post(api, "/tickets", ticket_body(**overrides), expect=201)


async def listing(
    api: httpx.AsyncClient, headers: dict[str, str] = AGENT, **params: Any
) -> dict[str, Any]:
    response = await api.get("/tickets", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(page: dict[str, Any]) -> set[str]:
    return {item["id"] for item in page["items"]}


async def test_filters_and_rows(dev_api: httpx.AsyncClient) -> None:
    category = unique_category()
    waiting = await make(dev_api, category=category, title="Aguardando cliente")
    await post(dev_api, f"/tickets/{waiting['id']}/assign", {"assignee": "ana"})
    await post(dev_api, f"/tickets/{waiting['id']}/wait", {"reason": "customer"})
    fresh = await make(dev_api, category=category, priority="urgent")

    async def by_category() -> dict[str, Any]:
        return await listing(dev_api, category=category)

    page = await eventually(by_category, lambda p: ids(p) == {waiting["id"], fresh["id"]})
    row = next(item for item in page["items"] if item["id"] == waiting["id"])
    assert row["title"] == "Aguardando cliente"
    assert (row["status"], row["wait_reason"], row["assignee"]) == ("waiting", "customer", "ana")
    assert row["next_deadline"] is not None and row["requester"] == "cliente@example.com"
    assert ids(await listing(dev_api, category=category, status="waiting")) == {waiting["id"]}
    assert ids(await listing(dev_api, category=category, wait_reason="customer")) == {waiting["id"]}
    assert ids(await listing(dev_api, category=category, status="new")) == {fresh["id"]}
    urgent = next(
        item for item in (await listing(dev_api, category=category, status="new"))["items"]
    )
    assert urgent["priority"] == "urgent" and urgent["next_deadline"] is None


async def test_inbox_and_own_work_views(dev_api: httpx.AsyncClient) -> None:
    category = unique_category()
    working = await make(dev_api, category=category, profile="enate")
    await post(dev_api, f"/tickets/{working['id']}/start")  # ana's inbox
    parked = await make(dev_api, category=category, profile="enate")
    await post(dev_api, f"/tickets/{parked['id']}/start")
    await post(
        dev_api, f"/tickets/{parked['id']}/wait", {"reason": "customer", "days": 3}
    )  # own work

    async def inbox() -> dict[str, Any]:
        return await listing(dev_api, category=category, view="inbox")

    await eventually(inbox, lambda p: ids(p) == {working["id"]})
    assert ids(await listing(dev_api, category=category, view="own_work")) == {parked["id"]}
    assert ids(await listing(dev_api, SUPERVISOR, category=category, view="inbox")) == set()


async def test_pagination_walks_every_ticket_once(dev_api: httpx.AsyncClient) -> None:
    category = unique_category()
    made = {(await make(dev_api, category=category))["id"] for _ in range(7)}

    async def everything() -> dict[str, Any]:
        return await listing(dev_api, category=category, page_size=100)

    await eventually(everything, lambda p: ids(p) == made)
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"category": category, "page_size": 3}
        if token:
            params["page_token"] = token
        page = await listing(dev_api, **params)
        seen += [item["id"] for item in page["items"]]
        pages += 1
        token = page["next_page_token"]
        if not token:
            break
    assert sorted(seen) == sorted(made) and pages >= 3
    for forged in ("%%%", "bm90LWEtdG9rZW4="):  # not base64; base64 of "not-a-token"
        response = await dev_api.get("/tickets", params={"page_token": forged}, headers=AGENT)
        assert response.status_code == 422, response.text


async def test_requester_lists_only_its_tickets(dev_api: httpx.AsyncClient) -> None:
    category = unique_category()
    mine = await make(dev_api, category=category)
    theirs = await make(
        dev_api,
        category=category,
        requester="outro@example.com",
        primary_contact="outro@example.com",
    )

    async def as_staff() -> dict[str, Any]:
        return await listing(dev_api, category=category)

    await eventually(as_staff, lambda p: ids(p) == {mine["id"], theirs["id"]})
    page = await listing(dev_api, REQUESTER, category=category, requester="outro@example.com")
    assert ids(page) == {mine["id"]}


async def test_filter_values_with_quotes_are_refused(dev_api: httpx.AsyncClient) -> None:
    response = await dev_api.get("/tickets", params={"category": "x' OR 1=1"}, headers=AGENT)
    assert response.status_code == 422


async def test_release_publish_moves_waiting_tickets_of_that_version_only(
    dev_api: httpx.AsyncClient,
) -> None:
    version = f"9.{next(_categories)}.{id(object()) % 1000}"
    category = unique_category()
    waiting = []
    for _ in range(3):
        ticket = await make(dev_api, category=category)
        await post(dev_api, f"/tickets/{ticket['id']}/assign", {"assignee": "ana"})
        await post(
            dev_api, f"/tickets/{ticket['id']}/wait", {"reason": "release", "version": version}
        )
        waiting.append(ticket["id"])
    other_version = await make(dev_api, category=category)
    await post(dev_api, f"/tickets/{other_version['id']}/assign", {"assignee": "ana"})
    await post(
        dev_api,
        f"/tickets/{other_version['id']}/wait",
        {"reason": "release", "version": version + ".1"},
    )
    joint = await make(dev_api, category=category)
    await post(dev_api, f"/tickets/{joint['id']}/assign", {"assignee": "ana"})
    await post(dev_api, f"/tickets/{joint['id']}/wait", {"reason": "other_team", "area": "dev"})

    async def visible() -> dict[str, Any]:
        return await listing(dev_api, release=version)

    await eventually(visible, lambda p: ids(p) == set(waiting))
    result = await post(dev_api, f"/releases/{version}/publish", headers=SYSTEM)
    assert result == {"version": version, "ticket_ids": sorted(waiting)}
    for ticket_id in waiting:
        view = (await dev_api.get(f"/tickets/{ticket_id}", headers=AGENT)).json()
        assert (view["status"], view["status_label"]) == ("resolved", "Validação cliente")
        assert "release_published" in [e["type"] for e in view["timeline"]]
    for untouched in (other_version["id"], joint["id"]):
        assert (await dev_api.get(f"/tickets/{untouched}", headers=AGENT)).json()[
            "status"
        ] == "waiting"
