"""The second ceiling: a workflow whose history is a ticket's, with none of Tramita's code.

The plain ceiling (:mod:`bench.noop`) takes the four updates of a standard lifecycle and
nothing else. A ticket's history holds more than that, because of what the product asks
of Temporal: a search attribute upsert at every change of status (lists and the Web UI),
a reminder timer armed and cancelled, the feedback-window timer, and the archive as a
local activity (with a patch marker and the SDK's ``TemporalChangeVersion`` upsert
before it, if the ticket's history has them: tickets opened before
``TicketInput.archive_locally`` do). This
workflow does exactly those things, with payloads of the ticket's sizes, and no more:
it decides nothing, validates nothing and computes no deadline. The bench derives its
:class:`ShapedInput` from the history of a real ticket (:func:`bench.scenarios.ticket_shape`)
and checks that the two histories have the same events, so what separates the ticket
from this ceiling is Tramita's own work, and what separates this ceiling from the plain
one is what Temporal charges for that history.
"""

# No postponed annotations, as in workflows/ticket.py: the module loads once per workflow.
from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from bench.ceiling_models import (
        Advance,
        ShapedAttribute,
        ShapedInput,
        ShapedReply,
        reply_of,
    )

SHAPED_PATCH = "bench-shaped-archive"
ARCHIVE_TIMEOUT = timedelta(seconds=30)


def _upsert(attributes: list[ShapedAttribute]) -> None:
    if attributes:
        workflow.upsert_search_attributes([attribute.update() for attribute in attributes])


@activity.defn(name="BenchShapedArchive")
async def archive(view: ShapedReply) -> None:
    """Stands for the ticket's archive and store writes; does nothing."""


@activity.defn(name="BenchShapedEffect")
async def effect(view: ShapedReply) -> None:
    """Stands for an activity the ticket runs after a command (an email, a notice)."""


async def _local_activities(count: int, view: ShapedReply) -> None:
    for _ in range(count):
        await workflow.execute_local_activity(archive, view, start_to_close_timeout=ARCHIVE_TIMEOUT)


@workflow.defn(name="BenchTicketShapedWorkflow")
class TicketShapedWorkflow:
    @workflow.init
    def __init__(self, input: ShapedInput) -> None:
        self._steps = input.steps
        self._received = 0

    @workflow.run
    async def run(self, input: ShapedInput) -> ShapedReply:
        await _local_activities(input.opening_local_activities, reply_of(0, 0))
        while await self._next_update():
            await self._effects_of(self._received)
        _upsert(input.closing_attributes)
        result = reply_of(self._received, input.result_bytes)
        # A patch check is asked only if the ticket asked one: it records a marker.
        if not input.patched or workflow.patched(SHAPED_PATCH):
            await _local_activities(input.closing_local_activities, result)
        return result

    async def _effects_of(self, received: int) -> None:
        step = self._steps[received - 1]
        for _ in range(step.activities_after):
            await workflow.execute_activity(
                effect, reply_of(received, 0), start_to_close_timeout=ARCHIVE_TIMEOUT
            )
        await _local_activities(step.local_activities_after, reply_of(received, 0))

    async def _next_update(self) -> bool:
        """Waits for the next update; False when the timer the last one armed ran out."""
        received = self._received
        timer = self._steps[received - 1].timer if received else None
        try:
            await workflow.wait_condition(
                lambda: self._received != received,
                timeout=timer,
                timeout_summary="deadline" if timer else None,
            )
        except TimeoutError:
            return False
        return True

    @workflow.update
    async def advance(self, message: Advance) -> ShapedReply:
        received = self._received + 1
        step = self._steps[received - 1]
        _upsert(step.attributes)
        workflow.set_current_details(step.name)
        reply = reply_of(received, step.reply_bytes)
        await _local_activities(step.local_activities, reply)
        self._received = received
        return reply

    @advance.validator
    def _validate_advance(self, message: Advance) -> None:
        if self._received >= len(self._steps):
            raise ValueError(f"no step left for {message.step}")
