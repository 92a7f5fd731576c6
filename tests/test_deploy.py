"""The compose deployment, validated with Debian's docker-compose (no engine runs here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
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
    "TRAMITA_API_KEYS": '{"k-0123456789abcdef0123456789abcdef": {"subject": "ana", "role": "agent"}}',
    "TRAMITA_SECRET_KEY": "0123456789abcdef0123456789abcdef-secret",
    "TRAMITA_PUBLIC_URL": "https://tramita.example.com",
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
        "mail-listener",
        "mailpit",
    }
    assert config["services"]["temporal"]["environment"]["DB"] == "postgres12"
    assert published(config, "temporal-ui") == [("127.0.0.1", "8080")]


def published(config: dict[str, Any], service: str) -> list[tuple[str, str]]:
    """(host address, host port) of each published port, in either syntax compose prints."""
    found = []
    for port in config["services"][service].get("ports", []):
        if isinstance(port, dict):
            found.append((str(port.get("host_ip", "")), str(port["published"])))
        else:  # "127.0.0.1:8080:8080/tcp"
            parts = str(port).split("/")[0].split(":")
            found.append((parts[0] if len(parts) == 3 else "", parts[-2]))
    return found


def mounts(config: dict[str, Any], service: str) -> list[tuple[str, str]]:
    found = []
    for volume in config["services"][service].get("volumes", []):
        if isinstance(volume, dict):
            found.append((str(volume["source"]), str(volume["target"])))
        else:  # "contents:/data/contents:rw"
            source, target = str(volume).split(":")[:2]
            found.append((source, target))
    return found


def test_nothing_without_sign_in_listens_beyond_this_host(config: dict[str, Any]) -> None:
    """The Web UI and Mailpit show every ticket and email, and have no sign-in."""
    assert published(config, "temporal-ui") == [("127.0.0.1", "8080")]
    assert published(config, "mailpit") == [("127.0.0.1", "8025")]
    assert published(config, "api") == [("127.0.0.1", "8000")]
    assert published(config, "mail-listener") == [("127.0.0.1", "2525")]
    for service in ("postgresql", "temporal", "worker"):
        assert published(config, service) == [], service


def test_the_api_is_published_only_where_the_operator_says(tmp_path: Path) -> None:
    result = compose_config({**SECRETS, "TRAMITA_API_BIND": "0.0.0.0"})
    assert result.returncode == 0, result.stderr
    opened: dict[str, Any] = yaml.safe_load(result.stdout)
    assert published(opened, "api") == [("0.0.0.0", "8000")]
    assert published(opened, "temporal-ui") == [("127.0.0.1", "8080")]


def test_api_and_workers_share_the_content_store(config: dict[str, Any]) -> None:
    for service in ("api", "worker", "mail-listener"):
        directory = config["services"][service]["environment"]["TRAMITA_ATTACHMENTS_DIR"]
        assert ("contents", directory) in mounts(config, service), service


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
    # Everything the project installs is in the image: each package and each module.
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package in {name.split(".")[0] for name in setuptools["packages"]}:
        assert f"COPY {package} ./{package}" in dockerfile, package
    copied = next(line for line in dockerfile.splitlines() if "config.py" in line).split()
    for module in setuptools["py-modules"]:
        assert f"{module}.py" in copied, module


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


def test_the_users_documents_stand_on_their_own() -> None:
    """Users get the README and docs/, not the team's design notes: nothing may send
    them there, and every document the README links to exists."""
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for document in documents:
        text = document.read_text()
        assert "DESIGN" not in text, f"{document.name} refers to the design notes"
        for target in re.findall(r"\]\(((?:docs/)?[\w./-]+\.(?:md|png))\)", text):
            base = ROOT if document.name == "README.md" else document.parent
            assert (base / target).exists(), f"{document.name} links to missing {target}"
