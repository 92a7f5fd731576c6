"""Every inbound message Tramita routed, by Message-ID, in the archive's database.

API, SMTP listener and IMAP mailboxes share it, so a message that arrives by two paths
is routed once (the second is a ``duplicate``), a reply that quotes the Message-ID of a
customer's earlier mail finds that mail's ticket, and new tickets can be counted per
sender (the rate limit). Tramita's own Message-IDs name their ticket and need no row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, DateTime, Index, String, Table, Text, func, insert, select
from sqlalchemy.exc import IntegrityError

from activities.archive import ArchiveStore, metadata
from activities.database import TablesOnFirstUse
from workflows.addresses import canonical

NEW_TICKET_OUTCOMES = ("new_ticket", "follow_up", "unknown_sender")

inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("message_key", String(64), primary_key=True),
    Column("message_id", Text, nullable=False),
    Column("sender", String(320), index=True),
    Column("ticket_id", String(64), index=True),
    Column("outcome", String(32), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Index("inbound_messages_sender_time", "sender", "received_at"),
)


@dataclass(frozen=True)
class Routed:
    ticket_id: str | None
    outcome: str


def _key(message_id: str) -> str:
    return hashlib.sha256(message_id.strip().encode()).hexdigest()


class MailLedger:
    def __init__(self, store: ArchiveStore) -> None:
        # Its own table on first use: this module may be imported after the archive
        # created the rest of its tables.
        self._ready = TablesOnFirstUse(
            store.engine, lambda engine: inbound_messages.create(engine, checkfirst=True)
        )

    def routed(self, message_id: str) -> Routed | None:
        with self._ready().connect() as connection:
            row = connection.execute(
                select(inbound_messages.c.ticket_id, inbound_messages.c.outcome).where(
                    inbound_messages.c.message_key == _key(message_id)
                )
            ).first()
        return Routed(ticket_id=row.ticket_id, outcome=row.outcome) if row else None

    def ticket_of(self, message_ids: tuple[str, ...]) -> str | None:
        """The ticket of the first of ``message_ids`` that reached one."""
        if not message_ids:
            return None
        keys = [_key(m) for m in message_ids]
        with self._ready().connect() as connection:
            rows = connection.execute(
                select(inbound_messages.c.message_key, inbound_messages.c.ticket_id).where(
                    inbound_messages.c.message_key.in_(keys),
                    inbound_messages.c.ticket_id.is_not(None),
                )
            ).all()
        found = {row.message_key: row.ticket_id for row in rows}
        return next((found[key] for key in keys if key in found), None)

    def record(
        self,
        message_id: str,
        *,
        sender: str | None,
        ticket_id: str | None,
        outcome: str,
        at: datetime,
    ) -> bool:
        """Note a routed message; False when another path noted it first."""
        try:
            with self._ready().begin() as connection:
                connection.execute(
                    insert(inbound_messages).values(
                        message_key=_key(message_id),
                        message_id=message_id,
                        sender=canonical(sender) if sender else None,
                        ticket_id=ticket_id,
                        outcome=outcome,
                        received_at=at,
                    )
                )
        except IntegrityError:
            return False
        return True

    def new_tickets_since(self, sender: str, since: datetime) -> int:
        with self._ready().connect() as connection:
            count = connection.execute(
                select(func.count()).where(
                    inbound_messages.c.sender == canonical(sender),
                    inbound_messages.c.outcome.in_(NEW_TICKET_OUTCOMES),
                    inbound_messages.c.received_at >= since,
                )
            ).scalar_one()
        return int(count)
