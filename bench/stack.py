"""The parts a bench run needs: dev server, worker, API, mail sink, and gauges on them.

Every part is a separate process, as in ``make run``: the bench client's own CPU use
does not land in the worker's figures, and the worker's memory is its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller

from config import Settings
from devstack.run import temporal_command, wait_for_temporal

STOP_TIMEOUT = 30.0
READY_TIMEOUT = 60.0
RSS_SAMPLE_SECONDS = 0.25


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_settings(data_dir: Path) -> Settings:
    return Settings(
        temporal_address=f"127.0.0.1:{free_port()}",
        ui_port=free_port(),
        task_queue="tramita-bench",
        api_port=free_port(),
        smtp_host="127.0.0.1",
        smtp_port=free_port(),
        mail_from="Tramita <tramita@tramita.bench>",
        archive_url=f"sqlite:///{data_dir}/archive.db",
        data_dir=data_dir,
        worker_metrics_address=f"127.0.0.1:{free_port()}",
        rate_limit_per_minute=0,  # the bench is one client sending as fast as it can
    )


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that gives a child process these settings."""
    env = dict(os.environ)
    for name in (
        "temporal_address",
        "task_queue",
        "api_port",
        "smtp_host",
        "smtp_port",
        "mail_from",
        "archive_url",
        "data_dir",
        "worker_metrics_address",
        "worker_max_cached_workflows",
        "rate_limit_per_minute",
    ):
        env[f"TRAMITA_{name.upper()}"] = str(getattr(settings, name))
    env.update(extra)
    return env


@dataclass
class Arrival:
    ticket_id: str
    message_id: str
    at: float
    """Wall-clock seconds (``time.time()``) when the message was accepted."""


@dataclass
class MailSink:
    """A real SMTP server on loopback that only notes which ticket's message came when."""

    host: str
    port: int
    arrivals: list[Arrival] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None
    _watcher: Callable[[], None] | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        received = time.time()
        headers = message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.arrivals.append(
                Arrival(str(headers["X-Tramita-Ticket"]), str(headers["Message-ID"]), received)
            )
            watcher = self._watcher
        if watcher is not None:
            watcher()
        return "250 OK"

    async def wait_for(self, total: int, patience: float) -> bool:
        """Waits until ``total`` messages arrived in all, at most ``patience`` seconds."""
        loop = asyncio.get_running_loop()
        reached = asyncio.Event()

        def check() -> None:
            if self.count() >= total:
                loop.call_soon_threadsafe(reached.set)

        self._watcher = check
        check()
        try:
            async with asyncio.timeout(patience):
                await reached.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._watcher = None

    def start(self) -> None:
        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()

    def count(self) -> int:
        with self._lock:
            return len(self.arrivals)


@dataclass
class Part:
    name: str
    process: asyncio.subprocess.Process
    peak_rss_bytes: int = 0
    _sampler: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_bytes(self) -> int:
        """Resident memory now, from /proc (Linux)."""
        return _status_field(self.pid, "VmRSS")

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process has used so far, from /proc (Linux)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        user, system = int(fields[11]), int(fields[12])
        return (user + system) / os.sysconf("SC_CLK_TCK")

    def start_sampling(self) -> None:
        self._sampler = asyncio.create_task(self._sample())

    def reset_peak(self) -> None:
        self.peak_rss_bytes = self.rss_bytes()

    async def _sample(self) -> None:
        while self.process.returncode is None:
            with contextlib.suppress(OSError):
                self.peak_rss_bytes = max(self.peak_rss_bytes, self.rss_bytes())
            await asyncio.sleep(RSS_SAMPLE_SECONDS)

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()


def own_cpu_seconds() -> float:
    """CPU time of this process: the bench's own clients and the mail sink."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuMeter:
    """CPU seconds each part (and the bench itself) spends between start and stop."""

    parts: Sequence[Part]
    _before: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self._before = self._now()

    def spent(self) -> dict[str, float]:
        now = self._now()
        return {name: now[name] - self._before.get(name, 0.0) for name in now}

    def _now(self) -> dict[str, float]:
        readings = {part.name: part.cpu_seconds() for part in self.parts}
        readings["bench client"] = own_cpu_seconds()
        return readings


def _status_field(pid: int, name: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{name}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


async def start_part(name: str, command: Sequence[str], env: Mapping[str, str], logs: Path) -> Part:
    log = (logs / f"{name}.log").open("ab")
    process = await asyncio.create_subprocess_exec(
        *command, env=dict(env), stdout=log, stderr=log, start_new_session=True
    )
    log.close()
    part = Part(name, process)
    part.start_sampling()
    return part


async def start_temporal(settings: Settings) -> Part:
    command = [*temporal_command(settings), "--headless"]
    part = await start_part("temporal", command, os.environ, settings.data_dir)
    await wait_for_temporal(settings)
    return part


async def start_worker(
    settings: Settings, module: str | None = None, env: dict[str, str] | None = None
) -> Part:
    """``python worker.py`` (the production worker), or ``python -m <module>``."""
    command = [sys.executable, "-m", module] if module else [sys.executable, "worker.py"]
    part = await start_part(
        "worker", command, settings_env(settings, **(env or {})), settings.data_dir
    )
    await _wait_for_http(f"http://{settings.worker_metrics_address}/metrics", part)
    return part


async def start_api(settings: Settings) -> Part:
    command = [sys.executable, "-m", "bench.serve_api"]
    part = await start_part("api", command, settings_env(settings), settings.data_dir)
    await _wait_for_http(f"http://{settings.api_host}:{settings.api_port}/readyz", part)
    return part


async def _wait_for_http(url: str, part: Part) -> None:
    try:
        async with asyncio.timeout(READY_TIMEOUT), httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if part.process.returncode is not None:
                    raise RuntimeError(f"{part.name} exited with {part.process.returncode}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        return
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise RuntimeError(f"{part.name} not ready at {url} within {READY_TIMEOUT}s") from None


async def worker_metrics(settings: Settings) -> dict[str, float]:
    """The worker's Temporal SDK metrics (Prometheus text), summed over their labels."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        text = (await client.get(f"http://{settings.worker_metrics_address}/metrics")).text
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_and_labels, _, value = line.rpartition(" ")
        name = name_and_labels.split("{", 1)[0]
        with contextlib.suppress(ValueError):
            totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = 0
    with contextlib.suppress(OSError):
        match = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        memory = int(match.group(1)) * 1024 if match else 0
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "python": sys.version.split()[0],
        "platform": sys.platform,
    }
