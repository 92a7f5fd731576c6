"""TicketWorkflow: the durable shell around the pure lifecycle core.

It feeds commands (Updates, and Signals of the same name for operators) and clock ticks
to :mod:`workflows.lifecycle`, keeps the resulting state, carries out the effects as
activities and child workflows, arms one timer for the earliest deadline (with a summary
naming it), upserts the search attributes and answers the ``view`` query. It decides
nothing itself.

Updates answer with a ``CommandResult`` (with the new view while the ticket is short,
else the view comes from the ``view`` query) or fail with an ``ApplicationError`` whose
``type`` is ``invalid_transition``, ``missing_fields`` or ``invalid_command`` and whose
first detail is ``{"status": ..., "missing": [...]}``; the API maps those to 409 and
422 (an unknown command, or arguments that fit no command, are ``invalid_command``). A
rejected Signal is recorded on the timeline as ``rejected_command``; one that cannot be
read is logged and dropped; neither fails the workflow.
"""

# No ``from __future__ import annotations`` here: the sandbox executes this module afresh
# for every ticket a worker loads, and string annotations cost the SDK a ForwardRef
# compile per handler parameter, a fifth of that module load.
import asyncio
from collections import deque
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    WorkflowAlreadyStartedError,
)

# What passes through the sandbox is data and I/O: the models (each class built once per
# worker, not once per ticket), the activities (their libraries cannot load inside it),
# the zone objects (a ZoneInfo made inside cannot convert times) and the libraries the
# models and rules lean on. The rules themselves (the lifecycle and everything it
# imports) load inside the sandbox, afresh for each ticket, where reading the clock or
# doing I/O by mistake fails the workflow task instead of passing unnoticed.
with workflow.unsafe.imports_passed_through():
    # pydantic imports it lazily to validate EmailStr; load it here, outside the sandbox.
    import email_validator  # noqa: F401
    import idna  # noqa: F401  (addresses, in the rules)
    from pydantic import BaseModel

    import workflows.zones  # noqa: F401  (the calendar, in the rules)
    from activities.archive import ArchiveActivities
    from activities.calendar import CalendarActivities
    from activities.email import EmailActivities
    from activities.store import StoreActivities, StoreInput
    from activities.webhooks import WebhookActivities
    from workflows.messages import ChildClosedCommand, MergeReceivedCommand
    from workflows.models import (
        AgentNoticeInput,
        ArchiveInput,
        CalendarRequest,
        Command,
        CommandResult,
        Effect,
        EmailInput,
        MergeIntoEffect,
        NotifyAgentEffect,
        NotifyParentEffect,
        SendEmailEffect,
        SlaAlertEffect,
        SlaAlertInput,
        StartChildEffect,
        Status,
        TicketInput,
        TicketState,
        TicketView,
        WebhookEffect,
        WebhookInput,
        workflow_id_for,
    )
    from workflows.records import Decision

# The rules: imported after the block above, so they find the models passed through.
from workflows import lifecycle
from workflows.commands import BY_NAME
from workflows.search import (
    SearchValue,
    published_values,
    search_attribute_updates,
    search_values,
)
from workflows.transaction import CommandRejected

EMAIL_TIMEOUT = timedelta(seconds=60)
# The activity heartbeats while it talks to SMTP: a send on a dead worker retries soon.
EMAIL_HEARTBEAT = timedelta(seconds=15)
EMAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=["NoRecipient", "RecipientsRefused"],
)
# A customer email still undelivered after a day is reported on the timeline instead.
EMAIL_GIVE_UP = timedelta(days=1)
WEBHOOK_TIMEOUT = timedelta(seconds=60)
WEBHOOK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=15),
)
WEBHOOK_GIVE_UP = timedelta(days=2)
ARCHIVE_TIMEOUT = timedelta(seconds=30)
# No give-up time: a closed ticket is retried until the archive takes it.
ARCHIVE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
)
STORE_TIMEOUT = timedelta(seconds=10)
# A database that is away holds the command's answer this long at most.
STORE_GIVE_UP = timedelta(minutes=2)
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=20),
)
CALENDAR_TIMEOUT = timedelta(seconds=30)
CALENDAR_RETRY = RetryPolicy(maximum_attempts=5, non_retryable_error_types=["InvalidCalendar"])
# Refresh the holiday list this long before the snapshot runs out.
CALENDAR_REFRESH_MARGIN = timedelta(days=180)
MIN_TIMER = timedelta(milliseconds=1)
# workflow.patched ids (README, "Changing workflow code"); never reuse or rename one.
ARCHIVE_LOCALLY = "archive-as-local-activity"
TITLE_MEMO = "title"


