"""``GET /profiles``: the processes in force, as the API and the worker read them."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from api.deps import StaffDep
from config import Settings
from profiles import WEEKDAY_NAMES, Profile
from workflows.models import (
    Priority,
    ProfilePolicy,
    ResolutionMethod,
    SlaMetric,
    SlaPause,
    WaitReason,
)

router = APIRouter(tags=["profiles"])


class CalendarDescription(BaseModel):
    timezone: str
    business_hours: str
    work_days: list[str]
    holidays_country: str | None
    holidays_subdivision: str | None
    closed_dates: list[date]


class SlaDescription(BaseModel):
    targets: dict[SlaMetric, dict[Priority, str]]
    """Each target in words ("4 business hours")."""
    warn_at: float | None
    pause_while: list[SlaPause]
    supervisors: list[str]


class ProfileDescription(BaseModel):
    name: str
    default: bool
    source: str
    """``built-in``, or the profiles file that defines it."""
    extends: str | None
    language: str
    status_labels: dict[str, str]
    wait_labels: dict[str, str]
    wait_reasons: list[WaitReason]
    resolution_methods: list[ResolutionMethod]
    switches: dict[str, bool]
    timers: dict[str, str | list[str] | bool | None]
    """Offsets in words, as the profiles file writes them."""
    calendar: CalendarDescription
    sla: SlaDescription | None


class ProfileList(BaseModel):
    profiles: list[ProfileDescription]


_SWITCHES = (
    "assign_starts_work",
    "agent_activity_starts_work",
    "require_resolution_message",
    "qualification_enabled",
    "split_enabled",
    "acknowledge_new_tickets",
    "reject_unknown_senders",
)


def describe(name: str, profile: Profile, *, default: bool) -> ProfileDescription:
    policy = profile.policy
    calendar = profile.calendar
    return ProfileDescription(
        name=name,
        default=default,
        source=profile.source,
        extends=profile.extends,
        language=policy.language,
        status_labels={status.value: text for status, text in policy.status_labels.items()},
        wait_labels={reason.value: text for reason, text in policy.wait_labels.items()},
        wait_reasons=sorted(policy.wait_reasons),
        resolution_methods=sorted(policy.resolution_methods),
        switches={switch: bool(getattr(policy, switch)) for switch in _SWITCHES},
        timers=_timers(policy),
        calendar=CalendarDescription(
            timezone=calendar.timezone,
            business_hours=f"{calendar.opens_at:%H:%M}-{calendar.closes_at:%H:%M}",
            work_days=[WEEKDAY_NAMES[day] for day in calendar.work_days],
            holidays_country=calendar.country,
            holidays_subdivision=calendar.subdivision,
            closed_dates=list(calendar.closed_dates),
        ),
        sla=SlaDescription(
            targets={
                metric: {priority: offset.describe() for priority, offset in by_priority.items()}
                for metric, by_priority in policy.sla.targets.items()
            },
            warn_at=policy.sla.warn_at,
            pause_while=sorted(policy.sla.pause_while),
            supervisors=list(policy.sla.supervisors),
        )
        if policy.sla
        else None,
    )


def _timers(policy: ProfilePolicy) -> dict[str, str | list[str] | bool | None]:
    timers = policy.timers
    return {
        "customer_wait_reminders": [o.describe() for o in timers.customer_wait_reminders],
        "customer_wait_close": timers.customer_wait_close.describe()
        if timers.customer_wait_close
        else None,
        "resolved_reminders": [o.describe() for o in timers.resolved_reminders],
        "resolved_close": timers.resolved_close.describe(),
        "defer_reminders_to_business_hours": timers.defer_reminders_to_business_hours,
        "restart_clocks_on_email": timers.restart_clocks_on_email,
        "stop_validation_reminders_when_rated": timers.stop_validation_reminders_when_rated,
    }


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.get("/profiles", summary="The profiles in force")
async def list_profiles(
    _: StaffDep, settings: Annotated[Settings, Depends(_settings)]
) -> ProfileList:
    """The built-in profiles and those of ``TRAMITA_PROFILES_FILE``: labels, switches,
    timers in words, calendar and SLA targets. New tickets get these rules; a ticket
    keeps the rules it was opened with."""
    return ProfileList(
        profiles=[
            describe(name, profile, default=name == settings.default_profile)
            for name, profile in settings.profiles.items()
        ]
    )
