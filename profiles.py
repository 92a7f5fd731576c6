"""The profiles in force: the two built-ins and those of ``TRAMITA_PROFILES_FILE``.

A deployment defines its processes in one TOML file (read with the standard library's
``tomllib``). Each ``[profiles.<name>]`` table either ``extends`` a built-in (``enate``,
``support``) and changes what it names, or stands alone and names everything a policy
needs. Offsets are words (``"2 business days"``); each profile may have its own
calendar and SLA targets. The README shows a complete file.

Every process reads the file when its settings load (``config.Settings.profiles``), so a
bad file stops the API, the worker and the mail listener at start, naming the file's
line and the reason. A ticket keeps the policy it was opened with (it travels in the
ticket's input): editing the file changes new tickets only.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import holidays
from pydantic import ValidationError

from workflows.models import (
    DEADLINE_LABELS,
    PROFILE_NAME_PATTERN,
    CalendarSnapshot,
    ProfilePolicy,
)
from workflows.policy import PROFILES, UnknownProfile
from workflows.zones import zone

WEEKDAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}
WEEKDAY_NAMES = {number: name for name, number in WEEKDAYS.items()}

# What a profile's table may hold: the file's names for the policy's fields. The file
# says ``timer_labels`` where the policy says ``deadline_labels``.
_POLICY_KEYS = {
    "language": "language",
    "status_labels": "status_labels",
    "wait_labels": "wait_labels",
    "wait_label_format": "wait_label_format",
    "timer_labels": "deadline_labels",
    "wait_reasons": "wait_reasons",
    "resolution_methods": "resolution_methods",
    "assign_starts_work": "assign_starts_work",
    "agent_activity_starts_work": "agent_activity_starts_work",
    "require_resolution_message": "require_resolution_message",
    "qualification_enabled": "qualification_enabled",
    "qualification_review_kinds": "qualification_review_kinds",
    "split_enabled": "split_enabled",
    "acknowledge_new_tickets": "acknowledge_new_tickets",
    "reject_unknown_senders": "reject_unknown_senders",
    "timers": "timers",
    "sla": "sla",
}
_FILE_KEY = {field: key for key, field in _POLICY_KEYS.items()}
# Tables whose keys merge into the extended profile's instead of replacing it.
_MERGED = frozenset({"status_labels", "wait_labels", "deadline_labels", "timers"})
_PROFILE_KEYS = frozenset({"extends", "calendar", *_POLICY_KEYS})
_CALENDAR_KEYS = frozenset(
    {"timezone", "business_hours", "work_days", "holidays_country", "holidays_subdivision"}
    | {"closed_dates"}
)


class ProfilesFileError(ValueError):
    """A profiles file that cannot be used: where (file and line) and why."""


@dataclass(frozen=True)
class Profile:
    """A profile in force: the rules tickets are opened with, and its calendar."""

    policy: ProfilePolicy
    calendar: CalendarSnapshot
    """Without holidays: they are resolved for each new ticket, a few years ahead."""
    source: str
    """``built-in``, or the file that defines it."""
    extends: str | None = None


class Profiles(Mapping[str, Profile]):
    """The profiles in force by name. Calling it gives a profile's policy, as the API's
    ``PolicySource`` expects; an unknown name raises :class:`UnknownProfile`."""

    def __init__(self, profiles: dict[str, Profile]) -> None:
        self._profiles = profiles

    def __getitem__(self, name: str) -> Profile:
        found = self._profiles.get(name)
        if found is None:
            raise UnknownProfile(name, tuple(self._profiles))
        return found

    def __contains__(self, name: object) -> bool:
        return name in self._profiles

    def __iter__(self) -> Iterator[str]:
        return iter(self._profiles)

    def __len__(self) -> int:
        return len(self._profiles)

    def __call__(self, name: str) -> ProfilePolicy:
        return self[name].policy

    def calendar_for(self, name: str) -> CalendarSnapshot:
        return self[name].calendar


def built_in_profiles(calendar: CalendarSnapshot) -> Profiles:
    return Profiles(
        {
            name: Profile(policy=policy, calendar=calendar, source="built-in")
            for name, policy in PROFILES.items()
        }
    )


def load_profiles(path: Path | None, calendar: CalendarSnapshot) -> Profiles:
    """The built-ins, plus the profiles ``path`` defines (``calendar``: the settings'
    calendar, which a profile's own ``[calendar]`` table changes)."""
    profiles = dict(built_in_profiles(calendar)._profiles)
    if path is None:
        return Profiles(profiles)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ProfilesFileError(f"{path}: cannot read it: {error}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ProfilesFileError(_decode_error(path, str(error))) from None
    where = _Lines(path, text)
    unknown = sorted(set(document) - {"profiles"})
    if unknown:
        raise where.error(
            (unknown[0],), f"unknown key {unknown[0]!r}: the file holds [profiles.<name>] tables"
        )
    defined = document.get("profiles", {})
    if not isinstance(defined, dict) or not defined:
        raise where.error(("profiles",), "define at least one [profiles.<name>] table")
    for name, table in defined.items():
        if not isinstance(table, dict):
            raise where.error(("profiles", name), "a profile is a table: [profiles.<name>]")
        if name in PROFILES:
            raise where.error(
                ("profiles", name),
                f"duplicate name {name!r}: it is a built-in profile; give yours another "
                f'name and write extends = "{name}"',
            )
        profiles[name] = _profile(name, table, calendar, where)
    return Profiles(profiles)


def _profile(name: str, table: dict[str, Any], default: CalendarSnapshot, where: _Lines) -> Profile:
    at = ("profiles", name)
    if not re.fullmatch(PROFILE_NAME_PATTERN, name):
        raise where.error(
            at,
            f"profile name {name!r}: use lowercase letters, digits, - and _ "
            "(at most 40, a letter first)",
        )
    unknown = sorted(set(table) - _PROFILE_KEYS)
    if unknown:
        raise where.error(
            (*at, unknown[0]),
            f"unknown key {unknown[0]!r}; a profile may set: {', '.join(sorted(_PROFILE_KEYS))}",
        )
    extends = table.get("extends")
    if extends is not None and extends not in PROFILES:
        raise where.error(
            (*at, "extends"), f"extends {extends!r}: a profile extends one of {', '.join(PROFILES)}"
        )
    if extends is not None:
        fields = PROFILES[extends].model_dump(exclude={"name"})
    else:
        # The timers' labels in the profile's language, unless the file names its own.
        language = table.get("language")
        fields = {"deadline_labels": DEADLINE_LABELS.get(str(language), DEADLINE_LABELS["en"])}
    for key, value in table.items():
        if key in ("extends", "calendar"):
            continue
        field = _POLICY_KEYS[key]
        if field in _MERGED and isinstance(value, dict) and isinstance(fields.get(field), dict):
            fields[field] = {**fields[field], **value}
        else:
            fields[field] = value
    try:
        policy = ProfilePolicy(name=name, **fields)
    except ValidationError as error:
        problems = error.errors(include_url=False, include_input=False)
        missing = [
            str(p["loc"][0]) for p in problems if p["type"] == "missing" and len(p["loc"]) == 1
        ]
        if missing:
            named = ", ".join(_FILE_KEY.get(field, field) for field in missing)
            raise where.error(
                at,
                f"a profile that extends nothing must set {named} "
                '(or extend a built-in: extends = "support")',
            ) from None
        problem = problems[0]
        loc = tuple(str(part) for part in problem["loc"])
        if loc and loc[0] in _FILE_KEY:
            loc = (_FILE_KEY[loc[0]], *loc[1:])
        raise where.error((*at, *_readable(loc)), _message(problem["msg"])) from None
    return Profile(
        policy=policy,
        calendar=_calendar(table.get("calendar"), default, (*at, "calendar"), where),
        source=str(where.path),
        extends=extends,
    )


def _readable(loc: tuple[str, ...]) -> tuple[str, ...]:
    """pydantic's location without the model-internal steps (a union's branch name)."""
    return tuple(
        part for part in loc if part != "[key]" and not part.startswith(("function-", "tagged-"))
    )


def _message(text: str) -> str:
    return text.removeprefix("Value error, ")


def _calendar(
    table: Any, default: CalendarSnapshot, at: tuple[str, ...], where: _Lines
) -> CalendarSnapshot:
    if table is None:
        return default
    if not isinstance(table, dict):
        raise where.error(at, "calendar is a table: [profiles.<name>.calendar]")
    unknown = sorted(set(table) - _CALENDAR_KEYS)
    if unknown:
        raise where.error(
            (*at, unknown[0]),
            f"unknown key {unknown[0]!r}; a calendar may set: {', '.join(sorted(_CALENDAR_KEYS))}",
        )
    timezone = table.get("timezone", default.timezone)
    try:
        zone(timezone)
    except (KeyError, ValueError, TypeError):
        raise where.error(
            (*at, "timezone"),
            f"unknown time zone {timezone!r} (use an IANA name such as Europe/Lisbon)",
        ) from None
    opens_at, closes_at = default.opens_at, default.closes_at
    if "business_hours" in table:
        opens_at, closes_at = _hours(table["business_hours"], (*at, "business_hours"), where)
    work_days = default.work_days
    if "work_days" in table:
        work_days = _work_days(table["work_days"], (*at, "work_days"), where)
    country = table.get("holidays_country", default.country) or None
    subdivision = (
        table.get(
            "holidays_subdivision", default.subdivision if country == default.country else None
        )
        or None
    )
    if "holidays_country" in table or "holidays_subdivision" in table:
        _check_holidays(country, subdivision, at, where)
    closed = table.get("closed_dates", [])
    if not isinstance(closed, list) or not all(
        isinstance(d, date) and not isinstance(d, datetime) for d in closed
    ):
        raise where.error(
            (*at, "closed_dates"), "closed_dates lists dates, like [2026-12-24, 2026-12-31]"
        )
    return CalendarSnapshot(
        timezone=timezone,
        work_days=work_days,
        opens_at=opens_at,
        closes_at=closes_at,
        country=country,
        subdivision=subdivision,
        closed_dates=tuple(sorted(set(closed))),
    )


def parse_business_hours(text: str) -> tuple[time, time]:
    """``"08:00-18:00"`` as (opening, closing); ValueError saying how to write it."""
    try:
        opens, closes = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ValueError(f'{text!r}: write it like "08:00-18:00"') from None
    if opens >= closes:
        raise ValueError(f"{text!r}: the desk must open before it closes")
    return opens, closes


def parse_work_days(names: Iterable[str]) -> tuple[int, ...]:
    """Day names (``mon`` or ``monday``, any case) as ISO weekday numbers, sorted."""
    days = [name.strip().lower()[:3] for name in names if name.strip()]
    if not days or any(day not in WEEKDAYS for day in days):
        raise ValueError("list days, like mon,tue,wed,thu,fri")
    return tuple(sorted({WEEKDAYS[day] for day in days}))


def _hours(value: Any, at: tuple[str, ...], where: _Lines) -> tuple[time, time]:
    try:
        return parse_business_hours(str(value))
    except ValueError as error:
        raise where.error(at, f"business_hours {error}") from None


def _work_days(value: Any, at: tuple[str, ...], where: _Lines) -> tuple[int, ...]:
    try:
        return parse_work_days(str(day) for day in value if isinstance(value, list))
    except ValueError as error:
        raise where.error(at, f"work_days {value!r}: {error}") from None


def _check_holidays(
    country: str | None, subdivision: str | None, at: tuple[str, ...], where: _Lines
) -> None:
    if country is None:
        return
    try:
        holidays.country_holidays(country, subdiv=subdivision, years=datetime.now(UTC).year)
    except (NotImplementedError, KeyError, RuntimeError):
        key = (
            "holidays_subdivision"
            if subdivision and country in holidays.list_supported_countries()
            else "holidays_country"
        )
        what = (
            f"subdivision {subdivision!r} of {country}"
            if key == "holidays_subdivision"
            else f"country {country!r}"
        )
        raise where.error(
            (*at, key),
            f"unknown holiday {what} (use an ISO code the holidays package knows, "
            "such as BR, PT, US)",
        ) from None


def _decode_error(path: Path, message: str) -> str:
    """tomllib's message as ``file:line: reason`` (it says "(at line N, column M)")."""
    found = re.search(r"\(at line (\d+), column \d+\)", message)
    reason = message[: found.start()].strip() if found else message
    if reason.startswith("Cannot declare") or "overwrite" in reason:
        reason = f"duplicate name: {reason}"
    return f"{path}:{found.group(1)}: {reason}" if found else f"{path}: {reason}"


class _Lines:
    """Where each key of a TOML text is written: its line, for errors that name it.

    tomllib reports lines for syntax errors only; this reads the table headers and
    ``key =`` lines to place the errors the profiles' rules find."""

    _HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(
        r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*="
    )

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self._lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                table = _key_parts(header.group(1))
                self._lines.setdefault(table, number)
                continue
            key = self._KEY.match(line)
            if key:
                self._lines.setdefault((*table, *_key_parts(key.group(1))), number)

    def line_of(self, at: tuple[str, ...]) -> int | None:
        for end in range(len(at), 0, -1):
            if at[:end] in self._lines:
                return self._lines[at[:end]]
        return None

    def error(self, at: tuple[str, ...], reason: str) -> ProfilesFileError:
        line = self.line_of(at)
        place = f"{self.path}:{line}" if line is not None else str(self.path)
        return ProfilesFileError(f"{place}: {'.'.join(at)}: {reason}")


def _key_parts(dotted: str) -> tuple[str, ...]:
    parts = re.findall(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_-]+)", dotted)
    return tuple(next(p for p in groups if p) if any(groups) else "" for groups in parts)
