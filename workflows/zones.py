"""Time zones, for the workflow and its activities.

A ``ZoneInfo`` created inside the workflow sandbox is a proxy that cannot convert times,
so zone objects are made here, in a module the workflow imports through the sandbox
(as data, like its models), and the calendar arithmetic that uses them runs inside it.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)
