"""Tell people when a run finished: a short JSON post to a Slack or Discord incoming webhook.

Why: collectors should not have to open a report to learn that today has a strong BUY,
or that their portfolio moved. When ``POKEWATCH_WEBHOOK_URL`` is set, the pipeline's
``finish`` step posts a few lines (top BUY and SELL, portfolio value and movers, how
far to trust the flags) after publishing a run.

Shape: ``{"text": ..., "content": ..., "username": "PokeWatch", "allowed_mentions": ...}``.
Slack reads ``text``, Discord reads ``content`` (at most 2,000 characters, so the
message is kept shorter), and each ignores the other's keys, so one URL of either
kind works (see :func:`payload`).

Failure policy: an alert is a courtesy, never a reason to fail a run. It follows the
retry policy the price sources use (:mod:`pokewatch.data.retry`): timeouts, connection
errors, HTTP 408, 429 and 5xx are retried a bounded number of times with jittered
exponential backoff, or after the ``Retry-After`` the webhook asked for (seconds or an
HTTP date, granted up to :data:`MAX_RETRY_AFTER`), all within :data:`BUDGET_SECONDS`;
other 4xx answers (a revoked or mistyped webhook) are not retried. The outcome, sent
or failed, is recorded under ``alert`` in the run's manifest.

Secrecy: a webhook URL's path is its password. It is never logged, printed or stored;
messages show only the scheme and host (``https://hooks.slack.com/***``, by
:func:`pokewatch.redaction.origin_only`). The stdlib
``urllib`` is used because it logs nothing of its own.

Settings (environment): ``POKEWATCH_WEBHOOK_URL``; ``POKEWATCH_WEBHOOK_TIMEOUT``
(seconds per attempt, default 5); ``POKEWATCH_WEBHOOK_RETRIES`` (retries after the
first attempt, default 2, at most 5).
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

from pokewatch.analysis import candidates, summary
from pokewatch.run import runs
from pokewatch.run.folder import RunFolder
from pokewatch.redaction import origin_only, redact_secret_url
from pokewatch.data.retry import Attempt, RetryPolicy, parse_retry_after

logger = logging.getLogger(__name__)

WEBHOOK_ENV = "POKEWATCH_WEBHOOK_URL"
TIMEOUT_ENV = "POKEWATCH_WEBHOOK_TIMEOUT"
RETRIES_ENV = "POKEWATCH_WEBHOOK_RETRIES"
DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRIES = 2
MAX_RETRIES = 5
#: Base backoff in seconds; doubles after each failed attempt (half jittered, see pokewatch.data.retry).
BACKOFF_SECONDS = 1.0
#: Longest computed backoff, and longest wait a Retry-After (seconds or HTTP date) is granted.
MAX_BACKOFF = 10.0
MAX_RETRY_AFTER = 10.0
#: Wall-clock seconds one alert may take, attempts and waits included.
BUDGET_SECONDS = 60.0
#: Discord rejects content over 2,000 characters.
MAX_CHARS = 1900
TOP_N = 3


# -- the message ------------------------------------------------------------------------------
def _card_line(row: dict) -> str:
    return (f"{row['signal']}  {row['name']} ({row['card_id']}, {row['variant']}) "
            f"{summary.money(row['market_price'], row.get('currency', 'USD'))}, fair "
            f"{summary.money(row['fair_value'], row.get('currency', 'USD'))} ({row['deviation']:+.0%})")


def build_message(run_date: str, today: pd.DataFrame, metrics: dict | None = None, book: dict | None = None,
                  report: str | None = None, top_n: int = TOP_N) -> str:
    """The alert text: counts, the track record, top BUY and SELL, portfolio and movers, report path.

    The top BUY and SELL flags are the first ``top_n`` of each in :func:`pokewatch.analysis.candidates.rank_flags`
    order, as the report, the CLI and the API list them.

    Args:
        today: the run's signals (``signals.csv``).
        metrics: the run's ``metrics.json``; its out-of-sample ``track_record`` leads the message.
        book: the run's ``portfolio.json`` (totals and movers), if any.
        report: where the report is, shown as the last line.
    """
    counts = today["signal"].value_counts()
    lines = [(f"PokeWatch {run_date}: {counts.get('BUY', 0)} BUY, {counts.get('SELL', 0)} SELL "
              f"out of {len(today):,} cards.")]
    if metrics is not None:
        lines += summary.track_record_sentences(metrics.get("track_record") or {}, metrics.get("model"))
    buys = candidates.rank_flags(today, ["BUY"], limit=top_n)
    sells = candidates.rank_flags(today, ["SELL"], limit=top_n)
    lines += [_card_line(r) for r in pd.concat([buys, sells]).to_dict(orient="records")]
    if book and book.get("totals"):
        for t in book["totals"]:
            cur = t.get("currency", "USD")
            pct = t.get("pnl_pct")
            lines.append(f"Portfolio: {summary.money(t.get('value'), cur)}, P&L "
                         f"{summary.money(t.get('pnl'), cur, signed=True)}"
                         + (f" ({pct:+.1%})" if isinstance(pct, (int, float)) and math.isfinite(pct) else "")
                         + f", {summary.money(t.get('value_change_1d'), cur, signed=True)} since yesterday")
        movers = [f"{m['name']} ({m['card_id']}) {summary.money(m.get('value_change_1d'), m.get('currency'), True)}"
                  for m in book.get("movers", [])]
        if movers:
            lines.append("Movers: " + "; ".join(movers))
    if report:
        lines.append(f"Report: {report}")
    text = "\n".join(lines)
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS - 1] + "…"


def payload(text: str) -> dict:
    """JSON body accepted by both Slack (``text``) and Discord (``content``) incoming webhooks.

    Slack gets ``&``, ``<`` and ``>`` escaped as its formatting rules require (so a card
    name can never become a ``<!channel>`` ping); Discord gets the raw text with every
    mention disabled (``allowed_mentions``), so "Pikachu & Zekrom" reads as written.
    """
    slack = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return {"text": slack, "content": text[:2000], "username": "PokeWatch", "allowed_mentions": {"parse": []}}


# -- posting ------------------------------------------------------------------------------------
@dataclass
class PostResult:
    """What happened to one alert: sent or not, after how many attempts, and why."""

    ok: bool
    attempts: int
    http_status: int | None
    error: str | None
    seconds: float
    target: str

    def to_manifest(self) -> dict:
        return {"status": "sent" if self.ok else "failed", **asdict(self),
                "at": pd.Timestamp.now(tz="UTC").isoformat()}


def post_json(url: str, body: dict, *, timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES,
              backoff: float | None = None, budget: float = BUDGET_SECONDS,
              sleep: Callable[[float], None] = time.sleep) -> PostResult:
    """POST ``body`` as JSON, retrying passing failures by :mod:`pokewatch.data.retry`'s policy; never raises.

    Args:
        url: the webhook URL (kept secret: it never appears in the result or logs).
        timeout: seconds per attempt.
        retries: retries after the first attempt (bounded by :data:`MAX_RETRIES`).
        backoff: base wait between attempts (default :data:`BACKOFF_SECONDS`), doubled each time, jittered.
        budget: wall-clock seconds for the whole alert, attempts and waits included.
        sleep: the sleep function (tests inject one that records the waits).
    """
    policy = RetryPolicy(retries=max(0, min(int(retries), MAX_RETRIES)),
                         backoff=BACKOFF_SECONDS if backoff is None else backoff, backoff_max=MAX_BACKOFF,
                         max_retry_after=MAX_RETRY_AFTER)
    data = json.dumps(body).encode("utf-8")
    target = origin_only(url)
    started = time.monotonic()
    deadline = started + budget

    def attempt(_: int) -> Attempt:
        request = urllib.request.Request(url, data=data, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "PokeWatch-alerts"})
        seconds = max(0.001, min(timeout, deadline - time.monotonic()))
        try:
            with urllib.request.urlopen(request, timeout=seconds) as response:  # the user's own webhook URL
                return Attempt(retryable=False, status=response.status)
        except urllib.error.HTTPError as exc:
            retry_after = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            exc.close()
            return Attempt(retryable=policy.retryable_status(exc.code), status=exc.code,
                           error=redact_secret_url(f"HTTP {exc.code} {exc.reason}", url), retry_after=retry_after)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            error = f"{type(reason).__name__}: {reason}" if not isinstance(reason, str) else reason
            return Attempt(retryable=True, error=redact_secret_url(error, url))

    def on_retry(failed: Attempt, number: int, wait: float) -> None:
        logger.info("webhook %s: attempt %d failed (%s); retrying in %.1fs", target, number, failed.error, wait)

    outcome = policy.run(attempt, deadline=deadline, sleep=sleep, on_retry=on_retry)
    last = outcome.last
    return PostResult(last.error is None, outcome.attempts, last.status, last.error,
                      round(time.monotonic() - started, 3), target)


# -- a run's alert --------------------------------------------------------------------------------
def _env_number(env: dict, name: str, default: float) -> float:
    try:
        return float(env.get(name) or default)
    except ValueError:
        logger.warning("%s=%r is not a number; using %s", name, env.get(name), default)
        return default


def run_message(run_dir: Path | str, report: str | None = None) -> str:
    """The alert text of a finished run folder."""
    from pokewatch.analysis.explore import read_signals  # avoid a circular import at start-up

    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    manifest = runs.read_manifest(run_dir)
    return build_message(manifest.get("run_date", run_dir.name[:10]), read_signals(folder.signals),
                         _read_json(folder.metrics), _read_json(folder.portfolio_summary) or None, report)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except json.JSONDecodeError:
        return {}


def notify_run(run_dir: Path | str, env: dict | None = None, report: str | None = None) -> PostResult | None:
    """Post a finished run's alert when ``POKEWATCH_WEBHOOK_URL`` is set, and record it in the manifest.

    Never raises: a broken run folder or an unreachable webhook is logged and recorded
    as ``alert.status = failed``.

    Returns:
        None when no webhook is configured, else the :class:`PostResult`.
    """
    env = os.environ if env is None else env
    url = (env.get(WEBHOOK_ENV) or "").strip()
    if not url:
        return None
    run_dir = Path(run_dir)
    if urlsplit(url).scheme not in ("http", "https"):
        result = PostResult(False, 0, None, f"{WEBHOOK_ENV} is not an http(s) URL", 0.0, origin_only(url))
    else:
        try:
            body = payload(run_message(run_dir, report))
        except Exception as exc:  # noqa: BLE001 - an alert must never fail a run
            result = PostResult(False, 0, None, f"could not build the message: {type(exc).__name__}: {exc}",
                                0.0, origin_only(url))
        else:
            result = post_json(url, body, timeout=_env_number(env, TIMEOUT_ENV, DEFAULT_TIMEOUT),
                               retries=int(_env_number(env, RETRIES_ENV, DEFAULT_RETRIES)))
    if result.ok:
        logger.info("alert sent to %s", result.target)
    else:
        logger.warning("alert to %s failed after %d attempt(s): %s (the run itself is fine)", result.target,
                       result.attempts, result.error)
    try:
        runs.update_manifest(run_dir, alert=result.to_manifest())
    except Exception as exc:  # noqa: BLE001 - recording is best effort too
        logger.warning("could not record the alert outcome in %s: %s", run_dir, exc)
    return result
