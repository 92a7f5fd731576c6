"""Ticket routes: create, read, list, edit and follow-ups. The commands are in
``api.routes.commands``.

This module does not use postponed annotations: the edit body is built at import from
the edit command's model, and FastAPI reads it from the signature.
"""

from typing import TYPE_CHECKING, Annotated, Literal, cast
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from activities.store import SortKey
from api.deps import IdempotencyKeyDep, PrincipalDep, StaffDep, TicketsDep
from api.listing import TicketFilters
from api.routes.commands import COMMAND_ERRORS, READ_ERRORS, TicketIdPath, body_model
from api.schemas import CustomerSummary, FollowUpBody, NoControl, Reading, TicketList
from workflows.messages import EditCommand
from workflows.models import NewTicket, Priority, ProfileName, Status, TicketView, WaitReason

router = APIRouter(prefix="/tickets", tags=["tickets"])

FilterText = Annotated[
    str | None,
    Field(default=None, max_length=200, pattern=r"^[^'\"\\\x00-\x1f\x7f]+$"),
]
if TYPE_CHECKING:
    EditBody = BaseModel
else:
    EditBody = body_model(EditCommand)


class ListQuery(BaseModel):
    """The filters of ``GET /tickets``; an unknown parameter is a 422, never ignored."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = Field(
        default=None, description="One status; without it, every ticket not closed."
    )
    assignee: FilterText = Field(
        default=None, description="An agent's id, or `none` for tickets assigned to no one."
    )
    requester: FilterText = None
    category: FilterText = None
    wait_reason: WaitReason | None = None
    release: FilterText = None
    priority: Priority | None = None
    profile: ProfileName | None = None
    view: Literal["inbox", "own_work"] | None = Field(
        default=None,
        description="inbox: my new or in-progress or highlighted tickets; own_work: my waits",
    )
    q: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=NoControl,
        description="Text searched in the id, title and requester (any case).",
    )
    sort: str = Field(
        default="-created_at",
        pattern=r"^-?(next_deadline|priority|updated_at|created_at)$",
        description=(
            "`next_deadline` (soonest first), `priority` (most urgent first), `updated_at` "
            "or `created_at` (oldest first); a leading `-` turns it around. Tickets "
            "without a deadline come last either way."
        ),
    )
    page_size: int = Field(default=20, ge=1, le=100)
    page_token: str | None = Field(default=None, max_length=4096, pattern=NoControl)


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=COMMAND_ERRORS, summary="Create a ticket"
)
async def create_ticket(
    body: NewTicket, principal: StaffDep, tickets: TicketsDep, key: IdempotencyKeyDep
) -> TicketView:
    """Creates (and by default submits) a ticket. Creating the same ``id`` again returns it."""
    return await tickets.create(body, actor=principal.subject, idempotency_key=key)


@router.get("", responses=READ_ERRORS, summary="List tickets")
async def list_tickets(
    principal: PrincipalDep,
    tickets: TicketsDep,
    query: Annotated[ListQuery, Query()],
) -> TicketList:
    """Lists tickets from the ticket store, newest first unless ``sort`` says otherwise.
    Requesters see only theirs, as customer rows."""
    filters = TicketFilters(
        status=query.status,
        assignee=query.assignee,
        requester=principal.subject if principal.is_requester else query.requester,
        category=query.category,
        wait_reason=query.wait_reason,
        release=query.release,
        priority=query.priority,
        profile=query.profile,
        view=query.view,
        viewer=principal.subject,
        text=query.q,
        sort=cast(SortKey, query.sort.lstrip("-")),
        descending=query.sort.startswith("-"),
    )
    found = await tickets.list_tickets(
        filters, page_size=query.page_size, page_token=query.page_token
    )
    if principal.is_requester:
        rows = [CustomerSummary.of(row) for row in found.items if row.audience == "staff"]
        return TicketList(items=list(rows), next_page_token=found.next_page_token)
    return found


@router.get("/{ticket_id}", responses=READ_ERRORS, summary="Read a ticket")
async def read_ticket(
    ticket_id: TicketIdPath, principal: PrincipalDep, tickets: TicketsDep
) -> Reading:
    """The whole view for staff; the customer view (public events only) for a requester."""
    return await tickets.read_for(ticket_id, principal)


@router.get(
    "/{ticket_id}/contents/{sha256}",
    responses={**READ_ERRORS, 200: {"content": {"text/plain": {}}}},
    summary="A whole text, a raw email or an attachment",
    response_class=Response,
)
async def read_content(
    ticket_id: TicketIdPath,
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    principal: PrincipalDep,
    tickets: TicketsDep,
) -> Response:
    """A whole text the ticket keeps an excerpt of (``body_ref``, ``description_ref``), an
    email as it arrived (``raw_ref``) or an attachment: staff may fetch any of the
    ticket's, a requester those of its public events."""
    data, readable = await tickets.content(ticket_id, sha256, principal)
    headers = {"X-Content-Type-Options": "nosniff"}
    if readable.filename:
        # Always a download, never shown inline: an attachment may be HTML or a script.
        headers["Content-Disposition"] = "attachment; filename*=UTF-8''" + quote(
            readable.filename, safe=""
        )
    return Response(content=data, media_type=readable.content_type, headers=headers)


@router.patch("/{ticket_id}", responses=COMMAND_ERRORS, summary="Edit a ticket")
async def edit_ticket(
    ticket_id: TicketIdPath,
    body: EditBody,
    principal: StaffDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
) -> Reading:
    command = EditCommand(actor=principal.subject, **body.model_dump(exclude_unset=True))
    return await tickets.command(ticket_id, command, principal=principal, idempotency_key=key)


@router.post(
    "/{ticket_id}/follow-ups",
    status_code=status.HTTP_201_CREATED,
    responses=COMMAND_ERRORS,
    summary="Open a follow-up of a closed ticket",
)
async def follow_up(
    ticket_id: TicketIdPath,
    principal: StaffDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
    body: FollowUpBody | None = None,
) -> TicketView:
    return await tickets.follow_up(
        ticket_id, body or FollowUpBody(), actor=principal.subject, idempotency_key=key
    )
