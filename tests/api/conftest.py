"""Fixtures of the profiles and SLA tests: an API and a worker with a profiles file
(the README's example and a desk in New York) and a real webhook receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from config import Settings
from tests.support.http import Receiver
from tests.support.temporal import strict_worker

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "docs" / "profiles.example.toml").read_text(encoding="utf-8")
NEW_YORK = ZoneInfo("America/New_York")


def _next_dst_change(after: datetime) -> datetime:
    day = after.astimezone(NEW_YORK)
    offset = day.utcoffset()
    while day.utcoffset() == offset:
        day += timedelta(days=1)
    return day


def _new_york_desk(days: int) -> str:
    """A desk in New York whose resolution target reaches past the next change of
    daylight time: ``days`` business days."""
    return f"""
[profiles.ny]
extends = "enate"

[profiles.ny.calendar]
timezone = "America/New_York"
business_hours = "09:00-17:00"
holidays_country = "US"

[profiles.ny.sla]
warn_at = 0.5
supervisors = ["ny-lead@example.com"]
targets.resolution = {{ normal = "{days} business days" }}
"""


# Business days from now to a week past the next change of daylight time in New York.
NY_DAYS = 5 + sum(
    1
    for n in range((_next_dst_change(datetime.now(UTC)) - datetime.now(UTC)).days + 1)
    if (datetime.now(UTC) + timedelta(days=n)).isoweekday() <= 5
)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    hooks = Receiver()
    hooks.start()
    try:
        yield hooks
    finally:
        hooks.stop()


@pytest.fixture(scope="module")
def profiles_settings(
    worker_settings: Settings, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    path = tmp_path_factory.mktemp("profiles") / "profiles.toml"
    path.write_text(EXAMPLE + _new_york_desk(NY_DAYS), encoding="utf-8")
    values = worker_settings.model_dump() | {
        "profiles_file": path,
        "webhook_urls": (receiver.url,),
        "task_queue": "tramita-profiles-tests",
    }
    return Settings(**values)


@pytest.fixture(scope="module")
async def desk(
    time_env: WorkflowEnvironment, profiles_settings: Settings, http_client: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    async with strict_worker(time_env.client, profiles_settings, http_client):
        app = create_app(profiles_settings, client=time_env.client)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://tramita.test", timeout=30
        ) as client:
            yield client
