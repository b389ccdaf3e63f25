"""The shared HTTP client against a real local server: retries, Retry-After, timeouts, redaction."""
from __future__ import annotations

import gzip
import json
import logging
import time

import pytest
from sources_server import RecordedServer, Reply, fixture

from pokewatch.errors import ParameterError
from pokewatch.data.http_client import (
    BadResponseError,
    BudgetExceededError,
    HttpClient,
    HttpError,
    HttpSettings,
    Progress,
    RateLimitedError,
    RateLimiter,
    ResponseTooLargeError,
    api_error_message,
    map_with_progress,
    parse_retry_after,
    progress,
    redact_headers,
    redact_url,
    register_secret,
    safe_name,
)
from pokewatch.data.raw_archive import RawArchive

FAST = HttpSettings(timeout=0.5, retries=3, backoff=0.01, backoff_max=0.05, max_wait=10)


@pytest.fixture
def server():
    with RecordedServer() as srv:
        yield srv


@pytest.fixture
def raw(tmp_path):
    return RawArchive(tmp_path / "raw")


def client_for(server, settings=FAST, **kwargs) -> tuple[HttpClient, list[float]]:
    waits: list[float] = []
    return HttpClient("test", server.url, settings=settings, sleep=waits.append, **kwargs), waits


def test_500s_are_retried_until_the_answer_comes(server, raw):
    server.route("/prices", Reply(500, "oops"), Reply(503, "busy"), Reply(200, {"results": [1]}))
    client, waits = client_for(server)

    response = client.fetch(raw, "prices.json", "/prices")

    assert response.json() == {"results": [1]}
    assert response.attempts == 3
    assert len(waits) == 2
    entry = raw.entries()[0]
    assert entry["ok"] is True and entry["status"] == 200
    assert [r["status"] for r in entry["retries"]] == [500, 503]


def test_backoff_grows_exponentially_with_jitter():
    settings = HttpSettings(backoff=1.0, backoff_max=30)
    for attempt, base in enumerate([1, 2, 4, 8, 16, 30, 30]):
        delays = [settings.delay(attempt) for _ in range(50)]
        assert all(base / 2 <= d <= base for d in delays)
        assert len(set(delays)) > 1  # jittered


def test_persistent_500_gives_up_and_keeps_the_error_page(server, raw):
    server.route("/prices", Reply(502, fixture("tcgcsv/error-502.html")))
    client, waits = client_for(server)

    with pytest.raises(HttpError) as info:
        client.fetch(raw, "prices.json", "/prices")

    message = str(info.value)
    assert "HTTP 502" in message and "HTML page titled '502 Bad Gateway'" in message
    assert "gave up after 4 attempt(s)" in message
    assert info.value.status == 502 and info.value.attempts == 4
    assert len(waits) == 3
    assert raw.entries()[0]["ok"] is False
    assert b"502 Bad Gateway" in raw.get("prices.json")


def test_429_waits_for_retry_after(server, raw):
    server.route("/v2/cards", Reply(429, fixture("pokemontcg/error-429.json"), headers={"Retry-After": "1"}),
                 Reply(200, {"data": []}))
    client, waits = client_for(server)

    client.fetch(raw, "cards.json", "/v2/cards")

    assert waits == [1.0]


def test_429_with_retry_after_beyond_the_budget_stops_with_the_api_message(server, raw):
    server.route("/v2/cards", Reply(429, fixture("pokemontcg/error-429.json"), headers={"Retry-After": "120"}))
    client, waits = client_for(server, HttpSettings(timeout=0.5, retries=5, backoff=0.01, max_wait=5))

    with pytest.raises(RateLimitedError) as info:
        client.fetch(raw, "cards.json", "/v2/cards")

    message = str(info.value)
    assert waits == []
    assert "HTTP 429" in message and "Retry-After: 120" in message
    assert "Rate limit exceeded" in message and "(code 429)" in message
    assert "would exceed the 5s retry budget" in message


def test_429_is_final_when_retry_429_is_off(server, raw):
    server.route("/cards", Reply(429, fixture("pokemonpricetracker/error-429.json")))
    client, waits = client_for(server, HttpSettings(timeout=0.5, retries=5, backoff=0.01, retry_429=False))

    with pytest.raises(RateLimitedError, match="Daily API credit limit exceeded"):
        client.fetch(raw, "cards.json", "/cards")
    assert waits == [] and len(server.requests) == 1


