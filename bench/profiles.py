"""Bench-only copies of the real profiles: the same rules, timers in seconds.

The *standard lifecycle* is: create (submitted), assign, wait for the customer, the
customer replies, resolve, and the feedback window runs out and closes the ticket. In
the bench the feedback window is :data:`FEEDBACK_WINDOW` with no reminder inside it,
and every other timer is far beyond the run, so the close is the only timer that fires.
Enate needs an explicit ``start`` after ``assign`` (assignment keeps the ticket in To
Do there), so its lifecycle has one command more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from workflows.messages import (
    AssignCommand,
    CustomerReplyCommand,
    ResolveCommand,
    StartCommand,
    WaitCommand,
)
from workflows.models import (
    BuiltInProfile,
    Command,
    Offset,
    OffsetUnit,
    Priority,
    ProfileName,
    ProfilePolicy,
    ResolutionMethod,
    SlaMetric,
    SlaPolicy,
    TicketFields,
    WaitReason,
)
from workflows.policy import policy_for

FEEDBACK_WINDOW = timedelta(seconds=1)
FAR = timedelta(hours=6)
AGENT = "ana"
REQUESTER = "cliente@example.com"


def seconds(amount: float) -> Offset:
    return Offset(amount=int(amount), unit=OffsetUnit.SECONDS)


def standard_policy(profile: ProfileName) -> ProfilePolicy:
    """The profile's rules with a short feedback window and every other timer far away."""
    real = policy_for(profile)
    far = FAR.total_seconds()
    timers = real.timers.model_copy(
        update={
            "customer_wait_reminders": tuple(
                seconds(far * (n + 1)) for n in range(len(real.timers.customer_wait_reminders))
            ),
            "customer_wait_close": (
                seconds(far * 4) if real.timers.customer_wait_close is not None else None
            ),
            "resolved_reminders": (),
            "resolved_close": seconds(FEEDBACK_WINDOW.total_seconds()),
            "defer_reminders_to_business_hours": False,
        }
    )
    return real.model_copy(update={"timers": timers})


def reminder_policy(profile: ProfileName, first_reminder: timedelta) -> ProfilePolicy:
    """For timer lateness: the customer-wait reminder fires ``first_reminder`` after the wait."""
    real = policy_for(profile)
    far = FAR.total_seconds()
    timers = real.timers.model_copy(
        update={
            "customer_wait_reminders": (seconds(first_reminder.total_seconds()), seconds(far)),
            "customer_wait_close": seconds(far * 2),
            "defer_reminders_to_business_hours": False,
        }
    )
    return real.model_copy(update={"timers": timers})


def with_sla(policy: ProfilePolicy) -> ProfilePolicy:
    """``policy`` with SLA clocks on every metric: targets beyond the run, so what they
    cost is computing the clocks and arming their warnings (none falls due)."""
    far = seconds(FAR.total_seconds())
    targets = {metric: {priority: far for priority in Priority} for metric in SlaMetric}
    return policy.model_copy(update={"sla": SlaPolicy(targets=targets, warn_at=0.75)})


def alert_policy(warning_after: timedelta, breach_after: timedelta) -> ProfilePolicy:
    """For SLA lateness: a first reply warned ``warning_after`` the submission and
    breached ``breach_after`` it (wall-clock seconds, so the calendar plays no part)."""
    real = standard_policy(BuiltInProfile.SUPPORT)
    target = seconds(breach_after.total_seconds())
    sla = SlaPolicy(
        targets={SlaMetric.FIRST_REPLY: {priority: target for priority in Priority}},
        warn_at=warning_after / breach_after,
    )
    return real.model_copy(update={"sla": sla})


FIELDS = TicketFields(
    title="Erro ao emitir nota fiscal",
    description="Ao emitir a NF-e o sistema mostra o erro 500 desde ontem.",
    category="fiscal",
    requester=REQUESTER,
    primary_contact=REQUESTER,
)


@dataclass(frozen=True)
class Step:
    """One command of the standard lifecycle, for the Temporal client and for HTTP."""

    name: str
    command: Command
    path: str
    body: dict[str, Any]
    requester: bool = False
    """Sent with the requester's key (the customer's reply)."""


def standard_steps(profile: ProfileName) -> Sequence[Step]:
    steps = [
        Step(
            "assign",
            AssignCommand(actor=AGENT, assignee=AGENT),
            "assign",
            {"assignee": AGENT, "kind": "human"},
        )
    ]
    if profile is BuiltInProfile.ENATE:
        steps.append(Step("start", StartCommand(actor=AGENT), "start", {}))
    wait_days = {"days": 10} if profile is BuiltInProfile.ENATE else {}
    steps += [
        Step(
            "wait",
            WaitCommand(actor=AGENT, reason=WaitReason.CUSTOMER, **wait_days),
            "wait",
            {"reason": "customer", **wait_days},
        ),
        Step(
            "customer_reply",
            CustomerReplyCommand(
                actor=REQUESTER, body="Segue o print do erro.", from_address=REQUESTER
            ),
            "replies",
            {"body": "Segue o print do erro."},
            requester=True,
        ),
        Step(
            "resolve",
            ResolveCommand(
                actor=AGENT,
                method=ResolutionMethod.CUSTOMER_RESPONSE,
                note="Corrigido o cadastro do certificado.",
            ),
            "resolve",
            {"method": "customer_response", "note": "Corrigido o cadastro do certificado."},
        ),
    ]
    return steps
