"""The agent console, ``/console/``: queues, a ticket's page and its commands as forms.

Everything it shows comes from the ticket store and the core: the queues are store
queries, the commands offered are :func:`workflows.lifecycle.offered`, a form is its
command's API body (:mod:`web.forms`), and a command goes through the same
:class:`api.service.TicketService` path as the API's route, so a refusal is the API's
refusal, shown in words (:func:`api.errors.answer_for`).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from activities.store import StoreQuery
from api.errors import answer_for
from api.routes.commands import ROUTES, body_model, command_from
from api.schemas import NoControl
from api.service import TicketService
from config import Settings
from web import forms
from web.limits import limit_console
from web.pages import render
from web.sessions import SESSION_COOKIE, SIGN_IN_COOKIE, Session, Sessions, csrf_ok
from workflows import lifecycle, sla
from workflows.messages import EditCommand
from workflows.models import (
    TICKET_ID_PATTERN,
    Command,
    Priority,
    ProfileName,
    Status,
    TicketView,
    Visibility,
    WaitReason,
)
from workflows.policy import PolicySource

logger = logging.getLogger("tramita.console")

router = APIRouter(
    prefix="/console", include_in_schema=False, dependencies=[Depends(limit_console)]
)

PAGE_SIZE = 25
TicketIdPath = Annotated[str, Path(pattern=TICKET_ID_PATTERN)]
ROUTE_OF = {route.spec.name: route for route in ROUTES}
COMMAND_TITLES = {route.spec.name: route.summary for route in ROUTES} | {"edit": "Edit details"}

Queue = Literal["inbox", "unassigned", "waiting", "all"]
ConsoleSort = Literal["next_deadline", "priority", "-updated_at", "created_at", "-created_at"]
QUEUES: dict[str, str] = {
    "inbox": "My inbox",
    "unassigned": "Unassigned",
    "waiting": "My waiting work",
    "all": "All open tickets",
}
# Each queue's order unless the agent picks another.
QUEUE_SORT = {
    "inbox": "next_deadline",
    "unassigned": "created_at",
    "waiting": "next_deadline",
    "all": "-updated_at",
}
SORTS = {
    "next_deadline": "Next deadline",
    "priority": "Priority",
    "-updated_at": "Last update",
    "created_at": "Age (oldest first)",
    "-created_at": "Newest first",
}


class QueueQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: Queue = "inbox"
    status: Status | None = None
    wait_reason: WaitReason | None = None
    priority: Priority | None = None
    category: str | None = Field(default=None, max_length=200, pattern=NoControl)
    assignee: str | None = Field(default=None, max_length=200, pattern=NoControl)
    profile: ProfileName | None = None
    sort: (
        Literal["next_deadline", "priority", "-updated_at", "created_at", "-created_at"] | None
    ) = None
    q: str | None = Field(default=None, max_length=200, pattern=NoControl)
    page: int = Field(default=1, ge=1, le=10_000)


@dataclass(frozen=True)
class Web:
    """What a console request needs: the settings, the sessions, the tickets."""

    settings: Settings
    sessions: Sessions
    tickets: TicketService | None
    policies: PolicySource


def _web(request: Request) -> Web:
    state = request.app.state
    client = state.temporal_client
    return Web(
        settings=state.settings,
        sessions=state.sessions,
        tickets=state.ticket_service_factory(client) if client is not None else None,
        policies=state.policies,
    )


def _session(request: Request, web: Web) -> Session | None:
    return web.sessions.read(request.cookies.get(SESSION_COOKIE))


def _signed_in(
    request: Request, *, after: str | None = None
) -> tuple[Web, Session, TicketService] | Response:
    """What a console page needs, or where to go instead: sign-in (then back to the page,
    or to ``after``), or a page saying Temporal is not reachable yet."""
    web = _web(request)
    session = _session(request, web)
    if session is None:
        return _to_sign_in(request, after=after)
    if web.tickets is None:
        return _unavailable()
    return web, session, web.tickets


def _to_sign_in(request: Request, *, after: str | None = None) -> RedirectResponse:
    """To the sign-in form, then back: to ``after`` (a form's page: a form's own address
    takes only POST) or to the page asked for."""
    target = after or request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/console/sign-in?next={quote(target, safe='')}", status_code=303)


def _unavailable() -> Response:
    return render(
        "console/problem.html.j2",
        503,
        title="Not connected",
        message="Tramita is not connected to Temporal yet; try again in a moment.",
        session=None,
    )


# ------------------------------------------------------------------ signing in


@router.get("", include_in_schema=False)
async def console_root() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=308)


@router.get("/sign-in")
async def sign_in_page(request: Request, next: str = "/console/") -> Response:
    web = _web(request)
    token, cookie = web.sessions.sign_in_token()
    page = render(
        "console/sign_in.html.j2", token=token, next=_safe_next(next), error=None, session=None
    )
    _set_cookie(page, SIGN_IN_COOKIE, cookie, web, max_age=30 * 60, path="/console/sign-in")
    return page


@router.post("/sign-in")
async def sign_in(
    request: Request,
    key: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/console/",
) -> Response:
    web = _web(request)
    if not web.sessions.sign_in_ok(request.cookies.get(SIGN_IN_COOKIE), csrf):
        return _sign_in_again(web, next, "The sign-in form expired; please try again.", 403)
    opened = web.sessions.open(key.strip())
    if opened is None:
        return _sign_in_again(web, next, "That key is not an agent's or a supervisor's key.", 401)
    cookie, session = opened
    logger.info("console sign-in", extra={"subject": session.principal.subject})
    page = RedirectResponse(_safe_next(next), status_code=303)
    _set_cookie(page, SESSION_COOKIE, cookie, web, max_age=web.sessions.max_age, path="/")
    page.delete_cookie(SIGN_IN_COOKIE, path="/console/sign-in")
    return page


def _sign_in_again(web: Web, next: str, error: str, status_code: int) -> Response:
    token, cookie = web.sessions.sign_in_token()
    page = render(
        "console/sign_in.html.j2",
        status_code,
        token=token,
        next=_safe_next(next),
        error=error,
        session=None,
    )
    _set_cookie(page, SIGN_IN_COOKIE, cookie, web, max_age=30 * 60, path="/console/sign-in")
    return page


@router.post("/sign-out")
async def sign_out(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    web = _web(request)
    session = _session(request, web)
    if session is not None and not csrf_ok(session, csrf):
        return render(
            "console/problem.html.j2",
            403,
            title="Not signed out",
            message="The form was not this session's; sign out from the console's own page.",
            session=session,
        )
    page = RedirectResponse("/console/sign-in", status_code=303)
    page.delete_cookie(SESSION_COOKIE, path="/")
    return page


def _safe_next(target: str) -> str:
    """Only a console address: never another site (an open redirect)."""
    path = target.split("?", 1)[0]
    return (
        target
        if path.startswith("/console/") and "//" not in path and "\\" not in path
        else "/console/"
    )


def _set_cookie(
    response: Response, name: str, value: str, web: Web, *, max_age: int, path: str
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=web.sessions.secure,
    )


# ------------------------------------------------------------------ queues


@router.get("/")
async def queue_page(request: Request) -> Response:
    found = _signed_in(request)
    if isinstance(found, Response):
        return found
    web, session, tickets = found
    try:
        # An empty field of the filter form ("Any") is no filter at all.
        query = QueueQuery.model_validate({k: v for k, v in request.query_params.items() if v})
    except ValidationError as invalid:
        return render(
            "console/problem.html.j2",
            422,
            title="This list cannot be shown",
            message="; ".join(forms.words(error) for error in invalid.errors()),
            session=session,
        )
    me = session.principal.subject
    sort = query.sort or QUEUE_SORT[query.queue]
    store_query = StoreQuery(
        status=query.status,
        assignee=query.assignee if query.queue == "all" and query.assignee != "none" else None,
        unassigned=query.queue == "unassigned" or query.assignee == "none",
        category=query.category or None,
        wait_reason=query.wait_reason.value if query.wait_reason else None,
        priority=query.priority,
        profile=query.profile if query.profile else None,
        inbox_of=me if query.queue == "inbox" else None,
        waiting_for=me if query.queue == "waiting" else None,
        text=query.q or None,
        sort=sort.lstrip("-"),  # type: ignore[arg-type]
        descending=sort.startswith("-"),
    )
    offset = (query.page - 1) * PAGE_SIZE
    rows = await tickets.store_rows(store_query, offset=offset, limit=PAGE_SIZE + 1)
    chosen = {k: v for k, v in request.query_params.items() if k != "page" and v}
    return render(
        "console/queue.html.j2",
        session=session,
        queues=QUEUES,
        query=query,
        sort=sort,
        sorts=SORTS,
        rows=rows[:PAGE_SIZE],
        previous_page=_page_link(chosen, query.page - 1) if query.page > 1 else None,
        next_page=_page_link(chosen, query.page + 1) if len(rows) > PAGE_SIZE else None,
        statuses=[s for s in Status if s is not Status.CLOSED] + [Status.CLOSED],
        wait_reasons=list(WaitReason),
        priorities=list(Priority),
        profiles=list(web.settings.profiles),
        timezone=web.settings.calendar_timezone,
    )


def _page_link(chosen: dict[str, str], page: int) -> str:
    return "/console/?" + urlencode({**chosen, "page": page})


# ------------------------------------------------------------------ a ticket


@router.get("/tickets/{ticket_id}")
async def ticket_page(request: Request, ticket_id: TicketIdPath) -> Response:
    found = _signed_in(request)
    if isinstance(found, Response):
        return found
    web, session, tickets = found
    try:
        view = await tickets.current_view(ticket_id)
    except Exception as error:
        return _problem(error, session)
    done = request.query_params.get("done")
    return _ticket(web, session, view, done=COMMAND_TITLES.get(done or ""))


@router.get("/tickets/{ticket_id}/revision")
async def ticket_revision(request: Request, ticket_id: TicketIdPath) -> Response:
    """What the page polls to know the ticket changed (the seq of its last event)."""
    web = _web(request)
    if _session(request, web) is None or web.tickets is None:
        return JSONResponse({"revision": None}, status_code=401)
    revision = await web.tickets.store_revision(ticket_id)
    return JSONResponse({"revision": revision}, headers={"Cache-Control": "no-store"})


@router.get("/tickets/{ticket_id}/contents/{sha256}")
async def ticket_content(
    request: Request,
    ticket_id: TicketIdPath,
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
) -> Response:
    found = _signed_in(request)
    if isinstance(found, Response):
        return found
    _, session, tickets = found
    try:
        data, readable = await tickets.content(ticket_id, sha256, session.principal)
    except Exception as error:
        return _problem(error, session)
    return download(data, readable.content_type, readable.filename, sha256)


def download(data: bytes, content_type: str, filename: str | None, sha256: str) -> Response:
    """Always a download, never shown inline: an attachment may be HTML or a script, and
    a stored email may hold either."""
    if not filename:
        extension = ".eml" if content_type.startswith("message/rfc822") else ".txt"
        filename = f"{sha256[:12]}{extension}"
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Content-Disposition": "attachment; filename*=UTF-8''" + quote(filename, safe=""),
    }
    return Response(content=data, media_type=content_type, headers=headers)


@router.post("/tickets/{ticket_id}/commands/{command}")
async def run_command(
    request: Request,
    ticket_id: TicketIdPath,
    command: Annotated[str, Path(pattern=r"^[a-z_]{1,40}$")],
) -> Response:
    found = _signed_in(request, after=f"/console/tickets/{ticket_id}")
    if isinstance(found, Response):
        return found
    web, session, tickets = found
    submitted = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if not csrf_ok(session, submitted.get("csrf")):
        return render(
            "console/problem.html.j2",
            403,
            title="Not done",
            message="The form was not this session's; reload the ticket and try again.",
            session=session,
        )
    try:
        view = await tickets.current_view(ticket_id)
    except Exception as error:
        return _problem(error, session)
    policy = web.policies(view.profile)
    if command not in lifecycle.offered(view, policy):
        return _ticket(
            web,
            session,
            view,
            status_code=409,
            failed=command,
            errors=(f"{COMMAND_TITLES.get(command, command)} is not possible now.",),
            values=submitted,
        )
    body_type = _body_of(command)
    controls = forms.controls_for(body_type, policy)
    body, problems = forms.read_form(body_type, controls, submitted, web.settings.calendar_timezone)
    if body is None:
        return _ticket(
            web, session, view, status_code=422, failed=command, errors=problems, values=submitted
        )
    message: Command = (
        EditCommand(actor=session.principal.subject, **body.model_dump(exclude_unset=True))
        if command == "edit"
        else command_from(ROUTE_OF[command], body, session.principal)
    )
    try:
        await tickets.command(
            ticket_id,
            message,
            principal=session.principal,
            idempotency_key=submitted.get("idempotency") or None,
        )
    except Exception as error:
        answer = answer_for(error)
        if answer is None:
            raise
        status_code, content, _ = answer
        return _ticket(
            web,
            session,
            await tickets.current_view(ticket_id),
            status_code=status_code,
            failed=command,
            errors=(_detail(content),),
            values=submitted,
        )
    return RedirectResponse(
        f"/console/tickets/{ticket_id}?done={command}#timeline", status_code=303
    )


def _detail(content: dict[str, Any]) -> str:
    detail = content.get("detail")
    if isinstance(detail, list):
        return "; ".join(str(item.get("msg", item)) for item in detail)
    return str(detail)


def _problem(error: Exception, session: Session) -> Response:
    answer = answer_for(error)
    if answer is None:
        raise error
    status_code, content, _ = answer
    title = "Ticket not found" if status_code == 404 else "Not possible right now"
    return render(
        "console/problem.html.j2",
        status_code,
        title=title,
        message=_detail(content),
        session=session,
    )


def _body_of(command: str) -> type[BaseModel]:
    """A command's form is its API body (edit's is PATCH /tickets/{id}'s)."""
    return body_model(EditCommand if command == "edit" else ROUTE_OF[command].spec.model)


