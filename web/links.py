"""Customer links: ``/c/{token}``, where the token names a ticket and its requester.

Signed with ``TRAMITA_SECRET_KEY`` (itsdangerous, HMAC-SHA256) and dated: a link is
honoured for ``TRAMITA_CUSTOMER_LINK_DAYS`` after its email was written. A forged, altered
or expired token reads as nothing at all; the page then answers a plain 404, so a
stranger cannot tell a ticket that exists from one that does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

SALT = "tramita-customer-link"


@dataclass(frozen=True)
class CustomerLink:
    ticket_id: str
    requester: str


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=SALT)


def sign(secret: str, ticket_id: str, requester: str) -> str:
    token: str = _serializer(secret).dumps({"t": ticket_id, "r": requester})
    return token


def read(secret: str, token: str, *, max_age_days: int) -> CustomerLink | None:
    try:
        payload = _serializer(secret).loads(token, max_age=max_age_days * 86_400)
    except BadSignature:  # also SignatureExpired, its subclass
        return None
    if not isinstance(payload, dict):
        return None
    ticket_id, requester = payload.get("t"), payload.get("r")
    if not isinstance(ticket_id, str) or not isinstance(requester, str):
        return None
    return CustomerLink(ticket_id, requester)


def customer_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/c/{token}"


def console_url(public_url: str, ticket_id: str) -> str:
    return f"{public_url.rstrip('/')}/console/tickets/{ticket_id}"