def test_a_server_slower_than_the_timeout_is_retried_then_reported(server, raw):
    server.route("/slow", Reply(200, {"ok": 1}, delay=1.0))
    client, waits = client_for(server, HttpSettings(timeout=0.2, retries=1, backoff=0.01))

    with pytest.raises(HttpError, match=r"no answer within the 0.2s timeout.*gave up after 2 attempt"):
        client.fetch(raw, "slow.json", "/slow")
    assert len(waits) == 1


def test_a_slow_first_answer_then_a_fast_one_succeeds(server, raw):
    server.route("/slow", Reply(200, {"ok": 1}, delay=1.0), Reply(200, {"ok": 2}))
    client, _ = client_for(server, HttpSettings(timeout=0.2, retries=2, backoff=0.01))

    assert client.fetch(raw, "slow.json", "/slow").json() == {"ok": 2}


def test_connection_refused_is_reported_without_a_stack_trace(raw):
    client = HttpClient("test", "http://127.0.0.1:9", settings=HttpSettings(timeout=0.5, retries=1, backoff=0.01),
                        sleep=lambda s: None)

    with pytest.raises(HttpError, match=r"connection failed \(ConnectionError"):
        client.fetch(raw, "x.json", "/x")


def test_an_html_page_with_status_200_is_a_bad_response_kept_in_raw(server, raw):
    server.route("/groups", Reply(200, fixture("tcgcsv/error-502.html").decode()))
    client, _ = client_for(server)

    with pytest.raises(BadResponseError, match="answered an HTML page titled '502 Bad Gateway' instead of JSON"):
        client.fetch(raw, "groups.json", "/groups")
    assert raw.entries()[0]["ok"] is False


def test_malformed_json_is_a_bad_response(server, raw):
    server.route("/prices", Reply(200, fixture("tcgcsv/malformed.json")))
    client, _ = client_for(server)

    with pytest.raises(BadResponseError, match="malformed JSON"):
        client.fetch(raw, "prices.json", "/prices")


def test_a_404_is_not_retried(server, raw):
    client, waits = client_for(server)

    with pytest.raises(HttpError, match="HTTP 404"):
        client.fetch(raw, "missing.json", "/missing")
    assert waits == [] and len(server.requests) == 1


