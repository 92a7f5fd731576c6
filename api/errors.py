"""The one place where failures become HTTP answers. Never a stack trace in a response.

* 404 ``not_found``: unknown ticket (or another requester's ticket).
* 409 ``invalid_transition``: the workflow's validator refused the command; ``status``
  is the ticket's current status. Commands to a closed ticket answer this too.
* 422 ``missing_fields`` / ``invalid_command`` / ``validation_error``: bad input.
* 413 ``payload_too_large``, 401 ``unauthorized``, 403 ``forbidden``.
* 503 ``unavailable``: Temporal or the worker did not answer in time.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import (
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from workflows.models import Status

logger = logging.getLogger("tramita.api")

UNAVAILABLE_CODES = frozenset(
    {
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
    }
)


class ApiError(Exception):
    def __init__(
        self,
        status_code: int,
        error: str,
        detail: object,
        *,
        status: Status | None = None,
        missing: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error}: {detail}")
        self.status_code = status_code
        self.body: dict[str, Any] = {"error": error, "detail": detail}
        if status is not None:
            self.body["status"] = status.value
        if missing is not None:
            self.body["missing"] = missing
        self.headers = headers


def not_found(ticket_id: str) -> ApiError:
    return ApiError(404, "not_found", f"ticket {ticket_id} not found")


def closed(ticket_id: str) -> ApiError:
    return ApiError(
        409,
        "invalid_transition",
        f"ticket {ticket_id} is closed: closed tickets accept no command (open a follow-up)",
        status=Status.CLOSED,
    )


def unavailable(detail: str) -> ApiError:
    return ApiError(503, "unavailable", detail, headers={"Retry-After": "5"})


def from_update_failure(failure: WorkflowUpdateFailedError) -> ApiError:
    cause = failure.cause
    if isinstance(cause, ApplicationError):
        info = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
        status = Status(info["status"]) if info.get("status") else None
        if cause.type == "invalid_transition":
            return ApiError(409, "invalid_transition", cause.message, status=status)
        if cause.type == "missing_fields":
            return ApiError(
                422,
                "missing_fields",
                cause.message,
                status=status,
                missing=list(info.get("missing", [])),
            )
        if cause.type == "invalid_command":
            return ApiError(422, "invalid_command", cause.message, status=status)
        if cause.type == "not_found":  # a requester's command to someone else's ticket
            return ApiError(404, "not_found", cause.message)
    logger.error("update failed unexpectedly", extra={"cause": repr(cause)})
    return unavailable("the ticket could not process the command; try again")


def _json(
    status_code: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(status_code=status_code, content=jsonable_encoder(body), headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _json(exc.status_code, exc.body, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return _json(422, {"error": "validation_error", "detail": errors})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode (e.g. invalid UTF-8): bad input.
            detail = f"the request body could not be read: {exc.detail}"
            return _json(422, {"error": "validation_error", "detail": detail})
        names = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
        body = {"error": names.get(exc.status_code, "http_error"), "detail": exc.detail}
        return _json(exc.status_code, body, dict(exc.headers) if exc.headers else None)

    @app.exception_handler(WorkflowUpdateFailedError)
    async def update_failed(request: Request, exc: WorkflowUpdateFailedError) -> JSONResponse:
        error = from_update_failure(exc)
        return _json(error.status_code, error.body, error.headers)

    @app.exception_handler(WorkflowUpdateRPCTimeoutOrCancelledError)
    async def update_timeout(
        request: Request, exc: WorkflowUpdateRPCTimeoutOrCancelledError
    ) -> JSONResponse:
        error = unavailable("no worker answered in time; the command was not confirmed, retry it")
        return _json(error.status_code, error.body, error.headers)

    @app.exception_handler(WorkflowQueryFailedError)
    async def query_failed(request: Request, exc: WorkflowQueryFailedError) -> JSONResponse:
        logger.error("query failed", extra={"error": str(exc)})
        error = unavailable("the ticket could not be read right now")
        return _json(error.status_code, error.body, error.headers)

    @app.exception_handler(RPCError)
    async def rpc_error(request: Request, exc: RPCError) -> JSONResponse:
        if exc.status in UNAVAILABLE_CODES:
            error = unavailable("Temporal did not answer in time")
        elif exc.status is RPCStatusCode.NOT_FOUND:
            error = ApiError(404, "not_found", "ticket not found")
        else:
            logger.error(
                "temporal rpc failed", extra={"status": exc.status.name, "error": exc.message}
            )
            error = unavailable("Temporal refused the request")
        return _json(error.status_code, error.body, error.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", extra={"path": request.url.path})
        return _json(500, {"error": "internal_error", "detail": "unexpected error; it was logged"})
