"""Ticket lists, read from the ticket store (:mod:`activities.store`).

Every ticket, open or closed, has its row there, current with its last command. Pages
are offsets into one ordering (the sort key, then the id), handed out as signed tokens.
Temporal's visibility serves release publication and the operators' Web UI; its filter
values are quoted with :func:`quote`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from activities.store import SortKey, StoredRow, StoreQuery, TicketStore
from api.failures import InvalidRequest
from api.schemas import TicketList, TicketSummary
from api.tokens import PageTokens
from workflows.models import Priority, ProfileName, Status, WaitReason

STORE_TOKEN_PREFIX = b"store"


@dataclass(frozen=True)
class TicketFilters:
    status: Status | None = None
    assignee: str | None = None
    """An agent's id; ``none`` for tickets assigned to no one."""
    requester: str | None = None
    category: str | None = None
    wait_reason: WaitReason | None = None
    release: str | None = None
    priority: Priority | None = None
    profile: ProfileName | None = None
    view: str | None = None
    """``inbox`` or ``own_work``, for ``viewer``."""
    viewer: str | None = None
    text: str | None = None
    sort: SortKey = "created_at"
    descending: bool = True


UNASSIGNED = "none"


def quote(value: str) -> str:
    """A visibility-query string literal. Values never hold quotes (checked at the edge)."""
    if "'" in value or "\\" in value or '"' in value:
        raise InvalidRequest("filter values may not contain quotes or backslashes")
    return f"'{value}'"


def store_query(filters: TicketFilters) -> StoreQuery:
    unassigned = filters.assignee == UNASSIGNED
    return StoreQuery(
        status=filters.status,
        assignee=None if unassigned else filters.assignee,
        unassigned=unassigned,
        requester=filters.requester,
        category=filters.category,
        wait_reason=filters.wait_reason.value if filters.wait_reason else None,
        release=filters.release,
        priority=filters.priority,
        profile=filters.profile if filters.profile else None,
        inbox_of=filters.viewer if filters.view == "inbox" else None,
        waiting_for=filters.viewer if filters.view == "own_work" else None,
        text=filters.text,
        sort=filters.sort,
        descending=filters.descending,
    )


class TicketLister:
    def __init__(self, store: TicketStore, tokens: PageTokens) -> None:
        self._store = store
        self._tokens = tokens

    async def list_tickets(
        self, filters: TicketFilters, *, page_size: int, page_token: str | None
    ) -> TicketList:
        offset = self._offset(page_token)
        rows = await asyncio.to_thread(
            self._store.list, store_query(filters), offset=offset, limit=page_size + 1
        )
        more = len(rows) > page_size
        next_raw = STORE_TOKEN_PREFIX + b":" + str(offset + page_size).encode() if more else None
        return TicketList(
            items=[summary_of(row) for row in rows[:page_size]],
            next_page_token=self._tokens.encode(next_raw),
        )

    def _offset(self, page_token: str | None) -> int:
        token = self._tokens.decode(page_token)
        if token is None:
            return 0
        prefix, _, number = token.partition(b":")
        if prefix != STORE_TOKEN_PREFIX or not number.isdigit():
            raise InvalidRequest("page_token is not one this API handed out")
        return int(number)


def summary_of(row: StoredRow) -> TicketSummary:
    return TicketSummary(
        id=row.id,
        profile=row.profile,
        status=row.status,
        status_label=row.status_label,
        title=row.title,
        assignee=row.assignee,
        requester=row.requester,
        category=row.category,
        priority=row.priority,
        wait_reason=WaitReason(row.wait_reason) if row.wait_reason else None,
        release=row.release,
        next_deadline=row.next_deadline,
        highlighted=row.highlighted,
        created_at=row.created_at,
        updated_at=row.updated_at,
        closed_at=row.closed_at,
    )
