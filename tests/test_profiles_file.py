"""TRAMITA_PROFILES_FILE: the README's example loads, and every kind of mistake in the
file stops the processes at start with the file's line and the reason."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from config import SettingsError, load_settings
from workflows.models import OffsetUnit, Priority, SlaMetric

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "profiles.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_readme_shows_the_example_file_whole_and_it_loads() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", readme, flags=re.S)
    assert EXAMPLE.read_text(encoding="utf-8") in blocks
    profiles = load_settings(profiles_file=EXAMPLE).profiles
    assert list(profiles) == ["enate", "support", "desk-sp", "lisbon"]
    desk = profiles["desk-sp"]
    assert desk.extends == "support"
    assert [o.describe() for o in desk.policy.timers.customer_wait_reminders] == [
        "3 business days",
        "5 business days",
    ]
    assert desk.policy.status_labels == profiles["support"].policy.status_labels
    assert desk.policy.sla is not None
    urgent = desk.policy.sla.target(SlaMetric.RESOLUTION, Priority.URGENT)
    assert urgent is not None and urgent.unit is OffsetUnit.HOURS
    lisbon = profiles["lisbon"]
    assert (lisbon.calendar.timezone, lisbon.calendar.country) == ("Europe/Lisbon", "PT")
    assert lisbon.policy.require_resolution_message is True
    assert lisbon.policy.wait_label_format == "{status}: {reason}"
    assert lisbon.policy.deadline_labels["close_resolved"] == "Close when the feedback window ends"


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        pytest.param(
            '[profiles.desk]\nextends = "support"\ncolour = "blue"\n',
            3,
            "profiles.desk.colour: unknown key 'colour'",
            id="unknown key",
        ),
        pytest.param(
            '[profiles.desk]\nextends = "support"\n\n[profiles.desk.calendar]\nzone = "UTC"\n',
            5,
            "profiles.desk.calendar.zone: unknown key 'zone'",
            id="unknown calendar key",
        ),
        pytest.param(
            '[profiles.desk]\nextends = "support"\n[profiles.desk.timers]\n'
            'resolved_close = "2 buisness days"\n',
            4,
            "profiles.desk.timers.resolved_close: '2 buisness days' is not an offset",
            id="bad offset",
        ),
        pytest.param(
            '[profiles.desk]\nextends = "support"\n[profiles.desk.sla]\n'
            'targets.first_reply = { normal = "soon" }\n',
            4,
            "'soon' is not an offset",
            id="bad SLA target",
        ),
        pytest.param(
            '[profiles.desk]\nextends = "support"\n[profiles.desk.sla]\n'
            'targets.first_reply = { sometimes = "1 hour" }\n',
            4,
            "profiles.desk.sla.targets.first_reply.sometimes: Input should be 'low'",
            id="unknown priority",
        ),
        pytest.param(
            '[profiles.desk]\nextends = "support"\n\n[profiles.desk.calendar]\n'
            'timezone = "Europe/Lisbom"\n',
            5,
            "unknown time zone 'Europe/Lisbom'",
            id="unknown time zone",
        ),
        pytest.param(
            '[profiles.desk]\nextends = "support"\n\n[profiles.desk.calendar]\n'
            'timezone = "Europe/Lisbon"\nholidays_country = "XX"\n',
            6,
            "unknown holiday country 'XX'",
            id="unknown holiday country",
        ),
        pytest.param(
            '[profiles.desk]\nextends = "support"\n\n[profiles.desk.calendar]\n'
            'holidays_country = "PT"\nholidays_subdivision = "99"\n',
            6,
            "unknown holiday subdivision '99' of PT",
            id="unknown holiday subdivision",
        ),
        pytest.param(
            '[profiles.desk]\nextends = "support"\n\n[profiles.desk]\nlanguage = "en"\n',
            4,
            "duplicate name",
            id="duplicate name in the file",
        ),
        pytest.param(
            '[profiles.support]\nextends = "support"\n',
            1,
            "duplicate name 'support': it is a built-in profile",
            id="duplicate of a built-in",
        ),
        pytest.param(
            '[profiles.desk]\nextends = "zendesk"\n',
            2,
            "extends 'zendesk': a profile extends one of enate, support",
            id="unknown base",
        ),
        pytest.param(
            '[profiles.desk]\nlanguage = "en"\n',
            1,
            "a profile that extends nothing must set status_labels",
            id="stand-alone and incomplete",
        ),
        pytest.param(
            '[profiles.desk]\nextends = "support"\n[profiles.desk.calendar]\n'
            'business_hours = "18:00-08:00"\n',
            4,
            "must open before it closes",
            id="business hours backwards",
        ),
        pytest.param(
            '[profiles.desk]\nextends = "support"\nwait_reasons = ["customer", "lunch"]\n',
            3,
            "profiles.desk.wait_reasons.1: Input should be 'customer'",
            id="unknown wait reason",
        ),
        pytest.param(
            '[profiles.desk]\nextends = "support"\n[profiles.desk.sla]\nwarn_at = 2\n'
            'targets.resolution = { normal = "2 days" }\n',
            4,
            "profiles.desk.sla.warn_at: Input should be less than 1",
            id="warning past the target",
        ),
        pytest.param(
            '[profiles.Desk]\nextends = "support"\n',
            1,
            "profile name 'Desk'",
            id="bad name",
        ),
        pytest.param('[profiles.desk\nextends = "support"\n', 1, "", id="not TOML"),
    ],
)
def test_a_mistake_names_its_line_and_reason(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SettingsError) as caught:
        load_settings(profiles_file=path)
    message = str(caught.value)
    assert f"TRAMITA_PROFILES_FILE {path}:{line}: " in message
    assert reason in message


def test_settings_must_name_profiles_in_force(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="TRAMITA_DEFAULT_PROFILE names profile 'desk'"):
        load_settings(default_profile="desk")
    path = write(tmp_path, '[profiles.desk]\nextends = "support"\n')
    settings = load_settings(profiles_file=path, default_profile="desk")
    assert settings.profiles("desk").timers == settings.profiles("support").timers
    with pytest.raises(SettingsError, match="TRAMITA_INBOUND_ADDRESSES names profile 'nope'"):
        load_settings(inbound_addresses={"help@example.com": "nope"})


@pytest.mark.parametrize("module", ["api", "worker", "mail.listener"])
async def test_each_process_refuses_to_start_on_a_bad_file(tmp_path: Path, module: str) -> None:
    path = write(
        tmp_path,
        '[profiles.desk]\nextends = "support"\n\n[profiles.desk.timers]\n'
        'resolved_close = "three days"\n',
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        cwd=ROOT,
        env={**os.environ, "TRAMITA_PROFILES_FILE": str(path)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    said = stderr.decode()
    assert f"{path}:5: profiles.desk.timers.resolved_close: 'three days' is not an offset" in said
