"""Signed page tokens: what the API hands out to page through a list, and takes back.

A forged or altered token is refused here with a 422 (Temporal would answer it with
retried UNKNOWN errors). The key is derived from the configured API keys, so every
replica with the same configuration accepts the others' tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable

from api.failures import InvalidRequest

TOKEN_MAC_BYTES = 12


class PageTokens:
    def __init__(self, secrets: Iterable[str]) -> None:
        seed = b"tramita-page-token\0" + "\0".join(sorted(secrets)).encode()
        self._key = hashlib.sha256(seed).digest()

    def encode(self, raw: bytes | None) -> str | None:
        if not raw:
            return None
        return base64.b64encode(self._mac(raw) + raw, altchars=b"-_").decode()

    def decode(self, token: str | None) -> bytes | None:
        if not token:
            return None
        try:
            signed = base64.b64decode(token.encode(), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise _bad_token() from None
        mac, raw = signed[:TOKEN_MAC_BYTES], signed[TOKEN_MAC_BYTES:]
        if not raw or not hmac.compare_digest(mac, self._mac(raw)):
            raise _bad_token()
        return raw

    def _mac(self, raw: bytes) -> bytes:
        return hmac.new(self._key, raw, hashlib.sha256).digest()[:TOKEN_MAC_BYTES]


def _bad_token() -> InvalidRequest:
    return InvalidRequest("page_token is not one this API handed out")
