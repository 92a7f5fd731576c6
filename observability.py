"""Logging and metrics shared by the worker and the API.

``TRAMITA_LOG_FORMAT=json`` writes one JSON object per line (with every ``extra=`` field);
``text`` writes a readable line with the same fields as ``key=value``. The worker exposes
the Temporal SDK's metrics for Prometheus at ``TRAMITA_WORKER_METRICS_ADDRESS``; the API
serves its own request metrics at ``/metrics``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, NoReturn

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from config import Settings, SettingsError, get_settings

# Attributes every LogRecord has; anything else came in through ``extra=``. uvicorn adds
# ``color_message``, the message again with terminal colour codes.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_extras(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _extras(record)
        if extras:
            line += " " + " ".join(f"{k}={v!r}" for k, v in extras.items())
        return line


CUSTOMER_LINK = re.compile(r"/c/[A-Za-z0-9_.\-]+")


class RedactCustomerLinks(logging.Filter):
    """An access log line names the page it served; a customer page's address is its
    credential (``/c/{token}``), so the token is left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/c/" in message:
            record.msg, record.args = CUSTOMER_LINK.sub("/c/[token]", message), ()
        return True


# Their INFO lines name whole URLs, and webhook URLs often carry tokens: Tramita logs
# each delivery itself, naming only the scheme and host.
QUIET_LOGGERS = ("httpx", "httpcore")


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactCustomerLinks) for f in access.filters):
        access.addFilter(RedactCustomerLinks())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def settings_or_exit() -> Settings:
    """The process's settings; on bad ones, say why on stderr (no value, only the setting
    and the reason: values may be secrets) and exit with status 2."""
    try:
        return get_settings()
    except SettingsError as error:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(TextFormatter())
        logging.getLogger().handlers[:] = [handler]
        logging.getLogger("tramita").error("cannot start: %s", error)
        sys.stderr.flush()
        os._exit(2)


def run_process(name: str, body: Callable[[Settings], Coroutine[Any, Any, int | None]]) -> NoReturn:
    """A Tramita process from start to exit: its settings (or exit 2 saying why), its
    logging, ``body`` on an event loop, and exit with what it returned (0 for None), or 1
    after logging what failed. Leaves with ``os._exit``: the Temporal SDK's runtime may
    abort at interpreter exit (sdk-python#300)."""
    settings = settings_or_exit()
    configure_logging(settings)
    try:
        status: int = asyncio.run(body(settings)) or 0
    except Exception:
        logging.getLogger("tramita").exception("%s failed", name)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def worker_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime that serves SDK metrics for Prometheus, when configured."""
    if not settings.worker_metrics_address:
        return None
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=settings.worker_metrics_address)
        )
    )
