"""Webhook alerts against a real HTTP server on 127.0.0.1: success, 5xx, timeouts, secrecy, no effect on the run."""
from __future__ import annotations

import email.utils
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from pokewatch.analysis import alerts
from pokewatch.run.folder import RunFolder
from pokewatch.cli.main import main
from tests.analyst_fixtures import held_cards, make_run, manifest

SECRET = "/services/T000/B000/s3cr3t-t0k3n"


class Webhook:
    """A local webhook that answers with a scripted list of statuses (the last one repeats).

    A status of ``"slow"`` sleeps longer than the client's timeout before answering 200; a
    ``(status, headers)`` pair answers with those headers too.
    """

    def __init__(self, *script):
        self.script = list(script) or [204]
        self.requests: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.requests.append({"path": self.path, "type": self.headers.get("Content-Type"),
                                      "json": json.loads(body)})
                status = hook.script[min(len(hook.requests), len(hook.script)) - 1]
                status, headers = status if isinstance(status, tuple) else (status, {})
                if status == "slow":
                    time.sleep(1.0)
                    status = 200
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}{SECRET}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook(request):
    hooks = []

    def start(*script):
        hooks.append(Webhook(*script))
        return hooks[-1]

    yield start
    for hook in hooks:
        hook.close()


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(alerts, "BACKOFF_SECONDS", 0.01)


def holdings_text() -> str:
    rows = [f"{r.card_id},{r.variant},2,1.00,2026-10-01" for r in held_cards(2).itertuples()]
    return "card_id,variant,quantity,purchase_price,purchase_date\n" + "\n".join(rows) + "\n"


def test_the_message_has_the_top_flags_portfolio_movers_and_trust():
    today = pd.DataFrame({
        "card_id": ["a-1", "b-2", "c-3", "d-4"], "variant": "Holofoil", "currency": "USD",
        "name": ["Alpha", "Beta", "Gamma", "Delta"], "market_price": [8.0, 9.0, 13.0, 10.0],
        "fair_value": 10.0, "deviation": [-0.2, -0.1, 0.3, 0.0], "signal": ["BUY", "BUY", "SELL", "HOLD"]})
    book = {"totals": [{"currency": "USD", "value": 120.0, "pnl": 20.0, "pnl_pct": 0.2, "value_change_1d": -3.0}],
            "movers": [{"card_id": "c-3", "name": "Gamma", "currency": "USD", "value_change_1d": -3.0}]}
    metrics = {"track_record": {"horizon_days": 7, "target_return": 0.05, "first_flag_date": "2026-11-01",
                                "last_flag_date": "2026-11-21",
                                "SELL": {"flags": 40, "precision": 0.45, "wrong_way_rate": 0.1}},
               "model": {"buy": None, "sell": {}, "reasons": {"BUY": "no edge in training"}}}
    text = alerts.build_message("2026-11-28", today, metrics, book, "runs/x/report.html")
    lines = text.splitlines()
    assert lines[0] == "PokeWatch 2026-11-28: 2 BUY, 1 SELL out of 4 cards."
    assert lines[3].startswith("BUY  Alpha (a-1, Holofoil) $8.00, fair $10.00 (-20%)")
    assert lines[5].startswith("SELL  Gamma")
    assert "Portfolio: $120.00, P&L +$20.00 (+20.0%), -$3.00 since yesterday" in text
    assert "Movers: Gamma (c-3) -$3.00" in text and lines[-1].endswith(RunFolder.report.name)
    assert lines[1] == ("Of 40 SELL flags from 2026-11-01 to 2026-11-21, 45% were followed by a fall of 5% or more "
                        "7 days later and 10% by a rise of as much.")
    assert lines[2] == "BUY flags are switched off: no edge in training."
    body = alerts.payload(text)
    assert body["content"] == text and body["text"] == text.replace("&", "&amp;"), "Slack: text, Discord: content"


def test_card_names_cannot_ping_a_channel():
    body = alerts.payload("BUY  Pikachu & Zekrom <!channel> @everyone")
    assert body["text"] == "BUY  Pikachu &amp; Zekrom &lt;!channel&gt; @everyone"
    assert body["content"] == "BUY  Pikachu & Zekrom <!channel> @everyone"
    assert body["allowed_mentions"] == {"parse": []}


def test_a_successful_run_posts_its_summary_and_records_it(isolated_dirs, webhook):
    hook = webhook(204)
    run = make_run(isolated_dirs["runs"], holdings=holdings_text())
    result = alerts.notify_run(run, {alerts.WEBHOOK_ENV: hook.url})
    assert result.ok and result.attempts == 1
    sent = hook.requests[0]
    assert sent["path"] == SECRET and sent["type"] == "application/json"
    assert sent["json"]["text"].startswith("PokeWatch 2026-11-28:") and "Portfolio: $" in sent["json"]["content"]
    recorded = manifest(run)["alert"]
    assert recorded["status"] == "sent" and recorded["http_status"] == 204
    assert recorded["target"] == f"http://127.0.0.1:{hook.server.server_port}/***"


