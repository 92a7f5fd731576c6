"""Search attributes of ticket workflows (DESIGN section 8) and their values for a state.

Values are stored unencrypted by Temporal's visibility store: only what the design names
goes here (ids and addresses of assignee and requester, never bodies or titles).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from workflows import sla
from workflows.models import Status, TicketState, WaitReason

TICKET_STATUS = SearchAttributeKey.for_keyword("TicketStatus")
TICKET_PROFILE = SearchAttributeKey.for_keyword("TicketProfile")
TICKET_ASSIGNEE = SearchAttributeKey.for_keyword("TicketAssignee")
TICKET_REQUESTER = SearchAttributeKey.for_keyword("TicketRequester")
TICKET_CATEGORY = SearchAttributeKey.for_keyword("TicketCategory")
TICKET_WAIT_REASON = SearchAttributeKey.for_keyword("TicketWaitReason")
TICKET_RELEASE = SearchAttributeKey.for_keyword("TicketRelease")
TICKET_PRIORITY = SearchAttributeKey.for_keyword("TicketPriority")
TICKET_NEXT_DEADLINE = SearchAttributeKey.for_datetime("TicketNextDeadline")
TICKET_HIGHLIGHTED = SearchAttributeKey.for_bool("TicketHighlighted")
TICKET_SLA_DUE_AT = SearchAttributeKey.for_datetime("TicketSlaDueAt")

ALL_KEYS: tuple[
    SearchAttributeKey[str] | SearchAttributeKey[datetime] | SearchAttributeKey[bool], ...
] = (
    TICKET_STATUS,
    TICKET_PROFILE,
    TICKET_ASSIGNEE,
    TICKET_REQUESTER,
    TICKET_CATEGORY,
    TICKET_WAIT_REASON,
    TICKET_RELEASE,
    TICKET_PRIORITY,
    TICKET_NEXT_DEADLINE,
    TICKET_HIGHLIGHTED,
    TICKET_SLA_DUE_AT,
)

SearchValue = str | datetime | bool | None


def search_values(state: TicketState) -> dict[str, SearchValue]:
    """The value of every ticket search attribute for ``state``; None means unset."""
    wait = state.wait if state.status is Status.WAITING else None
    next_due = min((d.due_at for d in state.deadlines), default=None)
    return {
        TICKET_STATUS.name: state.status.value,
        TICKET_PROFILE.name: state.profile,
        TICKET_ASSIGNEE.name: state.assignee.id if state.assignee else None,
        TICKET_REQUESTER.name: state.fields.requester,
        TICKET_CATEGORY.name: state.fields.category,
        TICKET_WAIT_REASON.name: wait.reason.value if wait else None,
        TICKET_RELEASE.name: wait.version if wait and wait.reason is WaitReason.RELEASE else None,
        TICKET_PRIORITY.name: state.fields.priority.value,
        TICKET_NEXT_DEADLINE.name: next_due,
        TICKET_HIGHLIGHTED.name: state.highlighted,
        TICKET_SLA_DUE_AT.name: sla.due_at(state),
    }


def search_attribute_updates(
    previous: dict[str, SearchValue], current: dict[str, SearchValue]
) -> list[SearchAttributeUpdate[Any]]:
    """Typed upserts for the attributes whose value changed."""
    updates: list[SearchAttributeUpdate[Any]] = []
    for key in ALL_KEYS:
        value = current[key.name]
        if previous.get(key.name) == value:
            continue  # unchanged, or never set and still unset
        if value is None:
            updates.append(key.value_unset())
        else:
            updates.append(key.value_set(value))  # type: ignore[arg-type]
    return updates


def starting_search_attributes(state: TicketState) -> TypedSearchAttributes:
    """The attributes a ticket's workflow is started with, so it is listed from its start.

    A workflow started with them finds them in its info (:func:`published_values`) and
    upserts nothing until its state changes: lists show a new ticket's status even while
    no worker runs, and its history has one event fewer.
    """
    values = search_values(state)
    return TypedSearchAttributes(
        [
            SearchAttributePair(key, values[key.name])
            for key in ALL_KEYS
            if values[key.name] is not None
        ]
    )


def published_values(attributes: TypedSearchAttributes) -> dict[str, SearchValue]:
    """The ticket attributes a workflow already carries (from its start or its last run)."""
    return {key.name: attributes.get(key) for key in ALL_KEYS}
