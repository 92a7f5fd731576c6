"""Messages of the corpus (``tests/mail/corpus``) as a sender would send them now.

Tramita remembers every Message-ID it has routed: the same message twice is a
``duplicate``, as it must be. So each message taken from the corpus gets a Message-ID of
its own (the ticket's id, or a fresh number, added to the corpus's), and its ``TICKET``
placeholder becomes the ticket it answers.
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"
_MESSAGE_ID = re.compile(rb"^(Message-ID:\s*<)([^@>]+)@", re.IGNORECASE | re.MULTILINE)
_fresh = itertools.count(1)


def corpus_mail(name: str, ticket_id: str | None = None, **replace: str) -> bytes:
    raw = (CORPUS / name).read_bytes()
    if ticket_id is not None:
        raw = raw.replace(b"TICKET", ticket_id.encode())
    for old, new in replace.items():
        raw = raw.replace(old.encode(), new.encode())
    suffix = ticket_id or f"{os.getpid()}-{next(_fresh)}"
    return _MESSAGE_ID.sub(
        lambda m: m.group(1) + m.group(2) + b"." + suffix.encode() + b"@", raw, 1
    )


def message_id_of(raw: bytes) -> str:
    found = re.search(rb"^Message-ID:\s*(<[^>]+>)", raw, re.IGNORECASE | re.MULTILINE)
    assert found is not None, "every corpus message has a Message-ID"
    return found.group(1).decode()
