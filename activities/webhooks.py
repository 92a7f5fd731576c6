"""Signed webhooks for every status change.

The body is JSON; ``X-Tramita-Signature: sha256=<hex>`` is the HMAC-SHA256 of the raw
body with ``TRAMITA_WEBHOOK_SECRET``. ``X-Tramita-Delivery`` (ticket id and timeline seq)
is the same on every retry, so receivers can drop duplicates. URLs already served are
kept in the activity's heartbeat, so a retry after a partial failure only calls the rest.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.models import WebhookInput

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Tramita-Signature"
DELIVERY_HEADER = "X-Tramita-Delivery"


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, signature: str) -> bool:
    return hmac.compare_digest(sign(body, secret), signature)


def webhook_body(request: WebhookInput) -> bytes:
    payload = {
        "ticket_id": request.ticket_id,
        "profile": request.profile.value,
        "event": request.effect.event,
        "seq": request.effect.seq,
        "from_status": request.effect.from_status.value if request.effect.from_status else None,
        "to_status": request.effect.to_status.value,
        "status_label": request.status_label,
        "occurred_at": request.occurred_at.isoformat(),
    }
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
            headers[SIGNATURE_HEADER] = sign(body, self._secret)
        failures: list[str] = []
        for url in self._urls:
            if url in served:
                continue
            try:
                response = await self._client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                failures.append(f"{url}: {exc.__class__.__name__}")
                continue
            if response.is_success:
                served.add(url)
                activity.heartbeat(sorted(served))
            elif 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                # The receiver refuses this delivery; retrying would not change its mind.
                logger.warning(
                    "webhook refused", extra={"url": url, "status": response.status_code}
                )
                served.add(url)
                activity.heartbeat(sorted(served))
            else:
                failures.append(f"{url}: HTTP {response.status_code}")
        if failures:
            raise ApplicationError(
                "webhook delivery failed: " + "; ".join(failures), type="WebhookFailed"
            )
        return len(served)
