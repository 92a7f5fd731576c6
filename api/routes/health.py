"""Liveness and readiness."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.schemas import Health

router = APIRouter(tags=["health"])
logger = logging.getLogger("tramita.api")

READINESS_TIMEOUT_SECONDS = 3.0


@router.get("/healthz", summary="Liveness")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", summary="Readiness: Temporal answers", responses={503: {"model": Health}})
async def readyz(request: Request) -> JSONResponse:
    client = getattr(request.app.state, "temporal_client", None)
    if client is None:
        return JSONResponse(
            status_code=503,
            content=Health(status="unavailable", detail="not connected").model_dump(),
        )
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            await client.service_client.check_health()
    except Exception as error:  # any failure means "not ready"; the reason goes to the log
        logger.warning("readiness check failed", extra={"error": repr(error)})
        return JSONResponse(
            status_code=503,
            content=Health(status="unavailable", detail="Temporal does not answer").model_dump(),
        )
    return JSONResponse(status_code=200, content=Health(status="ok").model_dump())


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def metrics() -> PlainTextResponse:
    return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)
