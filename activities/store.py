"""The ticket store: every ticket's current staff view, one SQL row each.

It lives in the archive's database (SQLite by default, PostgreSQL in compose), in its
own table. The workflow writes its ticket's row through a local activity whenever the
ticket changes, before it answers the command that changed it; the API writes a new
ticket's first row as it opens it. The API's lists and the agent console read it:
Temporal's visibility keeps serving release publication and the operators' Web UI.

Rows are written with the ticket's revision (the ``seq`` of its last timeline event):
an older view never overwrites a newer one, whatever order two writers finish in. The
store holds nothing Temporal and the archive do not: ``python -m maintenance
rebuild-store`` writes it again from them.

A SQLite store commits with ``synchronous=NORMAL`` (in WAL mode: durable across a crash
of Tramita, not of the machine): what a power cut could lose, a rebuild gives back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from temporalio import activity

from activities.database import TablesOnFirstUse, engine_for
from workflows.addresses import canonical
from workflows.models import Priority, Status, TicketView

logger = logging.getLogger(__name__)

metadata = MetaData()

PRIORITY_RANK = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.NORMAL: 2, Priority.LOW: 3}

tickets = Table(
    "tickets",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("profile", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_label", Text, nullable=False),
    Column("title", Text),
    Column("requester", String(320)),
    Column("requester_key", String(320)),
    Column("assignee", String(200)),
    Column("category", String(200)),
    Column("priority", String(16), nullable=False),
    Column("priority_rank", Integer, nullable=False),
    Column("wait_reason", String(32)),
    Column("release", String(200)),
    Column("next_deadline", DateTime(timezone=True)),
    Column("highlighted", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    # Lower-case id, title and requester: what ``q`` searches.
    Column("search", Text, nullable=False),
    Column("view", JSON, nullable=False),
    Index("tickets_status_deadline", "status", "next_deadline"),
    Index("tickets_assignee_status", "assignee", "status"),
    Index("tickets_requester", "requester_key"),
    Index("tickets_updated", "updated_at"),
    Index("tickets_created", "created_at"),
)

SortKey = Literal["next_deadline", "priority", "updated_at", "created_at"]
SORT_KEYS: tuple[SortKey, ...] = ("next_deadline", "priority", "updated_at", "created_at")


@dataclass(frozen=True)
class StoreQuery:
    """What a list asks of the store. ``status`` None means every status but closed."""

    status: Status | None = None
    assignee: str | None = None
    unassigned: bool = False
    requester: str | None = None
    category: str | None = None
    wait_reason: str | None = None
    release: str | None = None
    priority: Priority | None = None
    profile: str | None = None
    inbox_of: str | None = None
    """New, in-progress or highlighted open tickets assigned to this agent."""
    waiting_for: str | None = None
    """This agent's waiting tickets."""
    text: str | None = None
    sort: SortKey = "created_at"
    descending: bool = True


@dataclass(frozen=True)
class StoredRow:
    """One list row, read without decoding the view."""

    id: str
    profile: str
    status: Status
    status_label: str
    title: str | None
    requester: str | None
    assignee: str | None
    category: str | None
    priority: Priority
    wait_reason: str | None
    release: str | None
    next_deadline: datetime | None
    highlighted: bool
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


DATETIME_COLUMNS = ("next_deadline", "created_at", "updated_at", "closed_at")


@dataclass(frozen=True)
class TicketParties:
    """Where a ticket stands and who writes to it as its customer: what routing a
    message asks of a ticket, read without decoding its whole view."""

    id: str
    profile: str
    status: Status
    requester: str | None
    primary_contact: str | None
    contacts: tuple[str, ...]

    @classmethod
    def of(cls, view: TicketView) -> TicketParties:
        return cls(
            id=view.id,
            profile=str(view.profile),
            status=view.status,
            requester=view.requester,
            primary_contact=view.primary_contact,
            contacts=tuple(view.contacts),
        )


def revision_of(view: TicketView) -> int:
    return view.timeline[-1].seq if view.timeline else 0


def _utc(moment: datetime | None) -> datetime | None:
    """In UTC, aware: SQLite keeps no offset, so every moment is stored in UTC and read
    back as UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def row_of(view: TicketView) -> dict[str, Any]:
    next_deadline = min((d.due_at for d in view.deadlines), default=None)
    requester = view.requester
    return {
        "id": view.id,
        "revision": revision_of(view),
        "profile": str(view.profile),
        "status": view.status.value,
        "status_label": view.status_label,
        "title": view.title,
        "requester": requester,
        "requester_key": canonical(requester) if requester else None,
        "assignee": view.assignee.id if view.assignee else None,
        "category": view.category,
        "priority": view.priority.value,
        "priority_rank": PRIORITY_RANK[view.priority],
        "wait_reason": view.wait.reason.value if view.wait else None,
        "release": view.wait.version if view.wait else None,
        "next_deadline": _utc(next_deadline),
        "highlighted": view.highlighted,
        "created_at": _utc(view.created_at),
        "updated_at": _utc(view.updated_at),
        "closed_at": _utc(view.closed_at),
        "search": " ".join(part for part in (view.id, view.title, requester) if part).lower(),
        "view": view.model_dump(mode="json"),
    }


def put_row(connection: Connection, view: TicketView) -> bool:
    """Writes ``view`` unless the store holds a newer revision; True when written."""
    row = row_of(view)
    written = connection.execute(
        update(tickets)
        .where(and_(tickets.c.id == view.id, tickets.c.revision <= row["revision"]))
        .values(**row)
    ).rowcount
    if written:
        return True
    exists = connection.execute(
        select(tickets.c.revision).where(tickets.c.id == view.id)
    ).scalar_one_or_none()
    if exists is not None:
        return False  # a newer revision is there already
    try:
        with connection.begin_nested():
            connection.execute(insert(tickets).values(**row))
    except IntegrityError:
        # Another writer inserted it a moment ago: write over it if ours is newer.
        return bool(
            connection.execute(
                update(tickets)
                .where(and_(tickets.c.id == view.id, tickets.c.revision <= row["revision"]))
                .values(**row)
            ).rowcount
        )
    return True


def name_follow_up(connection: Connection, ticket_id: str, follow_up_id: str) -> None:
    """Names a follow-up on a closed ticket's row (its revision stays: no event)."""
    stored = connection.execute(
        select(tickets.c.view).where(tickets.c.id == ticket_id).with_for_update()
    ).scalar_one_or_none()
    if stored is None:
        return
    links = stored.setdefault("links", {})
    links["follow_ups"] = sorted({*links.get("follow_ups", []), follow_up_id})
    connection.execute(update(tickets).where(tickets.c.id == ticket_id).values(view=stored))


