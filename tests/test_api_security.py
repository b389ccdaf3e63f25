"""Keys, CORS, headers, body limits and logs: the API's defences, one behaviour per test."""
from __future__ import annotations

import logging

import pytest
from api_fixtures import ADMIN_KEY, KEY, OTHER_KEY, make_client, publish_run, settings, some_card

from pokewatch.api.app import create_app
from pokewatch.api.security import KeyRing, key_id, new_key
from pokewatch.api.settings import ApiConfigError, ApiSettings, load_keys


@pytest.fixture
def runs_root(tmp_path):
    publish_run(tmp_path)
    return tmp_path


@pytest.fixture
def client(runs_root):
    with make_client(create_app(settings(runs_root, rate_limit_burst=1000))) as client:
        yield client


def card_query():
    return {"card_id": some_card()["card_id"]}


# -- keys ----------------------------------------------------------------------------------
def test_no_key_is_401(client):
    answer = client.get("/fair_price", params=card_query())
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
    assert "missing X-API-Key" in answer.json()["detail"]
    assert answer.headers["www-authenticate"].startswith("APIKey")


@pytest.mark.parametrize("wrong", [KEY[:-1], KEY + "x", KEY.upper(), "pwk_" + "a" * 43, " "])
def test_a_wrong_key_is_401(client, wrong):
    answer = client.get("/fair_price", params=card_query(), headers={"X-API-Key": wrong})
    assert answer.status_code == 401


@pytest.mark.parametrize("path", ["/cards", "/signals", "/reload"])
def test_every_data_route_needs_a_key(client, path):
    method = client.post if path == "/reload" else client.get
    assert method(path).status_code == 401


def test_both_keys_of_a_rotation_work(client):
    for key in (KEY, OTHER_KEY):
        assert client.get("/fair_price", params=card_query(), headers={"X-API-Key": key}).status_code == 200


def test_a_server_without_keys_says_how_to_configure_them(runs_root):
    with make_client(create_app(settings(runs_root, api_keys=(), admin_keys=()))) as client:
        answer = client.get("/cards", headers={"X-API-Key": KEY})
        assert answer.status_code == 401
        assert client.get("/cards").json()["detail"].endswith(
            "(operator: run 'pokewatch keys new' and set POKEWATCH_API_KEYS)")


