"""HTML forms for commands, derived from their API bodies.

A command's form is its API body (:func:`api.routes.commands.body_model`), one control
per field chosen by the field's type: text, a text area for long texts and lists, a
choice for enumerations (only the values the ticket's profile has), a check box, a
number, a local date and time. What comes back is read into the same body model, so the
console and the API accept exactly the same arguments.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from workflows.commands import MANUAL_RESOLUTION_METHODS
from workflows.models import (
    LONG_TEXT,
    NewTicket,
    ProfilePolicy,
    Qualification,
    ResolutionMethod,
    WaitReason,
)

Kind = Literal["text", "textarea", "email", "select", "checkbox", "number", "datetime", "lines"]


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class Control:
    name: str
    label: str
    kind: Kind
    required: bool
    help: str = ""
    choices: tuple[Choice, ...] = ()
    lines_of: Literal["text", "tickets"] = "text"


@dataclass(frozen=True)
class Form:
    command: str
    controls: tuple[Control, ...]
    values: dict[str, str] = field(default_factory=dict)
    errors: tuple[str, ...] = ()


def _unwrap(annotation: Any) -> Any:
    """The annotation without ``| None``."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _metadata(annotation: Any) -> list[Any]:
    return list(getattr(annotation, "__metadata__", ()))


def _enum_choices(enum: type[Enum], policy: ProfilePolicy) -> tuple[Choice, ...]:
    members = list(enum)
    if enum is WaitReason:
        members = [m for m in members if m in policy.wait_reasons]
    elif enum is ResolutionMethod:
        # Only what an agent resolves with by hand; merges, splits and cases resolve
        # through their own commands.
        members = [
            m for m in members if m in policy.resolution_methods and m in MANUAL_RESOLUTION_METHODS
        ]
    elif enum is Qualification and not policy.qualification_enabled:
        members = []
    labels: dict[str, str] = (
        {reason.value: label for reason, label in policy.wait_labels.items()}
        if enum is WaitReason
        else {}
    )
    return tuple(
        Choice(str(m.value), labels.get(str(m.value), str(m.value).replace("_", " ")))
        for m in members
    )


def controls_for(body: type[BaseModel], policy: ProfilePolicy) -> tuple[Control, ...]:
    found = []
    for name, info in body.model_fields.items():
        annotation = _unwrap(info.annotation)
        required = info.is_required()
        label = name.replace("_", " ").capitalize()
        help_text = info.description or ""
        metadata = [*_metadata(annotation), *info.metadata]
        if get_origin(annotation) is tuple:
            item = get_args(annotation)[0]
            found.append(
                Control(
                    name,
                    label,
                    "lines",
                    required,
                    help_text or "One per line.",
                    lines_of="tickets" if item is NewTicket else "text",
                )
            )
            continue
        kind: Kind
        choices: tuple[Choice, ...] = ()
        plain = annotation.__origin__ if hasattr(annotation, "__metadata__") else annotation
        if isinstance(plain, type) and issubclass(plain, Enum):
            kind, choices = "select", _enum_choices(plain, policy)
        elif plain is bool:
            kind = "checkbox"
        elif plain is int:
            kind = "number"
        elif plain is datetime:
            kind = "datetime"
        elif LONG_TEXT in metadata:
            kind = "textarea"
        elif "email" in str(plain).lower():
            kind = "email"
        else:
            kind = "text"
        found.append(Control(name, label, kind, required, help_text, choices))
    return tuple(found)


def read_form(
    body: type[BaseModel],
    controls: tuple[Control, ...],
    submitted: dict[str, str],
    timezone: str,
) -> tuple[BaseModel | None, tuple[str, ...]]:
    """The body a form describes, or the reasons it is not one (in words)."""
    data: dict[str, Any] = {}
    for control in controls:
        raw = submitted.get(control.name, "")
        if control.kind == "checkbox":
            if raw:
                data[control.name] = True
            continue
        text = raw.strip()
        if not text:
            continue
        if control.kind == "textarea":
            # A long text as typed: indentation (a pasted log) and inner blank lines stay,
            # as the API keeps them; only the browser's line ends are made plain.
            data[control.name] = raw.replace("\r\n", "\n").rstrip()
            continue
        if control.kind == "lines":
            items = [line.strip() for line in text.replace(",", "\n").splitlines()]
            items = [item for item in items if item]
            if control.lines_of == "tickets":
                data[control.name] = [{"title": item} for item in text.splitlines() if item.strip()]
            else:
                data[control.name] = items
        elif control.kind == "datetime":
            try:
                local = datetime.fromisoformat(text)
            except ValueError:
                return None, (f"{control.label}: not a date and time",)
            if local.tzinfo is None:
                local = local.replace(tzinfo=ZoneInfo(timezone))
                # A wall time the clock skips when it springs forward does not exist.
                if local.astimezone(UTC).astimezone(local.tzinfo).replace(tzinfo=None) != (
                    local.replace(tzinfo=None)
                ):
                    return None, (
                        f"{control.label}: {text} does not exist in {timezone} "
                        "(the clocks change then); choose another time",
                    )
            data[control.name] = local.isoformat()
        else:
            data[control.name] = text
    try:
        return body.model_validate(data), ()
    except ValidationError as invalid:
        return None, tuple(words(error) for error in invalid.errors())


def words(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if not isinstance(part, int))
    message = str(error.get("msg", "is not valid"))
    return f"{where.replace('_', ' ').capitalize()}: {message}" if where else message
