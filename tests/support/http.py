"""A real HTTP receiver on loopback that records requests (for webhooks)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


async def wait_until_ready(
    base_url: str, process: asyncio.subprocess.Process | None = None, *, seconds: float = 60
) -> None:
    """Poll ``/readyz`` until it answers 200; fail early if ``process`` exits."""
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        for _ in range(int(seconds * 10)):
            if process is not None and process.returncode is not None:
                raise AssertionError(f"the process exited early with {process.returncode}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{base_url} was not ready within {seconds}s")


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    fail_first: int = 0
    """Answer 503 to this many requests before accepting."""
    requests: list[Recorded] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.requests.append(Recorded(self.path, dict(self.headers), body))
                    failing = receiver.fail_first > 0
                    if failing:
                        receiver.fail_first -= 1
                self.send_response(503 if failing else 204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def recorded(self) -> list[Recorded]:
        with self._lock:
            return list(self.requests)
