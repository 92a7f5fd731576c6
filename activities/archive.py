"""The archive of closed tickets (SQLAlchemy; SQLite file by default, PostgreSQL in compose).

A ticket's final view is written here before its workflow completes, so it stays
readable, listable and linkable after Temporal's retention has deleted the history. For a
closed ticket the archive is the authority: it also records follow-ups opened later.
Writes are idempotent (the same view twice leaves one row). Each write also brings the
ticket's row in the store (:mod:`activities.store`) to the same view, in one commit.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from temporalio import activity

from activities.database import TablesOnFirstUse, engine_for
from activities.store import metadata as store_metadata
from activities.store import name_follow_up, put_row
from workflows.models import ArchiveInput, Status, TicketView

logger = logging.getLogger(__name__)

metadata = MetaData()
# Profile names are up to 40 characters (workflows.models.PROFILE_NAME_PATTERN).
PROFILE_COLUMN_LENGTH = 64

archived_tickets = Table(
    "archived_tickets",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("profile", String(PROFILE_COLUMN_LENGTH), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("title", Text),
    Column("assignee", String(200), index=True),
    Column("requester", String(320), index=True),
    Column("category", String(200), index=True),
    Column("priority", String(16)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=False, index=True),
    Column("view", JSON, nullable=False),
)


@dataclass(frozen=True)
class ArchiveFilters:
    assignee: str | None = None
    requester: str | None = None
    category: str | None = None


def _create_tables(engine: Engine) -> None:
    """The archive's tables and the store's, which share its database. An archive made
    when profile names had at most 16 characters gets the wider column (a database
    server enforces the width; SQLite does not)."""
    metadata.create_all(engine)
    store_metadata.create_all(engine)
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        width = connection.execute(
            text(
                "SELECT character_maximum_length FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = 'archived_tickets' "
                "AND column_name = 'profile'"
            )
        ).scalar_one()
        if width < PROFILE_COLUMN_LENGTH:
            connection.execute(
                text(
                    "ALTER TABLE archived_tickets ALTER COLUMN profile "
                    f"TYPE varchar({PROFILE_COLUMN_LENGTH})"
                )
            )


class ArchiveStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._ready = TablesOnFirstUse(engine, _create_tables)

    @property
    def engine(self) -> Engine:
        return self._engine

    @classmethod
    def from_url(cls, url: str) -> ArchiveStore:
        return cls(engine_for(url))

    def put(self, view: TicketView) -> None:
        if view.status is not Status.CLOSED or view.closed_at is None:
            raise ValueError(f"only closed tickets are archived; {view.id} is {view.status.value}")
        document: dict[str, Any] = view.model_dump(mode="json")
        row: dict[str, Any] = {
            "id": view.id,
            "profile": view.profile,
            "status": view.status.value,
            "title": view.title,
            "assignee": view.assignee.id if view.assignee else None,
            "requester": view.requester,
            "category": view.category,
            "priority": view.priority.value,
            "created_at": view.created_at,
            "closed_at": view.closed_at,
            "view": document,
        }
        with self._ready().begin() as connection:
            existing = connection.execute(
                select(archived_tickets.c.view).where(archived_tickets.c.id == view.id)
            ).scalar_one_or_none()
            if existing is not None:
                # Keep follow-ups recorded since; the rest is the same final view.
                follow_ups = existing.get("links", {}).get("follow_ups", [])
                document["links"]["follow_ups"] = sorted(
                    set(follow_ups) | set(document["links"]["follow_ups"])
                )
                connection.execute(delete(archived_tickets).where(archived_tickets.c.id == view.id))
            connection.execute(insert(archived_tickets).values(**row))
            # The store's row of a closed ticket is its final view, in the same commit.
            put_row(connection, TicketView.model_validate(document))

    def get(self, ticket_id: str) -> TicketView | None:
        with self._ready().connect() as connection:
            stored = connection.execute(
                select(archived_tickets.c.view).where(archived_tickets.c.id == ticket_id)
            ).scalar_one_or_none()
        return TicketView.model_validate(stored) if stored is not None else None

    def add_follow_up(self, ticket_id: str, follow_up_id: str) -> bool:
        """Records a follow-up on an archived ticket; False when it is not archived."""
        with self._ready().begin() as connection:
            stored = connection.execute(
                select(archived_tickets.c.view)
                .where(archived_tickets.c.id == ticket_id)
                .with_for_update()
            ).scalar_one_or_none()
            if stored is None:
                return False
            links = stored.setdefault("links", {})
            links["follow_ups"] = sorted({*links.get("follow_ups", []), follow_up_id})
            connection.execute(
                update(archived_tickets)
                .where(archived_tickets.c.id == ticket_id)
                .values(view=stored)
            )
            name_follow_up(connection, ticket_id, follow_up_id)
        return True

    def list(self, filters: ArchiveFilters, *, offset: int, limit: int) -> list[TicketView]:
        query = select(archived_tickets.c.view)
        for column, value in (
            (archived_tickets.c.assignee, filters.assignee),
            (archived_tickets.c.requester, filters.requester),
            (archived_tickets.c.category, filters.category),
        ):
            if value is not None:
                query = query.where(column == value)
        query = query.order_by(archived_tickets.c.closed_at.desc(), archived_tickets.c.id)
        with self._ready().connect() as connection:
            rows = connection.execute(query.offset(offset).limit(limit)).scalars().all()
        return [TicketView.model_validate(row) for row in rows]


class ArchiveActivities:
    def __init__(self, store: ArchiveStore) -> None:
        self._store = store

    @activity.defn(name="archive_ticket")
    async def archive(self, request: ArchiveInput) -> None:
        await asyncio.to_thread(self._store.put, request.view)
        logger.info("ticket archived", extra={"ticket_id": request.view.id})
