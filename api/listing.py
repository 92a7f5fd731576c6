"""Ticket lists: open tickets from Temporal visibility, closed ones from the archive.

Rows are built from search attributes and the memo (no query per ticket). Filter
values are quoted for the visibility query; the routes refuse quotes, backslashes and
control characters before they get here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TypeVar

from temporalio.client import Client, WorkflowExecution
from temporalio.service import RPCError

from activities.archive import ArchiveFilters, ArchiveStore
from api.failures import InvalidRequest
from api.gateway import unavailable_from
from api.schemas import TicketList, TicketSummary
from api.tokens import PageTokens
from workflows.audiences import label_of
from workflows.models import Priority, ProfileName, Status, TicketView, WaitReason
from workflows.policy import PolicySource
from workflows.search import (
    TICKET_ASSIGNEE,
    TICKET_CATEGORY,
    TICKET_HIGHLIGHTED,
    TICKET_NEXT_DEADLINE,
    TICKET_PRIORITY,
    TICKET_PROFILE,
    TICKET_RELEASE,
    TICKET_REQUESTER,
    TICKET_STATUS,
    TICKET_WAIT_REASON,
)
from workflows.ticket import TITLE_MEMO

EnumT = TypeVar("EnumT", bound=StrEnum)
ARCHIVE_TOKEN_PREFIX = b"archive"


@dataclass(frozen=True)
class TicketFilters:
    status: Status | None = None
    assignee: str | None = None
    requester: str | None = None
    category: str | None = None
    wait_reason: WaitReason | None = None
    release: str | None = None
    view: str | None = None
    """``inbox`` or ``own_work``, for ``viewer``."""
    viewer: str | None = None


def quote(value: str) -> str:
    """A visibility-query string literal. Values never hold quotes (checked at the edge)."""
    if "'" in value or "\\" in value or '"' in value:
        raise InvalidRequest("filter values may not contain quotes or backslashes")
    return f"'{value}'"


class TicketLister:
    def __init__(
        self,
        client: Client,
        archive: ArchiveStore,
        tokens: PageTokens,
        policies: PolicySource,
        *,
        rpc_timeout: timedelta,
    ) -> None:
        self._client = client
        self._archive = archive
        self._tokens = tokens
        self._policies = policies
        self._rpc_timeout = rpc_timeout

    async def list_tickets(
        self, filters: TicketFilters, *, page_size: int, page_token: str | None
    ) -> TicketList:
        if filters.status is Status.CLOSED:
            return await self._list_archived(filters, page_size=page_size, page_token=page_token)
        return await self._list_open(filters, page_size=page_size, page_token=page_token)

    async def _list_open(
        self, filters: TicketFilters, *, page_size: int, page_token: str | None
    ) -> TicketList:
        clauses = ["WorkflowType = 'TicketWorkflow'"]
        if filters.status is None:
            clauses.append(f"{TICKET_STATUS.name} != 'closed'")
        for key, value in (
            (TICKET_STATUS.name, filters.status.value if filters.status else None),
            (TICKET_ASSIGNEE.name, filters.assignee),
            (TICKET_REQUESTER.name, filters.requester),
            (TICKET_CATEGORY.name, filters.category),
            (TICKET_WAIT_REASON.name, filters.wait_reason.value if filters.wait_reason else None),
            (TICKET_RELEASE.name, filters.release),
        ):
            if value is not None:
                clauses.append(f"{key} = {quote(value)}")
        if filters.view is not None and filters.viewer is not None:
            me = quote(filters.viewer)
            if filters.view == "inbox":
                clauses.append(
                    f"{TICKET_ASSIGNEE.name} = {me} AND {TICKET_STATUS.name} != 'closed' AND "
                    f"({TICKET_STATUS.name} IN ('new', 'in_progress') "
                    f"OR {TICKET_HIGHLIGHTED.name} = true)"
                )
            else:
                clauses.append(
                    f"{TICKET_ASSIGNEE.name} = {me} AND {TICKET_STATUS.name} = 'waiting'"
                )
        token = self._tokens.decode(page_token)
        iterator = self._client.list_workflows(
            " AND ".join(clauses),
            page_size=page_size,
            next_page_token=token,
            rpc_timeout=self._rpc_timeout,
        )
        try:
            await iterator.fetch_next_page(page_size=page_size)
        except RPCError as error:
            raise unavailable_from(error, "the list could not be read") from None
        items = [await self._summary(execution) for execution in iterator.current_page or ()]
        return TicketList(
            items=items, next_page_token=self._tokens.encode(iterator.next_page_token)
        )

    async def _list_archived(
        self, filters: TicketFilters, *, page_size: int, page_token: str | None
    ) -> TicketList:
        if filters.wait_reason is not None or filters.release is not None or filters.view:
            return TicketList(items=[], next_page_token=None)  # closed tickets wait for nothing
        token = self._tokens.decode(page_token)
        offset = 0
        if token is not None:
            prefix, _, number = token.partition(b":")
            if prefix != ARCHIVE_TOKEN_PREFIX or not number.isdigit():
                raise InvalidRequest("page_token is not one this API handed out")
            offset = int(number)
        views = await asyncio.to_thread(
            self._archive.list,
            ArchiveFilters(
                assignee=filters.assignee, requester=filters.requester, category=filters.category
            ),
            offset=offset,
            limit=page_size + 1,
        )
        more = len(views) > page_size
        next_raw = ARCHIVE_TOKEN_PREFIX + b":" + str(offset + page_size).encode() if more else None
        return TicketList(
            items=[self._archived_summary(view) for view in views[:page_size]],
            next_page_token=self._tokens.encode(next_raw),
        )

    def _label(
        self, profile: ProfileName | None, status: Status | None, reason: WaitReason | None
    ) -> str | None:
        if profile is None or status is None:
            return None
        return label_of(status, reason, self._policies(profile))

    def _archived_summary(self, view: TicketView) -> TicketSummary:
        return TicketSummary(
            id=view.id,
            profile=view.profile,
            status=view.status,
            status_label=view.status_label,
            title=view.title,
            assignee=view.assignee.id if view.assignee else None,
            requester=view.requester,
            category=view.category,
            priority=view.priority,
            wait_reason=None,
            release=None,
            next_deadline=None,
            highlighted=False,
            created_at=view.created_at,
            closed_at=view.closed_at,
        )

    async def _summary(self, execution: WorkflowExecution) -> TicketSummary:
        attributes = execution.typed_search_attributes
        profile = enum_or_none(ProfileName, attributes.get(TICKET_PROFILE))
        status = enum_or_none(Status, attributes.get(TICKET_STATUS))
        wait_reason = enum_or_none(WaitReason, attributes.get(TICKET_WAIT_REASON))
        return TicketSummary(
            id=execution.id.removeprefix("ticket-"),
            profile=profile,
            status=status,
            status_label=self._label(profile, status, wait_reason),
            title=await execution.memo_value(TITLE_MEMO, None, type_hint=str),
            assignee=attributes.get(TICKET_ASSIGNEE),
            requester=attributes.get(TICKET_REQUESTER),
            category=attributes.get(TICKET_CATEGORY),
            priority=enum_or_none(Priority, attributes.get(TICKET_PRIORITY)),
            wait_reason=wait_reason,
            release=attributes.get(TICKET_RELEASE),
            next_deadline=attributes.get(TICKET_NEXT_DEADLINE),
            highlighted=bool(attributes.get(TICKET_HIGHLIGHTED)),
            created_at=execution.start_time,
            closed_at=execution.close_time,
        )


def enum_or_none(enum: type[EnumT], raw: str | None) -> EnumT | None:
    """A search attribute value as its enum; None when unset or not a known value."""
    try:
        return enum(raw) if raw is not None else None
    except ValueError:
        return None
