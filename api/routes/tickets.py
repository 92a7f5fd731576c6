"""Ticket routes: create, read, list, edit and every command of DESIGN section 3."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, status

from api.deps import (
    STAFF,
    IdempotencyKeyDep,
    Principal,
    PrincipalDep,
    StaffDep,
    TicketsDep,
    require,
)
from api.errors import ApiError
from api.schemas import (
    AssignBody,
    CaseCompleteBody,
    CreateTicketBody,
    EditBody,
    EmailBody,
    EmptyBody,
    ErrorBody,
    FollowUpBody,
    MergeBody,
    NoteBody,
    QualificationBody,
    ReplyBody,
    ResolveBody,
    RobotRejectBody,
    SplitBody,
    SurveyBody,
    TicketList,
    UnassignBody,
    WaitBody,
)
from api.tickets import TicketFilters
from workflows.models import (
    AssignCommand,
    CaseCompletedCommand,
    ChildTicketSpec,
    CustomerReplyCommand,
    EditCommand,
    MergeCommand,
    NoteCommand,
    QualifyCommand,
    RateCommand,
    ReopenCommand,
    RequeueCommand,
    ResolveCommand,
    ResumeCommand,
    RobotRejectCommand,
    SendEmailCommand,
    SplitCommand,
    StartCommand,
    Status,
    SubmitCommand,
    TicketView,
    UnassignCommand,
    WaitCommand,
    WaitReason,
)
from workflows.ticket import TicketWorkflow

router = APIRouter(prefix="/tickets", tags=["tickets"])

TicketIdPath = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", examples=["8f3a2c1d9e0b"])
]
FilterText = Annotated[str | None, Query(max_length=200, pattern=r"^[^'\"\\]+$")]
NoBody = Annotated[EmptyBody | None, Body()]

READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No or unknown API key"},
    403: {"model": ErrorBody, "description": "The role may not do this"},
    404: {"model": ErrorBody, "description": "Unknown ticket"},
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

RequesterOrStaffDep = Annotated[Principal, Depends(require(*STAFF, "requester"))]
ReplierDep = Annotated[Principal, Depends(require(*STAFF, "requester", "system"))]


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=COMMAND_ERRORS, summary="Create a ticket"
)
async def create_ticket(
    body: CreateTicketBody, principal: StaffDep, tickets: TicketsDep, key: IdempotencyKeyDep
) -> TicketView:
    """Creates (and by default submits) a ticket. Creating the same ``id`` again returns it."""
    return await tickets.create(body, actor=principal.subject, idempotency_key=key)


@router.get("", responses=READ_ERRORS, summary="List tickets")
async def list_tickets(
    principal: PrincipalDep,
    tickets: TicketsDep,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    assignee: FilterText = None,
    requester: FilterText = None,
    category: FilterText = None,
    wait_reason: WaitReason | None = None,
    release: FilterText = None,
    view: Literal["inbox", "own_work"] | None = Query(
        default=None,
        description="inbox: my new or in-progress or highlighted tickets; own_work: my waits",
    ),
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    page_token: Annotated[str | None, Query(max_length=4096)] = None,
) -> TicketList:
    """Lists tickets from Temporal visibility, newest first. Requesters see only theirs."""
    filters = TicketFilters(
        status=status_,
        assignee=assignee,
        requester=principal.subject if principal.is_requester else requester,
        category=category,
        wait_reason=wait_reason,
        release=release,
        view=view,
        viewer=principal.subject,
    )
    return await tickets.list_tickets(filters, page_size=page_size, page_token=page_token)


@router.get("/{ticket_id}", responses=READ_ERRORS, summary="Read a ticket")
async def read_ticket(
    ticket_id: TicketIdPath, principal: PrincipalDep, tickets: TicketsDep
) -> TicketView:
    return await tickets.read_as(ticket_id, principal.subject, principal.is_requester)


@router.patch("/{ticket_id}", responses=COMMAND_ERRORS, summary="Edit a ticket")
async def edit_ticket(
    ticket_id: TicketIdPath,
    body: EditBody,
    principal: StaffDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
) -> TicketView:
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise ApiError(422, "invalid_command", "nothing to edit: give at least one field")
    if changes.get("contacts") is not None:
        changes["contacts"] = tuple(changes["contacts"])
    return await tickets.command(
        ticket_id, TicketWorkflow.edit, EditCommand(actor=principal.subject, **changes), key
    )


@router.post("/{ticket_id}/submit", responses=COMMAND_ERRORS, summary="Submit a draft")
async def submit(
    ticket_id: TicketIdPath,
    principal: StaffDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
    body: NoBody = None,
) -> TicketView:
    return await tickets.command(
        ticket_id, TicketWorkflow.submit, SubmitCommand(actor=principal.subject), key
    )


@router.post("/{ticket_id}/assign", responses=COMMAND_ERRORS, summary="Assign to a resource")
async def assign(
    ticket_id: TicketIdPath,
    body: AssignBody,
    principal: StaffDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
) -> TicketView:
    command = AssignCommand(actor=principal.subject, assignee=body.assignee, kind=body.kind)
    return await tickets.command(ticket_id, TicketWorkflow.assign, command, key)


@router.post("/{ticket_id}/start", responses=COMMAND_ERRORS, summary="Start work")
async def start(
    ticket_id: TicketIdPath,
    principal: StaffDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
    body: NoBody = None,
) -> TicketView:
    return await tickets.command(
        ticket_id, TicketWorkflow.start, StartCommand(actor=principal.subject), key
    )


@router.post(
    "/{ticket_id}/unassign", responses=COMMAND_ERRORS, summary="Hand over or back to the queue"
)
async def unassign(
    ticket_id: TicketIdPath,
    principal: StaffDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
    body: UnassignBody | None = None,
) -> TicketView:
    command = UnassignCommand(actor=principal.subject, to=body.to if body else None)
    return await tickets.command(ticket_id, TicketWorkflow.unassign, command, key)


@router.post("/{ticket_id}/requeue", responses=COMMAND_ERRORS, summary="Undo a mistaken start")
async def requeue(
    ticket_id: TicketIdPath,
    principal: StaffDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
    body: NoBody = None,
) -> TicketView:
    return await tickets.command(
        ticket_id, TicketWorkflow.requeue, RequeueCommand(actor=principal.subject), key
    )


@router.post(
    "/{ticket_id}/robot-reject",
    responses=COMMAND_ERRORS,
    summary="A robot hands the ticket to a human",
)
async def robot_reject(
    ticket_id: TicketIdPath,
    body: RobotRejectBody,
    principal: StaffDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
) -> TicketView:
    command = RobotRejectCommand(actor=principal.subject, reason=body.reason)
    return await tickets.command(ticket_id, TicketWorkflow.robot_reject, command, key)


@router.post(
    "/{ticket_id}/wait",
    responses=COMMAND_ERRORS,
    summary="Wait (customer, follow-up, release, ...)",
)
async def wait(
    ticket_id: TicketIdPath,
    body: WaitBody,
    principal: StaffDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
) -> TicketView:
    command = WaitCommand(actor=principal.subject, **body.model_dump(exclude_unset=True))
    return await tickets.command(ticket_id, TicketWorkflow.wait, command, key)


@router.post("/{ticket_id}/resume", responses=COMMAND_ERRORS, summary="End a wait by hand")
async def resume(
    ticket_id: TicketIdPath,
    principal: StaffDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
    body: NoBody = None,
) -> TicketView:
    return await tickets.command(
        ticket_id, TicketWorkflow.resume, ResumeCommand(actor=principal.subject), key
    )


@router.post("/{ticket_id}/notes", responses=COMMAND_ERRORS, summary="Add an internal note")
async def add_note(
    ticket_id: TicketIdPath,
    body: NoteBody,
    principal: StaffDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
) -> TicketView:
    command = NoteCommand(actor=principal.subject, body=body.body, resolution=body.resolution)
    return await tickets.command(ticket_id, TicketWorkflow.note, command, key)


@router.post(
    "/{ticket_id}/emails",
    responses=COMMAND_ERRORS,
    summary="Send an email (optionally and resolve)",
)
async def send_email(
    ticket_id: TicketIdPath,
    body: EmailBody,
    principal: StaffDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
) -> TicketView:
    command = SendEmailCommand(
        actor=principal.subject,
        body=body.body,
        subject=body.subject,
        to=tuple(body.to) if body.to else None,
        resolve=body.resolve,
        method=body.method,
    )
    return await tickets.command(ticket_id, TicketWorkflow.send_email, command, key)


@router.post("/{ticket_id}/replies", responses=COMMAND_ERRORS, summary="A reply from the requester")
async def reply(
    ticket_id: TicketIdPath,
    body: ReplyBody,
    principal: ReplierDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
) -> TicketView:
    """Recorded as the requester's reply (author and sender), whoever relays it."""
    command = CustomerReplyCommand(
        actor=principal.subject,
        body=body.body,
        as_requester=True,
        requester_only=principal.is_requester,
    )
    return await tickets.command(ticket_id, TicketWorkflow.customer_reply, command, key)


