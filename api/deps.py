"""Dependencies: settings, the Temporal client (made in the lifespan), the caller.

Every dependency is ``async def``: none blocks, and FastAPI runs a plain ``def``
dependency in its thread pool, a thread hand-off per dependency per request.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from api.errors import ApiError
from api.limits import RateLimiter
from api.principal import STAFF, Principal
from api.service import TicketService
from config import Role, Settings

_bearer = HTTPBearer(auto_error=False, description="An API key from TRAMITA_API_KEYS")


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_client(request: Request) -> Client:
    client: Client | None = getattr(request.app.state, "temporal_client", None)
    if client is None:
        raise ApiError(503, "unavailable", "not connected to Temporal yet")
    return client


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClientDep = Annotated[Client, Depends(get_client)]


async def get_tickets(request: Request, client: ClientDep) -> TicketService:
    service: TicketService = request.app.state.ticket_service_factory(client)
    return service


TicketsDep = Annotated[TicketService, Depends(get_tickets)]


async def get_principal(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(
            401, "unauthorized", "send Authorization: Bearer <api key>", headers=challenge
        )
    for key, entry in settings.api_keys.items():
        if secrets.compare_digest(key.encode(), credentials.credentials.encode()):
            limiter: RateLimiter = request.app.state.rate_limiter
            limiter.take(key)
            return Principal(subject=entry.subject, role=entry.role)
    raise ApiError(401, "unauthorized", "unknown API key", headers=challenge)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets only ``roles`` through (403 for the others)."""

    async def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            raise ApiError(
                403,
                "forbidden",
                f"the {principal.role} role may not do this; allowed: {', '.join(roles)}",
            )
        return principal

    return check


StaffDep = Annotated[Principal, Depends(require(*STAFF))]


async def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            pattern=r"^[\x21-\x7e]+$",
            description="Retries with the same key apply once and return the first answer.",
        ),
    ] = None,
) -> str | None:
    return key


IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key)]
