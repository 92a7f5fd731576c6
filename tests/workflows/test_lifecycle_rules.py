"""Rules of the lifecycle core beyond the transition table: timers, clocks, effects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.support.tickets import CALENDAR, COMPLETE_FIELDS, T0, Driver, state_named
from workflows import lifecycle
from workflows.lifecycle import CommandRejected
from workflows.messages import (
    AssignCommand,
    ChildClosedCommand,
    CustomerReplyCommand,
    MergeCommand,
    NoteCommand,
    QualifyCommand,
    ReleasePublishedCommand,
    ResolveCommand,
    RobotRejectCommand,
    SendEmailCommand,
    SplitCommand,
    SubmitCommand,
    WaitCommand,
)
from workflows.models import (
    AssigneeKind,
    BuiltInProfile,
    DeadlineKind,
    EmailKind,
    EventType,
    MergeIntoEffect,
    Nature,
    NewTicket,
    NotifyParentEffect,
    ProfileName,
    Qualification,
    ResolutionMethod,
    SendEmailEffect,
    StartChildEffect,
    Status,
    TicketFields,
    TicketInput,
    WaitReason,
    WebhookEffect,
)
from workflows.policy import policy_for

SP = ZoneInfo("America/Sao_Paulo")
SUPPORT = BuiltInProfile.SUPPORT
ENATE = BuiltInProfile.ENATE


def sp(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SP).astimezone(UTC)


def events(driver: Driver, kind: EventType) -> list[dict[str, object]]:
    return [e.data for e in driver.state.timeline if e.type is kind]


def emails(driver: Driver) -> list[SendEmailEffect]:
    return [e for e in driver.effects if isinstance(e, SendEmailEffect)]


# ---------------------------------------------------------------- submission


def test_submit_lists_every_missing_field() -> None:
    driver = Driver(ENATE, submit=False, fields=TicketFields(title="Only a title"))
    with pytest.raises(CommandRejected) as rejected:
        driver.do(SubmitCommand(actor="ana"))
    assert rejected.value.code == "missing_fields"
    assert rejected.value.missing == ("description", "category", "primary_contact", "requester")


def test_description_becomes_the_first_note_on_submit() -> None:
    driver = Driver(ENATE)
    notes = events(driver, EventType.NOTE)
    assert notes[0]["body"] == COMPLETE_FIELDS.description
    assert [e.type for e in driver.state.timeline] == [
        EventType.CREATED,
        EventType.NOTE,
        EventType.SUBMITTED,
    ]


def test_email_from_an_empty_draft_fills_title_and_description() -> None:
    driver = Driver(ENATE, submit=False, fields=TicketFields(primary_contact="c@example.com"))
    driver.do(SendEmailCommand(actor="ana", subject="Invoice 42", body="Where is invoice 42?"))
    assert driver.state.fields.title == "Invoice 42"
    assert driver.state.fields.description == "Where is invoice 42?"
    assert emails(driver)[0].to == ("c@example.com",)


# ---------------------------------------------------------------- work


def test_support_assignment_starts_analysis_but_enate_waits_for_the_resource() -> None:
    support, enate = Driver(SUPPORT), Driver(ENATE)
    assert support.do(AssignCommand(actor="sofia", assignee="ana")).status is Status.IN_PROGRESS
    assert enate.do(AssignCommand(actor="sofia", assignee="ana")).status is Status.NEW


def test_enate_note_on_a_new_ticket_starts_it_for_the_author() -> None:
    driver = Driver(ENATE)
    state = driver.do(NoteCommand(actor="bruno", body="Looking at it"))
    assert state.status is Status.IN_PROGRESS
    assert state.assignee is not None and state.assignee.id == "bruno"


def test_robot_rejection_hands_the_ticket_to_a_human() -> None:
    driver = Driver(ENATE)
    driver.do(AssignCommand(actor="sofia", assignee="robo-1", kind=AssigneeKind.ROBOT))
    state = driver.do(RobotRejectCommand(actor="robo-1", reason="unreadable attachment"))
    assert (state.status, state.assignee, state.needs_human) == (Status.NEW, None, True)
    assert events(driver, EventType.ROBOT_REJECTED)[0]["reason"] == "unreadable attachment"
    driver.do(AssignCommand(actor="sofia", assignee="ana"))
    assert driver.state.needs_human is False


@pytest.mark.parametrize(
    ("profile", "command", "fragment"),
    [
        (ENATE, WaitCommand(reason=WaitReason.CUSTOMER), "needs 'days'"),
        (SUPPORT, WaitCommand(reason=WaitReason.CUSTOMER, days=3), "times customer waits itself"),
        (
            SUPPORT,
            WaitCommand(reason=WaitReason.FOLLOW_UP, until=T0 - timedelta(hours=1)),
            "future",
        ),
        (SUPPORT, WaitCommand(reason=WaitReason.FOLLOW_UP), "needs 'until'"),
        (SUPPORT, WaitCommand(reason=WaitReason.RELEASE), "needs 'version'"),
        (
            SUPPORT,
            WaitCommand(reason=WaitReason.RELEASE, version="1", area="x"),
            "does not take: area",
        ),
        (ENATE, WaitCommand(reason=WaitReason.RELEASE, version="1"), "no 'release' wait"),
        (SUPPORT, WaitCommand(reason=WaitReason.CASE, case_ref="C1"), "no 'case' wait"),
        (ENATE, WaitCommand(reason=WaitReason.SPLIT), "split command"),
    ],
)
def test_wait_rejects_what_the_reason_or_profile_does_not_take(
    profile: ProfileName, command: WaitCommand, fragment: str
) -> None:
    driver = Driver(profile).in_progress()
    with pytest.raises(CommandRejected, match=fragment) as rejected:
        driver.do(command)
    assert rejected.value.code == "invalid_command"


# ---------------------------------------------------------------- resolution


def test_enate_resolve_needs_a_resolution_message() -> None:
    driver = Driver(ENATE).in_progress()
    with pytest.raises(CommandRejected, match="resolution note or send a resolution email"):
        driver.do(ResolveCommand(actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE))


def test_enate_note_written_just_before_counts_as_the_resolution() -> None:
    driver = Driver(ENATE).in_progress()
    driver.do(NoteCommand(actor="ana", body="Replaced the toner."))
    state = driver.do(ResolveCommand(actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE))
    assert state.resolution is not None
    note_seq = next(
        e.seq
        for e in state.timeline
        if e.type is EventType.NOTE and e.data["body"] == "Replaced the toner."
    )
    assert state.resolution.message_seq == note_seq


def test_enate_a_customer_reply_after_the_note_needs_a_new_message() -> None:
    driver = Driver(ENATE).in_progress()
    driver.do(NoteCommand(actor="ana", body="Replaced the toner."))
    driver.do(CustomerReplyCommand(actor="c", body="Still broken"))
    with pytest.raises(CommandRejected):
        driver.do(ResolveCommand(actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE))


def test_send_and_resolve_marks_the_email_as_resolution() -> None:
    driver = Driver(ENATE).in_progress()
    state = driver.do(SendEmailCommand(actor="ana", body="Fixed, see attached.", resolve=True))
    assert state.status is Status.RESOLVED
    email_seq = next(e.seq for e in state.timeline if e.type is EventType.EMAIL_SENT)
    assert state.resolution is not None and state.resolution.message_seq == email_seq


def test_spam_closes_at_once_in_enate_but_support_never_closes_by_hand() -> None:
    enate = Driver(ENATE)
    state = enate.do(ResolveCommand(actor="ana", method=ResolutionMethod.SPAM))
    assert state.status is Status.CLOSED and state.closed_at == T0
    support = Driver(SUPPORT).in_progress()
    with pytest.raises(CommandRejected, match="closing is always automatic"):
        support.do(ResolveCommand(actor="ana", method=ResolutionMethod.SPAM))


def test_release_must_match_the_awaited_version() -> None:
    driver = Driver(SUPPORT).in_progress()
    driver.do(WaitCommand(actor="ana", reason=WaitReason.RELEASE, version="8.1"))
    with pytest.raises(CommandRejected, match=r"waits for release .8\.1."):
        driver.do(ReleasePublishedCommand(version="8.2"))
    assert driver.do(ReleasePublishedCommand(version="8.1")).status is Status.RESOLVED


# ---------------------------------------------------------------- support timers


def test_support_customer_wait_reminds_at_2_and_4_and_closes_at_6_business_days() -> None:
    driver = Driver(SUPPORT).in_progress()  # Monday 10:00
    state = driver.do(WaitCommand(actor="ana", reason=WaitReason.CUSTOMER))
    assert [(d.kind, d.due_at) for d in state.deadlines] == [
        (DeadlineKind.REMINDER, sp(2026, 11, 25, 10, 0)),
        (DeadlineKind.REMINDER, sp(2026, 11, 27, 10, 0)),
        (DeadlineKind.AUTO_CLOSE, sp(2026, 12, 1, 10, 0)),  # over the weekend
    ]
    assert state.qualification is Qualification.UNDEFINED_LACK_OF_INFO
    driver.advance(timedelta(days=30))
    assert driver.state.status is Status.CLOSED
    assert driver.state.closed_at == sp(2026, 12, 1, 10, 0)
    assert driver.state.qualification is Qualification.UNDEFINED_LACK_OF_INFO
    reminders = emails(driver)
    assert [(r.kind, r.template, r.reminder_number) for r in reminders] == [
        (EmailKind.REMINDER, "customer_wait_reminder", 1),
        (EmailKind.REMINDER, "customer_wait_reminder", 2),
    ]
    assert reminders[0].to == ("cliente@example.com",)
    assert reminders[0].closes_at == sp(2026, 12, 1, 10, 0)


def test_support_qualification_is_restored_when_the_customer_answers() -> None:
    fields = COMPLETE_FIELDS.model_copy(update={"nature": Nature.REQUEST})
    request = Driver(SUPPORT, fields=fields).in_progress()
    assert request.do(WaitCommand(reason=WaitReason.CUSTOMER)).qualification is None
    incident = Driver(SUPPORT).in_progress()
    incident.do(QualifyCommand(qualification=Qualification.CONFIGURATION))
    incident.do(WaitCommand(reason=WaitReason.CUSTOMER))
    assert incident.state.qualification is Qualification.UNDEFINED_LACK_OF_INFO
    state = incident.do(CustomerReplyCommand(actor="c", body="Logs attached"))
    assert state.status is Status.IN_PROGRESS and state.highlighted
    assert state.qualification is Qualification.CONFIGURATION


def test_support_email_restarts_the_clock_but_a_note_does_not() -> None:
    driver = Driver(SUPPORT).in_progress()
    driver.do(WaitCommand(reason=WaitReason.CUSTOMER))
    first = driver.state.deadlines[0].due_at
    driver.advance(timedelta(days=1))
    driver.do(NoteCommand(actor="ana", body="internal"))
    assert driver.state.deadlines[0].due_at == first
    driver.do(SendEmailCommand(actor="ana", body="Any news?"))  # Tuesday 10:00
    assert driver.state.deadlines[0].due_at == sp(2026, 11, 26, 10, 0)
    assert driver.state.deadlines[-1].due_at == sp(2026, 12, 2, 10, 0)


def test_support_validation_reminders_1h_2_5_days_close_6_days() -> None:
    driver = Driver(SUPPORT).in_progress()
    state = driver.do(ResolveCommand(actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE))
    assert [d.due_at for d in state.deadlines] == [
        sp(2026, 11, 23, 11, 0),
        sp(2026, 11, 25, 10, 0),
        sp(2026, 11, 30, 10, 0),
        sp(2026, 12, 1, 10, 0),
    ]
    assert lifecycle.status_label(state, driver.policy) == "Validação cliente"


def test_support_reminder_after_closing_time_moves_to_the_next_opening() -> None:
    driver = Driver(SUPPORT).in_progress()
    driver.now = sp(2026, 11, 27, 17, 30)  # Friday 17:30
    state = driver.do(ResolveCommand(actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE))
    assert state.deadlines[0].due_at == sp(2026, 11, 30, 8, 0)  # Monday opening


def test_no_reminder_after_the_customer_replied() -> None:
    driver = Driver(SUPPORT).in_progress()
    driver.do(WaitCommand(reason=WaitReason.CUSTOMER))
    driver.advance(timedelta(days=1))
    driver.do(CustomerReplyCommand(actor="c", body="here"))
    driver.advance(timedelta(days=30))
    assert emails(driver) == []
    assert driver.state.status is Status.IN_PROGRESS


def test_overdue_close_wins_over_due_reminders() -> None:
    driver = Driver(SUPPORT).in_progress()
    driver.do(WaitCommand(reason=WaitReason.CUSTOMER))
    decision = lifecycle.tick(driver.state, T0 + timedelta(days=20), driver.policy, CALENDAR)
    assert decision.state.status is Status.CLOSED
    assert not [e for e in decision.effects if isinstance(e, SendEmailEffect)]


def test_two_overdue_reminders_are_sent_once() -> None:
    driver = Driver(SUPPORT).in_progress()
    driver.do(WaitCommand(reason=WaitReason.CUSTOMER))
    late = sp(2026, 11, 27, 12, 0)  # both reminders due, close not yet
    decision = lifecycle.tick(driver.state, late, driver.policy, CALENDAR)
    sent = [e for e in decision.effects if isinstance(e, SendEmailEffect)]
    assert [s.reminder_number for s in sent] == [2]
    assert [d.kind for d in decision.state.deadlines] == [DeadlineKind.AUTO_CLOSE]


# ---------------------------------------------------------------- enate timers


def test_enate_wait_for_info_returns_highlighted_after_its_days() -> None:
    driver = Driver(ENATE).in_progress()
    state = driver.do(WaitCommand(reason=WaitReason.CUSTOMER, days=3))
    assert [(d.kind, d.due_at) for d in state.deadlines] == [
        (DeadlineKind.WAIT_END, T0 + timedelta(days=3))
    ]
    driver.advance(timedelta(days=3))
    assert (driver.state.status, driver.state.highlighted) == (Status.IN_PROGRESS, True)
    driver.do(NoteCommand(actor="ana", body="ok"))
    assert driver.state.highlighted is False


def test_enate_close_if_no_response_resolves_then_closes_after_the_feedback_window() -> None:
    driver = Driver(ENATE).in_progress()
    driver.do(WaitCommand(reason=WaitReason.CUSTOMER, days=2, close_if_no_response=True))
    driver.advance(timedelta(days=2))
    assert driver.state.status is Status.RESOLVED
    assert driver.state.resolution is not None
    assert driver.state.resolution.method is ResolutionMethod.NO_CUSTOMER_RESPONSE
    # Wednesday 10:00 + 3 business days = Monday 10:00.
    assert driver.state.deadlines[-1].due_at == sp(2026, 11, 30, 10, 0)
    driver.advance(timedelta(days=10))
    assert driver.state.status is Status.CLOSED
    assert emails(driver) == []  # enate has no reminder emails


def test_enate_customer_reply_inside_the_feedback_window_reopens() -> None:
    driver = Driver(ENATE).in_progress()
    driver.do(ResolveCommand(actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE, note="done"))
    driver.advance(timedelta(days=1))
    state = driver.do(CustomerReplyCommand(actor="c", body="not fixed", message_id="<m1@x>"))
    assert (state.status, state.highlighted, state.resolution) == (Status.IN_PROGRESS, True, None)
    assert state.deadlines == ()
    again = driver.do(CustomerReplyCommand(actor="c", body="not fixed", message_id="<m1@x>"))
    assert again is state  # the same inbound email twice: no second effect


def test_follow_up_comes_back_at_the_date() -> None:
    driver = Driver(ENATE).in_progress()
    until = T0 + timedelta(days=4, hours=3)
    driver.do(WaitCommand(reason=WaitReason.FOLLOW_UP, until=until))
    driver.advance(timedelta(days=4, hours=2, minutes=59))
    assert driver.state.status is Status.WAITING
    driver.advance(timedelta(minutes=1))
    assert (driver.state.status, driver.state.highlighted) == (Status.IN_PROGRESS, True)


def test_release_and_joint_analysis_are_never_auto_closed() -> None:
    for name in ("w_release", "w_other_team"):
        state = state_named(SUPPORT, name)
        assert state.deadlines == ()


# ---------------------------------------------------------------- merge and split


def test_merge_resolves_and_sends_the_content_to_the_target() -> None:
    driver = Driver(ENATE).in_progress()
    driver.do(NoteCommand(actor="ana", body="Same as T2"))
    state = driver.do(MergeCommand(actor="ana", into="T2"))
    assert state.status is Status.RESOLVED and state.links.merged_into == "T2"
    assert state.resolution is not None and state.resolution.method is ResolutionMethod.MERGED
    merge = next(e for e in driver.effects if isinstance(e, MergeIntoEffect))
    assert merge.target_id == "T2"
    assert merge.content.title == COMPLETE_FIELDS.title
    assert "Same as T2" in merge.content.messages
    with pytest.raises(CommandRejected, match="itself"):
        Driver(ENATE).do(MergeCommand(into="T1"))


def test_split_starts_children_and_resolves_when_all_are_closed() -> None:
    driver = Driver(ENATE).in_progress()
    state = driver.do(
        SplitCommand(actor="ana", children=(NewTicket(title="A"), NewTicket(title="B")))
    )
    assert state.links.children == ("T1-1", "T1-2")
    starts = [e for e in driver.effects if isinstance(e, StartChildEffect)]
    assert [s.child_id for s in starts] == ["T1-1", "T1-2"]
    assert starts[0].spec.requester == COMPLETE_FIELDS.requester  # inherited
    driver.do(ChildClosedCommand(child="T1-1"))
    assert driver.state.status is Status.WAITING
    driver.do(ChildClosedCommand(child="T1-1"))  # repeated report: nothing
    state = driver.do(ChildClosedCommand(child="T1-2"))
    assert state.status is Status.RESOLVED
    assert (
        state.resolution is not None and state.resolution.method is ResolutionMethod.SPLIT_COMPLETED
    )


def test_a_closing_child_notifies_its_parent() -> None:
    state = state_named(ENATE, "new")
    child = state.model_copy(update={"links": state.links.model_copy(update={"parent": "P"})})
    decision = lifecycle.decide(
        child,
        ResolveCommand(actor="a", method=ResolutionMethod.SPAM),
        T0,
        Driver(ENATE).policy,
        CALENDAR,
    )
    assert NotifyParentEffect(parent_id="P") in decision.effects


# ---------------------------------------------------------------- effects and views


def test_webhook_effect_on_status_change_only() -> None:
    driver = Driver(SUPPORT)
    driver.effects.clear()
    driver.do(NoteCommand(actor="ana", body="note"))
    assert not [e for e in driver.effects if isinstance(e, WebhookEffect)]
    driver.do(AssignCommand(actor="ana", assignee="ana"))
    driver.do(WaitCommand(actor="ana", reason=WaitReason.CUSTOMER))  # also qualifies, after
    hooks = [e for e in driver.effects if isinstance(e, WebhookEffect)]
    assert [(h.event, h.from_status, h.to_status) for h in hooks] == [
        ("started", Status.NEW, Status.IN_PROGRESS),
        ("waiting", Status.IN_PROGRESS, Status.WAITING),
    ]


@pytest.mark.parametrize(
    ("profile", "name", "label"),
    [
        (SUPPORT, "new", "Novo"),
        (SUPPORT, "in_progress", "Em análise"),
        (SUPPORT, "w_customer", "Aguardando resposta cliente"),
        (SUPPORT, "w_release", "Aguardando solução definitiva"),
        (SUPPORT, "w_other_team", "Em análise conjunta com outras áreas"),
        (SUPPORT, "resolved", "Validação cliente"),
        (SUPPORT, "closed", "Fechado"),
        (ENATE, "new", "To Do / A Fazer"),
        (ENATE, "w_customer", "Wait / Aguarde: Wait for more info"),
        (ENATE, "w_case", "Wait / Aguarde: Case launched"),
    ],
)
def test_status_labels(profile: ProfileName, name: str, label: str) -> None:
    state = state_named(profile, name)
    assert lifecycle.view(state, Driver(profile).policy).status_label == label


def test_answers_carry_the_view_until_the_timeline_grows_long() -> None:
    driver = Driver(SUPPORT)
    answer = lifecycle.acknowledgement(driver.state, driver.policy)
    assert answer.view == lifecycle.view(driver.state, driver.policy)

    while len(driver.state.timeline) <= lifecycle.VIEW_IN_ANSWER_MAX_EVENTS:
        driver.do(NoteCommand(actor="ana", body="still looking"))
    long_answer = lifecycle.acknowledgement(driver.state, driver.policy)
    # Past the limit the view would bloat every update in history: the API queries it.
    assert long_answer.view is None
    assert long_answer.seq == driver.state.timeline[-1].seq


@pytest.mark.parametrize("profile", [SUPPORT, ENATE])
def test_a_new_ticket_is_dated_when_the_api_accepted_it(profile: ProfileName) -> None:
    ticket = TicketInput(
        ticket_id="T9",
        policy=policy_for(profile),
        calendar=CALENDAR,
        fields=COMPLETE_FIELDS,
        submit=True,
        actor="ana",
        opened_at=T0,
    )
    first_task = T0 + timedelta(minutes=7)  # the worker was busy or down meanwhile

    opened = lifecycle.opening(ticket, first_task).state

    assert opened.created_at == opened.updated_at == T0
    assert {event.at for event in opened.timeline} == {T0}
    assert opened.status is Status.NEW
    undated = lifecycle.opening(ticket.model_copy(update={"opened_at": None}), first_task)
    assert undated.state.created_at == first_task


def test_a_requesters_command_to_someone_elses_ticket_is_unknown_to_them() -> None:
    driver = Driver(SUPPORT)
    stranger = CustomerReplyCommand(actor="outro@example.com", body="hi", requester_only=True)
    with pytest.raises(CommandRejected) as rejected:
        lifecycle.check(driver.state, stranger, driver.now, driver.policy)
    assert rejected.value.code == "not_found"
    assert "new" not in rejected.value.reason  # the status stays theirs to know

    owner = stranger.model_copy(update={"actor": "Cliente@Example.COM"})
    assert driver.do(owner).status is Status.NEW


def test_a_closed_ticket_answers_a_stranger_not_found_before_closed() -> None:
    driver = Driver(ENATE)
    driver.do(ResolveCommand(actor="ana", method=ResolutionMethod.SPAM))
    assert driver.state.status is Status.CLOSED
    stranger = CustomerReplyCommand(actor="outro@example.com", body="hi", requester_only=True)
    with pytest.raises(CommandRejected) as rejected:
        lifecycle.check(driver.state, stranger, driver.now, driver.policy)
    assert rejected.value.code == "not_found"


def test_a_relayed_reply_is_recorded_as_the_requesters() -> None:
    driver = Driver(SUPPORT)
    driver.do(CustomerReplyCommand(actor="phone-desk", body="by phone", as_requester=True))
    reply = driver.state.timeline[-1]
    assert (reply.type, reply.actor) == (EventType.CUSTOMER_REPLY, COMPLETE_FIELDS.requester)
    assert reply.data["from"] == COMPLETE_FIELDS.requester

    anonymous = Driver(ENATE, submit=False, fields=TicketFields(title="No requester yet"))
    anonymous.do(CustomerReplyCommand(actor="phone-desk", body="hello", as_requester=True))
    reply = anonymous.state.timeline[-1]
    assert (reply.actor, reply.data.get("from")) == ("phone-desk", None)