@workflow.defn(name="TicketWorkflow")
class TicketWorkflow:
    @workflow.init
    def __init__(self, input: TicketInput) -> None:
        self._policy = input.policy
        self._calendar = input.calendar
        self._deliver_webhooks = input.deliver_webhooks
        self._notify_agents = input.notify_agents
        self._archive_locally = input.archive_locally
        self._keep_store = input.keep_store
        # Each change of the state counts one version; the store has been written (or a
        # write has been given up) up to ``_store_attempted``. A command's Update answers
        # only once the store holds its change; several changes in one activation make
        # one write.
        self._version = 1
        self._store_attempted = 0
        self._store_waiters = 0
        self._outbox: deque[Effect] = deque(input.pending_effects)
        # Started with its attributes (by the API, or inherited by a continue-as-new), the
        # ticket upserts only what changes from them.
        self._published: dict[str, SearchValue] = published_values(
            workflow.info().typed_search_attributes
        )
        # Kept rather than read back: decoding the memo on every change costs a payload
        # conversion each time.
        self._published_title = workflow.memo_value(TITLE_MEMO, None, type_hint=str)
        self._effects_in_flight = 0
        self._effect_tasks: set[asyncio.Task[None]] = set()
        if input.state is not None:
            self._state = input.state
        else:
            created = lifecycle.opening(input, workflow.now())
            self._state = created.state
            self._queue(created.effects)

    @workflow.run
    async def run(self, input: TicketInput) -> TicketView:
        self._publish()
        while True:
            if self._outbox:
                # Each effect runs on its own: a webhook receiver that is down (retried
                # for days) must not hold back the customer's email.
                effect = self._outbox.popleft()
                self._effects_in_flight += 1
                workflow_task = asyncio.create_task(self._carry_out_and_count(effect))
                self._effect_tasks.add(workflow_task)
                workflow_task.add_done_callback(self._effect_tasks.discard)
                continue
            if self._store_due():
                await self._write_store()
                continue
            if self._state.status is Status.CLOSED:
                break
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                # An update delivered in this activation runs in a task that counts as
                # "in progress" only once started: yield so it starts, then look again.
                await asyncio.sleep(0)
                await workflow.wait_condition(lambda: self._effects_in_flight == 0)
                if workflow.all_handlers_finished() and not self._outbox:
                    self._continue_as_new()
                continue
            await self._refresh_calendar_if_needed()
            await self._sleep_until_next_deadline()
        await workflow.wait_condition(
            lambda: (
                workflow.all_handlers_finished()
                and not self._outbox
                and self._effects_in_flight == 0
            )
        )
        view = self._view()
        # The final view outlives Temporal's retention; the workflow completes only after.
        # Asked only of inputs older than ``archive_locally``: in a new ticket the patch
        # check would record a marker and an upsert for as long as it stays in the code.
        if self._archive_locally or workflow.patched(ARCHIVE_LOCALLY):
            # A quick database write: as a local activity it costs one history event and
            # no extra workflow task, instead of six events.
            await workflow.execute_local_activity_method(
                ArchiveActivities.archive,
                ArchiveInput(view=view),
                start_to_close_timeout=ARCHIVE_TIMEOUT,
                retry_policy=ARCHIVE_RETRY,
                summary="Archive the closed ticket",
            )
        else:
            await workflow.execute_activity_method(
                ArchiveActivities.archive,
                ArchiveInput(view=view),
                start_to_close_timeout=ARCHIVE_TIMEOUT,
                retry_policy=ARCHIVE_RETRY,
                summary="Archive the closed ticket",
            )
        self._store_attempted = self._version  # the archive wrote the store's row too
        return view

    # ------------------------------------------------------------------ messages

    # Every command of workflows.commands.SPECS is an Update (with its validator) and a
    # Signal of the same name; a message between tickets is a Signal only. One handler of
    # each kind takes them all by name, so a command is declared once, in the core, and
    # the sandbox builds three handlers per ticket instead of two per command.

    @workflow.update(dynamic=True)
    async def command(self, name: str, args: Sequence[RawValue]) -> CommandResult:
        result = self._execute(_command_from(name, args, self._state.status))
        await self._stored()
        return result

    @command.validator
    def validate_command(self, name: str, args: Sequence[RawValue]) -> None:
        self._validate(_command_from(name, args, self._state.status))

    @workflow.signal(dynamic=True)
    def command_signal(self, name: str, args: Sequence[RawValue]) -> None:
        try:
            command = _command_from(name, args, self._state.status, signal=True)
        except ApplicationError as unreadable:
            # Nothing to record: the command cannot be read. A Signal never fails the
            # workflow.
            workflow.logger.warning(
                "signal dropped", extra={"signal": name, "reason": unreadable.message}
            )
            return
        self._execute_signal(command)

    @workflow.query
    def view(self) -> TicketView:
        return self._view()

    # ------------------------------------------------------------------ internals

    def _validate(self, command: Command) -> None:
        try:
            lifecycle.check(self._state, command, workflow.now(), self._policy)
        except CommandRejected as rejected:
            raise _as_application_error(rejected) from None

    def _execute(self, command: Command) -> CommandResult:
        try:
            decision = lifecycle.decide(
                self._state, command, workflow.now(), self._policy, self._calendar
            )
        except CommandRejected as rejected:
            # The state may have moved between validation and execution.
            raise _as_application_error(rejected) from None
        self._adopt(decision)
        return lifecycle.acknowledgement(self._state, self._policy)

    def _execute_signal(self, command: Command) -> None:
        try:
            decision = lifecycle.decide(
                self._state, command, workflow.now(), self._policy, self._calendar
            )
        except CommandRejected as rejected:
            workflow.logger.info(
                "signal rejected", extra={"command": lifecycle.command_name(command)}
            )
            decision = lifecycle.reject(self._state, command, rejected, workflow.now())
        self._adopt(decision)

    def _set_state(self, state: TicketState) -> None:
        self._state = state
        self._version += 1

    # ------------------------------------------------------------------ the store

    def _store_due(self) -> bool:
        # A closed ticket's row is written with its archive, unless a command waits.
        return (
            self._keep_store
            and self._store_attempted < self._version
            and (self._state.status is not Status.CLOSED or self._store_waiters > 0)
        )

    async def _stored(self) -> None:
        """Until the store holds the state as it is now (or its write was given up)."""
        if not self._keep_store:
            return
        version = self._version
        self._store_waiters += 1
        try:
            await workflow.wait_condition(lambda: self._store_attempted >= version)
        finally:
            self._store_waiters -= 1

    async def _write_store(self) -> None:
        version = self._version
        try:
            await workflow.execute_local_activity_method(
                StoreActivities.store,
                StoreInput(view=self._view()),
                start_to_close_timeout=STORE_TIMEOUT,
                schedule_to_close_timeout=STORE_GIVE_UP,
                retry_policy=STORE_RETRY,
                summary="Write the ticket store",
            )
        except ActivityError as failure:
            # The ticket goes on: its next change writes the store again, and
            # ``python -m maintenance rebuild-store`` repairs what this one missed.
            workflow.logger.error(
                "ticket store write given up", extra={"error": str(failure.cause or failure)}
            )
        self._store_attempted = version

    def _adopt(self, decision: Decision) -> None:
        self._set_state(decision.state)
        self._queue(decision.effects)
        self._publish()

    def _queue(self, effects: Sequence[Effect]) -> None:
        self._outbox.extend(
            effect
            for effect in effects
            if (self._deliver_webhooks or not isinstance(effect, WebhookEffect))
            and (self._notify_agents or not isinstance(effect, NotifyAgentEffect))
        )

    def _publish(self) -> None:
        """Search attributes (only those that changed) and the Web UI's current details."""
        current = search_values(self._state)
        updates = search_attribute_updates(self._published, current)
        if updates:
            workflow.upsert_search_attributes(updates)
            self._published = current
        title = self._state.fields.title
        if title != self._published_title:
            # The title is not a search attribute (free text); lists read it from the memo.
            workflow.upsert_memo({TITLE_MEMO: title})
            self._published_title = title
        workflow.set_current_details(
            lifecycle.status_line(self._state, self._policy, self._calendar)
        )

    def _view(self) -> TicketView:
        return lifecycle.view(self._state, self._policy)

    async def _sleep_until_next_deadline(self) -> None:
        deadline = lifecycle.next_deadline(self._state)

        def woken() -> bool:
            return (
                bool(self._outbox)
                or self._store_due()
                or lifecycle.next_deadline(self._state) != deadline
                or self._state.status is Status.CLOSED
                # Commands that arm nothing (notes) still grow the history.
                or workflow.info().is_continue_as_new_suggested()
            )

        if deadline is None:
            await workflow.wait_condition(woken)
            return
        delay = max(deadline.due_at - workflow.now(), MIN_TIMER)
        try:
            await workflow.wait_condition(woken, timeout=delay, timeout_summary=deadline.label)
        except TimeoutError:
            self._adopt(lifecycle.tick(self._state, workflow.now(), self._policy, self._calendar))

    async def _refresh_calendar_if_needed(self) -> None:
        calendar = self._calendar
        if calendar.valid_until is None:
            return
        if workflow.now().date() + CALENDAR_REFRESH_MARGIN < calendar.valid_until:
            return
        request = CalendarRequest.like(calendar, from_year=workflow.now().year)
        try:
            self._calendar = await workflow.execute_activity_method(
                CalendarActivities.build_snapshot,
                request,
                start_to_close_timeout=CALENDAR_TIMEOUT,
                retry_policy=CALENDAR_RETRY,
                summary="Refresh the holiday calendar",
            )
        except ActivityError:
            workflow.logger.warning("calendar refresh failed; keeping the old snapshot")
            # Keep the old snapshot, and stop asking until the next run.
            self._calendar = calendar.model_copy(update={"valid_until": None})
        # Deadlines and SLA clocks depend on the calendar: derive them again.
        self._set_state(lifecycle.rederive(self._state, self._policy, self._calendar))
        self._publish()

    async def _carry_out_and_count(self, effect: Effect) -> None:
        try:
            await self._carry_out(effect)
        finally:
            self._effects_in_flight -= 1

    async def _carry_out(self, effect: Effect) -> None:
        if isinstance(effect, SendEmailEffect):
            await self._send_email(effect)
        elif isinstance(effect, WebhookEffect):
            await self._deliver_webhook(effect)
        elif isinstance(effect, StartChildEffect):
            await self._start_child(effect)
        elif isinstance(effect, NotifyParentEffect):
            await self._signal_ticket(effect.parent_id, ChildClosedCommand(child=self._state.id))
        elif isinstance(effect, NotifyAgentEffect):
            await self._notify_agent(effect)
        elif isinstance(effect, SlaAlertEffect):
            await self._tell_of_sla(effect)
        elif isinstance(effect, MergeIntoEffect):
            await self._signal_ticket(
                effect.target_id,
                MergeReceivedCommand(actor=effect.actor, **effect.content.model_dump()),
            )

    async def _send_email(self, effect: SendEmailEffect) -> None:
        request = EmailInput(
            ticket_id=self._state.id,
            profile=self._state.profile,
            language=self._policy.language,
            title=self._state.fields.title,
            email=effect,
            timezone=self._calendar.timezone,
            requester=self._state.fields.requester,
        )
        what = effect.template or "email"
        try:
            await self._mail(EmailActivities.send, request, f"{what} to {', '.join(effect.to)}")
        except ActivityError as failure:
            cause = str(failure.cause or failure)
            self._set_state(
                lifecycle.system_note(
                    self._state,
                    workflow.now(),
                    f"Email of event {effect.seq} could not be delivered: {cause}",
                    delivery_failed_seq=effect.seq,
                )
            )

    async def _mail(self, activity: Any, request: BaseModel, summary: str) -> None:
        """One of the email activities, with the retries and limits every email has."""
        await workflow.execute_activity_method(
            activity,
            request,
            start_to_close_timeout=EMAIL_TIMEOUT,
            schedule_to_close_timeout=EMAIL_GIVE_UP,
            heartbeat_timeout=EMAIL_HEARTBEAT,
            retry_policy=EMAIL_RETRY,
            summary=summary,
        )

    async def _notify_agent(self, effect: NotifyAgentEffect) -> None:
        request = AgentNoticeInput(
            ticket_id=self._state.id,
            language=self._policy.language,
            title=self._state.fields.title,
            agent=effect.agent,
            notice=effect.notice,
            seq=effect.seq,
            timezone=self._calendar.timezone,
        )
        try:
            await self._mail(
                EmailActivities.notify_agent, request, f"tell {effect.agent}: {effect.notice.value}"
            )
        except ActivityError:
            # A notice is a courtesy: the ticket is in the agent's inbox either way.
            workflow.logger.warning("agent notice given up", extra={"agent": effect.agent})

    async def _tell_of_sla(self, effect: SlaAlertEffect) -> None:
        request = SlaAlertInput(
            ticket_id=self._state.id,
            language=self._policy.language,
            title=self._state.fields.title,
            priority=self._state.fields.priority,
            alert=effect,
            timezone=self._calendar.timezone,
        )
        try:
            await self._mail(
                EmailActivities.tell_of_sla,
                request,
                f"{effect.alert.value}: {effect.clock.metric.value}",
            )
        except ActivityError:
            # The alert is on the timeline and went to the webhooks either way.
            workflow.logger.warning("SLA alert email given up", extra={"seq": effect.seq})

    async def _deliver_webhook(self, effect: WebhookEffect) -> None:
        request = WebhookInput(
            ticket_id=self._state.id,
            profile=self._state.profile,
            status_label=lifecycle.status_label(self._state, self._policy),
            effect=effect,
            occurred_at=workflow.now(),
        )
        try:
            await workflow.execute_activity_method(
                WebhookActivities.deliver,
                request,
                start_to_close_timeout=WEBHOOK_TIMEOUT,
                schedule_to_close_timeout=WEBHOOK_GIVE_UP,
                heartbeat_timeout=WEBHOOK_TIMEOUT,
                retry_policy=WEBHOOK_RETRY,
                summary=f"webhook {effect.event}",
            )
        except ActivityError:
            workflow.logger.warning("webhook given up", extra={"seq": effect.seq})

    async def _start_child(self, effect: StartChildEffect) -> None:
        spec = effect.spec
        child_input = TicketInput(
            ticket_id=effect.child_id,
            policy=self._policy,
            calendar=self._calendar,
            fields=spec.ticket_fields(),
            submit=spec.submit,
            actor=self._state.assignee.id if self._state.assignee else "system",
            parent=self._state.id,
            deliver_webhooks=self._deliver_webhooks,
            notify_agents=self._notify_agents,
            archive_locally=True,
            keep_store=True,
        )
        try:
            await workflow.start_child_workflow(
                TicketWorkflow.run,
                child_input,
                id=workflow_id_for(effect.child_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary=spec.title,
                memo={TITLE_MEMO: spec.title},
            )
        except WorkflowAlreadyStartedError:
            # A ticket with that id exists already; it reports its closing like any child.
            self._set_state(
                lifecycle.system_note(
                    self._state,
                    workflow.now(),
                    f"Child ticket {effect.child_id} already existed; it was not started again",
                )
            )

    async def _signal_ticket(self, ticket_id: str, command: Command) -> None:
        handle = workflow.get_external_workflow_handle(workflow_id_for(ticket_id))
        try:
            await handle.signal(lifecycle.command_name(command), command)
        except FailureError as failure:
            self._set_state(
                lifecycle.system_note(
                    self._state,
                    workflow.now(),
                    f"Ticket {ticket_id} could not be told: {failure.message}",
                )
            )

    def _continue_as_new(self) -> None:
        workflow.continue_as_new(
            TicketInput(
                ticket_id=self._state.id,
                policy=self._policy,
                calendar=self._calendar,
                state=self._state,
                pending_effects=tuple(self._outbox),
                deliver_webhooks=self._deliver_webhooks,
                notify_agents=self._notify_agents,
                archive_locally=True,
                keep_store=True,
            )
        )


def _command_from(
    name: str, args: Sequence[RawValue], status: Status, *, signal: bool = False
) -> Command:
    """The command ``name`` with its arguments, read as the model its spec names."""
    spec = BY_NAME.get(name)
    if spec is None or (spec.internal and not signal):
        raise _invalid_command(f"{name!r} is not a command of a ticket", status)
    if len(args) != 1:
        raise _invalid_command(f"{name} takes one argument, got {len(args)}", status)
    try:
        command: Command = workflow.payload_converter().from_payload(args[0].payload, spec.model)
    except Exception as error:  # the converter wraps pydantic's ValidationError
        raise _invalid_command(f"{name}: the arguments do not fit: {error}", status) from None
    return command


def _invalid_command(reason: str, status: Status) -> ApplicationError:
    return _as_application_error(
        CommandRejected(reason[:1000], status=status, code="invalid_command")
    )


def _as_application_error(rejected: CommandRejected) -> ApplicationError:
    return ApplicationError(
        rejected.reason,
        {"status": rejected.status.value, "missing": list(rejected.missing)},
        type=rejected.code,
        non_retryable=True,
    )
