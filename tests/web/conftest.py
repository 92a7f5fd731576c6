"""The web pages over real HTTP through the ASGI app, against the time-skipping server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.main import create_app
from config import Settings


@pytest.fixture(scope="module")
async def site(
    time_env: WorkflowEnvironment, api_settings: Settings, time_worker: Worker
) -> AsyncIterator[httpx.ASGITransport]:
    yield httpx.ASGITransport(app=create_app(api_settings, client=time_env.client))


@pytest.fixture
async def web(site: httpx.ASGITransport) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own (its own cookies), redirects not followed."""
    async with httpx.AsyncClient(
        transport=site, base_url="http://tramita.test", timeout=30
    ) as client:
        yield client
