"""The console's sign-in: an API key once, then a signed session cookie.

The cookie holds a keyed digest of the API key (never the key) and the session's
CSRF token, signed with ``TRAMITA_SECRET_KEY`` and dated; it is ``HttpOnly`` and
``SameSite=Strict`` (and ``Secure`` in production) and lasts
``TRAMITA_CONSOLE_SESSION_HOURS``. A session ends when its key leaves
``TRAMITA_API_KEYS``. Every form carries the CSRF token, which must match the session's;
the sign-in form carries one of its own, bound to a short-lived cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from api.principal import Principal
from config import Role, Settings

SESSION_COOKIE = "tramita_session"
SIGN_IN_COOKIE = "tramita_sign_in"
SIGN_IN_MINUTES = 30
CONSOLE_ROLES: tuple[Role, ...] = ("agent", "supervisor")


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str


class Sessions:
    def __init__(self, settings: Settings) -> None:
        secret = settings.secret_key.get_secret_value()
        self._sessions = URLSafeTimedSerializer(secret, salt="tramita-console-session")
        self._sign_in = URLSafeTimedSerializer(secret, salt="tramita-console-sign-in")
        self._max_age = int(settings.console_session_hours * 3600)
        # Keyed with the secret: a copied cookie gives no way to test guesses of a key.
        self._digest_key = hashlib.sha256(b"tramita-console-key\0" + secret.encode()).digest()
        self._keys = {self._digest(key): entry for key, entry in settings.api_keys.items()}
        self.secure = settings.env == "production"

    def _digest(self, key: str) -> str:
        return hmac.new(self._digest_key, key.encode(), hashlib.sha256).hexdigest()[:32]

    @property
    def max_age(self) -> int:
        return self._max_age

    def open(self, api_key: str) -> tuple[str, Session] | None:
        """A new session's cookie value for a console user's key; None for any other."""
        digest = self._digest(api_key)
        entry = next((e for d, e in self._keys.items() if hmac.compare_digest(d, digest)), None)
        if entry is None or entry.role not in CONSOLE_ROLES:
            return None
        csrf = secrets.token_urlsafe(24)
        cookie: str = self._sessions.dumps({"k": digest, "c": csrf})
        return cookie, Session(Principal(entry.subject, entry.role), csrf)

    def read(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            payload = self._sessions.loads(cookie, max_age=self._max_age)
        except BadSignature:
            return None
        entry = self._keys.get(payload.get("k", "")) if isinstance(payload, dict) else None
        if entry is None or entry.role not in CONSOLE_ROLES:
            return None  # the key was removed or demoted since
        return Session(Principal(entry.subject, entry.role), str(payload["c"]))

    def sign_in_token(self) -> tuple[str, str]:
        """The sign-in form's CSRF token and the cookie that vouches for it."""
        token = secrets.token_urlsafe(24)
        return token, self._sign_in.dumps(token)

    def sign_in_ok(self, cookie: str | None, token: str) -> bool:
        if not cookie or not token:
            return False
        try:
            expected = self._sign_in.loads(cookie, max_age=SIGN_IN_MINUTES * 60)
        except BadSignature:
            return False
        return isinstance(expected, str) and hmac.compare_digest(expected, token)


def csrf_ok(session: Session, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf, token or "")
