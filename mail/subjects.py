"""What a subject says about threading: the ticket tag, and the title under the prefixes."""

from __future__ import annotations

import re

TAG = re.compile(r"\[#([A-Za-z0-9][A-Za-z0-9_-]{0,63})\]")
# Reply and forward prefixes of the common mail clients and languages: Re, RES, RE, ENC,
# Fwd, AW, VS, SV, RV and the like, repeated or numbered ("Re[2]:").
PREFIX = re.compile(
    r"^\s*(re|res|aw|sv|vs|antw|odp|fwd?|enc|tr|wg|rv|i|vb|doorst)\s*(\[\d+\])?\s*:\s*",
    re.IGNORECASE,
)


def ticket_tag(subject: str) -> str | None:
    """The ticket a subject names with ``[#<id>]`` (every email Tramita sends has one)."""
    found = TAG.search(subject)
    return found.group(1) if found else None


def has_prefix(subject: str) -> bool:
    return bool(PREFIX.match(subject))


def bare(subject: str) -> str:
    """The subject without its ticket tags and reply or forward prefixes, on one line."""
    text = TAG.sub(" ", subject)
    while True:
        stripped = PREFIX.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    return " ".join(text.split())
