"""The engine for the archive's database, which also holds the ticket store and the
mail ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url


def engine_for(url: str, *, durable: bool = True) -> Engine:
    """An engine for the archive's database. A SQLite file runs in WAL mode: the API
    reading a list does not hold back the worker archiving a closed ticket, and each write
    costs half the CPU (no rollback journal created and deleted per commit). Commits stay
    durable (synchronous FULL) unless ``durable`` is False: the ticket store, which a
    rebuild from Temporal restores, trades that for speed (synchronous NORMAL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        # A database server may drop idle connections; a SQLite file cannot.
        return create_engine(url, pool_pre_ping=True)
    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    pragmas = ["PRAGMA journal_mode=WAL"]
    if not durable:
        pragmas.append("PRAGMA synchronous=NORMAL")

    def on_connect(connection: Any, _record: Any) -> None:
        for pragma in pragmas:
            connection.execute(pragma)

    event.listen(engine, "connect", on_connect)
    return engine