def test_server_errors_are_retried_a_bounded_number_of_times_then_recorded(isolated_dirs, webhook):
    hook = webhook(500)
    run = make_run(isolated_dirs["runs"])
    result = alerts.notify_run(run, {alerts.WEBHOOK_ENV: hook.url, alerts.RETRIES_ENV: "2"})
    assert not result.ok and result.attempts == 3 and len(hook.requests) == 3
    recorded = manifest(run)
    assert recorded["status"] == "success", "a failed alert never fails the run"
    assert recorded["alert"]["status"] == "failed" and recorded["alert"]["http_status"] == 500
    assert "HTTP 500" in recorded["alert"]["error"]


def test_a_transient_error_is_retried_until_it_succeeds(webhook):
    hook = webhook(503, 429, 200)
    result = alerts.post_json(hook.url, {"text": "hi"}, retries=3)
    assert result.ok and result.attempts == 3 and result.http_status == 200


def test_a_retry_after_given_as_an_http_date_is_waited_for(webhook):
    in_six_seconds = email.utils.formatdate(time.time() + 6, usegmt=True)  # whole seconds: 5 to 6 s from now
    hook = webhook((503, {"Retry-After": in_six_seconds}), 200)
    waits: list[float] = []
    result = alerts.post_json(hook.url, {"text": "hi"}, retries=2, sleep=waits.append)
    assert result.ok and result.attempts == 2
    assert len(waits) == 1 and 4.0 < waits[0] <= 6.0, "the date was read, not the 0.01 s backoff used"


def test_a_retry_after_far_in_the_future_is_granted_only_up_to_the_cap(webhook):
    in_an_hour = email.utils.formatdate(time.time() + 3600, usegmt=True)
    hook = webhook((429, {"Retry-After": in_an_hour}), 204)
    waits: list[float] = []
    result = alerts.post_json(hook.url, {"text": "hi"}, retries=1, sleep=waits.append)
    assert result.ok and waits == [alerts.MAX_RETRY_AFTER]


def test_no_wait_passes_the_alert_budget(webhook):
    hook = webhook((503, {"Retry-After": "5"}))
    waits: list[float] = []
    result = alerts.post_json(hook.url, {"text": "hi"}, retries=3, budget=2.0, sleep=waits.append)
    assert not result.ok and result.attempts == 1 and waits == [] and result.http_status == 503


def test_a_client_error_is_not_retried(webhook):
    hook = webhook(404)
    result = alerts.post_json(hook.url, {"text": "hi"}, retries=3)
    assert not result.ok and result.attempts == 1 and len(hook.requests) == 1


def test_timeouts_are_bounded(webhook):
    hook = webhook("slow")
    started = time.monotonic()
    result = alerts.post_json(hook.url, {"text": "hi"}, timeout=0.2, retries=1)
    assert not result.ok and result.attempts == 2 and result.http_status is None
    assert "timed out" in result.error.lower()
    assert time.monotonic() - started < 1.5


def test_an_unreachable_webhook_fails_quietly_and_bounded():
    result = alerts.post_json("http://127.0.0.1:9" + SECRET, {"text": "hi"}, timeout=0.5, retries=1)
    assert not result.ok and result.attempts == 2


def test_the_webhook_secret_never_reaches_logs_manifest_or_output(isolated_dirs, webhook, caplog, capsys,
                                                                   monkeypatch):
    hook = webhook(500)
    attempt = make_run(isolated_dirs["runs"], publish=False)
    monkeypatch.setenv(alerts.WEBHOOK_ENV, hook.url)
    monkeypatch.setenv(alerts.RETRIES_ENV, "1")
    with caplog.at_level(logging.DEBUG):
        assert main(["pipeline", "finish", "--attempt", str(attempt)]) == 0, "the run finishes despite the alert"
    out = capsys.readouterr()
    assert "alert to http://127.0.0.1" in out.out and "FAILED after 2 attempt(s)" in out.out
    recorded = RunFolder(attempt).manifest.read_text()
    for text in (caplog.text, out.out, out.err, recorded):
        assert "s3cr3t" not in text and "/services/" not in text
    assert manifest(attempt)["status"] == "success" and manifest(attempt)["alert"]["attempts"] == 2


def test_without_a_webhook_nothing_is_posted_or_recorded(isolated_dirs):
    run = make_run(isolated_dirs["runs"])
    assert alerts.notify_run(run, {}) is None
    assert "alert" not in manifest(run)


def test_a_webhook_that_is_not_http_is_recorded_not_raised(isolated_dirs):
    run = make_run(isolated_dirs["runs"])
    result = alerts.notify_run(run, {alerts.WEBHOOK_ENV: "hooks.example.com/secret"})
    assert not result.ok and "not an http(s) URL" in manifest(run)["alert"]["error"]
