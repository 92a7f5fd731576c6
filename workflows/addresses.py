"""Email addresses compared as mail systems compare them. Pure.

Two addresses are the same when their local parts match without regard to case (as
the design intends, and as every common mail provider treats them) and their domains
are the same domain name: compared in their ASCII (IDNA, UTS 46 non-transitional) form,
so ``Bücher.de`` is ``xn--bcher-kva.de``, while ``straße.de`` and ``strasse.de`` stay two
different domains. Unicode case folding is never used: it would make them one.
"""

from __future__ import annotations

from functools import lru_cache

import idna


@lru_cache(maxsize=4096)
def canonical(address: str) -> str:
    local, at, domain = address.strip().rpartition("@")
    if not at:
        return address.strip().lower()
    try:
        ascii_domain = idna.encode(domain.rstrip("."), uts46=True, transitional=False).decode()
    except idna.IDNAError:
        ascii_domain = domain.lower()
    return f"{local.lower()}@{ascii_domain.lower()}"


def same_address(first: str | None, second: str | None) -> bool:
    return first is not None and second is not None and canonical(first) == canonical(second)
