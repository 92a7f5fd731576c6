"""Findings of the security review that need no ticket: settings, addresses, clients.

Each reproduces what the review did against a real process (``python -m api``,
``worker.py``) or the real code path, and fails on the code before the fix.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.failures import TooManyRequests
from api.limits import MAX_BUCKETS, RateLimiter
from config import SettingsError, load_settings
from tests.support.processes import ROOT, api_process
from workflows.addresses import same_address

SECRET_KEY = "k3y-0f-s0me0ne-wh0-typ3d-it-wr0ng-0123456789"


# ---------------------------------------------------------------- 8. secrets at start


@pytest.mark.parametrize("program", [["-m", "api"], ["worker.py"]])
async def test_a_bad_setting_is_named_without_printing_a_secret(program: list[str]) -> None:
    environment = {
        **os.environ,
        "TRAMITA_API_KEYS": f'{{"{SECRET_KEY}": {{"subject": "", "role": "agent"}}}}',
        "TRAMITA_WEBHOOK_SECRET": "webhook-secret-value",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *program,
        cwd=ROOT,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    output = (out + err).decode()
    assert process.returncode == 2, output
    assert "TRAMITA_API_KEYS" in output and "subject" in output
    assert SECRET_KEY not in output and SECRET_KEY[:8] not in output
    assert "webhook-secret-value" not in output
    assert "Traceback" not in output


def test_malformed_api_keys_are_refused_without_echoing_them() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(api_keys=f'{{"{SECRET_KEY}": broken')
    assert "TRAMITA_API_KEYS" in str(refused.value)
    assert SECRET_KEY[:8] not in str(refused.value)


@pytest.mark.parametrize("weak", ["x", " ", "", "short-key", " " + "k" * 40])
def test_production_wants_long_keys(weak: str) -> None:
    keys = {weak: {"subject": "ana", "role": "agent"}}
    with pytest.raises(SettingsError) as refused:
        load_settings(env="production", api_keys=keys)
    assert "shorter than 32 characters" in str(refused.value)
    if len(weak.strip()) > 4:
        assert weak.strip() not in str(refused.value)


PRODUCTION = {
    "env": "production",
    "secret_key": "a-secret-of-our-own-0123456789abcdef",
    "public_url": "https://tramita.example.com",
}


def test_production_refuses_unsigned_webhooks_and_clear_text_mail_passwords() -> None:
    keys = {SECRET_KEY: {"subject": "ana", "role": "agent"}}
    with pytest.raises(SettingsError) as unsigned:
        load_settings(**PRODUCTION, api_keys=keys, webhook_urls="https://h.test/T0KEN")
    assert "TRAMITA_WEBHOOK_SECRET" in str(unsigned.value)
    assert "T0KEN" not in str(unsigned.value)
    with pytest.raises(SettingsError) as clear:
        load_settings(**PRODUCTION, api_keys=keys, smtp_username="u", smtp_starttls=False)
    assert "clear text" in str(clear.value)
    with pytest.raises(SettingsError) as too_short:
        load_settings(
            **{**PRODUCTION, "secret_key": "short-signing-secret"},
            api_keys=keys,
            webhook_urls="https://h.test/hook",
            webhook_secret="webhook-secret-value-0123456789",
        )
    refusal = str(too_short.value)
    assert "TRAMITA_SECRET_KEY" in refusal
    for secret in ("short-signing-secret", "webhook-secret-value", SECRET_KEY[:8]):
        assert secret not in refusal, "a failing production check names no secret"
    fine = load_settings(
        **PRODUCTION,
        api_keys=keys,
        webhook_urls="https://h.test/hook",
        webhook_secret="s" * 32,
        smtp_username="u",
    )
    assert fine.smtp_starttls is None, "TLS whenever the server offers it"


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"secret_key": "tramita-development-secret-key-not-for-production"}, "SECRET_KEY"),
        ({"secret_key": "short"}, "SECRET_KEY"),
        ({"public_url": "http://tramita.example.com"}, "PUBLIC_URL"),
    ],
)
def test_production_wants_its_own_secret_and_https_links(
    override: dict[str, str], named: str
) -> None:
    keys = {SECRET_KEY: {"subject": "ana", "role": "agent"}}
    with pytest.raises(SettingsError) as refused:
        load_settings(**{**PRODUCTION, **override}, api_keys=keys)
    assert f"TRAMITA_{named}" in str(refused.value)
    assert "short" not in str(refused.value).replace("shorter", "")


# ---------------------------------------------------------------- 11. addresses


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("user@strasse.de", "user@straße.de", False),
        ("Cliente@Example.COM", "cliente@example.com", True),
        ("user@bücher.de", "user@xn--bcher-kva.de", True),
        ("user@Bücher.DE", "USER@bücher.de", True),
        ("maß@example.com", "mass@example.com", False),
        ("a@example.com", "a@example.org", False),
        ("a@example.com", None, False),
    ],
)
def test_requesters_are_matched_by_address_not_by_unicode_folding(
    first: str, second: str | None, same: bool
) -> None:
    assert same_address(first, second) is same


# ---------------------------------------------------------------- 7. slow clients


async def read_status(reader: asyncio.StreamReader, seconds: float) -> bytes:
    async with asyncio.timeout(seconds):
        return await reader.readline()


@pytest.fixture
def quick_limits() -> dict[str, str]:
    return {
        "TRAMITA_API_HEADER_TIMEOUT_SECONDS": "1",
        "TRAMITA_API_BODY_TIMEOUT_SECONDS": "1",
    }


async def test_idle_and_slow_connections_are_closed(
    time_env: WorkflowEnvironment, quick_limits: dict[str, str]
) -> None:
    async with api_process(time_env, asyncio.subprocess.DEVNULL, quick_limits) as (_, port):
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        assert (await read_status(idle_reader, 5)).startswith(b"HTTP/1.1 408")
        await idle_reader.read()  # to the end: the server closed the connection
        assert idle_reader.at_eof()
        assert time.monotonic() - started < 4

        partial_reader, partial_writer = await asyncio.open_connection("127.0.0.1", port)
        partial_writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        await partial_writer.drain()
        assert (await read_status(partial_reader, 5)).startswith(b"HTTP/1.1 408")

        body_reader, body_writer = await asyncio.open_connection("127.0.0.1", port)
        body_writer.write(
            b"POST /tickets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dev-agent-key\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"title": '
        )
        await body_writer.drain()
        assert (await read_status(body_reader, 5)).startswith(b"HTTP/1.1 408")
        for writer in (idle_writer, partial_writer, body_writer):
            writer.close()

        # A well-behaved client is served as before.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/healthz")).status_code == 200


async def test_connections_past_the_concurrency_limit_are_refused(
    time_env: WorkflowEnvironment,
) -> None:
    limits = {"TRAMITA_API_MAX_CONCURRENCY": "2", "TRAMITA_API_HEADER_TIMEOUT_SECONDS": "30"}
    async with api_process(time_env, asyncio.subprocess.DEVNULL, limits) as (_, port):
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/healthz")).status_code == 503
        for _, writer in held:
            writer.close()
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/healthz")).status_code == 200


async def test_each_key_is_rate_limited_with_retry_after(time_env: WorkflowEnvironment) -> None:
    limits = {"TRAMITA_RATE_LIMIT_PER_MINUTE": "3"}
    async with (
        api_process(time_env, asyncio.subprocess.DEVNULL, limits) as (_, port),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        agent = {"Authorization": "Bearer dev-agent-key"}
        answers = [
            (await client.get("/tickets/nothing-here", headers=agent)).status_code for _ in range(4)
        ]
        assert answers == [404, 404, 404, 429]
        limited = await client.get("/tickets/nothing-here", headers=agent)
        assert limited.json()["error"] == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 20
        other = {"Authorization": "Bearer dev-supervisor-key"}
        assert (await client.get("/tickets/nothing-here", headers=other)).status_code == 404


# ---------------------------------------------------------------- 6. control characters


async def test_control_characters_in_filters_and_paths_are_refused_at_once(
    time_env: WorkflowEnvironment,
) -> None:
    async with (
        api_process(time_env, asyncio.subprocess.DEVNULL) as (_, port),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client,
    ):
        requester = {"Authorization": "Bearer dev-requester-key"}
        system = {"Authorization": "Bearer dev-system-key"}
        started = time.monotonic()
        listing = await client.get("/tickets?category=a%00b", headers=requester)
        publish = await client.post("/releases/1.0%00/publish", headers=system)
        newline = await client.get("/tickets?assignee=a%0Ab", headers=requester)
        assert (listing.status_code, publish.status_code, newline.status_code) == (
            422,
            422,
            422,
        )
        assert time.monotonic() - started < 2


def test_the_rate_limiter_forgets_callers_whose_bucket_has_refilled() -> None:
    """Made-up links and passing addresses must not grow its table without end."""
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    for number in range(MAX_BUCKETS + 1):
        limiter.take(f"address-{number}")
    now[0] += 61.0  # a minute on: every bucket has refilled
    limiter.take("one-more")
    limiter.take("and-another")
    assert len(limiter._buckets) <= 2
    for _ in range(60):
        limiter.take("busy")
    with pytest.raises(TooManyRequests):
        limiter.take("busy")  # forgetting the others never resets a busy caller