@router.post("/{ticket_id}/resolve", responses=COMMAND_ERRORS, summary="Resolve with a method")
async def resolve(
    ticket_id: TicketIdPath,
    body: ResolveBody,
    principal: StaffDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
) -> TicketView:
    command = ResolveCommand(actor=principal.subject, method=body.method, note=body.note)
    return await tickets.command(ticket_id, TicketWorkflow.resolve, command, key)


@router.post("/{ticket_id}/reopen", responses=COMMAND_ERRORS, summary="Reopen a resolved ticket")
async def reopen(
    ticket_id: TicketIdPath,
    principal: StaffDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
    body: NoBody = None,
) -> TicketView:
    return await tickets.command(
        ticket_id, TicketWorkflow.reopen, ReopenCommand(actor=principal.subject), key
    )


@router.post(
    "/{ticket_id}/qualification",
    responses=COMMAND_ERRORS,
    summary="Set the qualification (support)",
)
async def qualify(
    ticket_id: TicketIdPath,
    body: QualificationBody,
    principal: StaffDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
) -> TicketView:
    command = QualifyCommand(actor=principal.subject, qualification=body.qualification)
    return await tickets.command(ticket_id, TicketWorkflow.qualify, command, key)


@router.post("/{ticket_id}/survey", responses=COMMAND_ERRORS, summary="Rate the service")
async def rate(
    ticket_id: TicketIdPath,
    body: SurveyBody,
    principal: RequesterOrStaffDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
) -> TicketView:
    command = RateCommand(
        actor=principal.subject,
        score=body.score,
        comment=body.comment,
        requester_only=principal.is_requester,
    )
    return await tickets.command(ticket_id, TicketWorkflow.rate, command, key)


