"""The command routes, ``POST /tickets/{id}/<path>``: one line each, in :data:`ROUTES`.

A route's body is its command's argument model (``workflows.commands``) less the
envelope and the fields Tramita fills itself; who may call it is staff, plus the
requester where the core lets a requester send the command, plus any role the line adds.
Everything else (rules, statuses, what the caller reads back) comes from the core.

This module does not use postponed annotations: each endpoint is built at import with
its body model as a real type, which FastAPI reads from the signature.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path
from pydantic import BaseModel, ConfigDict, create_model

from api.deps import IdempotencyKeyDep, TicketsDep, require
from api.principal import STAFF, Principal
from api.schemas import ErrorBody, Reading
from config import Role
from workflows import commands
from workflows.models import TICKET_ID_PATTERN, Command
from workflows.records import CommandSpec

router = APIRouter(prefix="/tickets", tags=["commands"])

TicketIdPath = Annotated[str, Path(pattern=TICKET_ID_PATTERN, examples=["8f3a2c1d9e0b"])]

READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No or unknown API key"},
    403: {"model": ErrorBody, "description": "The role may not do this"},
    404: {"model": ErrorBody, "description": "Unknown ticket"},
    429: {"model": ErrorBody, "description": "Too many requests for this key"},
    503: {"model": ErrorBody, "description": "Temporal or the worker did not answer in time"},
}
COMMAND_ERRORS: dict[int | str, dict[str, Any]] = {
    **READ_ERRORS,
    409: {
        "model": ErrorBody,
        "description": "Not allowed in the ticket's current status (invalid_transition)",
    },
    413: {"model": ErrorBody, "description": "Body too large"},
    422: {"model": ErrorBody, "description": "Invalid body, missing fields or invalid command"},
}


@dataclass(frozen=True)
class CommandRoute:
    path: str
    spec: CommandSpec
    summary: str
    also: tuple[Role, ...] = ()
    """Roles beyond staff (and the requester, where the command allows one)."""
    fixed: Mapping[str, Any] = field(default_factory=dict)
    """Arguments the route sets itself, whatever the body says."""

    @property
    def roles(self) -> tuple[Role, ...]:
        requester: tuple[Role, ...] = ("requester",) if self.spec.requester_may else ()
        return (*STAFF, *requester, *self.also)


ROUTES: tuple[CommandRoute, ...] = (
    CommandRoute("submit", commands.SUBMIT, "Submit a draft"),
    CommandRoute("assign", commands.ASSIGN, "Assign to a resource"),
    CommandRoute("start", commands.START, "Start work"),
    CommandRoute("unassign", commands.UNASSIGN, "Hand over or back to the queue"),
    CommandRoute("requeue", commands.REQUEUE, "Undo a mistaken start"),
    CommandRoute("robot-reject", commands.ROBOT_REJECT, "A robot hands the ticket to a human"),
    CommandRoute("wait", commands.WAIT, "Wait (customer, follow-up, release, ...)"),
    CommandRoute("resume", commands.RESUME, "End a wait by hand"),
    CommandRoute("notes", commands.NOTE, "Add an internal note"),
    CommandRoute("emails", commands.SEND_EMAIL, "Send an email (optionally and resolve)"),
    CommandRoute(
        "replies",
        commands.CUSTOMER_REPLY,
        "A reply from the requester (recorded as theirs, whoever relays it)",
        also=("system",),
        fixed={"as_requester": True},
    ),
    CommandRoute("resolve", commands.RESOLVE, "Resolve with a method"),
    CommandRoute("reopen", commands.REOPEN, "Reopen a resolved ticket"),
    CommandRoute("qualification", commands.QUALIFY, "Set the qualification (support)"),
    CommandRoute("survey", commands.RATE, "Answer the satisfaction survey"),
    CommandRoute("merge", commands.MERGE, "Merge into another ticket"),
    CommandRoute("split", commands.SPLIT, "Split into child tickets"),
    CommandRoute("case/complete", commands.CASE_COMPLETED, "The launched case is complete"),
)
# Commands with no route of their own: edit is PATCH /tickets/{id}; a release reaches its
# tickets through POST /releases/{version}/publish; inbound mail through /inbound/*; the
# others are messages between tickets.
ROUTED_ELSEWHERE = frozenset(
    {
        "edit",
        "release_published",
        # Mail that is not the customer's reaches a ticket through inbound mail only.
        "third_party_message",
        "auto_reply_received",
        "bounce_received",
    }
)


class Empty(BaseModel):
    model_config = ConfigDict(extra="forbid")


@cache
def body_model(model: type[Command]) -> type[BaseModel]:
    """A command's API body: its arguments, less the envelope and internal fields."""
    hidden = model.ENVELOPE | model.INTERNAL_FIELDS
    fields: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in model.model_fields.items()
        if name not in hidden
    }
    if not fields:
        return Empty
    name = model.__name__.removesuffix("Command") + "Body"
    config = ConfigDict(
        extra="forbid", json_schema_extra=model.model_config.get("json_schema_extra")
    )
    built: type[BaseModel] = create_model(name, __config__=config, __doc__=model.__doc__, **fields)
    return built


def command_from(route: CommandRoute, body: BaseModel | None, principal: Principal) -> Command:
    arguments = body.model_dump(exclude_unset=True) if body is not None else {}
    return route.spec.model(
        actor=principal.subject,
        requester_only=principal.is_requester,
        **{**arguments, **route.fixed},
    )


def _endpoint(route: CommandRoute) -> Any:
    body_type = body_model(route.spec.model)
    caller = Annotated[Principal, Depends(require(*route.roles))]
    needs_body = any(info.is_required() for info in body_type.model_fields.values())

    if needs_body:

        async def with_body(
            ticket_id: TicketIdPath,
            body: body_type,  # type: ignore[valid-type]
            principal: caller,
            tickets: TicketsDep,
            key: IdempotencyKeyDep,
        ) -> Reading:
            return await tickets.command(
                ticket_id,
                command_from(route, body, principal),
                principal=principal,
                idempotency_key=key,
            )

        return with_body

    async def optional_body(
        ticket_id: TicketIdPath,
        principal: caller,
        tickets: TicketsDep,
        key: IdempotencyKeyDep,
        body: Annotated[body_type | None, Body()] = None,  # type: ignore[valid-type]
    ) -> Reading:
        return await tickets.command(
            ticket_id,
            command_from(route, body, principal),
            principal=principal,
            idempotency_key=key,
        )

    return optional_body


for _route in ROUTES:
    _handler = _endpoint(_route)
    _handler.__name__ = _route.spec.name
    router.add_api_route(
        f"/{{ticket_id}}/{_route.path}",
        _handler,
        methods=["POST"],
        responses=COMMAND_ERRORS,
        summary=_route.summary,
        description=_route.spec.model.__doc__,
        response_model=Reading,
    )
