"""The compose deployment, validated with Debian's docker-compose (no engine runs here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from config import Settings
from workflows.search import ALL_KEYS

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = shutil.which("docker-compose")
SECRETS = {
    "POSTGRES_PASSWORD": "s3cret",
    "TRAMITA_API_KEYS": '{"k-1": {"subject": "ana", "role": "agent"}}',
}

pytestmark = pytest.mark.skipif(
    COMPOSE is None,
    reason="docker-compose is not installed (make test installs it with apt as root)",
)


def compose_config(extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith("TRAMITA_")}
    assert COMPOSE is not None
    return subprocess.run(
        [COMPOSE, "-f", str(ROOT / "docker-compose.yml"), "config"],
        env={**env, **extra_env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    result = compose_config(SECRETS)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = yaml.safe_load(result.stdout)
    return loaded


def test_every_service_of_the_design_is_there(config: dict[str, Any]) -> None:
    assert set(config["services"]) == {
        "postgresql",
        "temporal",
        "temporal-ui",
        "search-attributes",
        "worker",
        "api",
        "mailpit",
    }
    assert config["services"]["temporal"]["environment"]["DB"] == "postgres12"
    ui_ports = config["services"]["temporal-ui"]["ports"]
    assert any(
        str(port.get("published") if isinstance(port, dict) else port).startswith("8080")
        for port in ui_ports
    )


def test_start_order_follows_health(config: dict[str, Any]) -> None:
    services = config["services"]
    assert services["temporal"]["depends_on"]["postgresql"]["condition"] == "service_healthy"
    assert services["search-attributes"]["depends_on"]["temporal"]["condition"] == "service_healthy"
    for app in ("worker", "api"):
        assert (
            services[app]["depends_on"]["search-attributes"]["condition"]
            == "service_completed_successfully"
        )
    for name in ("postgresql", "temporal", "worker", "api", "mailpit"):
        assert services[name]["healthcheck"]["test"], name


def test_worker_and_api_share_one_image_and_workers_scale(config: dict[str, Any]) -> None:
    worker, api = config["services"]["worker"], config["services"]["api"]
    assert worker["image"] == api["image"] and "build" in worker and "build" in api
    assert worker["command"] == ["python", "-m", "worker"]
    assert api["command"] == ["python", "-m", "api"]
    assert int(worker["deploy"]["replicas"]) >= 2
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("workflows", "activities", "api", "devstack"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert "config.py worker.py observability.py" in dockerfile


def test_search_attribute_job_registers_every_attribute(config: dict[str, Any]) -> None:
    script = " ".join(config["services"]["search-attributes"]["command"])
    types = {"KEYWORD": "Keyword", "DATETIME": "Datetime", "BOOL": "Bool"}
    for key in ALL_KEYS:
        assert f"{key.name}={types[key.indexed_value_type.name]}" in script


def test_application_settings_are_real_settings(config: dict[str, Any]) -> None:
    fields = set(Settings.model_fields)
    for service in ("worker", "api"):
        environment = config["services"][service]["environment"]
        for name in environment:
            if name.startswith("TRAMITA_"):
                assert name.removeprefix("TRAMITA_").lower() in fields, (
                    f"{service}: {name} is no setting"
                )
        assert environment["TRAMITA_ENV"] == "production"
        assert environment["TRAMITA_API_KEYS"] == SECRETS["TRAMITA_API_KEYS"]
    settings = Settings(
        **{
            k.removeprefix("TRAMITA_").lower(): v
            for k, v in config["services"]["api"]["environment"].items()
        }
    )
    assert settings.env == "production" and settings.temporal_address == "temporal:7233"


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_secrets_have_no_defaults(missing: str) -> None:
    result = compose_config({k: v for k, v in SECRETS.items() if k != missing})
    assert result.returncode != 0
    assert re.search(f"set {missing}", result.stderr), result.stderr
