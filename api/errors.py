"""The one place where failures become HTTP answers. Never a stack trace in a response.

* 404 ``not_found``: unknown ticket (or another requester's ticket).
* 409 ``invalid_transition``: the core refused the command in the ticket's status;
  ``status`` is the ticket's current status. Commands to a closed ticket answer this too.
* 422 ``missing_fields`` / ``invalid_command`` / ``validation_error`` /
  ``idempotency_key_reused``: bad input.
* 403 ``forbidden``: the caller's role (or, for a requester, the rules) forbid it.
* 413 ``payload_too_large``, 401 ``unauthorized``, 429 ``rate_limited``.
* 503 ``unavailable``: Temporal or the worker did not do it; ``retryable`` says whether
  sending the same request again (same ``Idempotency-Key``) can help.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from api.failures import InvalidRequest, TicketNotFound, TooManyRequests, Unavailable
from api.gateway import unavailable_from
from web.pages import PageRateLimited, page_for_failure, rate_limited_page
from workflows.policy import UnknownProfile
from workflows.transaction import CommandRejected

logger = logging.getLogger("tramita.api")

REJECTION_STATUS = {
    "invalid_transition": 409,
    "missing_fields": 422,
    "invalid_command": 422,
    "not_found": 404,
    "forbidden": 403,
    "idempotency_key_reused": 422,
}


class ApiError(Exception):
    """An HTTP-level refusal (authentication, roles, limits) raised by the API's edges."""

    def __init__(
        self,
        status_code: int,
        error: str,
        detail: object,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error}: {detail}")
        self.status_code = status_code
        self.body: dict[str, Any] = {"error": error, "detail": detail}
        self.headers = headers


def rejection_body(rejected: CommandRejected) -> tuple[int, dict[str, Any]]:
    status_code = REJECTION_STATUS[rejected.code]
    if rejected.code == "not_found":
        return status_code, {"error": "not_found", "detail": rejected.reason}
    body: dict[str, Any] = {
        "error": rejected.code,
        "detail": rejected.reason,
        "status": rejected.status.value,
    }
    if rejected.code == "missing_fields":
        body["missing"] = list(rejected.missing)
    return status_code, body


def unavailable_body(error: Unavailable) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers = {"Retry-After": str(error.retry_after)} if error.retryable else {}
    body = {"error": "unavailable", "detail": error.detail, "retryable": error.retryable}
    return 503, body, headers


Answer = tuple[int, dict[str, Any], dict[str, str] | None]


def answer_for(exc: Exception) -> Answer | None:
    """The status, body and headers a domain failure is answered with (JSON here, words
    on the web pages); None for anything else."""
    if isinstance(exc, TicketNotFound):
        return 404, {"error": "not_found", "detail": str(exc)}, None
    if isinstance(exc, CommandRejected):
        return (*rejection_body(exc), None)
    if isinstance(exc, Unavailable):
        return unavailable_body(exc)
    if isinstance(exc, InvalidRequest):
        return 422, {"error": exc.code, "detail": exc.detail}, None
    if isinstance(exc, UnknownProfile):
        return 422, {"error": "unknown_profile", "detail": str(exc)}, None
    if isinstance(exc, TooManyRequests):
        body = {"error": "rate_limited", "detail": exc.detail}
        return 429, body, {"Retry-After": str(exc.retry_after)}
    # Temporal failures that reach a route without passing the gateway (a health probe,
    # a list): the same 503 the gateway gives.
    if isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError):
        return unavailable_body(Unavailable("no worker answered in time; try again"))
    if isinstance(exc, RPCError):
        return unavailable_body(unavailable_from(exc, "Temporal did not do it"))
    return None


def _json(
    status_code: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(status_code=status_code, content=jsonable_encoder(body), headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _json(exc.status_code, exc.body, exc.headers)

    async def domain_failure(request: Request, exc: Exception) -> JSONResponse:
        answer = answer_for(exc)
        assert answer is not None  # registered only for the types answer_for knows
        return _json(*answer)

    for failure in (
        TicketNotFound,
        CommandRejected,
        Unavailable,
        InvalidRequest,
        TooManyRequests,
        UnknownProfile,
    ):
        app.add_exception_handler(failure, domain_failure)

    @app.exception_handler(PageRateLimited)
    async def page_rate_limited(request: Request, exc: PageRateLimited) -> HTMLResponse:
        return rate_limited_page(exc.retry_after)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        page = page_for_failure(request.url.path, 422)
        if page is not None:
            return page
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return _json(422, {"error": "validation_error", "detail": errors})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        page = page_for_failure(request.url.path, exc.status_code)
        if page is not None:
            return page
        if exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode (e.g. invalid UTF-8): bad input.
            detail = f"the request body could not be read: {exc.detail}"
            return _json(422, {"error": "validation_error", "detail": detail})
        names = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
        body = {"error": names.get(exc.status_code, "http_error"), "detail": exc.detail}
        return _json(exc.status_code, body, dict(exc.headers) if exc.headers else None)

    for temporal_failure in (WorkflowUpdateRPCTimeoutOrCancelledError, RPCError):
        app.add_exception_handler(temporal_failure, domain_failure)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", extra={"path": request.url.path})
        return _json(500, {"error": "internal_error", "detail": "unexpected error; it was logged"})
