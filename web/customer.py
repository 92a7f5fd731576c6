"""The customer page, ``/c/{token}``: a requester follows, answers and rates their
ticket with the link from any email Tramita sent them, and no key of their own.

The token (:mod:`web.links`) names the ticket and its requester; the page reads the
customer view only (:func:`workflows.lifecycle.customer_view`), in the profile's
language, and offers what the core offers a requester now
(:func:`workflows.lifecycle.offered`). A command goes through the API's own path as that
requester, so every rule (and every refusal) is the API's. Opening the page records
nothing: mail scanners that follow links cannot reply or vote. Any token that does not
read (forged, altered, expired, or naming someone who is no longer the requester) gets
the same plain 404 page.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api.errors import answer_for
from api.principal import Principal
from api.routes.commands import ROUTES, body_model, command_from
from api.schemas import FollowUpBody
from api.service import TicketService
from config import Settings
from web import forms, links
from web.console import download
from web.i18n import WORDS, words
from web.limits import limit_customer_page
from web.pages import customer_not_found_page, render
from workflows import lifecycle
from workflows.models import Status, TicketView
from workflows.policy import PolicySource

logger = logging.getLogger("tramita.customer")

router = APIRouter(
    prefix="/c", include_in_schema=False, dependencies=[Depends(limit_customer_page)]
)

# Any text: a link a mail client mangled (a trailing ">" or ")") gets the plain 404 page
# like any other link that does not read, not a validation error.
TokenPath = Annotated[str, Path()]
ROUTE_OF = {route.spec.name: route for route in ROUTES}
# The page's forms, by their path under /c/{token}/, and the command each sends.
COMMAND_OF_FORM = {"reply": "customer_reply", "survey": "rate", "qualification": "qualify"}
DONE_WORDS = {
    "reply": "reply_sent",
    "survey": "rated_done",
    "qualification": "qualified_done",
    "follow_up": "follow_up_opened",
}


@dataclass(frozen=True)
class Visit:
    """A token that reads, with the ticket it names and the requester it names."""

    token: str
    link: links.CustomerLink
    tickets: TicketService
    view: TicketView

    @property
    def principal(self) -> Principal:
        return Principal(self.link.requester, "requester")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _policies(request: Request) -> PolicySource:
    policies: PolicySource = request.app.state.policies
    return policies


def csrf_for(settings: Settings, token: str) -> str:
    """The page's form token: bound to its link, unknown to anyone without the link."""
    secret = settings.secret_key.get_secret_value().encode()
    return hmac.new(secret, b"customer-form\0" + token.encode(), hashlib.sha256).hexdigest()[:32]


def _not_found() -> Response:
    return customer_not_found_page()


def _unavailable() -> Response:
    """Temporal cannot be reached, so the ticket (and its language) is unknown: the
    page says so in every language the pages speak."""
    return render("customer/unavailable.html.j2", 503, lang="en", w=words("en"), languages=WORDS)


async def _visit(request: Request, token: str) -> Visit | Response:
    settings = _settings(request)
    link = links.read(
        settings.secret_key.get_secret_value(), token, max_age_days=settings.customer_link_days
    )
    if link is None:
        return _not_found()
    client = request.app.state.temporal_client
    if client is None:
        return _unavailable()
    tickets: TicketService = request.app.state.ticket_service_factory(client)
    try:
        view = await tickets.current_view(link.ticket_id)
    except Exception as error:
        answer = answer_for(error)
        if answer is None:
            raise
        return _not_found() if answer[0] == 404 else _unavailable()
    if not lifecycle.is_requester(view.requester, link.requester):
        return _not_found()
    return Visit(token=token, link=link, tickets=tickets, view=view)


def _page(
    request: Request,
    visit: Visit,
    *,
    status_code: int = 200,
    done: str | None = None,
    failed: str | None = None,
    errors: tuple[str, ...] = (),
    values: dict[str, str] | None = None,
) -> Response:
    settings = _settings(request)
    policy = _policies(request)(visit.view.profile)
    language = policy.language
    w = words(language)
    customer = lifecycle.customer_view(visit.view, policy)
    offered = lifecycle.offered(visit.view, policy, requester=True)
    forms_offered = {
        form: forms.controls_for(body_model(ROUTE_OF[command].spec.model), policy)
        for form, command in COMMAND_OF_FORM.items()
        if command in offered
    }
    agents = {key.subject: key.name for key in settings.api_keys.values() if key.name}
    closed = customer.status is Status.CLOSED
    shown = set(forms_offered) | ({"follow-up"} if closed else set())
    # A form the page no longer has (the ticket closed or changed meanwhile): its error
    # goes above everything, with what was typed, so nothing is lost.
    stranded = failed is not None and failed not in shown
    unsent = [
        value
        for name, value in (values or {}).items()
        if stranded and name in ("body", "comment", "title", "description") and value.strip()
    ]
    return render(
        "customer/ticket.html.j2",
        status_code,
        lang=language,
        w=w,
        view=customer,
        requester=visit.link.requester,
        agent_name=agents.get(customer.agent or ""),
        base=f"/c/{visit.token}",
        csrf=csrf_for(settings, visit.token),
        forms=forms_offered,
        closed=closed,
        follow_up=closed,
        done=w[DONE_WORDS.get(done or "", "")] if done in DONE_WORDS else None,
        failed=None if stranded else failed,
        errors=errors,
        general_errors=errors if stranded or failed is None else (),
        unsent=unsent,
        values=values or {},
        timezone=settings.calendar_timezone,
        idempotency=secrets.token_urlsafe(12),
    )


