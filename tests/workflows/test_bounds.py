"""No input can push a ticket past Temporal's limits (2 MB a payload, 4 MB a task).

A ticket is filled to its event cap with the largest input each command accepts, sent
as raw as an operator's Signal could (the API stores long texts before they get here;
these tests skip that, to show the core holds on its own).
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from tests.support.tickets import COMPLETE_FIELDS, Driver
from workflows import lifecycle, texts
from workflows.messages import (
    CustomerReplyCommand,
    NoteCommand,
    ResolveCommand,
    SendEmailCommand,
    WaitCommand,
)
from workflows.models import (
    BuiltInProfile,
    CommandResult,
    EventType,
    ResolutionMethod,
    Status,
    StoredText,
    WaitReason,
)
from workflows.transaction import CommandRejected

HUGE = "😀" * 100_000  # the longest text a command accepts: 400 KB of UTF-8
STATE_BUDGET = 1_500_000  # under Temporal's 2 MB payload limit, with room
ANSWER_BUDGET = 300_000


def test_an_excerpt_keeps_whole_characters_within_its_bytes() -> None:
    cut = texts.excerpt(HUGE)
    assert len(cut.encode()) <= texts.EXCERPT_BYTES and cut.endswith(texts.ELLIPSIS)
    assert texts.excerpt("curto") == "curto"
    assert texts.excerpt("é" * 1_500, 11) == "éééé" + texts.ELLIPSIS


def test_a_ticket_filled_to_its_cap_with_the_largest_inputs_stays_within_bounds() -> None:
    driver = Driver(BuiltInProfile.SUPPORT).in_progress()
    ref = StoredText(sha256="a" * 64, bytes=400_000)
    inputs = itertools.cycle(
        [
            NoteCommand(actor="ana", body=HUGE, stored_texts={"body": ref}),
            SendEmailCommand(actor="ana", body=HUGE, subject="s" * 200, to=("x@example.com",) * 20),
            CustomerReplyCommand(actor="c", body=HUGE, subject=HUGE),
        ]
    )
    answers = 0
    while len(driver.state.timeline) < texts.MAX_TIMELINE_EVENTS:
        driver.now += timedelta(seconds=1)
        driver.do(next(inputs))
        if len(driver.state.timeline) % 97 == 0:
            assert len(driver.state.model_dump_json()) < STATE_BUDGET
            answer = lifecycle.acknowledgement(driver.state, driver.policy)
            assert len(answer.model_dump_json()) < ANSWER_BUDGET
            answers += 1
    assert answers >= 10
    state = driver.state
    size = len(state.model_dump_json())
    assert size < STATE_BUDGET, size
    for event in state.timeline[: -texts.RECENT_EVENTS]:
        for value in event.data.values():
            if isinstance(value, str):
                assert len(value.encode()) <= texts.COMPACT_BYTES
    notes = [e for e in state.timeline if e.type is EventType.NOTE and "body_ref" in e.data]
    assert notes and all(e.data["body_ref"] == ref.sha256 for e in notes), "refs survive"

    with pytest.raises(CommandRejected) as full:
        driver.do(NoteCommand(actor="ana", body="one more"))
    assert "open a follow-up ticket" in full.value.reason


def test_a_full_ticket_still_runs_out_its_timers() -> None:
    driver = Driver(BuiltInProfile.SUPPORT).in_progress()
    driver.do(WaitCommand(actor="ana", reason=WaitReason.CUSTOMER))
    while len(driver.state.timeline) < texts.MAX_TIMELINE_EVENTS:
        driver.do(NoteCommand(actor="ana", body="n"))
    with pytest.raises(CommandRejected):
        driver.do(ResolveCommand(actor="ana", method=ResolutionMethod.REJECTED))
    driver.advance(timedelta(days=30))
    assert driver.state.status is Status.CLOSED
    assert len(driver.state.timeline) <= texts.MAX_TIMELINE_EVENTS + 5


def test_a_short_ticket_answers_with_its_view_and_a_bulky_one_without() -> None:
    driver = Driver(BuiltInProfile.ENATE, fields=COMPLETE_FIELDS).in_progress()
    answer: CommandResult = lifecycle.acknowledgement(driver.state, driver.policy)
    assert answer.view is not None
    for number in range(40):  # 40 replies of three 2,000-byte texts pass 200,000 bytes
        distinct = f"{number}{HUGE}"  # each its own message (a repeated id is dropped)
        driver.do(CustomerReplyCommand(actor="c", body=HUGE, subject=HUGE, message_id=distinct))
    bulky = lifecycle.acknowledgement(driver.state, driver.policy)
    assert len(driver.state.timeline) <= lifecycle.VIEW_IN_ANSWER_MAX_EVENTS
    assert bulky.view is None
