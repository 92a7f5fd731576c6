"""The ceilings' messages, outside the workflow modules.

The sandbox runs a workflow's module afresh for every workflow it loads, and building a
pydantic model class there costs a millisecond: the ticket's models live in
``workflows.models`` and are passed through, so the ceilings' are too, else the
ceilings would pay a cost the ticket does not.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from temporalio.common import SearchAttributeKey, SearchAttributeUpdate


class NoopInput(BaseModel):
    updates: int
    window: timedelta


class Poke(BaseModel):
    step: str


class Poked(BaseModel):
    received: int


class ShapedAttribute(BaseModel):
    """One search attribute a ticket's upsert set (``value``, as text) or unset (None)."""

    name: str
    kind: Literal["keyword", "datetime", "bool"]
    value: str | None = None

    def update(self) -> SearchAttributeUpdate[Any]:
        if self.kind == "keyword":
            keyword = SearchAttributeKey.for_keyword(self.name)
            return keyword.value_unset() if self.value is None else keyword.value_set(self.value)
        if self.kind == "datetime":
            moment = SearchAttributeKey.for_datetime(self.name)
            if self.value is None:
                return moment.value_unset()
            return moment.value_set(datetime.fromisoformat(self.value))
        flag = SearchAttributeKey.for_bool(self.name)
        return flag.value_unset() if self.value is None else flag.value_set(self.value == "true")


class ShapedStep(BaseModel):
    """One update: what it upserts, the timer it leaves armed, its answer's size."""

    name: str
    attributes: list[ShapedAttribute] = []
    timer: timedelta | None = None
    reply_bytes: int
    local_activities: int = 0
    """Local activities the update ran before it answered (the ticket's store writes)."""
    activities_after: int = 0
    """Activities the ticket ran after answering (emails, notices to agents)."""
    local_activities_after: int = 0
    """Local activities after answering, before the next update (store writes that
    followed an activity's outcome)."""


class ShapedInput(BaseModel):
    steps: list[ShapedStep]
    closing_attributes: list[ShapedAttribute]
    result_bytes: int
    opening_local_activities: int = 0
    """Local activities before the first update (the ticket's first store write)."""
    closing_local_activities: int = 1
    """Local activities at the close (the archive, and the store's last write)."""
    patched: bool = False
    """The ticket's history holds a patch marker: the shaped workflow then asks a patch too
    (a marker and the SDK's ``TemporalChangeVersion`` upsert)."""
    ballast: str = ""
    """Makes the start event as large as a ticket's."""


class Advance(BaseModel):
    step: str


class ShapedReply(BaseModel):
    received: int
    ballast: str


def reply_of(received: int, size: int) -> ShapedReply:
    """A reply whose JSON is ``size`` bytes (at least its empty form)."""
    empty = len(ShapedReply(received=received, ballast="").model_dump_json())
    return ShapedReply(received=received, ballast="x" * max(0, size - empty))
