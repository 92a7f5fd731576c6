"""What the console and the customer page offer (``lifecycle.offered``): a table of
familiar moments, and properties over random lifecycles."""

from __future__ import annotations

import pytest
from hypothesis import given

from tests.support.tickets import COMPLETE_FIELDS, Driver
from tests.workflows.test_lifecycle_properties import lifecycles, property_settings
from workflows import lifecycle
from workflows.commands import SPECS
from workflows.messages import (
    NoteCommand,
    RateCommand,
    ResolveCommand,
    WaitCommand,
)
from workflows.models import (
    BuiltInProfile,
    ProfileName,
    RequesterKind,
    ResolutionMethod,
    TicketFields,
    TicketState,
    WaitReason,
)
from workflows.policy import policy_for


def offered(driver: Driver, *, requester: bool = False) -> set[str]:
    view = lifecycle.view(driver.state, driver.policy)
    return set(lifecycle.offered(view, driver.policy, requester=requester))


def resolved(profile: ProfileName, fields: TicketFields = COMPLETE_FIELDS) -> Driver:
    driver = Driver(profile, fields=fields).in_progress()
    driver.do(NoteCommand(actor="ana", body="done"))
    driver.do(ResolveCommand(actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE, note="ok"))
    return driver


def test_a_new_support_ticket_is_offered_taking_not_resolving_to_its_requester() -> None:
    driver = Driver(BuiltInProfile.SUPPORT)
    staff = offered(driver)
    assert {"assign", "note", "edit"} <= staff
    assert offered(driver, requester=True) == {"customer_reply"}
    assert not {"rate", "reopen", "resume", "case_completed", "release_published"} & staff


@pytest.mark.parametrize(
    ("reason", "resume_offered", "case_offered"),
    [
        (WaitReason.CUSTOMER, True, False),
        (WaitReason.CASE, False, True),
    ],
)
def test_a_wait_is_ended_by_hand_only_where_no_event_ends_it(
    reason: WaitReason, resume_offered: bool, case_offered: bool
) -> None:
    driver = Driver(BuiltInProfile.ENATE).in_progress()  # only Enate launches cases
    extra: dict[str, object] = {"case_ref": "C-1"} if reason is WaitReason.CASE else {"days": 3}
    driver.do(WaitCommand(actor="ana", reason=reason, **extra))
    staff = offered(driver)
    assert ("resume" in staff) is resume_offered
    assert ("case_completed" in staff) is case_offered


@pytest.mark.parametrize(
    ("kind", "reviews"),
    [
        (RequesterKind.CUSTOMER, False),
        (RequesterKind.CONSULTANT, True),
        (RequesterKind.CHANNEL, True),
    ],
)
def test_in_validation_the_requester_rates_and_partners_review_the_qualification(
    kind: RequesterKind, reviews: bool
) -> None:
    driver = resolved(
        BuiltInProfile.SUPPORT, COMPLETE_FIELDS.model_copy(update={"requester_kind": kind})
    )
    customer = offered(driver, requester=True)
    assert {"rate", "customer_reply"} <= customer
    assert ("qualify" in customer) is reviews
    assert "rate" not in offered(driver), "staff do not answer the customer's survey"
    driver.do(RateCommand(actor="cliente@example.com", score=5, requester_only=True))
    assert "rate" in offered(driver, requester=True), "the rating can change until the close"


def test_enate_offers_no_qualification_and_nothing_once_closed() -> None:
    driver = Driver(BuiltInProfile.ENATE).in_progress()
    assert "qualify" not in offered(driver) and "split" in offered(driver)
    driver.do(ResolveCommand(actor="ana", method=ResolutionMethod.SPAM))
    assert offered(driver) == set() and offered(driver, requester=True) == set()


@property_settings
@given(lifecycles())
def test_only_what_the_status_allows_is_offered_and_a_requester_only_their_commands(
    states: list[TicketState],
) -> None:
    policy = policy_for(states[0].profile)
    names = {spec.name: spec for spec in SPECS}
    for state in states:
        view = lifecycle.view(state, policy)
        staff = lifecycle.offered(view, policy)
        customer = lifecycle.offered(view, policy, requester=True)
        for name in staff + customer:
            spec = names[name]
            assert state.status in spec.allowed_from and not spec.internal, (name, state.status)
        assert all(names[name].requester_may for name in customer), customer
        assert len(set(staff)) == len(staff)
