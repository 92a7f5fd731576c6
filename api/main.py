"""The FastAPI application: ``create_app(settings=None, client=None)``.

With no client, the lifespan connects to Temporal with the settings, and keeps retrying
in the background if Temporal is not up yet (``/readyz`` answers 503 meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from temporalio.client import Client

from activities.archive import ArchiveStore
from api.errors import install_error_handlers
from api.limits import RateLimiter, RequestBodyGuard
from api.metrics import RequestMetrics
from api.routes import commands, docs, health, inbound, profiles, releases, tickets
from api.service import TicketService
from config import Settings, connect, get_settings
from web import console, customer
from web.pages import STATIC
from web.sessions import Sessions
from workflows.policy import PolicySource

logger = logging.getLogger("tramita.api")

RECONNECT_DELAY_SECONDS = 2.0

DESCRIPTION = """
Tramita: every help-desk ticket is a durable Temporal workflow.

Authenticate with `Authorization: Bearer <key>` (keys from `TRAMITA_API_KEYS`). Every
POST honours `Idempotency-Key`: a retry applies once and returns the first answer.
Errors: 404 unknown ticket, 409 `invalid_transition` (with the current `status`),
422 validation, 503 when Temporal or the worker does not answer in time.
"""


def create_app(
    settings: Settings | None = None,
    client: Client | None = None,
    *,
    policies: PolicySource | None = None,
) -> FastAPI:
    """The API. ``policies`` gives new tickets their rules: by default the profiles in
    force (``settings.profiles``); the bench shortens the timers."""
    settings = settings or get_settings()
    policies = policies or settings.profiles

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        connecting: asyncio.Task[None] | None = None
        if app.state.temporal_client is None:
            connecting = asyncio.create_task(_connect_until_ready(app, settings))
        try:
            yield
        finally:
            if connecting is not None:
                connecting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await connecting

    app = FastAPI(
        title="Tramita",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by api.routes.docs, with local assets
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.temporal_client = client
    rpc_timeout = timedelta(seconds=settings.api_rpc_timeout_seconds)
    archive = ArchiveStore.from_url(settings.archive_url)
    app.state.ticket_service_factory = OneServicePerClient(
        lambda c: TicketService(c, settings, archive, rpc_timeout=rpc_timeout, policies=policies)
    )
    app.state.policies = policies
    app.state.sessions = Sessions(settings)
    install_error_handlers(app)

    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    app.add_middleware(
        RequestBodyGuard,
        max_bytes=settings.max_body_bytes,
        idle_seconds=settings.api_body_timeout_seconds,
        larger={"/inbound/mime": settings.inbound_max_bytes},
    )
    app.add_middleware(RequestMetrics)
    for router in (
        tickets.router,
        commands.router,
        releases.router,
        profiles.router,
        inbound.router,
        health.router,
        console.router,
        customer.router,
    ):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    docs.install(app)
    return app


class OneServicePerClient:
    """The ticket service of the Temporal client in use, built once: a service per request
    would build its stores, ledger and router anew each time (and check their tables)."""

    def __init__(self, build: Callable[[Client], TicketService]) -> None:
        self._build = build
        self._current: tuple[Client, TicketService] | None = None

    def __call__(self, client: Client) -> TicketService:
        current = self._current
        if current is None or current[0] is not client:
            current = (client, self._build(client))
            self._current = current
        return current[1]


async def _connect_until_ready(app: FastAPI, settings: Settings) -> None:
    while True:
        try:
            app.state.temporal_client = await connect(settings)
        except Exception as error:  # keep the API up and not ready; say why in the log
            logger.warning(
                "cannot reach Temporal yet; retrying",
                extra={"address": settings.temporal_address, "error": repr(error)},
            )
            await asyncio.sleep(RECONNECT_DELAY_SECONDS)
        else:
            logger.info("connected to Temporal", extra={"address": settings.temporal_address})
            return
