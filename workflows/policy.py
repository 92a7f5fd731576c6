"""Profiles as data: labels, rules and timer offsets (DESIGN sections 2 to 4).

The engine has one code path; everything that differs between the Enate process and the
Zendesk support desk is a field of :class:`ProfilePolicy`. The policy travels in the
workflow input, so a running ticket keeps the rules it was created with even after the
defaults here change.

Decisions where the source documents are silent:

* Support follow-up waits are labelled "Acompanhamento" (the design says "same").
* Support cannot resolve with ``spam`` or ``unknown_sender``: those methods close the
  ticket at once, and support staff may never close a ticket by hand.
* Enate assignment keeps the ticket in To Do until the resource starts it (or writes a
  note or email on it); support assignment moves the ticket to "Em análise" at once.
* Enate labels a wait "Wait / Aguarde: <reason>"; support by its reason alone.
* Support acknowledges a ticket opened by email; Enate does not (its seed says nothing
  of it) but turns away unknown senders, as its seed's "Rejeitado - endereço de email
  desconhecido" does.
"""

from __future__ import annotations

from collections.abc import Callable

from workflows.models import (
    DEADLINE_LABELS,
    BuiltInProfile,
    Offset,
    OffsetUnit,
    ProfileName,
    ProfilePolicy,
    RequesterKind,
    ResolutionMethod,
    Status,
    TimerPolicy,
    WaitReason,
)


def business_days(amount: int) -> Offset:
    return Offset(amount=amount, unit=OffsetUnit.BUSINESS_DAYS)


def hours(amount: int) -> Offset:
    return Offset(amount=amount, unit=OffsetUnit.HOURS)


ENATE = ProfilePolicy(
    name=BuiltInProfile.ENATE,
    language="en",
    status_labels={
        Status.DRAFT: "Draft / Rascunho",
        Status.NEW: "To Do / A Fazer",
        Status.IN_PROGRESS: "In Progress / Em andamento",
        Status.WAITING: "Wait / Aguarde",
        Status.RESOLVED: "Resolved / Resolvido",
        Status.CLOSED: "Closed / Fechado",
    },
    wait_labels={
        WaitReason.CUSTOMER: "Wait for more info",
        WaitReason.FOLLOW_UP: "Follow-up",
        WaitReason.SPLIT: "Split into multiple tickets",
        WaitReason.CASE: "Case launched",
    },
    wait_label_format="{status}: {reason}",
    deadline_labels=DEADLINE_LABELS["en"],
    wait_reasons=frozenset(
        {WaitReason.CUSTOMER, WaitReason.FOLLOW_UP, WaitReason.SPLIT, WaitReason.CASE}
    ),
    resolution_methods=frozenset(ResolutionMethod),
    assign_starts_work=False,
    agent_activity_starts_work=True,
    require_resolution_message=True,
    qualification_enabled=False,
    split_enabled=True,
    # The Enate process turns away senders it does not know (when the deployment lists
    # its known senders); the support desk answers anyone.
    reject_unknown_senders=True,
    timers=TimerPolicy(
        resolved_close=business_days(3),
        defer_reminders_to_business_hours=False,
        restart_clocks_on_email=False,
        stop_validation_reminders_when_rated=True,
    ),
)

SUPPORT = ProfilePolicy(
    name=BuiltInProfile.SUPPORT,
    language="pt-BR",
    status_labels={
        Status.DRAFT: "Rascunho",
        Status.NEW: "Novo",
        Status.IN_PROGRESS: "Em análise",
        Status.WAITING: "Aguardando",
        Status.RESOLVED: "Validação cliente",
        Status.CLOSED: "Fechado",
    },
    wait_labels={
        WaitReason.CUSTOMER: "Aguardando resposta cliente",
        WaitReason.FOLLOW_UP: "Acompanhamento",
        WaitReason.RELEASE: "Aguardando solução definitiva",
        WaitReason.OTHER_TEAM: "Em análise conjunta com outras áreas",
    },
    wait_label_format="{reason}",
    deadline_labels=DEADLINE_LABELS["pt-BR"],
    wait_reasons=frozenset(
        {WaitReason.CUSTOMER, WaitReason.FOLLOW_UP, WaitReason.RELEASE, WaitReason.OTHER_TEAM}
    ),
    resolution_methods=frozenset(ResolutionMethod)
    - {ResolutionMethod.SPAM, ResolutionMethod.UNKNOWN_SENDER},
    assign_starts_work=True,
    agent_activity_starts_work=False,
    require_resolution_message=False,
    qualification_enabled=True,
    qualification_review_kinds=frozenset({RequesterKind.CONSULTANT, RequesterKind.CHANNEL}),
    split_enabled=False,
    # The seed's "Novo: o ticket foi recebido pelo suporte": the customer hears so.
    acknowledge_new_tickets=True,
    timers=TimerPolicy(
        customer_wait_reminders=(business_days(2), business_days(4)),
        customer_wait_close=business_days(6),
        resolved_reminders=(hours(1), business_days(2), business_days(5)),
        resolved_close=business_days(6),
        defer_reminders_to_business_hours=True,
        restart_clocks_on_email=True,
        stop_validation_reminders_when_rated=True,
    ),
)

PROFILES: dict[str, ProfilePolicy] = {
    BuiltInProfile.ENATE.value: ENATE,
    BuiltInProfile.SUPPORT.value: SUPPORT,
}


PolicySource = Callable[[ProfileName], ProfilePolicy]
"""Where new tickets get their rules: the profiles in force (``profiles.Profiles``),
:func:`policy_for` for the built-ins alone, or a bench's short-timer copies. Raises
:class:`UnknownProfile` for a name it does not know."""


class UnknownProfile(LookupError):
    """A profile name that is not in force."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown profile {name!r}; in force: {', '.join(known)}")
        self.name = name
        self.known = known


def policy_for(profile: ProfileName) -> ProfilePolicy:
    """A built-in profile's policy."""
    found = PROFILES.get(profile)
    if found is None:
        raise UnknownProfile(profile, tuple(PROFILES))
    return found
