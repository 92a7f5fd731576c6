"""Every (status, command) pair of both profiles: the resulting status, or a rejection.

The tables are written from DESIGN section 3 and the profile rules, not derived from
the code: a cell is the status after the command, ``-`` means rejected (409).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.tickets import CALENDAR, T0, state_named
from workflows import lifecycle
from workflows.lifecycle import CommandRejected
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
    BuiltInProfile,
    Command,
    NewTicket,
    ProfileName,
    Qualification,
    ResolutionMethod,
    Status,
    WaitReason,
)
from workflows.policy import policy_for

SAMPLES: dict[str, Command] = {
    "edit": EditCommand(actor="ana", title="New title"),
    "submit": SubmitCommand(actor="ana"),
    "assign": AssignCommand(actor="sofia", assignee="bruno"),
    "start": StartCommand(actor="ana"),
    "unassign": UnassignCommand(actor="ana"),
    "requeue": RequeueCommand(actor="ana"),
    "robot_reject": RobotRejectCommand(actor="robo-1", reason="cannot parse"),
    "wait": WaitCommand(actor="ana", reason=WaitReason.FOLLOW_UP, until=T0 + timedelta(days=5)),
    "resume": ResumeCommand(actor="ana"),
    "note": NoteCommand(actor="ana", body="Checked the logs."),
    "send_email": SendEmailCommand(actor="ana", body="Could you send the logs?"),
    "customer_reply": CustomerReplyCommand(actor="cliente@example.com", body="Here they are."),
    "resolve": ResolveCommand(actor="ana", method=ResolutionMethod.CUSTOMER_RESPONSE, note="Done."),
    "reopen": ReopenCommand(actor="ana"),
    "release_published": ReleasePublishedCommand(actor="system", version="v1"),
    "case_completed": CaseCompletedCommand(actor="system"),
    "qualify": QualifyCommand(actor="ana", qualification=Qualification.PRODUCT_DEFECT),
    "rate": RateCommand(actor="cliente@example.com", score=5),
    "merge": MergeCommand(actor="ana", into="T2"),
    "split": SplitCommand(actor="ana", children=(NewTicket(title="Child"),)),
    "merge_received": MergeReceivedCommand(actor="ana", source="T9", title="Dup"),
    "child_closed": ChildClosedCommand(child="nobody"),
    "third_party_message": ThirdPartyMessageCommand(
        body="Sou o gerente dele", from_address="chefe@example.com", message_id="<3p@x>"
    ),
    "auto_reply_received": AutoReplyReceivedCommand(
        from_address="cliente@example.com", message_id="<ooo@x>", reason="Auto-Submitted"
    ),
    "bounce_received": BounceReceivedCommand(
        message_id="<dsn@x>", recipients=("cliente@example.com",), status="5.1.1"
    ),
}

SUPPORT_TABLE = """
command           draft     new         in_progress w_customer  w_follow_up w_release   w_other_team resolved    closed
edit              draft     new         in_progress waiting     waiting     waiting     waiting      resolved    -
submit            new       -           -           -           -           -           -            -           -
assign            -         in_progress in_progress waiting     waiting     waiting     waiting      -           -
start             -         in_progress -           -           -           -           -            -           -
unassign          -         new         new         -           -           -           -            -           -
requeue           -         -           new         -           -           -           -            -           -
robot_reject      -         -           -           -           -           -           -            -           -
wait              -         -           waiting     -           -           -           -            -           -
resume            -         -           -           in_progress in_progress in_progress in_progress  -           -
note              draft     new         in_progress waiting     waiting     waiting     waiting      resolved    -
send_email        draft     new         in_progress waiting     waiting     waiting     waiting      resolved    -
customer_reply    draft     new         in_progress in_progress waiting     waiting     waiting      in_progress -
resolve           resolved  resolved    resolved    resolved    resolved    resolved    resolved     -           -
reopen            -         -           -           -           -           -           -            in_progress -
release_published -         -           -           -           -           resolved    -            -           -
case_completed    -         -           -           -           -           -           -            -           -
qualify           draft     new         in_progress waiting     waiting     waiting     waiting      resolved    -
rate              -         -           -           -           -           -           -            resolved    -
merge             resolved  resolved    resolved    resolved    resolved    resolved    resolved     resolved    -
split             -         -           -           -           -           -           -            -           -
merge_received    draft     new         in_progress waiting     waiting     waiting     waiting      resolved    -
child_closed      draft     new         in_progress waiting     waiting     waiting     waiting      resolved    -
third_party_message draft     new         in_progress waiting     waiting     waiting     waiting      resolved    -
auto_reply_received draft     new         in_progress waiting     waiting     waiting     waiting      resolved    -
bounce_received   draft     new         in_progress waiting     waiting     waiting     waiting      resolved    -
"""

ENATE_TABLE = """
command           draft     new         in_progress w_customer  w_follow_up w_split     w_case       resolved    closed
edit              draft     new         in_progress waiting     waiting     waiting     waiting      resolved    -
submit            new       -           -           -           -           -           -            -           -
assign            -         new         in_progress waiting     waiting     waiting     waiting      -           -
start             -         in_progress -           -           -           -           -            -           -
unassign          -         new         new         -           -           -           -            -           -
requeue           -         -           new         -           -           -           -            -           -
robot_reject      -         -           -           -           -           -           -            -           -
wait              -         -           waiting     -           -           -           -            -           -
resume            -         -           -           in_progress in_progress -           -            -           -
note              draft     in_progress in_progress waiting     waiting     waiting     waiting      resolved    -
send_email        draft     in_progress in_progress waiting     waiting     waiting     waiting      resolved    -
customer_reply    draft     new         in_progress in_progress waiting     waiting     waiting      in_progress -
resolve           resolved  resolved    resolved    resolved    resolved    resolved    resolved     -           -
reopen            -         -           -           -           -           -           -            in_progress -
release_published -         -           -           -           -           -           -            -           -
case_completed    -         -           -           -           -           -           resolved     -           -
qualify           -         -           -           -           -           -           -            -           -
rate              -         -           -           -           -           -           -            resolved    -
merge             resolved  resolved    resolved    resolved    resolved    resolved    resolved     resolved    -
split             -         -           waiting     -           -           -           -            -           -
merge_received    draft     new         in_progress waiting     waiting     waiting     waiting      resolved    -
child_closed      draft     new         in_progress waiting     waiting     waiting     waiting      resolved    -
third_party_message draft     new         in_progress waiting     waiting     waiting     waiting      resolved    -
auto_reply_received draft     new         in_progress waiting     waiting     waiting     waiting      resolved    -
bounce_received   draft     new         in_progress waiting     waiting     waiting     waiting      resolved    -
"""


def _cells(profile: ProfileName, table: str) -> list[tuple[ProfileName, str, str, str]]:
    lines = [line.split() for line in table.strip().splitlines()]
    header = lines[0][1:]
    rows = []
    for line in lines[1:]:
        command, results = line[0], line[1:]
        assert len(results) == len(header), f"row {command} has {len(results)} cells"
        rows += [
            (profile, state, command, result) for state, result in zip(header, results, strict=True)
        ]
    return rows


CELLS = _cells(BuiltInProfile.SUPPORT, SUPPORT_TABLE) + _cells(BuiltInProfile.ENATE, ENATE_TABLE)


def test_tables_cover_every_command() -> None:
    assert set(SAMPLES) == set(lifecycle.COMMAND_NAMES.values())
    for profile in BuiltInProfile:
        assert {c for p, _, c, _ in CELLS if p is profile} == set(SAMPLES)


@pytest.mark.parametrize(("profile", "state_name", "command", "expected"), CELLS)
def test_transition(profile: ProfileName, state_name: str, command: str, expected: str) -> None:
    state = state_named(profile, state_name)
    policy = policy_for(profile)
    now = T0 + timedelta(hours=1) if state_name != "closed" else state.updated_at
    if expected == "-":
        with pytest.raises(CommandRejected) as rejected:
            lifecycle.decide(state, SAMPLES[command], now, policy, CALENDAR)
        assert rejected.value.reason
        assert rejected.value.status is state.status
        return
    decision = lifecycle.decide(state, SAMPLES[command], now, policy, CALENDAR)
    assert decision.state.status is Status(expected)
    assert decision.state.deadlines == lifecycle.compute_deadlines(decision.state, policy, CALENDAR)
