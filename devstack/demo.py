"""``make demo``: a few sample tickets of both profiles, created through the API.

Needs ``make run`` in another terminal. Uses the development keys.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from config import get_settings
from observability import configure_logging

logger = logging.getLogger("tramita.demo")

AGENT = {"Authorization": "Bearer dev-agent-key"}


def _call(api: httpx.Client, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = api.post(path, json=body, headers=AGENT)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def create_samples(api: httpx.Client) -> list[dict[str, Any]]:
    customer = {
        "requester": "cliente@example.com",
        "primary_contact": "cliente@example.com",
    }
    waiting = _call(
        api,
        "/tickets",
        {
            "profile": "support",
            "title": "Erro 500 ao emitir NF-e",
            "category": "fiscal",
            "description": "Ao emitir a nota o sistema mostra erro 500.",
            "nature": "incident",
            **customer,
        },
    )
    _call(api, f"/tickets/{waiting['id']}/assign", {"assignee": "ana"})
    _call(
        api, f"/tickets/{waiting['id']}/emails", {"body": "Pode enviar o XML da nota, por favor?"}
    )
    waiting = _call(api, f"/tickets/{waiting['id']}/wait", {"reason": "customer"})

    validation = _call(
        api,
        "/tickets",
        {
            "profile": "support",
            "title": "Relatório de folha não abre",
            "category": "folha",
            "description": "O relatório mensal trava ao abrir.",
            "nature": "question",
            **customer,
        },
    )
    _call(api, f"/tickets/{validation['id']}/assign", {"assignee": "ana"})
    validation = _call(
        api,
        f"/tickets/{validation['id']}/emails",
        {
            "body": "Ajustamos o parâmetro do relatório; pode validar?",
            "resolve": True,
        },
    )

    release = _call(
        api,
        "/tickets",
        {
            "profile": "support",
            "title": "Cálculo de férias incorreto",
            "category": "folha",
            "description": "O adicional de 1/3 não é somado.",
            "nature": "incident",
            **customer,
        },
    )
    _call(api, f"/tickets/{release['id']}/assign", {"assignee": "ana"})
    release = _call(
        api, f"/tickets/{release['id']}/wait", {"reason": "release", "version": "8.4.2"}
    )

    follow_up = _call(
        api,
        "/tickets",
        {
            "profile": "enate",
            "title": "Supplier onboarding: bank details",
            "category": "procurement",
            "description": "Waiting for the supplier's bank letter.",
            **customer,
        },
    )
    _call(api, f"/tickets/{follow_up['id']}/start")
    until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).isoformat()
    follow_up = _call(
        api, f"/tickets/{follow_up['id']}/wait", {"reason": "follow_up", "until": until}
    )

    draft = _call(
        api,
        "/tickets",
        {"profile": "enate", "title": "Draft: expense policy question", "submit": False},
    )
    return [waiting, validation, release, follow_up, draft]


def main() -> None:
    settings = get_settings()
    configure_logging(settings)
    base = f"http://{settings.api_host}:{settings.api_port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as api:
            tickets = create_samples(api)
    except httpx.HTTPError as error:
        logger.error(
            "could not create the samples; is `make run` up?",
            extra={"api": base, "error": str(error)},
        )
        sys.exit(1)
    for ticket in tickets:
        logger.info("sample ticket", extra={"id": ticket["id"], "status": ticket["status_label"]})
    logger.info(
        "open the Web UI",
        extra={"url": f"http://localhost:{settings.ui_port}/namespaces/default/workflows"},
    )


if __name__ == "__main__":
    main()
