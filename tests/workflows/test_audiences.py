"""What the requester reads of a ticket: the customer view (DESIGN section 10).

The visibility table below is written from the design, not derived from the code. The
property drives tickets through random lifecycles in which everything internal (notes,
robot hand-offs, merged content, wait details, a robot assignee) carries a marker, and
checks the marker never reaches the customer view.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.tickets import COMPLETE_FIELDS, Driver
from workflows import lifecycle
from workflows.audiences import PUBLIC_DATA
from workflows.messages import (
    AssignCommand,
    AutoReplyReceivedCommand,
    BounceReceivedCommand,
    CaseCompletedCommand,
    ChildClosedCommand,
    CustomerReplyCommand,
    EditCommand,
    MergeCommand,
    MergeReceivedCommand,
    NoteCommand,
    QualifyCommand,
    RateCommand,
    ReleasePublishedCommand,
    ReopenCommand,
    RequeueCommand,
    ResolveCommand,
    ResumeCommand,
    RobotRejectCommand,
    SendEmailCommand,
    SplitCommand,
    StartCommand,
    SubmitCommand,
    ThirdPartyMessageCommand,
    UnassignCommand,
    WaitCommand,
)
from workflows.models import (
    AssigneeKind,
    BuiltInProfile,
    Command,
    EventType,
    NewTicket,
    Qualification,
    RequesterKind,
    ResolutionMethod,
    Status,
    Visibility,
    WaitReason,
)
from workflows.transaction import CommandRejected

SECRET = "SEGREDO"

PUBLIC_BY_DESIGN = {
    # what the customer wrote, emails and reminders sent to them
    "customer_reply",
    "email_sent",
    "reminder_sent",
    # status changes (shown as labels)
    "created",
    "submitted",
    "started",
    "waiting",
    "resumed",
    "wait_ended",
    # resolution, reopening, closing, rating, follow-up links
    "resolved",
    "reopened",
    "closed",
    "rated",
    "follow_up_created",
}


def test_every_event_type_has_the_audience_the_design_gives_it() -> None:
    public = {e.value for e in EventType if e.visibility is Visibility.PUBLIC}
    assert public == PUBLIC_BY_DESIGN
    internal = {e.value for e in EventType if e.visibility is Visibility.INTERNAL}
    assert {"note", "rejected_command", "robot_rejected", "qualified", "merged"} <= internal


COMMANDS: list[Command] = [
    EditCommand(actor="ana", title="Novo título"),
    AssignCommand(actor="ana", assignee="ana"),
    AssignCommand(actor="ana", assignee=f"{SECRET}-robo", kind=AssigneeKind.ROBOT),
    StartCommand(actor="ana"),
    RobotRejectCommand(actor=f"{SECRET}-robo", reason=f"{SECRET} robot"),
    WaitCommand(actor="ana", reason=WaitReason.CUSTOMER),
    WaitCommand(actor="ana", reason=WaitReason.CUSTOMER, days=2),
    WaitCommand(actor="ana", reason=WaitReason.RELEASE, version=f"{SECRET}-9"),
    WaitCommand(actor="ana", reason=WaitReason.OTHER_TEAM, area=f"{SECRET} area"),
    WaitCommand(actor="ana", reason=WaitReason.CASE, case_ref=f"{SECRET}-CASE"),
    ResumeCommand(actor="ana"),
    NoteCommand(actor="ana", body=f"{SECRET}: a senha do sistema de teste é 1234"),
    SendEmailCommand(actor="ana", body="Pode enviar o log?"),
    SendEmailCommand(actor="ana", body="Resolvido.", resolve=True),
    CustomerReplyCommand(actor="cliente@example.com", body="Segue o log", as_requester=True),
    ResolveCommand(
        actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE, note=f"{SECRET} resolution"
    ),
    ResolveCommand(actor="ana", method=ResolutionMethod.REJECTED),
    ReopenCommand(actor="ana"),
    CaseCompletedCommand(note=f"{SECRET} case note"),
    QualifyCommand(actor="ana", qualification=Qualification.PRODUCT_DEFECT),
    RateCommand(actor="cliente@example.com", score=4, comment="Bom"),
    MergeCommand(actor="ana", into=f"{SECRET}-other"),
    MergeReceivedCommand(
        actor="ana",
        source=f"{SECRET}-source",
        title=f"{SECRET} title",
        description=f"{SECRET} description",
        messages=(f"{SECRET} message",),
    ),
    SplitCommand(actor="ana", children=(NewTicket(title=f"{SECRET} child"),)),
    SubmitCommand(actor="ana"),
    UnassignCommand(actor="ana", to="bruno"),  # the agent handling it is shown
    UnassignCommand(actor="ana"),
    RequeueCommand(actor="ana"),
    ThirdPartyMessageCommand(
        actor=f"{SECRET}@intruso.example",
        body=f"{SECRET} from a stranger",
        subject=f"{SECRET} subject",
        from_address=f"{SECRET}@intruso.example",
    ),
    AutoReplyReceivedCommand(
        from_address=f"{SECRET}@ausente.example",
        subject=f"{SECRET} away",
        body=f"{SECRET} out of office",
        reason="Auto-Submitted: auto-replied",
    ),
    BounceReceivedCommand(
        recipients=(f"{SECRET}@errado.example",), diagnostic=f"{SECRET} 550 no such user"
    ),
    ReleasePublishedCommand(version=f"{SECRET}-9"),
    ChildClosedCommand(child=f"{SECRET}-child"),
]
DELAYS = [timedelta(hours=2), timedelta(days=1), timedelta(days=4), timedelta(days=9)]


@st.composite
def tickets(draw: st.DrawFn) -> Driver:
    profile = draw(st.sampled_from(list(BuiltInProfile)))
    kind = draw(st.sampled_from(list(RequesterKind)))
    driver = Driver(profile, fields=COMPLETE_FIELDS.model_copy(update={"requester_kind": kind}))
    for _ in range(draw(st.integers(min_value=0, max_value=30))):
        if draw(st.booleans()) and draw(st.booleans()):
            driver.advance(draw(st.sampled_from(DELAYS)))
            continue
        driver.now += timedelta(minutes=1)
        with contextlib.suppress(CommandRejected):
            driver.do(draw(st.sampled_from(COMMANDS)))
    return driver


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tickets())
def test_the_customer_view_of_any_ticket_holds_nothing_internal(driver: Driver) -> None:
    staff = lifecycle.view(driver.state, driver.policy)
    customer = lifecycle.customer_view(staff, driver.policy)
    assert SECRET not in customer.model_dump_json()
    for event in customer.timeline:
        assert event.type.visibility is Visibility.PUBLIC
        assert set(event.data) <= PUBLIC_DATA.get(event.type, frozenset())
    public_seqs = [e.seq for e in staff.timeline if e.type.visibility is Visibility.PUBLIC]
    assert [e.seq for e in customer.timeline] == public_seqs
    reviews = staff.requester_kind in driver.policy.qualification_review_kinds
    if not reviews:
        assert customer.qualification is None
    assert not {"assignee", "highlighted", "needs_human", "deadlines"} & set(customer.model_dump())


def test_customer_events_name_the_status_they_moved_to_in_the_profile_words() -> None:
    support = Driver(BuiltInProfile.SUPPORT).in_progress()
    support.do(WaitCommand(actor="ana", reason=WaitReason.CUSTOMER))
    view = lifecycle.customer_view(lifecycle.view(support.state, support.policy), support.policy)
    labels = [(e.type.value, e.status_label) for e in view.timeline]
    assert ("submitted", "Novo") in labels
    assert ("started", "Em análise") in labels
    assert ("waiting", "Aguardando resposta cliente") in labels
    assert view.wait_label == "Aguardando resposta cliente"
    assert view.closes_at is not None  # six business days without an answer

    enate = Driver(BuiltInProfile.ENATE).in_progress()
    enate.do(WaitCommand(actor="ana", reason=WaitReason.CUSTOMER, days=1))
    enate.do(ResumeCommand(actor="ana"))
    enate.do(ResolveCommand(actor="ana", method=ResolutionMethod.SPAM))
    view = lifecycle.customer_view(lifecycle.view(enate.state, enate.policy), enate.policy)
    labels = [(e.type.value, e.status_label) for e in view.timeline]
    assert ("waiting", "Wait / Aguarde: Wait for more info") in labels
    assert ("resolved", "Closed / Fechado") in labels  # spam closes at once
    assert view.resolution is not None and view.resolution.method is ResolutionMethod.SPAM


def test_a_wait_that_ends_by_resolving_leaves_the_label_to_the_resolution() -> None:
    enate = Driver(BuiltInProfile.ENATE).in_progress()
    enate.do(
        WaitCommand(actor="ana", reason=WaitReason.CUSTOMER, days=1, close_if_no_response=True)
    )
    enate.advance(timedelta(days=2))
    view = lifecycle.customer_view(lifecycle.view(enate.state, enate.policy), enate.policy)
    ended = next(e for e in view.timeline if e.type is EventType.WAIT_ENDED)
    resolved = next(e for e in view.timeline if e.type is EventType.RESOLVED)
    assert ended.status_label is None
    assert resolved.status_label == "Resolved / Resolvido"


@pytest.mark.parametrize("kind", list(RequesterKind))
def test_consultants_and_channels_review_the_qualification_in_customer_validation(
    kind: RequesterKind,
) -> None:
    driver = Driver(
        BuiltInProfile.SUPPORT, fields=COMPLETE_FIELDS.model_copy(update={"requester_kind": kind})
    ).in_progress()
    driver.do(QualifyCommand(actor="ana", qualification=Qualification.CONFIGURATION))
    review = QualifyCommand(
        actor="cliente@example.com",
        requester_only=True,
        qualification=Qualification.PRODUCT_DEFECT,
    )
    reviews = kind is not RequesterKind.CUSTOMER
    with pytest.raises(CommandRejected) as too_early:
        driver.do(review)  # not yet in customer validation (or never, for a customer)
    assert too_early.value.code == ("invalid_transition" if reviews else "forbidden")

    driver.do(ResolveCommand(actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE))
    view = lifecycle.customer_view(lifecycle.view(driver.state, driver.policy), driver.policy)
    assert view.qualification_review_open is reviews
    if not reviews:
        assert view.qualification is None
        with pytest.raises(CommandRejected) as refused:
            driver.do(review)
        assert refused.value.code == "forbidden"
        return
    assert view.qualification is Qualification.CONFIGURATION
    driver.do(review)
    assert driver.state.qualification is Qualification.PRODUCT_DEFECT
    assert driver.state.status is Status.RESOLVED
    someone_else = review.model_copy(update={"actor": "outro@example.com"})
    with pytest.raises(CommandRejected) as stranger:
        driver.do(someone_else)
    assert stranger.value.code == "not_found"


def test_the_enate_profile_has_no_qualification_to_review() -> None:
    driver = Driver(
        BuiltInProfile.ENATE,
        fields=COMPLETE_FIELDS.model_copy(update={"requester_kind": RequesterKind.CONSULTANT}),
    )
    view = lifecycle.customer_view(lifecycle.view(driver.state, driver.policy), driver.policy)
    assert view.qualification is None and not view.qualification_review_open


def test_a_requester_may_send_only_what_the_core_lets_a_requester_send() -> None:
    driver = Driver(BuiltInProfile.SUPPORT).in_progress()
    note = NoteCommand(actor="cliente@example.com", requester_only=True, body="hi")
    with pytest.raises(CommandRejected) as refused:
        driver.do(note)
    assert refused.value.code == "forbidden"