def _ticket(
    web: Web,
    session: Session,
    view: TicketView,
    *,
    status_code: int = 200,
    done: str | None = None,
    failed: str | None = None,
    errors: tuple[str, ...] = (),
    values: dict[str, str] | None = None,
) -> Response:
    policy = web.policies(view.profile)
    offered = lifecycle.offered(view, policy)
    calendar = web.tickets.calendar(view.profile) if web.tickets and view.sla else None
    now = datetime.now(UTC)
    clocks = [
        (clock, sla.remaining_at(clock, now, calendar) if calendar else clock.remaining_seconds)
        for clock in view.sla
    ]
    command_forms = []
    for name in offered:
        body_type = _body_of(name)
        command_forms.append(
            forms.Form(
                command=name,
                controls=forms.controls_for(body_type, policy),
                values=(values or {}) if name == failed else {},
                errors=errors if name == failed else (),
            )
        )
    return render(
        "console/ticket.html.j2",
        status_code,
        session=session,
        view=view,
        offered=command_forms,
        titles=COMMAND_TITLES,
        done=done,
        failed=failed,
        errors=errors if failed not in offered else (),
        # A form the ticket no longer offers: what was typed stays on the page, not lost.
        unsent=[
            (name.replace("_", " ").capitalize(), value)
            for name, value in (values or {}).items()
            if failed not in offered and name not in ("csrf", "idempotency") and value.strip()
        ],
        timezone=web.settings.calendar_for(view.profile).timezone,
        clocks=clocks,
        public=Visibility.PUBLIC,
        idempotency=secrets.token_urlsafe(12),
    )
