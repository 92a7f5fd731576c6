"""The new text of a reply: the quoted earlier message taken out, for the timeline.

``quotequail`` finds the quote headers of the common mail clients in English and
Portuguese ("On ... wrote:", "Em ... escreveu:", Outlook's "From:/Sent:" and
"De:/Enviado:" blocks, "-----Original Message-----") and bottom-posted quotes. Two
decisions on top of it:

* Outlook's quoted original looks like a forward to it. A "forward" is taken out only
  when the subject says the message is a reply (and not a forward): a customer who
  forwards a mail to the help desk is sending that mail as the request.
* The separator line Portuguese Outlook leaves ("-----Mensagem original-----") goes too.

Only follow-ups are stripped; the first message of a ticket is kept whole. The whole
text is always kept as well (the content store), for staff.
"""

from __future__ import annotations

import re

import quotequail

REPLY_PREFIX = re.compile(r"^\s*((re|res|aw|sv|vs|antw|odp|r)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
FORWARD_PREFIX = re.compile(r"^\s*(fwd?|enc|tr|wg|rv|i|vb|doorst)\s*:|\(fwd\)\s*$", re.IGNORECASE)
_TRAILING_SEPARATOR = re.compile(
    r"\n[ \t]*(-{2,}[ \t]*(original message|mensagem original|mensaje original|"
    r"ursprüngliche nachricht|message d'origine)[ \t]*-{2,}|_{10,})[ \t]*\Z",
    re.IGNORECASE,
)


# The first line of every email Tramita sends; a reply is cut where it appears.
REPLY_ABOVE: dict[str, str] = {
    "pt-BR": "##- Por favor, responda acima desta linha -##",
    "en": "##- Please type your reply above this line -##",
}


def above_marker(text: str) -> str:
    """The text above Tramita's "reply above this line" marker (all of it if none), less
    the client's "On ... wrote:" line just above the quoted marker."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if any(marker in line for marker in REPLY_ABOVE.values()):
            kept = lines[:index]
            while kept and (not kept[-1].strip() or kept[-1].rstrip().endswith(":")):
                kept.pop()
            return "\n".join(kept).strip()
    return text.strip()


def is_reply_subject(subject: str) -> bool:
    return bool(REPLY_PREFIX.match(subject)) and not FORWARD_PREFIX.match(subject)


def new_text(text: str, subject: str) -> str:
    """What the sender wrote this time; the whole text when no quote is recognised."""
    whole = text.strip()
    if not whole:
        return whole
    found = quotequail.unwrap(whole)
    if not found:
        return above_marker(whole)
    if found.get("type") == "forward" and not is_reply_subject(subject):
        return whole
    parts = [found.get("text_top") or "", found.get("text_bottom") or ""]
    fresh = "\n\n".join(part for part in parts if part).strip()
    fresh = _TRAILING_SEPARATOR.sub("", "\n" + fresh).strip()
    return above_marker(fresh) or above_marker(whole)
