"""pokewatch.redaction as the one redactor: free text, headers, bodies, log records and webhook URLs.

The exact URL functions the API uses are pinned in test_api_redaction.py.
"""
from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from pokewatch import redaction
from pokewatch.redaction import (
    MASK,
    SECRET_PARAMETERS,
    RedactingFilter,
    install_log_filter,
    origin_only,
    redact_bytes,
    redact_query,
    redact_secret_url,
    redact_text,
    register_secret,
)
from tests.conftest import REPO


@pytest.mark.parametrize("name", sorted(SECRET_PARAMETERS))
def test_free_text_and_exact_urls_agree_on_which_parameters_are_secret(name):
    assert redact_text(f"GET https://x.io/a?page=2&{name}=hunter2 failed") == \
        f"GET https://x.io/a?page=2&{name}={MASK} failed"
    assert redact_query(f"page=2&{name}=hunter2") == f"page=2&{name}={redaction.REDACTED}"


def test_a_registered_secret_is_masked_anywhere_in_text_and_bodies():
    register_secret("tcg-fake-credential-77")
    assert redact_text("path /v1/tcg-fake-credential-77/cards") == f"path /v1/{MASK}/cards"
    assert redact_bytes(b'{"echo": "tcg-fake-credential-77"}') == b'{"echo": "***"}'
    register_secret("abc")  # too short to mask without garbling ordinary text
    assert redact_text("abcdef") == "abcdef"


def test_secrets_given_for_one_call_are_masked_only_there():
    assert redact_text("saw pineapple here", secrets=["pineapple"]) == f"saw {MASK} here"
    assert redact_text("saw pineapple here") == "saw pineapple here"


def test_a_webhook_shows_only_its_origin_and_leaves_no_part_in_messages():
    url = "https://hooks.slack.com/services/T0/B0/s3cr3t?x=1"
    assert origin_only(url) == f"https://hooks.slack.com/{MASK}"
    assert origin_only("http://[::1/broken") == f"?://?/{MASK}"
    message = redact_secret_url("POST /services/T0/B0/s3cr3t?x=1 refused; path /services/T0/B0/s3cr3t", url)
    assert "s3cr3t" not in message and "/services/" not in message


def test_the_log_filter_masks_a_record_and_is_installed_once():
    name = "pokewatch.test.redaction.logger"
    install_log_filter([name])
    install_log_filter([name])
    target = logging.getLogger(name)
    assert sum(isinstance(f, RedactingFilter) for f in target.filters) == 1
    record = target.makeRecord(name, logging.DEBUG, __file__, 1, "GET %s", ("/a?api_key=k-123",), None)
    assert target.filters[0].filter(record) and record.getMessage() == f"GET /a?api_key={MASK}"


def test_importing_the_package_installs_no_filter_and_a_client_does():
    code = (
        "import logging, pokewatch.data.http_client as h, pokewatch.analysis.alerts, pokewatch.redaction as r\n"
        "def count():\n"
        "    return [sum(isinstance(f, r.RedactingFilter) for f in logging.getLogger(n).filters)"
        " for n in r.URL_LOGGERS]\n"
        "print(count())\n"
        "h.HttpClient('a', 'http://127.0.0.1:9'); h.HttpClient('b', 'http://127.0.0.1:9')\n"
        "print(count())\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[0, 0, 0]", "[1, 1, 1]"]
