"""Bounds on what a ticket keeps, so no input can push it past Temporal's limits. Pure.

Temporal refuses a payload over 2 MB and terminates a workflow whose task answer passes
4 MB (TEMPORAL_NOTES). A ticket's state travels whole in its continue-as-new input and
its ``view`` query, and recent views in its update answers, so everything in it is
bounded:

* a text in an event (a body, a note, a reason) keeps at most :data:`EXCERPT_BYTES`
  of UTF-8; a longer text is stored whole outside Temporal (the API's content store,
  by SHA-256) and the event names it (``<field>_ref``, ``<field>_bytes``);
* once an event is older than the newest :data:`RECENT_EVENTS`, its texts shrink to
  :data:`COMPACT_BYTES` and its lists to :data:`COMPACT_ITEMS` (the full text, when it
  was longer, stays reachable through its reference);
* a ticket holds at most :data:`MAX_TIMELINE_EVENTS` events; past that, commands that
  would add more are refused (open a follow-up ticket), as help desks cap comments.

With these, a ticket's state stays under about 1.3 MB whatever it is sent
(``tests/workflows/test_bounds.py`` fills one to the cap with the largest inputs).
"""

from __future__ import annotations

from typing import Any

from workflows.models import StoredText, TimelineEvent

EXCERPT_BYTES = 2_000
COMPACT_BYTES = 200
RECENT_EVENTS = 64
LIST_ITEMS = 20
COMPACT_ITEMS = 3
MAX_TIMELINE_EVENTS = 1_000
ELLIPSIS = "…"


def excerpt(text: str, limit: int = EXCERPT_BYTES) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8 (on a character boundary), with an
    ellipsis when it was cut."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    room = limit - len(ELLIPSIS.encode())
    return encoded[:room].decode(errors="ignore") + ELLIPSIS


def needs_storing(text: str, limit: int = COMPACT_BYTES) -> bool:
    """Whether a text is longer than an old event keeps: stored whole, it is never lost."""
    return len(text.encode()) > limit


def bounded(data: dict[str, Any], *, text_bytes: int, items: int) -> dict[str, Any]:
    """Event data with every text and list cut to the given bounds."""
    return {key: _bounded_value(value, text_bytes, items) for key, value in data.items()}


def _bounded_value(value: Any, text_bytes: int, items: int) -> Any:
    if isinstance(value, str):
        return excerpt(value, text_bytes)
    if isinstance(value, list | tuple):
        return [_bounded_value(v, text_bytes, items) for v in list(value)[:items]]
    if isinstance(value, dict):
        return bounded(value, text_bytes=text_bytes, items=items)
    return value


def compacted(event: TimelineEvent) -> TimelineEvent:
    """An older event as the timeline keeps it for good."""
    data = bounded(event.data, text_bytes=COMPACT_BYTES, items=COMPACT_ITEMS)
    return event if data == event.data else event.model_copy(update={"data": data})


def text_data(field: str, value: str | None, stored: StoredText | None) -> dict[str, Any]:
    """An event's record of one text: its excerpt, and where the whole text is."""
    if value is None:
        return {}
    data: dict[str, Any] = {field: excerpt(value)}
    if stored is not None:
        data[f"{field}_ref"] = stored.sha256
        data[f"{field}_bytes"] = stored.bytes
    return data