@router.post("/{ticket_id}/merge", responses=COMMAND_ERRORS, summary="Merge into another ticket")
async def merge(
    ticket_id: TicketIdPath,
    body: MergeBody,
    principal: StaffDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
) -> TicketView:
    if body.into != ticket_id:
        target = await tickets.read(body.into)
        if target.status is Status.CLOSED:
            raise ApiError(
                409,
                "invalid_transition",
                f"cannot merge into {body.into}: it is closed",
                status=Status.CLOSED,
            )
    command = MergeCommand(actor=principal.subject, into=body.into)
    return await tickets.command(ticket_id, TicketWorkflow.merge, command, key)


@router.post("/{ticket_id}/split", responses=COMMAND_ERRORS, summary="Split into child tickets")
async def split(
    ticket_id: TicketIdPath,
    body: SplitBody,
    principal: StaffDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
) -> TicketView:
    children = []
    for index, child in enumerate(body.children):
        if child.id is not None or child.profile is not None:
            raise ApiError(
                422,
                "invalid_command",
                f"children[{index}]: a child's id and profile come from its parent; leave them out",
            )
        if not child.title:
            raise ApiError(
                422, "invalid_command", f"children[{index}]: a child ticket needs a title"
            )
        children.append(
            ChildTicketSpec(
                title=child.title,
                description=child.description,
                category=child.category,
                priority=child.priority or ChildTicketSpec.model_fields["priority"].default,
                nature=child.nature,
                requester=child.requester,
                primary_contact=child.primary_contact,
            )
        )
    command = SplitCommand(actor=principal.subject, children=tuple(children))
    return await tickets.command(ticket_id, TicketWorkflow.split, command, key)


@router.post(
    "/{ticket_id}/case/complete", responses=COMMAND_ERRORS, summary="The launched case is complete"
)
async def complete_case(
    ticket_id: TicketIdPath,
    principal: StaffDep,
    tickets: TicketsDep,
    key: IdempotencyKeyDep,
    body: CaseCompleteBody | None = None,
) -> TicketView:
    command = CaseCompletedCommand(actor=principal.subject, note=body.note if body else None)
    return await tickets.command(ticket_id, TicketWorkflow.case_completed, command, key)


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
