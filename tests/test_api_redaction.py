"""pokewatch.redaction: what counts as a secret in a URL, and that everything else survives untouched."""
from __future__ import annotations

import pytest
from api_fixtures import ADMIN_KEY, KEY, OTHER_KEY

from pokewatch.api.security import KeyRing
from pokewatch.redaction import REDACTED, redact_path, redact_query, redact_url, secret_parameters

RING = KeyRing([KEY], [ADMIN_KEY])


@pytest.mark.parametrize("name", ["api_key", "key", "token", "API_KEY", "apikey", "access_token", "password"])
def test_a_secret_parameter_name_is_redacted_whatever_its_value(name):
    assert redact_query(f"page=2&{name}=hunter2&size=5") == f"page=2&{name}={REDACTED}&size=5"


def test_a_known_key_is_redacted_under_any_name():
    assert redact_query(f"card_id=g1-81&note={ADMIN_KEY}", RING.is_secret) == f"card_id=g1-81&note={REDACTED}"


def test_a_key_shaped_value_is_redacted_even_when_this_server_does_not_know_it():
    assert RING.is_secret(OTHER_KEY) and not RING.is_secret("g1-81")
    assert redact_query(f"x={OTHER_KEY}", RING.is_secret) == f"x={REDACTED}"


def test_percent_and_plus_encodings_do_not_hide_a_key():
    encoded = KEY.replace("_", "%5F").replace("-", "%2D")
    assert redact_query(f"x={encoded}", RING.is_secret) == f"x={REDACTED}"
    assert redact_query("%61pi%5Fkey=abc") == f"%61pi%5Fkey={REDACTED}"


def test_a_bare_key_without_a_name_is_redacted_whole():
    assert redact_query(f"{KEY}&page=1", RING.is_secret) == f"{REDACTED}&page=1"
    assert secret_parameters(f"{KEY}&page=1", RING.is_secret) == [REDACTED]


def test_everything_that_is_not_a_secret_is_left_exactly_as_sent():
    query = "card_id=sv3pt5-199&date=2026-11-28&variant=Reverse+Holofoil&empty=&flag&a=%E2%9C%93&&"
    assert redact_query(query, RING.is_secret) == query


def test_secret_parameters_names_them_in_order():
    assert secret_parameters(f"token=a&page=1&x={KEY}&key=b", RING.is_secret) == ["token", "x", "key"]
    assert secret_parameters("page=1&size=2", RING.is_secret) == []


def test_path_segments_that_are_keys_are_redacted():
    assert redact_path(f"/cards/{KEY}/x", RING.is_secret) == f"/cards/{REDACTED}/x"
    assert redact_path(f"/cards/{KEY}") == f"/cards/{KEY}"   # no test for secrets given: unchanged
    assert redact_path("/fair_price", RING.is_secret) == "/fair_price"


def test_redact_url_removes_passwords_and_keys():
    url = f"https://bot:s3cret@api.example.com/cards/{KEY}?page=2&api_key=zzz#top"
    assert redact_url(url, RING.is_secret) == (
        f"https://bot:{REDACTED}@api.example.com/cards/{REDACTED}?page=2&api_key={REDACTED}#top")
    assert redact_url("http://[::1/broken") == REDACTED


def test_short_values_are_never_mistaken_for_keys():
    assert not RING.is_secret("") and not RING.is_secret("pwk_short")
