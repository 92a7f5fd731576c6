"""``python -m api``: serve the API with uvicorn, Tramita's logging and graceful shutdown."""

from __future__ import annotations

import os
import sys

import uvicorn

from api.main import create_app
from config import get_settings
from observability import configure_logging


def main() -> None:
    settings = get_settings()
    configure_logging(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=settings.api_host,
            port=settings.api_port,
            log_config=None,
            proxy_headers=True,
            timeout_graceful_shutdown=20,
        )
    )
    server.run()
    sys.stdout.flush()
    sys.stderr.flush()
    # The Temporal SDK's runtime may abort at interpreter exit (sdk-python#300).
    os._exit(0 if server.started else 1)


if __name__ == "__main__":
    main()