def test_keys_come_from_the_environment_and_a_key_file(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text(f"# rotation 2026-11\n{OTHER_KEY}\n\n{KEY}\n")
    keys = load_keys({"POKEWATCH_API_KEYS": f" {KEY} ,", "POKEWATCH_API_KEY_FILE": str(key_file)})
    assert keys == {KEY: "reader", OTHER_KEY: "reader"}


def test_key_file_lines_may_carry_a_role_and_keys_without_one_are_readers(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text(f"# pipeline\n{ADMIN_KEY} admin\n{KEY}\n{OTHER_KEY}  reader\n")
    assert load_keys({"POKEWATCH_API_KEY_FILE": str(key_file)}) == {ADMIN_KEY: "admin", KEY: "reader",
                                                                     OTHER_KEY: "reader"}
    loaded = ApiSettings.from_env({"POKEWATCH_API_KEY_FILE": str(key_file)})
    assert (loaded.api_keys, loaded.admin_keys) == ((KEY, OTHER_KEY), (ADMIN_KEY,))


def test_admin_keys_come_from_their_own_variable_and_win_over_a_reader_listing():
    keys = load_keys({"POKEWATCH_API_KEYS": f"{KEY},{ADMIN_KEY}", "POKEWATCH_API_ADMIN_KEYS": ADMIN_KEY})
    assert keys == {KEY: "reader", ADMIN_KEY: "admin"}


@pytest.mark.parametrize("line", [f"{KEY} owner", f"{KEY} admin extra"])
def test_an_unknown_role_fails_at_start_up_naming_the_line_not_the_key(tmp_path, line):
    key_file = tmp_path / "keys"
    key_file.write_text(f"{OTHER_KEY}\n{line}\n")
    with pytest.raises(ApiConfigError, match="line 2 is not '<key> \\[reader\\|admin\\]'") as caught:
        load_keys({"POKEWATCH_API_KEY_FILE": str(key_file)})
    assert KEY not in str(caught.value)


def test_the_key_ring_knows_each_keys_role():
    ring = KeyRing([KEY], [ADMIN_KEY])
    assert ring.lookup(KEY).role == "reader" and not ring.lookup(KEY).is_admin
    assert ring.lookup(ADMIN_KEY).is_admin and ring.lookup(ADMIN_KEY).key_id == key_id(ADMIN_KEY)
    assert ring.lookup(OTHER_KEY) is None and len(ring) == 2


def test_an_admin_key_may_call_the_data_routes_too(client):
    assert client.get("/fair_price", params=card_query(), headers={"X-API-Key": ADMIN_KEY}).status_code == 200


@pytest.mark.parametrize("env", [{"POKEWATCH_API_KEYS": "short"},
                                 {"POKEWATCH_API_KEYS": "has space in the middle of it"},
                                 {"POKEWATCH_API_KEY_FILE": "/no/such/file"}])
def test_bad_key_settings_fail_at_start_up_with_a_message(env):
    with pytest.raises(ApiConfigError, match="(?i)key"):
        ApiSettings.from_env(env)


def test_the_key_ring_compares_digests_and_names_keys_by_hash_prefix():
    ring = KeyRing([KEY, OTHER_KEY])
    assert ring.identify(KEY) == key_id(KEY)
    assert ring.identify(OTHER_KEY) == key_id(OTHER_KEY)
    assert ring.identify(KEY + "x") is None and ring.identify("") is None and ring.identify(None) is None
    assert len(key_id(KEY)) == 12 and key_id(KEY) not in KEY


def test_new_keys_are_long_random_and_tagged():
    keys = {new_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(k.startswith("pwk_") and len(k) == 47 for k in keys)


def test_a_key_never_reaches_the_logs(runs_root, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "pwk_" + "w" * 43
    with make_client(create_app(settings(runs_root))) as client:
        client.get("/fair_price", params=card_query(), headers={"X-API-Key": KEY})
        client.get("/fair_price", params={"card_id": "nope"}, headers={"X-API-Key": OTHER_KEY})
        client.get("/fair_price", params=card_query(), headers={"X-API-Key": wrong})
        client.post("/reload", headers={"X-API-Key": KEY})
        client.get("/cards", params={"api_key": ADMIN_KEY})
        client.get(f"/cards/{OTHER_KEY}")
    # The server's records (the test client's own httpx logger prints the URLs it was given).
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    everything = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in server_side)
    for secret in (KEY, OTHER_KEY, ADMIN_KEY, wrong):
        assert secret not in everything
    access = [r for r in caplog.records if r.name == "pokewatch.api.access"]
    assert len(access) == 6
    assert [r.key_id for r in access] == [key_id(KEY), key_id(OTHER_KEY), None, key_id(KEY), None, None]
    assert [r.status for r in access] == [200, 404, 401, 403, 400, 401]
    assert {"request_id", "method", "path", "route", "status", "duration_ms"} <= access[0].__dict__.keys()


# -- request ids, headers, bodies ------------------------------------------------------------
def test_request_id_is_echoed_or_generated(client):
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    generated = client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"}).headers["x-request-id"]
    assert len(generated) == 32 and generated.isalnum()


def test_security_headers_are_on_every_answer(client):
    for answer in (client.get("/health"), client.get("/cards"),
                   client.get("/fair_price", params=card_query(), headers={"X-API-Key": KEY})):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")
        assert answer.headers["cache-control"] == "no-store"
        assert "server" not in answer.headers or "uvicorn" not in answer.headers["server"]


def test_a_body_over_the_limit_is_413(runs_root):
    with make_client(create_app(settings(runs_root, max_body_bytes=256))) as client:
        big = {"card_id": "x" * 400}
        answer = client.post("/fair_price", json=big, headers={"X-API-Key": KEY})
        assert answer.status_code == 413
        assert answer.json()["error"] == "body_too_large"

        def chunks():   # no Content-Length: the limit is enforced while reading
            yield b'{"card_id": "'
            yield b"x" * 400
            yield b'"}'

        streamed = client.post("/fair_price", content=chunks(),
                               headers={"X-API-Key": KEY, "Content-Type": "application/json"})
        assert streamed.status_code == 413


# -- CORS ----------------------------------------------------------------------------------------
def test_wildcard_origins_with_credentials_are_refused():
    with pytest.raises(ApiConfigError, match="cannot be combined"):
        ApiSettings.from_env({"POKEWATCH_CORS_ORIGINS": "*", "POKEWATCH_CORS_ALLOW_CREDENTIALS": "true"})


def test_origins_must_be_bare_origins():
    with pytest.raises(ApiConfigError, match="scheme://host"):
        ApiSettings.from_env({"POKEWATCH_CORS_ORIGINS": "https://ok.example,https://bad.example/path"})


def test_cors_allows_only_the_configured_origins(runs_root):
    app = create_app(settings(runs_root, cors_origins=("https://dash.example",)))
    with make_client(app) as client:
        preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "X-API-Key"}
        allowed = client.options("/fair_price", headers={"Origin": "https://dash.example", **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://dash.example"
        refused = client.options("/fair_price", headers={"Origin": "https://evil.example", **preflight})
        assert "access-control-allow-origin" not in refused.headers
        # Browsers can read a 401 (and its rate-limit headers) from an allowed origin.
        denied = client.get("/cards", headers={"Origin": "https://dash.example"})
        assert denied.status_code == 401
        assert denied.headers["access-control-allow-origin"] == "https://dash.example"
        assert "x-ratelimit-remaining" in denied.headers["access-control-expose-headers"].lower()


def test_no_cors_headers_without_configured_origins(client):
    answer = client.get("/health", headers={"Origin": "https://dash.example"})
    assert "access-control-allow-origin" not in answer.headers
