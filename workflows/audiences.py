"""What each reader of a ticket may see (DESIGN section 10). Pure.

Staff (agents, supervisors, robots, the system) and webhooks read the whole
:class:`~workflows.models.TicketView`. The requester reads the *customer view*, rendered
here from the staff view, so a live ticket, a command's answer and an archived ticket
all go through the same function: only public events (each event type's visibility is
fixed in :class:`~workflows.models.EventType`), and of those only the fields listed in
:data:`PUBLIC_DATA`; no assignee beyond a display name, no highlight, no robot hand-off,
no qualification unless the requester reviews it, no link to another customer's ticket.
"""

from __future__ import annotations

from workflows.addresses import same_address
from workflows.models import (
    IMMEDIATE_CLOSE_METHODS,
    AssigneeKind,
    CustomerEvent,
    CustomerLinks,
    CustomerResolution,
    CustomerView,
    DeadlineKind,
    EventType,
    ProfilePolicy,
    RequesterKind,
    Status,
    TicketView,
    TimelineEvent,
    Visibility,
    WaitReason,
)
from workflows.records import Readable

# The fields of a public event the requester may read; every other field stays with staff
# (recipients, templates, due times, message ids, internal sequence numbers...).
PUBLIC_DATA: dict[EventType, frozenset[str]] = {
    EventType.CREATED: frozenset({"attachments"}),
    EventType.CUSTOMER_REPLY: frozenset(
        {"body", "body_ref", "body_bytes", "subject", "attachments"}
    ),
    EventType.EMAIL_SENT: frozenset({"body", "body_ref", "body_bytes", "subject", "attachments"}),
    EventType.REMINDER_SENT: frozenset({"number", "total"}),
    EventType.RESOLVED: frozenset({"method"}),
    EventType.RATED: frozenset({"score", "comment"}),
    EventType.FOLLOW_UP_CREATED: frozenset({"follow_up_of"}),
}

# The status a public event moved the ticket to, where the event alone says it.
_STATUS_AFTER: dict[EventType, Status] = {
    EventType.SUBMITTED: Status.NEW,
    EventType.STARTED: Status.IN_PROGRESS,
    EventType.RESUMED: Status.IN_PROGRESS,
    EventType.WAIT_ENDED: Status.IN_PROGRESS,
    EventType.REOPENED: Status.IN_PROGRESS,
    EventType.WAITING: Status.WAITING,
    EventType.CLOSED: Status.CLOSED,
}


def label_of(status: Status, reason: WaitReason | None, policy: ProfilePolicy) -> str:
    """A status's label in the profile's words (a wait's includes its reason)."""
    base = policy.status_labels.get(status, status.value)
    if status is Status.WAITING and reason is not None:
        reason_label = policy.wait_labels.get(reason, reason.value)
        return policy.wait_label_format.format(status=base, reason=reason_label)
    return base


def is_public(event: TimelineEvent) -> bool:
    return event.type.visibility is Visibility.PUBLIC


def speaks_for_the_customer(
    sender: str | None,
    requester: str | None,
    primary_contact: str | None,
    contacts: tuple[str, ...],
) -> bool:
    """Whether mail from ``sender`` is the customer's: the requester or one of the
    ticket's contacts. Anyone else is a third party, whatever they quote."""
    return any(same_address(sender, person) for person in (requester, primary_contact, *contacts))


def reviews_qualification(kind: RequesterKind, policy: ProfilePolicy) -> bool:
    """Whether a requester of this kind sees (and in customer validation may change) the
    qualification: support's accredited consultants and channels."""
    return policy.qualification_enabled and kind in policy.qualification_review_kinds


def _status_after(
    event: TimelineEvent, following: TimelineEvent | None, policy: ProfilePolicy
) -> str | None:
    if event.type is EventType.RESOLVED:
        method = event.data.get("method")
        closes = method in {m.value for m in IMMEDIATE_CLOSE_METHODS}
        return label_of(Status.CLOSED if closes else Status.RESOLVED, None, policy)
    status = _STATUS_AFTER.get(event.type)
    if status is None:
        return None
    if (
        event.type is EventType.WAIT_ENDED
        and following is not None
        and following.at == event.at
        and following.type in (EventType.RESOLVED, EventType.CLOSED)
    ):
        return None  # the wait ended by resolving: the next event says where it went
    reason = None
    if status is Status.WAITING:
        raw = event.data.get("reason")
        reason = WaitReason(str(raw)) if raw in WaitReason._value2member_map_ else None
    return label_of(status, reason, policy)


def customer_events(view: TicketView, policy: ProfilePolicy) -> tuple[CustomerEvent, ...]:
    timeline = view.timeline
    shown: list[CustomerEvent] = []
    for index, event in enumerate(timeline):
        if not is_public(event):
            continue
        following = timeline[index + 1] if index + 1 < len(timeline) else None
        allowed = PUBLIC_DATA.get(event.type, frozenset())
        shown.append(
            CustomerEvent(
                seq=event.seq,
                at=event.at,
                type=event.type,
                actor=event.actor,
                status_label=_status_after(event, following, policy),
                data={k: v for k, v in event.data.items() if k in allowed},
            )
        )
    return tuple(shown)


TEXT = Readable("text/plain; charset=utf-8")
RAW_MESSAGE = Readable("message/rfc822")


def readable_contents(view: TicketView | CustomerView) -> dict[str, Readable]:
    """The stored contents (by SHA-256) the reader of ``view`` may fetch: what its events
    and description name. A customer view names only public ones."""
    found: dict[str, Readable] = {}
    if view.description_ref:
        found[view.description_ref.sha256] = TEXT
    for event in view.timeline:
        for key, value in event.data.items():
            if key == "raw_ref" and isinstance(value, str):
                found[value] = RAW_MESSAGE
            elif key.endswith("_ref") and isinstance(value, str):
                found[value] = TEXT
            elif key == "attachments" and isinstance(value, list):
                for item in value:
                    if isinstance(item, dict) and item.get("sha256"):
                        found[str(item["sha256"])] = Readable(
                            str(item.get("content_type") or "application/octet-stream"),
                            str(item.get("filename") or "attachment"),
                        )
    return found


def customer_view(view: TicketView, policy: ProfilePolicy) -> CustomerView:
    """The requester's view of a ticket, live or archived."""
    reviews = reviews_qualification(view.requester_kind, policy)
    waiting = view.wait if view.status is Status.WAITING else None
    human = view.assignee if view.assignee and view.assignee.kind is AssigneeKind.HUMAN else None
    closes = next((d.due_at for d in view.deadlines if d.kind is DeadlineKind.AUTO_CLOSE), None)
    resolution = view.resolution
    return CustomerView(
        id=view.id,
        profile=view.profile,
        status=view.status,
        status_label=view.status_label,
        title=view.title,
        description=view.description,
        description_ref=view.description_ref,
        wait_label=policy.wait_labels.get(waiting.reason, waiting.reason.value)
        if waiting
        else None,
        resolution=CustomerResolution(method=resolution.method, at=resolution.at)
        if resolution
        else None,
        survey=view.survey,
        survey_open=view.status is Status.RESOLVED,
        qualification=view.qualification if reviews else None,
        qualification_review_open=reviews and view.status is Status.RESOLVED,
        agent=human.id if human else None,
        closes_at=closes,
        links=CustomerLinks(follow_up_of=view.links.follow_up_of, follow_ups=view.links.follow_ups),
        timeline=customer_events(view, policy),
        created_at=view.created_at,
        updated_at=view.updated_at,
        closed_at=view.closed_at,
    )
