"""``python -m api``: serve the API with uvicorn, Tramita's logging and graceful shutdown."""

from __future__ import annotations

import os
import sys

import uvicorn

from api.limits import guarded_protocol
from api.main import create_app
from config import Settings
from observability import configure_logging, settings_or_exit
from workflows.policy import PolicySource


def serve(settings: Settings, *, policies: PolicySource | None = None) -> bool:
    """Serves until SIGINT or SIGTERM; False when the server could not start."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, policies=policies),
            host=settings.api_host,
            port=settings.api_port,
            # Named, not "auto": a missing package fails the start instead of silently
            # serving on the slower pure-Python loop and parser.
            loop="uvloop",
            # httptools, with a deadline for each request's headers (api.limits).
            http=guarded_protocol(settings.api_header_timeout_seconds),
            log_config=None,
            proxy_headers=True,
            timeout_graceful_shutdown=20,
            timeout_keep_alive=settings.api_keep_alive_seconds,
            limit_concurrency=settings.api_max_concurrency,
        )
    )
    server.run()
    return server.started


def main(policies: PolicySource | None = None) -> None:
    settings = settings_or_exit()
    configure_logging(settings)
    started = serve(settings, policies=policies)
    sys.stdout.flush()
    sys.stderr.flush()
    # The Temporal SDK's runtime may abort at interpreter exit (sdk-python#300).
    os._exit(0 if started else 1)


if __name__ == "__main__":
    main()
