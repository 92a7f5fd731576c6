"""The ceiling: a workflow that does nothing but take the updates a ticket takes.

It receives as many updates as the standard lifecycle sends, then sleeps the same
feedback window and completes. What it costs is what Temporal itself costs for that
message pattern on this machine; the ticket workflow is measured against it.
"""

# No postponed annotations, as in workflows/ticket.py: the module loads once per workflow.
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from bench.ceiling_models import NoopInput, Poke, Poked


@workflow.defn(name="BenchNoopWorkflow")
class NoopWorkflow:
    def __init__(self) -> None:
        self._received = 0

    @workflow.run
    async def run(self, input: NoopInput) -> int:
        await workflow.wait_condition(lambda: self._received >= input.updates)
        await workflow.sleep(input.window)
        return self._received

    @workflow.update
    def poke(self, message: Poke) -> Poked:
        self._received += 1
        return Poked(received=self._received)