MAX_SEARCH_WORDS = 10


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class TicketStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._ready = TablesOnFirstUse(engine, metadata.create_all)

    @classmethod
    def from_url(cls, url: str) -> TicketStore:
        return cls(engine_for(url, durable=False))

    @property
    def engine(self) -> Engine:
        return self._ready()

    def put(self, view: TicketView) -> bool:
        with self._ready().begin() as connection:
            return put_row(connection, view)

    def put_many(self, views: Iterable[TicketView]) -> int:
        written = 0
        with self._ready().begin() as connection:
            for view in views:
                written += put_row(connection, view)
        return written

    def get(self, ticket_id: str) -> TicketView | None:
        with self._ready().connect() as connection:
            stored = connection.execute(
                select(tickets.c.view).where(tickets.c.id == ticket_id)
            ).scalar_one_or_none()
        return TicketView.model_validate(stored) if stored is not None else None

    def parties(self, ticket_id: str) -> TicketParties | None:
        with self._ready().connect() as connection:
            row = connection.execute(
                select(
                    tickets.c.profile,
                    tickets.c.status,
                    tickets.c.requester,
                    tickets.c.view["primary_contact"].label("primary_contact"),
                    tickets.c.view["contacts"].label("contacts"),
                ).where(tickets.c.id == ticket_id)
            ).first()
        if row is None:
            return None
        return TicketParties(
            id=ticket_id,
            profile=row.profile,
            status=Status(row.status),
            requester=row.requester,
            primary_contact=row.primary_contact,
            contacts=tuple(row.contacts or ()),
        )

    def revision(self, ticket_id: str) -> int | None:
        with self._ready().connect() as connection:
            found: int | None = connection.execute(
                select(tickets.c.revision).where(tickets.c.id == ticket_id)
            ).scalar_one_or_none()
        return found

    def clear(self) -> None:
        with self._ready().begin() as connection:
            connection.execute(tickets.delete())

    def count(self) -> int:
        with self._ready().connect() as connection:
            counted: int = connection.execute(
                select(func.count()).select_from(tickets)
            ).scalar_one()
        return counted

    def list(self, query: StoreQuery, *, offset: int, limit: int) -> list[StoredRow]:
        statement = select(*(tickets.c[name] for name in StoredRow.__dataclass_fields__))
        c = tickets.c
        if query.status is None:
            statement = statement.where(c.status != Status.CLOSED.value)
        else:
            statement = statement.where(c.status == query.status.value)
        for column, value in (
            (c.assignee, query.assignee),
            (c.category, query.category),
            (c.wait_reason, query.wait_reason),
            (c.release, query.release),
            (c.profile, query.profile),
            (c.priority, query.priority.value if query.priority else None),
        ):
            if value is not None:
                statement = statement.where(column == value)
        if query.unassigned:
            statement = statement.where(c.assignee.is_(None))
        if query.requester is not None:
            statement = statement.where(c.requester_key == canonical(query.requester))
        if query.inbox_of is not None:
            statement = statement.where(
                c.assignee == query.inbox_of,
                c.status != Status.CLOSED.value,
                or_(
                    c.status.in_([Status.NEW.value, Status.IN_PROGRESS.value]),
                    c.highlighted.is_(True),
                ),
            )
        if query.waiting_for is not None:
            statement = statement.where(
                c.assignee == query.waiting_for, c.status == Status.WAITING.value
            )
        # Every word of the search, anywhere in id, title or requester, in any order.
        for word in (query.text or "").split()[:MAX_SEARCH_WORDS]:
            statement = statement.where(c.search.like(_like(word), escape="\\"))
        column = {
            "next_deadline": c.next_deadline,
            "priority": c.priority_rank,
            "updated_at": c.updated_at,
            "created_at": c.created_at,
        }[query.sort]
        ordered = column.desc() if query.descending else column.asc()
        # Tickets without the value (no deadline) come last either way; the id settles ties,
        # so pages never repeat or skip a row.
        statement = statement.order_by(column.is_(None), ordered, c.id)
        with self._ready().connect() as connection:
            rows = connection.execute(statement.offset(offset).limit(limit)).all()
        return [
            StoredRow(
                **{
                    **row._mapping,
                    "status": Status(row.status),
                    "priority": Priority(row.priority),
                    **{name: _utc(row._mapping[name]) for name in DATETIME_COLUMNS},
                }
            )
            for row in rows
        ]


class StoreInput(BaseModel):
    view: TicketView


class StoreActivities:
    def __init__(self, store: TicketStore) -> None:
        self._store = store

    @activity.defn(name="store_ticket")
    async def store(self, request: StoreInput) -> None:
        await asyncio.to_thread(self._store.put, request.view)
