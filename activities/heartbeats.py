"""Heartbeats around one awaited piece of work, so that work on a worker that died is
retried after the heartbeat timeout rather than the (longer) start-to-close timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from temporalio import activity

HEARTBEAT_EVERY_SECONDS = 2.0

T = TypeVar("T")


async def heartbeating(work: Awaitable[T]) -> T:
    """``work``'s result, heartbeating every couple of seconds while it runs."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY_SECONDS)
        if done:
            return task.result()
        activity.heartbeat()
