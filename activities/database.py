"""The engine for the archive's database, which also holds the ticket store and the
mail ledger."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError


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


class TablesOnFirstUse:
    """Tables created the first time a process needs them: the API, the worker and the
    mail listener may each start before the database does. Once per process (threads
    wait for the first); another process creating the same tables at that moment is not
    an error (the second attempt finds them and creates nothing)."""

    def __init__(self, engine: Engine, create: Callable[[Engine], None]) -> None:
        self._engine = engine
        self._create = create
        self._done = False
        self._lock = threading.Lock()

    def __call__(self) -> Engine:
        """The engine, its tables there."""
        if not self._done:
            with self._lock:
                if not self._done:
                    try:
                        self._create(self._engine)
                    except DBAPIError:
                        self._create(self._engine)  # another process made them meanwhile
                    self._done = True
        return self._engine
