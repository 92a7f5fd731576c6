"""Limits that keep one client from holding the API: time, size and rate.

* :class:`GuardedHttpProtocol` (uvicorn's protocol): a request's headers must arrive
  within ``TRAMITA_API_HEADER_TIMEOUT_SECONDS`` of its first byte, and a new
  connection must send one within that time too; otherwise the connection is closed.
  Idle time between two requests of a connection stays uvicorn's keep-alive.
* :class:`RequestBodyGuard` (ASGI): a body over ``TRAMITA_MAX_BODY_BYTES`` is a 413,
  declared or streamed; a body that stalls for ``TRAMITA_API_BODY_TIMEOUT_SECONDS``
  between two parts is a 408.
* :class:`RateLimiter`: ``TRAMITA_RATE_LIMIT_PER_MINUTE`` requests per API key, with a
  burst of as many; past it, 429 with ``Retry-After`` (as Zendesk's API does).
* uvicorn's own ``limit_concurrency`` (``TRAMITA_API_MAX_CONCURRENCY``) answers 503 past
  that many open connections and requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import threading
import time
from asyncio import TimerHandle
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.failures import TooManyRequests


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request's headers."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline: TimerHandle | None = None
        self._arm_header_deadline()  # a new connection must start a request in time

    def data_received(self, data: bytes) -> None:
        idle = self.cycle is None or self.cycle.response_complete
        if idle and self._header_deadline is None:
            self._arm_header_deadline()  # the first bytes of the next request
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._cancel_header_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_deadline(self) -> None:
        deadline = getattr(self, "_header_deadline", None)
        if deadline is not None:
            deadline.cancel()
        self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            self.transport.close()


def guarded_protocol(header_timeout: float) -> type[GuardedHttpProtocol]:
    return type("GuardedHttp", (GuardedHttpProtocol,), {"header_timeout": header_timeout})


class BodyTooLarge(Exception):
    pass


class BodyTooSlow(Exception):
    pass


class RequestBodyGuard:
    """413 for a body over ``max_bytes`` (declared or streamed), 408 for one that stalls.

    A declared Content-Length over the limit is refused before the app runs. A streamed
    body is counted as it arrives: past the limit, or after ``idle_seconds`` without a
    part, the app's read fails, and whatever the app then answers is replaced.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        idle_seconds: float,
        larger: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.default_max_bytes = max_bytes
        self.idle_seconds = idle_seconds
        self.larger = dict(larger or {})
        """Paths that take bigger bodies (raw inbound mail), and how big."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.larger.get(scope.get("path", ""), self.default_max_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
            await _answer(send, 413, "payload_too_large", self._too_large(max_bytes))
            return
        received = 0
        failure: tuple[int, str, str] | None = None
        body_done = False
        answered = False

        async def guarded_receive() -> Message:
            nonlocal received, failure, body_done
            if body_done:
                return await receive()  # after the body: the client's disconnect, any time
            try:
                async with asyncio.timeout(self.idle_seconds):
                    message = await receive()
            except TimeoutError:
                failure = (408, "request_timeout", self._too_slow())
                raise BodyTooSlow from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > max_bytes:
                    failure = (413, "payload_too_large", self._too_large(max_bytes))
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal answered
            if failure is not None:
                if not answered:
                    answered = True
                    await _answer(send, *failure)
                return
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except (BodyTooLarge, BodyTooSlow):
            if not answered and failure is not None:
                await _answer(send, *failure)

    @staticmethod
    def _too_large(max_bytes: int) -> str:
        return f"request bodies here are limited to {max_bytes} bytes"

    def _too_slow(self) -> str:
        return f"the request body stalled for {self.idle_seconds:g} s"


async def _answer(send: Send, status: int, error: str, detail: str) -> None:
    body = json.dumps({"error": error, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


MAX_BUCKETS = 10_000


class RateLimiter:
    """A token bucket per API key: ``per_minute`` requests a minute, bursts of as many.

    Per API process: behind several replicas, each enforces the limit on its own share.
    """

    def __init__(self, per_minute: int, *, clock: Any = time.monotonic) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        """Spend one request of ``key``; raise ``TooManyRequests`` when none is left."""
        if self.per_minute <= 0:
            return
        identity = hashlib.sha256(key.encode()).hexdigest()
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(identity, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - at) * self._rate)
            if tokens < 1.0:
                self._buckets[identity] = (tokens, now)
                wait = math.ceil((1.0 - tokens) / self._rate)
                raise TooManyRequests(
                    f"more than {self.per_minute} requests a minute with this key; "
                    f"try again in {wait} s",
                    retry_after=wait,
                )
            self._buckets[identity] = (tokens - 1.0, now)
            if len(self._buckets) > MAX_BUCKETS:
                self._forget_full(now)

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled: a fresh one reads the same. Keeps the table
        bounded by the callers of the last minute, however many addresses come by."""
        full_after = self.per_minute / self._rate
        self._buckets = {
            identity: (tokens, at)
            for identity, (tokens, at) in self._buckets.items()
            if now - at < full_after
        }