@router.api_route("/{token}", methods=["GET", "HEAD"])
async def customer_page(request: Request, token: TokenPath) -> Response:
    visit = await _visit(request, token)
    if isinstance(visit, Response):
        return visit
    return _page(request, visit, done=request.query_params.get("done"))


@router.get("/{token}/contents/{sha256}")
async def customer_content(request: Request, token: TokenPath, sha256: str) -> Response:
    visit = await _visit(request, token)
    if isinstance(visit, Response):
        return visit
    try:
        data, readable = await visit.tickets.content(visit.view.id, sha256, visit.principal)
    except Exception as error:
        if answer_for(error) is None:
            raise
        return _not_found()
    return download(data, readable.content_type, readable.filename, sha256)


async def _submitted(request: Request) -> dict[str, str]:
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


@router.post("/{token}/follow-up")
async def open_follow_up(request: Request, token: TokenPath) -> Response:
    visit = await _visit(request, token)
    if isinstance(visit, Response):
        return visit
    settings = _settings(request)
    submitted = await _submitted(request)
    w = words(_policies(request)(visit.view.profile).language)
    if not hmac.compare_digest(submitted.get("csrf", ""), csrf_for(settings, token)):
        return _page(
            request,
            visit,
            status_code=403,
            failed="follow-up",
            errors=(w["stale"],),
            values=submitted,
        )
    try:
        body = FollowUpBody.model_validate(
            {k: v.strip() for k in ("title", "description") if (v := submitted.get(k, ""))}
        )
    except ValidationError as invalid:
        problems = tuple(forms.words(error) for error in invalid.errors())
        return _page(
            request, visit, status_code=422, failed="follow-up", errors=problems, values=submitted
        )
    try:
        follow_up = await visit.tickets.follow_up(
            visit.view.id,
            body,
            actor=visit.link.requester,
            idempotency_key=submitted.get("idempotency") or None,
        )
    except Exception as error:
        return await _refused(request, visit, error, "follow-up", submitted)
    logger.info(
        "follow-up opened on the customer page",
        extra={"ticket_id": visit.view.id, "follow_up": follow_up.id},
    )
    new_token = links.sign(
        settings.secret_key.get_secret_value(), follow_up.id, visit.link.requester
    )
    return RedirectResponse(f"/c/{new_token}?done=follow_up", status_code=303)


@router.post("/{token}/{form}")
async def send_form(request: Request, token: TokenPath, form: str) -> Response:
    visit = await _visit(request, token)
    if isinstance(visit, Response):
        return visit
    settings = _settings(request)
    policy = _policies(request)(visit.view.profile)
    w = words(policy.language)
    command_name = COMMAND_OF_FORM.get(form)
    if command_name is None:
        return _not_found()
    submitted = await _submitted(request)
    if not hmac.compare_digest(submitted.get("csrf", ""), csrf_for(settings, token)):
        return _page(
            request, visit, status_code=403, failed=form, errors=(w["stale"],), values=submitted
        )
    if command_name not in lifecycle.offered(visit.view, policy, requester=True):
        return _page(
            request,
            visit,
            status_code=409,
            failed=form,
            errors=(w["not_now"],),
            values=submitted,
        )
    route = ROUTE_OF[command_name]
    body_type = body_model(route.spec.model)
    controls = forms.controls_for(body_type, policy)
    body, problems = forms.read_form(body_type, controls, submitted, settings.calendar_timezone)
    if body is None:
        return _page(
            request,
            visit,
            status_code=422,
            failed=form,
            errors=tuple(_in_words(problem, w) for problem in problems),
            values=submitted,
        )
    try:
        await visit.tickets.command(
            visit.view.id,
            command_from(route, body, visit.principal),
            principal=visit.principal,
            idempotency_key=submitted.get("idempotency") or None,
        )
    except Exception as error:
        return await _refused(request, visit, error, form, submitted)
    return RedirectResponse(f"/c/{token}?done={form}#top", status_code=303)


def _in_words(problem: str, w: dict[str, str]) -> str:
    """A form problem in the page's language where it is a common one."""
    if "Field required" in problem:
        return w["required"]
    if "greater than or equal" in problem or "less than or equal" in problem:
        return w["choose_score"]
    return problem


async def _refused(
    request: Request, visit: Visit, error: Exception, form: str, submitted: dict[str, str]
) -> Response:
    answer = answer_for(error)
    if answer is None:
        raise error
    with contextlib.suppress(Exception):  # the page shows where the ticket stands now
        visit = replace(visit, view=await visit.tickets.current_view(visit.view.id))
    status_code = answer[0]
    w = words(_policies(request)(visit.view.profile).language)
    reason = w["unavailable"] if status_code >= 500 else w["not_now"]
    if status_code == 422:
        detail: Any = answer[1].get("detail")
        reason = detail if isinstance(detail, str) else w["not_now"]
    return _page(
        request, visit, status_code=status_code, failed=form, errors=(reason,), values=submitted
    )
