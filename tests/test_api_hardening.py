"""The API against issue 11's attacks, on a real server on 127.0.0.1: logs, headers, deadlines, proxies.

Most tests share one ``pokewatch serve`` subprocess (the server exactly as operators
run it, JSON logs on stderr) with a 1 s read deadline and keep-alive, so the
slowloris cases take about a second. The ``X-Forwarded-For`` cases need their own
settings and run uvicorn in this process with the same options as ``serve``.
"""
from __future__ import annotations

import logging
import socket
import time

import httpx
import pytest
from api_fixtures import ADMIN_KEY, KEY, OTHER_KEY, LiveServer, ServeProcess, make_client, publish_run, settings
from attack_api import key_in_url_requests, oversized_headers, slow_bodies, slowloris

from pokewatch.api.app import create_app
from pokewatch.api.connection_guard import uvicorn_options
from pokewatch.api.settings import ApiConfigError, ApiSettings, ServerLimits

READ_TIMEOUT = 1
#: Scheduling slack on a busy 2-core machine, on top of the deadline.
SLACK = 2.0
SECRETS = (KEY, OTHER_KEY, ADMIN_KEY)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    publish_run(folder / "runs")
    with ServeProcess(folder / "runs", folder / "server.log", POKEWATCH_READ_TIMEOUT_SECONDS=str(READ_TIMEOUT),
                      POKEWATCH_KEEP_ALIVE_SECONDS="1", POKEWATCH_RATE_LIMIT_BURST="1000") as served:
        yield served


def lines_of(server: ServeProcess, request_id: str) -> list[dict]:
    time.sleep(0.2)   # the server writes its line after the answer
    return [e for e in server.log_entries() if e.get("request_id") == request_id]