def test_download_streams_to_a_file(server, tmp_path):
    server.route("/archive/prices-2026-01-05.ppmd.7z", Reply(200, b"7z\xbc\xaf\x27\x1c" + b"x" * 5000))
    client, _ = client_for(server)

    path = client.download("/archive/prices-2026-01-05.ppmd.7z", tmp_path / "a.7z")

    assert path.read_bytes().startswith(b"7z")


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_rate_limiter_allows_a_burst_then_waits_for_the_window():
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(3, 60.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        assert limiter.acquire() == 0.0
    now[0] = 10.0
    assert limiter.acquire() == pytest.approx(50.0)
    assert slept == [pytest.approx(50.0)]


def test_rate_limit_is_shared_by_clients_of_the_same_source(server):
    a = HttpClient("shared-src", server.url, settings=FAST, rate=(2, 60.0))
    b = HttpClient("shared-src", server.url, settings=FAST, rate=(2, 60.0))
    assert a.limiter is b.limiter


def test_settings_come_from_env_then_options(monkeypatch):
    monkeypatch.setenv("POKEWATCH_HTTP_TIMEOUT", "2.5")
    monkeypatch.setenv("POKEWATCH_HTTP_RETRIES", "1")
    settings = HttpSettings.resolve({"http_retries": "6"})
    assert settings.timeout == 2.5 and settings.retries == 6
    with pytest.raises(ParameterError, match="http_timeout must be a number"):
        HttpSettings.resolve({"http_timeout": "soon"})
    monkeypatch.setenv("POKEWATCH_HTTP_MAX_WAIT", "-1")
    with pytest.raises(ParameterError, match=r"POKEWATCH_HTTP_MAX_WAIT='-1' is not usable: option http_max_wait "
                                             r"must be in 0.01..86400"):
        HttpSettings.resolve()
    monkeypatch.delenv("POKEWATCH_HTTP_MAX_WAIT")
    monkeypatch.setenv("POKEWATCH_HTTP_MAX_BYTES", "2048")
    assert HttpSettings.resolve().max_bytes == 2048
    assert HttpSettings.resolve({"http_max_bytes": "4096", "http_collect_budget": "60"}).max_bytes == 4096
    with pytest.raises(ParameterError, match="option http_max_bytes must be a whole number, got 'lots'"):
        HttpSettings.resolve({"http_max_bytes": "lots"})


def test_secrets_are_masked_in_urls_headers_and_stored_bodies(server, raw, caplog):
    register_secret("fake-sekrit-token-123")
    assert redact_url("https://x.io/v2/cards?q=a&api_key=abc123&page=2") == "https://x.io/v2/cards?q=a&api_key=***&page=2"
    assert redact_url("https://user:pw@x.io/a?token=zzz") == "https://***@x.io/a?token=***"
    assert redact_headers({"Authorization": "Bearer fake-sekrit-token-123", "X-Api-Key": "k", "Accept": "x"}) == \
        {"Authorization": "***", "X-Api-Key": "***", "Accept": "x"}
    server.route("/echo", Reply(500, {"error": {"message": "bad key fake-sekrit-token-123"}}),
                 Reply(200, {"key": "fake-sekrit-token-123"}))
    client, _ = client_for(server, headers={"Authorization": "Bearer fake-sekrit-token-123"})

    with caplog.at_level(logging.DEBUG):
        client.fetch(raw, "echo.json", "/echo", {"apikey": "fake-sekrit-token-123"})

    assert server.requests[0].headers["Authorization"] == "Bearer fake-sekrit-token-123"  # it was sent ...
    stored = raw.index_path.read_text() + gzip.decompress((raw.root / "echo.json.gz").read_bytes()).decode()
    assert "fake-sekrit-token-123" not in stored  # ... but never written
    assert json.loads(raw.get("echo.json")) == {"key": "***"}
    assert "fake-sekrit-token-123" not in caplog.text


def test_api_error_messages_are_extracted_from_known_shapes():
    assert api_error_message(b'{"error": {"message": "slow down", "code": 429}}') == "slow down (code 429)"
    assert api_error_message(b'{"error": "Unauthorized", "message": "Invalid API key"}') == "Invalid API key"
    assert api_error_message(b"<html></html>") is None


def test_progress_is_silent_with_tqdm_disable_and_for_one_item(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert progress(total=1).disable
    assert not progress(total=5).disable
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert progress(total=5).disable


def test_map_with_progress_reports_errors_per_item_without_aborting():
    def work(x):
        if x == 2:
            raise ValueError("two")
        return x * 10

    for workers in (1, 3):
        results = {item: (value, error) for item, value, error in map_with_progress(work, [1, 2, 3], workers=workers)}
        assert results[1] == (10, None) and results[3] == (30, None)
        assert isinstance(results[2][1], ValueError)


def test_safe_names_are_plain_file_names():
    assert safe_name("cards", "set.id:sv3pt5 OR id:x/y", "p1") == "cards-set.id_sv3pt5_OR_id_x_y-p1"
    long = safe_name("q" * 500)
    assert len(long) <= 120 and "/" not in long


# --------------------------------------------------------------------------- budgets and size caps

def test_a_slow_drip_cannot_outlast_the_request_budget(server, raw):
    # every byte arrives well within the 1 s read timeout, but the whole answer would take 20 s
    server.route("/drip", Reply(200, b"x" * 200, drip=0.1))
    client, _ = client_for(server, HttpSettings(timeout=1.0, retries=2, backoff=0.01, max_wait=1.0))

    started = time.monotonic()
    with pytest.raises(BudgetExceededError, match=r"1s per-request budget \(http_max_wait\)") as info:
        client.fetch(raw, "drip.json", "/drip")

    assert time.monotonic() - started < 2.0
    assert "bytes" in str(info.value) and len(server.requests) == 1  # out of time: not retried
    assert raw.entries() == []  # no whole answer, nothing stored as if it were one


def test_the_collect_budget_stops_every_later_request(server, raw):
    server.route("/drip", Reply(200, b"x" * 100, drip=0.1))
    server.route("/fast", Reply(200, {"ok": 1}))
    client, _ = client_for(server, HttpSettings(timeout=1.0, retries=0, max_wait=30, collect_budget=0.5))

    with pytest.raises(BudgetExceededError, match=r"0.5s total HTTP budget \(http_collect_budget\) is spent"):
        client.fetch(raw, "drip.json", "/drip")
    with pytest.raises(BudgetExceededError, match="not sent"):
        client.fetch(raw, "fast.json", "/fast")
    assert server.requests_to("/fast") == []


def test_retry_waits_never_pass_the_collect_budget(server, raw):
    server.route("/busy", Reply(503, "busy", headers={"Retry-After": "2"}))
    client, waits = client_for(server, HttpSettings(timeout=1.0, retries=5, max_wait=60, collect_budget=1.0))

    with pytest.raises(HttpError, match="would exceed the 1s collect's HTTP budget"):
        client.fetch(raw, "busy.json", "/busy")
    assert waits == []


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "no-content-length"])
def test_an_answer_over_the_size_cap_fails_clearly_without_reading_it_all(server, raw, announced):
    server.route("/big", Reply(200, b"[" + b"1," * 1_500_000 + b"1]", content_length=announced))
    client, _ = client_for(server, HttpSettings(timeout=2.0, retries=2, backoff=0.01, max_bytes=100_000))

    with pytest.raises(ResponseTooLargeError) as info:
        client.fetch(raw, "big.json", "/big")

    message = str(info.value)
    assert "more than 100,000 bytes" in message and "http_max_bytes" in message
    assert "source_options=http_max_bytes:BYTES" in message and "POKEWATCH_HTTP_MAX_BYTES" in message
    assert len(server.requests) == 1  # a size problem is not retried


