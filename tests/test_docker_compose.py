"""docker-compose.yml and the Dockerfile, checked by reading them: Docker cannot run here.

What a deployment relies on: an ``api`` and a cron ``pipeline`` service from one
image, and ``redis:7-alpine`` only under the ``production`` profile, with a
healthcheck and a volume; keys as a secret file, never inline.
"""
from __future__ import annotations

import re

import pytest
import yaml

from pokewatch import config

COMPOSE = config.PROJECT_ROOT / "docker-compose.yml"
DOCKERFILE = config.PROJECT_ROOT / "Dockerfile"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


def test_api_and_pipeline_run_by_default_and_redis_only_in_production(compose):
    services = compose["services"]
    assert {"api", "pipeline", "redis"} <= services.keys()
    assert "profiles" not in services["api"] and "profiles" not in services["pipeline"]
    assert services["redis"]["profiles"] == ["production"]


def test_redis_is_7_alpine_with_a_healthcheck_and_a_volume(compose):
    redis = compose["services"]["redis"]
    assert redis["image"] == "redis:7-alpine"
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    volume, mount = redis["volumes"][0].split(":")[:2]
    assert mount == "/data" and volume in compose["volumes"]
    assert "ports" not in redis, "Redis must not be published outside the compose network"


def test_the_api_serves_runs_and_may_use_redis(compose):
    api = compose["services"]["api"]
    assert api["command"][:2] == ["pokewatch", "serve"]
    assert "/health" in " ".join(api["healthcheck"]["test"])
    assert api["environment"]["REDIS_URL"] == "${REDIS_URL:-}"
    assert api["depends_on"]["redis"] == {"condition": "service_healthy", "required": False}
    assert any(v.startswith("runs:/app/runs") for v in api["volumes"])
    assert all(p.startswith("127.0.0.1:") for p in api["ports"]), "publish on loopback behind a proxy"


def test_the_pipeline_runs_nightly_at_3_am_and_notifies_the_api(compose):
    pipeline = compose["services"]["pipeline"]
    script = pipeline["command"][-1]
    assert "0 3 * * *" in script and "scripts/run_pipeline.sh" in script and "cron -f" in script
    assert pipeline["environment"]["POKEWATCH_API_URL"] == "http://api:8000"
    assert any(v.startswith("runs:/app/runs") and not v.endswith(":ro") for v in pipeline["volumes"])


def test_keys_come_from_a_secret_file_never_from_the_file_itself(compose):
    assert compose["secrets"]["api_keys"]["file"] == "./secrets/api_keys"
    assert compose["services"]["api"]["environment"]["POKEWATCH_API_KEY_FILE"] == "/run/secrets/api_keys"
    assert not re.search(r"pwk_[A-Za-z0-9_-]{20,}", COMPOSE.read_text())


def test_every_named_volume_is_declared(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in compose["volumes"], f"{name} mounts undeclared volume {source}"


def test_the_dockerfile_builds_the_package_and_serves_by_default():
    text = DOCKERFILE.read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "pip install -e ." in text and "cron" in text
    assert re.search(r'^USER pokewatch$', text, re.MULTILINE)
    assert 'CMD ["pokewatch", "serve", "--host", "0.0.0.0", "--port", "8000"]' in text