def raw_exchange(server: ServeProcess, payload: bytes, wait: float = 5.0) -> bytes:
    """Send ``payload`` on a fresh connection and read until the server closes it (or ``wait`` s)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as sock:
        sock.sendall(payload)
        received = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            received += chunk
        return received


# -- keys never reach a log ------------------------------------------------------------------------
def test_a_key_in_the_url_is_refused_and_never_reaches_the_server_log(server):
    probes = key_in_url_requests("g1-81")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        answers = {f"url-key-{n}": (label, http.request("POST" if target.startswith("/reload") else "GET",
                                                        target, headers={"X-Request-ID": f"url-key-{n}"}))
                   for n, (label, target) in enumerate(probes)}
    time.sleep(0.2)
    log = server.log_text()
    for secret in (*SECRETS, "pwk_" + "z" * 43):
        assert log.count(secret) == 0
    entries = server.log_entries()
    assert not [e for e in entries if e["logger"] == "uvicorn.access"]
    for request_id, (label, answer) in answers.items():
        access = [e for e in entries if e.get("request_id") == request_id and e["logger"] == "pokewatch.api.access"]
        assert len(access) == 1, label
        if "path" in label:
            assert answer.status_code == 401 and access[0]["path"] == "/cards/REDACTED"
            continue
        assert answer.status_code == 400, label
        assert answer.json()["error"] == "key_in_url"
        assert "send the API key in the X-API-Key header" in answer.json()["detail"]
        assert "REDACTED" in access[0]["query"] and access[0]["status"] == 400


def test_the_redacted_query_keeps_everything_but_the_key(server):
    answer = httpx.get(f"{server.url}/fair_price?card_id=g1-81&api_key={KEY}", headers={"X-Request-ID": "keep-1"})
    assert answer.status_code == 400
    (line,) = lines_of(server, "keep-1")
    assert line["query"] == "card_id=g1-81&api_key=REDACTED"


def test_every_request_gets_exactly_one_access_line_written_by_pokewatch(server):
    requests = [("GET", "/health", None, 200), ("GET", "/cards?page_size=2", KEY, 200),
                ("GET", "/cards", None, 401), ("GET", "/nowhere", KEY, 404),
                ("GET", "/cards?page_size=0", KEY, 422), ("POST", "/reload", OTHER_KEY, 403),
                ("POST", "/reload", ADMIN_KEY, 200)]
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for n, (method, target, key, status) in enumerate(requests):
            headers = {"X-Request-ID": f"one-line-{n}", **({"X-API-Key": key} if key else {})}
            assert http.request(method, target, headers=headers).status_code == status
    time.sleep(0.2)
    entries = server.log_entries()
    for n, (_, _, _, status) in enumerate(requests):
        lines = [e for e in entries if e.get("request_id") == f"one-line-{n}"]
        assert [(e["logger"], e["status"]) for e in lines] == [("pokewatch.api.access", status)]
    assert not [e for e in entries if e["logger"] == "uvicorn.access"]


# -- header size ---------------------------------------------------------------------------------------
def test_headers_over_the_limit_get_431(server):
    answer = raw_exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b'"error": "headers_too_large"' in answer and b"connection: close" in answer


def test_huge_headers_are_cut_off_early_and_the_server_stays_up(server):
    size = 8 * 2**20
    for status, sent in oversized_headers(server.url, size, count=2):
        assert status in (431, None)    # None: the server hung up before its 431 reached us
        assert status == 431 or sent < size
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200


def test_headers_under_the_limit_are_served(server):
    answer = raw_exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Fat: "
                          + b"a" * 12_000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_pipelined_requests_are_all_answered(server):
    one = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = raw_exchange(server, one * 3 + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200 ") == 4


# -- deadlines -------------------------------------------------------------------------------------------
def test_slowloris_connections_are_closed_by_the_read_deadline(server):
    closed = slowloris(server.url, connections=50, every=0.2, give_up=READ_TIMEOUT + SLACK + 3)
    assert None not in closed, "some slowloris connections were still open"
    assert max(closed) <= READ_TIMEOUT + SLACK
    assert min(closed) >= READ_TIMEOUT * 0.9, "a client got less than the documented deadline"
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200


def test_a_timed_out_request_gets_408_and_one_access_line_without_its_url(server):
    answer = raw_exchange(server, f"GET /cards?api_key={KEY} HTTP/1.1\r\nHost: x\r\nX-Slow: ".encode(),
                          wait=READ_TIMEOUT + SLACK + 2)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"request_timeout" in answer
    time.sleep(0.2)
    refused = [e for e in server.log_entries() if e.get("route") == "<refused>" and e["status"] == 408]
    assert refused and refused[-1]["path"] is None and refused[-1]["client"] == "127.0.0.1"
    assert KEY not in server.log_text()


def test_a_slowly_dripped_body_gets_408_and_is_closed(server):
    head = (f"POST /fair_price HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nX-Request-ID: drip-1\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{").encode()
    answer = raw_exchange(server, head, wait=READ_TIMEOUT + SLACK + 2)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert [e["status"] for e in lines_of(server, "drip-1")] == [408]
    closed = slow_bodies(server.url, KEY, connections=10, every=0.2, give_up=READ_TIMEOUT + SLACK + 3)
    assert None not in closed and max(closed) <= READ_TIMEOUT + SLACK


def test_a_connection_that_sends_nothing_is_closed(server):
    started = time.monotonic()
    assert raw_exchange(server, b"", wait=READ_TIMEOUT + SLACK + 2) == b""
    assert time.monotonic() - started <= READ_TIMEOUT + SLACK


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b"}"):   # the whole JSON answer, which may come in two reads
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        assert sock.recv(65536) == b""
        assert time.monotonic() - started <= 1 + SLACK


def test_a_handler_slower_than_the_deadline_is_not_cut_off(tmp_path, monkeypatch):
    """The deadline is for receiving a request; the time the app takes to answer does not count."""
    from pokewatch.api import routes

    publish_run(tmp_path)
    slow = routes.fair_price

    def slow_fair_price(*args, **kwargs):
        time.sleep(1.5)
        return slow(*args, **kwargs)

    monkeypatch.setattr(routes, "fair_price", slow_fair_price)
    app = create_app(settings(tmp_path))
    with LiveServer(app, ServerLimits(read_timeout_seconds=0.5)) as live:
        from api_fixtures import some_card

        answer = httpx.get(f"{live.url}/fair_price", params={"card_id": some_card()["card_id"]},
                           headers={"X-API-Key": KEY}, timeout=10)
    assert answer.status_code == 200


# -- X-Forwarded-For -------------------------------------------------------------------------------
def guesses(url: str, forwarded_for: list[str]) -> list[int]:
    with httpx.Client(base_url=url, timeout=10) as http:
        return [http.get("/cards", headers={"X-API-Key": "pwk_" + "g" * 43, "X-Forwarded-For": xff}).status_code
                for xff in forwarded_for]


def test_a_spoofed_x_forwarded_for_from_an_untrusted_peer_is_ignored(tmp_path, caplog, server):
    caplog.set_level(logging.INFO, logger="pokewatch.api.access")
    publish_run(tmp_path)
    app = create_app(settings(tmp_path, rate_limit_burst=3, rate_limit_per_minute=1))
    with LiveServer(app) as live:
        statuses = guesses(live.url, [f"198.51.100.{n}" for n in range(1, 9)])
    assert statuses == [401] * 3 + [429] * 5   # one bucket: the peer's, 127.0.0.1
    assert {r.client for r in caplog.records if r.name == "pokewatch.api.access"} == {"127.0.0.1"}
    # and `pokewatch serve` itself, by default, believes no one either
    httpx.get(f"{server.url}/health", headers={"X-Forwarded-For": "198.51.100.7", "X-Request-ID": "xff-1"})
    assert [e["client"] for e in lines_of(server, "xff-1")] == ["127.0.0.1"]


def test_x_forwarded_for_from_a_trusted_proxy_names_the_client(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pokewatch.api.access")
    publish_run(tmp_path)
    app = create_app(settings(tmp_path, rate_limit_burst=3, rate_limit_per_minute=1,
                              trusted_proxies=("127.0.0.1",)))
    with LiveServer(app) as live:
        statuses = guesses(live.url, [f"198.51.100.{n}" for n in range(1, 7)])
        chained = guesses(live.url, ["203.0.113.9, 192.0.2.4"] * 4)
    assert statuses == [401] * 6   # one bucket per real client
    assert chained == [401] * 3 + [429]   # the right-most address is the one the proxy saw
    clients = [r.client for r in caplog.records if r.name == "pokewatch.api.access"]
    assert clients[:6] == [f"198.51.100.{n}" for n in range(1, 7)] and set(clients[6:]) == {"192.0.2.4"}


@pytest.mark.parametrize("value", ["*", "proxy.internal", "10.0.0.0/33"])
def test_trusted_proxies_must_be_addresses_or_networks(value):
    with pytest.raises(ApiConfigError, match="POKEWATCH_TRUSTED_PROXIES"):
        ApiSettings.from_env({"POKEWATCH_TRUSTED_PROXIES": value})


def test_trusted_proxies_take_addresses_and_networks():
    assert ApiSettings.from_env({"POKEWATCH_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8,::1"}).trusted_proxies == (
        "127.0.0.1", "10.0.0.0/8", "::1")


def test_uvicorns_own_forwarded_allow_ips_is_no_longer_believed(caplog):
    caplog.set_level(logging.WARNING)
    assert ApiSettings.from_env({"FORWARDED_ALLOW_IPS": "127.0.0.1"}).trusted_proxies == ()
    assert "FORWARDED_ALLOW_IPS is no longer read" in caplog.text


def test_the_server_options_switch_off_uvicorns_proxy_headers_and_access_log():
    options = uvicorn_options(ServerLimits(max_header_bytes=4096, read_timeout_seconds=3, keep_alive_seconds=2))
    assert options["proxy_headers"] is False and options["access_log"] is False
    assert options["timeout_keep_alive"] == 2 and options["h11_max_incomplete_event_size"] == 4096
    assert options["http"] == "pokewatch.api.connection_guard:GuardedHttpToolsProtocol"


@pytest.mark.parametrize("env", [{"POKEWATCH_MAX_HEADER_BYTES": "100"}, {"POKEWATCH_READ_TIMEOUT_SECONDS": "0"},
                                 {"POKEWATCH_KEEP_ALIVE_SECONDS": "soon"}])
def test_server_limits_are_checked_at_start_up(env):
    with pytest.raises(ApiConfigError, match=next(iter(env))):
        ApiSettings.from_env(env)


def test_the_app_answers_a_key_in_the_url_with_400_before_401(tmp_path):
    publish_run(tmp_path)
    with make_client(create_app(settings(tmp_path))) as client:
        answer = client.get("/cards", params={"api_key": KEY})
        assert answer.status_code == 400 and "X-API-Key header" in answer.json()["detail"]
        assert client.get("/cards", params={"token": "short"}).status_code == 400   # secret by name alone
        assert client.get("/cards", params={"page_size": "2"}, headers={"X-API-Key": KEY}).status_code == 200