def test_the_size_cap_counts_decompressed_bytes(server, raw):
    bomb = gzip.compress(b" " * 5_000_000)  # 5 MB of JSON whitespace in about 5 KB
    server.route("/bomb", Reply(200, bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}))
    client, _ = client_for(server, HttpSettings(timeout=2.0, retries=0, max_bytes=1_000_000))

    with pytest.raises(ResponseTooLargeError, match="more than 1,000,000 bytes"):
        client.fetch(raw, "bomb.json", "/bomb")


def test_an_answer_under_the_cap_is_read_whole(server, raw):
    body = json.dumps({"results": list(range(50_000))}).encode()
    server.route("/ok", Reply(200, body, content_length=False))
    client, _ = client_for(server, HttpSettings(timeout=2.0, retries=0, max_bytes=len(body)))

    assert client.fetch(raw, "ok.json", "/ok").json()["results"][-1] == 49_999
    assert raw.get("ok.json") == body


def test_a_download_over_its_cap_leaves_no_file(server, tmp_path):
    server.route("/archive/big.7z", Reply(200, b"7z" + b"x" * 300_000))
    client, _ = client_for(server, HttpSettings(timeout=2.0, retries=0, max_download_bytes=100_000))

    with pytest.raises(ResponseTooLargeError, match="http_max_download_bytes"):
        client.download("/archive/big.7z", tmp_path / "big.7z")
    assert list(tmp_path.iterdir()) == []


def test_a_slow_download_is_stopped_by_the_budget_and_leaves_no_file(server, tmp_path):
    server.route("/archive/slow.7z", Reply(200, b"7z" * 100, drip=0.05, drip_bytes=2))
    client, _ = client_for(server, HttpSettings(timeout=1.0, retries=0, max_wait=0.5))

    with pytest.raises(BudgetExceededError):
        client.download("/archive/slow.7z", tmp_path / "slow.7z")
    assert list(tmp_path.iterdir()) == []


def test_an_error_page_of_a_download_is_read_only_in_part(server, tmp_path):
    server.route("/archive/missing.7z", Reply(404, "<html><title>Not Found</title>" + "x" * 500_000 + "</html>"))
    client, _ = client_for(server, HttpSettings(timeout=2.0, retries=0, max_download_bytes=2048))

    with pytest.raises(HttpError, match="HTTP 404") as info:
        client.download("/archive/missing.7z", tmp_path / "missing.7z")
    assert info.value.status == 404


def test_rate_limiter_gives_up_rather_than_wait_past_a_deadline():
    now = [0.0]
    limiter = RateLimiter(1, 60.0, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert limiter.acquire() == 0.0
    assert limiter.acquire(max_wait=5.0) is None
    assert limiter.acquire(max_wait=120.0) == pytest.approx(60.0)


def test_progress_logs_a_line_every_few_items_and_at_the_end(caplog):
    with caplog.at_level(logging.INFO, logger="pokewatch.progress"):
        bar = Progress("tcgcsv archives", 5, unit="day", every=2)
        for day in range(5):
            bar.update(1, detail=f"day {day}")
        bar.close()

    lines = [r.getMessage() for r in caplog.records if r.name == "pokewatch.progress"]
    assert [line.split(",")[0] for line in lines] == ["tcgcsv archives: 2/5 days (40%)",
                                                       "tcgcsv archives: 4/5 days (80%)",
                                                       "tcgcsv archives: 5/5 days (100%)"]
    assert lines[-1].endswith("; day 4") and "left" in lines[0]
