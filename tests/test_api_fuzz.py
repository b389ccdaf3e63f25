"""Fuzz the API against its own OpenAPI schema with schemathesis: no 500s, answers as documented.

Every operation gets generated valid and invalid requests (40 examples per
phase by default, a few seconds in all; ``POKEWATCH_FUZZ_EXAMPLES=500`` digs
deeper), sent in-process through the ASGI app with
a valid key and a limit high enough never to refuse them. schemathesis checks
each answer: no server error, a documented status code, content type and body
schema, and that requests without the key are refused.

The schema is loaded when this module is imported (schemathesis' lazy
``from_fixture`` loader does not work with pytest 9), from an app whose runs
folder gets its demo run from the module fixture below before any case runs.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from api_fixtures import KEY, publish_run, settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from pokewatch.api.app import create_app

RUNS_ROOT = Path(tempfile.mkdtemp(prefix="pokewatch-fuzz-"))
APP = create_app(settings(RUNS_ROOT, rate_limit_per_minute=10_000_000, rate_limit_burst=1_000_000))
# The key goes through schemathesis' auth for the ApiKey scheme, so that requests it
# generates *without* the key are known to be negative cases (and must get 401).
CONFIG = schemathesis.Config.from_dict({"auth": {"openapi": {"ApiKey": {"api_key": KEY}}}})
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)


@pytest.fixture(scope="module", autouse=True)
def demo_run():
    publish_run(RUNS_ROOT)
    yield
    shutil.rmtree(RUNS_ROOT, ignore_errors=True)


@schema.parametrize()
@hypothesis_settings(max_examples=int(os.environ.get("POKEWATCH_FUZZ_EXAMPLES", "40")), deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_api_answers_every_generated_request_as_documented(case):
    case.call_and_validate()
