"""The pipeline's client of a running API, behind ``pokewatch notify health|reload``.

``scripts/run_pipeline.sh`` calls it after a good run when ``POKEWATCH_API_URL`` is
set: ``reload`` makes the server switch to the new run (with the key in
``POKEWATCH_API_KEY``, which must be an ``admin`` key), ``health`` checks it is
serving. Each prints exactly one line and exits 0 on success, 1 when the API failed
or could not be reached, or serves an older run because the newest one's model
cannot be loaded, and 2 when the client itself is misconfigured. The pipeline treats a non-zero exit as a
warning, not a failed run. Only the standard library is used (and
:mod:`pokewatch.redaction`, itself standard library only), so the check works in any
environment that can run the pipeline. The key is never printed, nor a password in the URL.
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request

from pokewatch.redaction import redact_url

DEFAULT_TIMEOUT = 10.0


def _call(method: str, url: str, key: str | None, timeout: float) -> tuple[int, dict]:
    headers = {"Accept": "application/json", "User-Agent": "pokewatch-notify"}
    if key:
        headers["X-API-Key"] = key
    request = urllib.request.Request(url, method=method, headers=headers, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = {"detail": raw[:200].decode("utf-8", "replace")}
    return status, body if isinstance(body, dict) else {"detail": str(body)[:200]}


def check(action: str, base_url: str, key: str | None, timeout: float = DEFAULT_TIMEOUT) -> tuple[int, str]:
    """Run ``action`` against the API at ``base_url``; returns (exit status, one-line message)."""
    shown = redact_url(base_url)
    if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
        return 2, f"api {action}: FAILED: POKEWATCH_API_URL={shown!r} is not an http(s) URL"
    if action == "reload" and not key:
        return 2, "api reload: FAILED: POKEWATCH_API_KEY is not set (the client key for POST /reload)"
    method, path = ("POST", "/reload") if action == "reload" else ("GET", "/health")
    try:
        status, body = _call(method, base_url.rstrip("/") + path, key, timeout)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return 1, f"api {action}: FAILED: cannot reach {shown} ({reason})"
    if status != 200:
        detail = str(body.get("detail") or body.get("error") or "no detail")[:300]
        return 1, f"api {action}: FAILED: HTTP {status} from {shown}{path}: {detail}"
    unreadable = body.get("newest_run_unreadable")
    if isinstance(unreadable, dict):
        newest = unreadable.get("run_date") or unreadable.get("run")
        detail = str(unreadable.get("detail") or "no detail")[:300]
        return 1, (f"api {action}: FAILED: newest run {newest} cannot be served ({detail}); "
                   f"serving run {body.get('run_date')} instead at {shown}")
    if action == "reload":
        if body.get("status") == "unchanged":
            return 0, f"api reload: ok, already serving run {body.get('run_date')} at {shown}"
        return 0, (f"api reload: ok, now serving run {body.get('run_date')} "
                   f"(was {body.get('previous_run_date') or 'none'}) at {shown}")
    return 0, (f"api health: ok, serving run {body.get('run_date')} ({body.get('cards')} cards, data "
               f"{body.get('data_freshness_days')} day(s) old) at {shown}")


def from_env(action: str, timeout: float | None = None) -> tuple[int, str]:
    """:func:`check` against ``POKEWATCH_API_URL`` with ``POKEWATCH_API_KEY``; returns (exit status, one line).

    Args:
        timeout: seconds to wait (default: ``POKEWATCH_API_TIMEOUT``, else :data:`DEFAULT_TIMEOUT`).
    """
    if timeout is None:
        raw = os.environ.get("POKEWATCH_API_TIMEOUT", "").strip()
        try:
            timeout = float(raw) if raw else DEFAULT_TIMEOUT
        except ValueError:
            return 2, f"api {action}: FAILED: POKEWATCH_API_TIMEOUT={raw!r} is not a number of seconds"
    url = os.environ.get("POKEWATCH_API_URL", "").strip()
    if not url:
        return 2, f"api {action}: FAILED: POKEWATCH_API_URL is not set"
    return check(action, url, os.environ.get("POKEWATCH_API_KEY", "").strip() or None, timeout)
