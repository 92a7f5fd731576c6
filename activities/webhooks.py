"""Signed webhooks for every status change.

The body is JSON. With ``TRAMITA_WEBHOOK_SECRET`` set, each delivery attempt carries
``X-Tramita-Signature: t=<unix seconds>,v1=<hex>``, where ``hex`` is the HMAC-SHA256 of
``"<t>." + body`` with the secret (the scheme Stripe and Slack use): a receiver checks
the HMAC and refuses a ``t`` more than five minutes from its clock, so a captured
delivery cannot be replayed later (:func:`verify` does both). Production refuses
webhook URLs without a secret (``config``); in development an unsigned delivery is
logged as such.

``X-Tramita-Delivery`` (ticket id and timeline seq) is the same on every retry, so
receivers can drop duplicates. The receivers already served are kept in the activity's
heartbeat (as digests of their URLs), so a retry after a partial failure only calls the
rest. URLs may carry tokens: logs, failure messages and Temporal's records name only
their scheme and host.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from urllib.parse import urlsplit

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.models import WebhookInput

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Tramita-Signature"
DELIVERY_HEADER = "X-Tramita-Delivery"
TOLERANCE_SECONDS = 300


def sign(body: bytes, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    body: bytes,
    secret: str,
    header: str,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """What a receiver checks: the signature matches and its time is recent."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    timestamp, signature = parts.get("t", ""), parts.get("v1", "")
    if not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    expected = sign(body, secret, int(timestamp)).split("v1=", 1)[1]
    return hmac.compare_digest(expected, signature)


def redacted(url: str) -> str:
    """``scheme://host[:port]/…``: a URL's path and query may hold a token."""
    parts = urlsplit(url)
    tail = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{tail}"


def _digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def webhook_body(request: WebhookInput) -> bytes:
    payload = {
        "ticket_id": request.ticket_id,
        "profile": request.profile,
        "event": request.effect.event,
        "seq": request.effect.seq,
        "from_status": request.effect.from_status.value if request.effect.from_status else None,
        "to_status": request.effect.to_status.value,
        "status_label": request.status_label,
        "occurred_at": request.occurred_at.isoformat(),
    }
    if request.effect.sla is not None:
        payload["sla"] = request.effect.sla.model_dump(mode="json")
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class WebhookActivities:
    def __init__(
        self, client: httpx.AsyncClient, urls: tuple[str, ...], secret: str | None
    ) -> None:
        self._client = client
        self._urls = urls
        self._secret = secret

    @activity.defn(name="deliver_webhook")
    async def deliver(self, request: WebhookInput) -> int:
        """Posts to every configured URL; returns how many were served."""
        if not self._urls:
            return 0
        details = activity.info().heartbeat_details
        served: set[str] = set(details[0]) if details else set()
        body = webhook_body(request)
        headers = {
            "Content-Type": "application/json",
            DELIVERY_HEADER: f"{request.ticket_id}.{request.effect.seq}",
        }
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(body, self._secret, int(time.time()))
        else:
            logger.warning("webhook sent unsigned: TRAMITA_WEBHOOK_SECRET is not set")
        failures: list[str] = []
        for url in self._urls:
            receiver = _digest(url)
            if receiver in served:
                continue
            try:
                response = await self._client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                failures.append(f"{redacted(url)}: {exc.__class__.__name__}")
                continue
            if response.is_success:
                served.add(receiver)
                activity.heartbeat(sorted(served))
            elif 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                # The receiver refuses this delivery; retrying would not change its mind.
                logger.warning(
                    "webhook refused",
                    extra={"url": redacted(url), "status": response.status_code},
                )
                served.add(receiver)
                activity.heartbeat(sorted(served))
            else:
                failures.append(f"{redacted(url)}: HTTP {response.status_code}")
        if failures:
            raise ApplicationError(
                "webhook delivery failed: " + "; ".join(failures), type="WebhookFailed"
            )
        return len(served)
