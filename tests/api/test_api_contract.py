"""The API as a new user meets it: limits, docs, unknown parameters, keys, names."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from config import Settings
from tests.api.helpers import AGENT, REQUESTER, create, post
from tests.support.processes import api_process


async def test_a_streamed_body_over_the_limit_is_413_over_real_http(
    time_env: WorkflowEnvironment,
) -> None:
    """Chunked transfer declares no length; the body is counted as it arrives."""
    limit = {"TRAMITA_MAX_BODY_BYTES": "2048"}
    async with api_process(time_env, asyncio.subprocess.DEVNULL, limit) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                b"POST /tickets HTTP/1.1\r\n"
                + f"Host: 127.0.0.1:{port}\r\n".encode()
                + b"Authorization: Bearer dev-agent-key\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            chunk = b'{"title": "' + b"x" * 1000
            for _ in range(4):
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                await writer.drain()
                chunk = b"x" * 1000
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            async with asyncio.timeout(10):
                status = await reader.readline()
                headers = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
                length = int(headers.split("content-length:")[1].split("\r\n")[0])
                body = await reader.readexactly(length)
        finally:
            writer.close()
    assert status.startswith(b"HTTP/1.1 413"), status
    assert b"payload_too_large" in body


async def test_a_streamed_body_over_the_limit_is_413_through_the_app(
    api: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"body": "'
        for _ in range(1_100):
            yield b"x" * 1_000
        yield b'"}'

    response = await api.post("/tickets/abc/notes", content=chunks(), headers=AGENT)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


async def test_the_api_docs_load_every_asset_from_the_api_itself(api: httpx.AsyncClient) -> None:
    page = await api.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    scripts = re.findall(r"""url: ['"]([^'"]+)['"]""", page.text)
    assert assets and all(url.startswith("/docs/assets/") for url in assets), assets
    assert scripts == ["/openapi.json"]
    assert "http://" not in page.text and "https://" not in page.text
    for url in assets + scripts:
        assert (await api.get(url)).status_code == 200, url
    assert (await api.get("/redoc")).status_code == 404  # only the page that works offline


async def test_unknown_list_parameters_are_refused_not_ignored(api: httpx.AsyncClient) -> None:
    for query in ({"colour": "red"}, {"sortby": "created_at"}, {"statuss": "new"}):
        response = await api.get("/tickets", params=query, headers=AGENT)
        assert response.status_code == 422, (query, response.text)
        assert response.json()["error"] == "validation_error"
    for query in ({"sort": "title"}, {"sort": "--priority"}, {"priority": "highest"}):
        response = await api.get("/tickets", params=query, headers=AGENT)
        assert response.status_code == 422, (query, response.text)


async def test_the_list_filters_by_priority_and_sorts_as_asked(api: httpx.AsyncClient) -> None:
    title = f"Prioridade {secrets.token_hex(3)}"
    made = {
        priority: (await create(api, title=f"{title} {priority}", priority=priority))["id"]
        for priority in ("low", "urgent", "high")
    }
    high = await api.get("/tickets", params={"priority": "high", "q": title}, headers=AGENT)
    assert [row["id"] for row in high.json()["items"]] == [made["high"]]
    ordered = await api.get("/tickets", params={"sort": "priority", "q": title}, headers=AGENT)
    assert [row["id"] for row in ordered.json()["items"]] == [
        made["urgent"],
        made["high"],
        made["low"],
    ]
    newest = await api.get("/tickets", params={"sort": "-created_at", "q": title}, headers=AGENT)
    assert [row["id"] for row in newest.json()["items"]] == [
        made["high"],
        made["urgent"],
        made["low"],
    ]


async def test_an_idempotency_key_is_bound_to_its_command_and_body(
    api: httpx.AsyncClient,
) -> None:
    ticket = await create(api, profile="enate")
    tid = ticket["id"]
    key = {**AGENT, "Idempotency-Key": "nota-1"}
    first = await api.post(f"/tickets/{tid}/notes", json={"body": "Primeira"}, headers=key)
    again = await api.post(f"/tickets/{tid}/notes", json={"body": "Primeira"}, headers=key)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    other_body = await api.post(f"/tickets/{tid}/notes", json={"body": "Outra"}, headers=key)
    assert other_body.status_code == 422
    assert other_body.json()["error"] == "idempotency_key_reused"
    other_command = await api.post(
        f"/tickets/{tid}/resolve", json={"method": "rejected"}, headers=key
    )
    assert other_command.status_code == 422
    assert other_command.json()["error"] == "idempotency_key_reused"
    notes = [
        e
        for e in (await api.get(f"/tickets/{tid}", headers=AGENT)).json()["timeline"]
        if e["type"] == "note" and not e["data"].get("submission")
    ]
    assert [n["data"]["body"] for n in notes] == ["Primeira"]
    assert (await api.get(f"/tickets/{tid}", headers=AGENT)).json()["status"] == "in_progress"


async def test_a_create_key_reused_with_another_body_is_refused(api: httpx.AsyncClient) -> None:
    key = {**AGENT, "Idempotency-Key": f"create-{id(api)}"}
    first = await api.post("/tickets", json={"title": "Um", "submit": False}, headers=key)
    again = await api.post("/tickets", json={"title": "Um", "submit": False}, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    other = await api.post("/tickets", json={"title": "Dois", "submit": False}, headers=key)
    assert other.status_code == 422
    assert other.json()["error"] == "idempotency_key_reused"


async def test_the_survey_speaks_of_the_survey(api: httpx.AsyncClient) -> None:
    ticket = await create(api)
    response = await api.post(
        f"/tickets/{ticket['id']}/survey", json={"score": 5}, headers=REQUESTER
    )
    assert response.status_code == 409
    assert response.json()["detail"].startswith("the satisfaction survey")


async def test_an_edit_names_only_the_fields_the_caller_changed(api: httpx.AsyncClient) -> None:
    ticket = await create(api)
    view = (
        await api.patch(
            f"/tickets/{ticket['id']}",
            json={"priority": "urgent", "requester_kind": "channel"},
            headers={**AGENT, "Idempotency-Key": "edit-1"},
        )
    ).json()
    edited = [e for e in view["timeline"] if e["type"] == "edited"]
    assert edited[-1]["data"] == {"changed": ["priority", "requester_kind"]}
    nothing = await api.patch(f"/tickets/{ticket['id']}", json={}, headers=AGENT)
    assert nothing.status_code == 422
    assert nothing.json()["detail"] == "nothing to edit: give at least one field"


async def test_the_data_directory_holds_the_archive_too(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "dados")
    assert settings.archive_url == f"sqlite:///{tmp_path / 'dados' / 'archive.db'}"
    explicit = Settings(data_dir=tmp_path, archive_url="postgresql+psycopg://h/db")
    assert explicit.archive_url == "postgresql+psycopg://h/db"


async def test_a_split_child_may_name_its_id_and_its_parents_profile(
    api: httpx.AsyncClient,
) -> None:
    parent = await create(api, profile="enate")
    await post(api, f"/tickets/{parent['id']}/start")
    mismatch = await api.post(
        f"/tickets/{parent['id']}/split",
        json={"children": [{"title": "A"}, {"title": "B", "profile": "support"}]},
        headers=AGENT,
    )
    assert mismatch.status_code == 422
    assert mismatch.json()["detail"] == (
        "children[1]: a child ticket keeps its parent's profile (enate), not support"
    )
    untitled = await api.post(
        f"/tickets/{parent['id']}/split", json={"children": [{"description": "d"}]}, headers=AGENT
    )
    assert untitled.status_code == 422
    assert "needs a title" in untitled.json()["detail"]
