from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.testing import WorkflowEnvironment

from config import DEVELOPMENT_API_KEYS, Settings, connect_options
from worker import build_worker, precompile_workflows


def test_defaults_follow_the_design(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRAMITA_TASK_QUEUE", "TRAMITA_TEMPORAL_ADDRESS", "TRAMITA_ENV"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.temporal_address == "localhost:7233"
    assert settings.temporal_namespace == "default"
    assert settings.task_queue == "tramita-tickets"
    assert settings.default_profile == "support"
    assert settings.calendar_country == "BR"
    assert settings.calendar_timezone == "America/Sao_Paulo"
    assert settings.business_hours == (time(8), time(18))
    assert settings.work_days == (1, 2, 3, 4, 5)


def test_environment_values_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAMITA_BUSINESS_HOURS", "09:30-17:00")
    monkeypatch.setenv("TRAMITA_WORK_DAYS", "mon,tue,wed,thu,fri,sat")
    monkeypatch.setenv("TRAMITA_WEBHOOK_URLS", "http://a.test/h, http://b.test/h")
    monkeypatch.setenv("TRAMITA_API_KEYS", '{"k1": {"subject": "ana", "role": "agent"}}')
    monkeypatch.setenv("TRAMITA_MAIL_FROM", "Suporte <suporte@empresa.com.br>")
    settings = Settings()
    assert settings.business_hours == (time(9, 30), time(17))
    assert settings.work_days == (1, 2, 3, 4, 5, 6)
    assert settings.webhook_urls == ("http://a.test/h", "http://b.test/h")
    assert settings.api_keys["k1"].role == "agent"
    assert settings.mail_domain == "empresa.com.br"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TRAMITA_BUSINESS_HOURS", "18:00-08:00", "open before it closes"),
        ("TRAMITA_BUSINESS_HOURS", "all day", "08:00-18:00"),
        ("TRAMITA_WORK_DAYS", "monday,funday", "mon,tue"),
        ("TRAMITA_API_KEYS", "{not json", "JSON object"),
    ],
)
def test_bad_values_are_refused_with_a_reason(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        Settings()


def test_production_refuses_the_development_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAMITA_ENV", "production")
    monkeypatch.setenv("TRAMITA_SECRET_KEY", "a-secret-of-our-own-0123456789abcdef")
    monkeypatch.setenv("TRAMITA_PUBLIC_URL", "https://tramita.example.com")
    monkeypatch.delenv("TRAMITA_API_KEYS", raising=False)
    with pytest.raises(ValidationError, match="not the development ones"):
        Settings()
    key = next(iter(DEVELOPMENT_API_KEYS))
    monkeypatch.setenv("TRAMITA_API_KEYS", f'{{"{key}": {{"subject": "x", "role": "agent"}}}}')
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv(
        "TRAMITA_API_KEYS",
        '{"a-long-real-key-0123456789abcdef0123": {"subject": "ana", "role": "agent"}}',
    )
    assert Settings().env == "production"


def test_connection_arguments_for_a_secured_cluster(tmp_path: Path) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_bytes(b"CERT")
    key.write_bytes(b"KEY")
    settings = Settings(
        temporal_address="tramita.a1b2c.tmprl.cloud:7233",
        temporal_namespace="tramita.a1b2c",
        temporal_tls_cert=str(cert),
        temporal_tls_key=str(key),
    )
    options = connect_options(settings)
    assert options["target_host"] == "tramita.a1b2c.tmprl.cloud:7233"
    assert options["namespace"] == "tramita.a1b2c"
    assert options["tls"].client_cert == b"CERT"
    assert options["tls"].client_private_key == b"KEY"
    cloud = connect_options(Settings(temporal_api_key="secret-api-key"))
    assert cloud["api_key"] == "secret-api-key" and cloud["tls"] is True
    assert "tls" not in connect_options(Settings()) and "api_key" not in connect_options(Settings())
    with pytest.raises(ValueError, match="both"):
        connect_options(Settings(temporal_tls_cert=str(cert)))


async def test_the_worker_keeps_as_many_tickets_in_memory_as_configured(
    monkeypatch: pytest.MonkeyPatch, time_env: WorkflowEnvironment, worker_settings: Settings
) -> None:
    monkeypatch.setenv("TRAMITA_WORKER_MAX_CACHED_WORKFLOWS", "250")
    configured = worker_settings.model_copy(
        update={"worker_max_cached_workflows": Settings().worker_max_cached_workflows}
    )
    worker = build_worker(time_env.client, configured)
    assert worker.config()["max_cached_workflows"] == 250


def test_the_worker_writes_the_workflow_bytecode_the_sandbox_reloads() -> None:
    # The sandbox imports the workflow module for every ticket it loads; without cached
    # bytecode (PYTHONDONTWRITEBYTECODE) each load would compile the source again.
    import importlib.util

    import workflows.ticket

    source = workflows.ticket.__file__
    assert source is not None
    cached = Path(importlib.util.cache_from_source(source))
    cached.unlink(missing_ok=True)
    precompile_workflows()
    assert cached.exists()
    assert cached.stat().st_mtime >= Path(source).stat().st_mtime
