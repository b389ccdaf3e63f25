"""One HTTP client for every network price source, so they all fail the same way.

Why a shared client: each public source has the same failure modes (slow answers,
5xx and HTML error pages from a proxy, 429 when a quota runs out, dropped
connections), and a run must survive them identically. This module gives every
source:

* **timeouts** on connect and read, so a hung server cannot hang the cron job;
* **retries** with exponential backoff and jitter on 5xx, 408, 429 and connection
  errors, honouring ``Retry-After`` (seconds or HTTP date), within a **maximum total
  time** per request; a 429 can be made final (``retry_429=False``) for APIs whose
  429 means "today's credits are spent";
* a **client-side rate limit** per source and host, shared by every client and
  thread of the process (a sliding window of ``max_calls`` per ``period``);
* **tqdm progress** for multi-request collections, silenced by ``TQDM_DISABLE=1``
  (for cron logs) and for single requests;
* **no secrets on disk or in logs**: keys are registered with :func:`register_secret`
  and scrubbed from every URL, header, error message and stored body; the raw index
  records URLs with ``api_key=...``-style parameters and ``Authorization`` /
  ``X-Api-Key`` headers replaced by ``***``.

Every final response is written to the run's :class:`~pokewatch.raw_archive.RawArchive`
*before* anything parses it (:meth:`HttpClient.fetch`), with its metadata and an
``ok`` flag that parsers use to skip error pages without losing them.

Settings come from, in increasing priority: the defaults below, environment
variables (``POKEWATCH_HTTP_TIMEOUT``, ``POKEWATCH_HTTP_RETRIES``,
``POKEWATCH_HTTP_BACKOFF``, ``POKEWATCH_HTTP_MAX_WAIT``; tests use them to keep
failures fast) and collect options (``http_timeout``, ``http_retries``,
``http_backoff``, ``http_max_wait``).
"""
from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import os
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests
from tqdm.auto import tqdm

from pokewatch import __version__, atomic
from pokewatch.errors import ParameterError, SourceError
from pokewatch.raw_archive import RawArchive

logger = logging.getLogger(__name__)

USER_AGENT = f"pokewatch/{__version__} (Pokemon card price tracker)"
REDACTED = "***"

#: Statuses worth another attempt: the server or a proxy is overloaded or restarting.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

#: Query parameters whose values are credentials, whatever the API calls them.
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:api[_-]?key|apikey|key|token|access[_-]?token|auth|password|secret|signature|sig)=)"
    r"[^&#;\s\"']*"
)
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_URL_USERINFO = re.compile(r"(?i)(https?://)[^/@\s:]+:[^/@\s]+@")
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key",
                               "cookie", "set-cookie"})

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()


# --------------------------------------------------------------------------- secrets

def register_secret(value: str | None) -> None:
    """Remember a credential so :func:`redact_text` removes it wherever it appears."""
    if value and len(value) >= 4:
        with _SECRETS_LOCK:
            _SECRETS.add(value)


def redact_text(text: str) -> str:
    """``text`` with registered secrets, key-like URL parameters and bearer tokens masked."""
    if not text:
        return text
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _SECRET_PARAM.sub(rf"\1{REDACTED}", text)
    text = _BEARER.sub(rf"\1{REDACTED}", text)
    return _URL_USERINFO.sub(rf"\1{REDACTED}@", text)


def redact_url(url: str) -> str:
    """A URL safe to log or store: credentials in the query or user-info are masked."""
    return redact_text(url)


def redact_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Headers safe to log or store: credential headers are masked, others redacted of secrets."""
    return {k: REDACTED if k.lower() in SENSITIVE_HEADERS else redact_text(str(v))
            for k, v in (headers or {}).items()}


def _scrub_bytes(body: bytes) -> bytes:
    for secret in _SECRETS:
        token = secret.encode()
        if token in body:
            body = body.replace(token, REDACTED.encode())
    return body


class _RedactingFilter(logging.Filter):
    """Masks secrets in records of third-party loggers that print URLs (urllib3)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is not ours to fix
            return True
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


for _name in ("urllib3.connectionpool", "urllib3.util.retry", "requests"):
    logging.getLogger(_name).addFilter(_RedactingFilter())


# --------------------------------------------------------------------------- errors

class HttpError(SourceError):
    """A request failed for good: after its retries, or with a status not worth retrying.

    Attributes:
        url: the redacted URL.
        status: the final HTTP status, or ``None`` when no response arrived.
        attempts: how many requests were made.
        api_message: the error message the API put in its body, if any.
    """

    def __init__(self, message: str, *, url: str, status: int | None = None, attempts: int = 1,
                 api_message: str | None = None) -> None:
        super().__init__(redact_text(message))
        self.url = redact_url(url)
        self.status = status
        self.attempts = attempts
        self.api_message = redact_text(api_message) if api_message else None

    def as_failure(self, item: str) -> dict:
        """A ``FetchReport.failures`` entry for ``item``."""
        entry = {"item": item, "error": str(self), "url": self.url, "status": self.status,
                 "attempts": self.attempts}
        return {k: v for k, v in entry.items() if v is not None}


class RateLimitedError(HttpError):
    """HTTP 429 that retrying did not (or must not) fix: the quota is spent for now."""


class BadResponseError(HttpError):
    """A 2xx answer that is not what the API documents: malformed JSON, an HTML page."""


# --------------------------------------------------------------------------- settings

def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ParameterError(f"environment variable {name} must be a number, got {value!r}") from exc


@dataclass(frozen=True)
class HttpSettings:
    """Timeouts and retry budget of one client.

    Attributes:
        timeout: seconds to connect and, separately, between bytes of the answer.
        retries: further attempts after the first one.
        backoff: base delay; attempt n waits about ``backoff * 2**n`` (with jitter).
        backoff_max: cap of one computed delay (a ``Retry-After`` may ask for more).
        max_wait: maximum total seconds spent on one request, retries included.
        retry_429: retry HTTP 429 (honouring ``Retry-After``); ``False`` stops at once.
    """

    timeout: float = 30.0
    retries: int = 4
    backoff: float = 1.0
    backoff_max: float = 60.0
    max_wait: float = 300.0
    retry_429: bool = True

    @classmethod
    def resolve(cls, options: Mapping[str, Any] | None = None, **overrides) -> HttpSettings:
        """Defaults, then ``POKEWATCH_HTTP_*`` variables, then ``http_*`` options, then overrides.

        Raises:
            ParameterError: a value is not a number or is negative.
        """
        options = options or {}
        values = {
            "timeout": _env_float("POKEWATCH_HTTP_TIMEOUT", cls.timeout),
            "retries": _env_float("POKEWATCH_HTTP_RETRIES", cls.retries),
            "backoff": _env_float("POKEWATCH_HTTP_BACKOFF", cls.backoff),
            "max_wait": _env_float("POKEWATCH_HTTP_MAX_WAIT", cls.max_wait),
        }
        for key in list(values):
            if options.get(f"http_{key}") not in (None, ""):
                try:
                    values[key] = float(options[f"http_{key}"])
                except (TypeError, ValueError) as exc:
                    raise ParameterError(
                        f"option http_{key} must be a number, got {options[f'http_{key}']!r}") from exc
        for key, value in values.items():
            if value < 0:
                raise ParameterError(f"HTTP setting {key} must be >= 0, got {value}")
        values["retries"] = int(values["retries"])
        return replace(cls(**values), **overrides)

    def delay(self, attempt: int) -> float:
        """Backoff before retry ``attempt`` (0-based): exponential, capped, half jittered."""
        base = min(self.backoff_max, self.backoff * (2 ** attempt))
        return base / 2 + random.uniform(0, base / 2)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


# --------------------------------------------------------------------------- rate limit

class RateLimiter:
    """At most ``max_calls`` acquisitions in any window of ``period`` seconds (thread-safe).

    A sliding window rather than a fixed spacing: a small collect runs at full
    speed, a large one settles at the allowed rate.
    """

    def __init__(self, max_calls: int, period: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if max_calls < 1 or period <= 0:
            raise ParameterError(f"rate limit needs max_calls >= 1 and period > 0, got {max_calls}/{period}s")
        self.max_calls, self.period = int(max_calls), float(period)
        self._clock, self._sleep = clock, sleep
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()
        self.waited = 0.0

    def acquire(self) -> float:
        """Block until a call is allowed; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                while self._calls and now - self._calls[0] >= self.period:
                    self._calls.popleft()
                if len(self._calls) < self.max_calls:
                    self._calls.append(now)
                    self.waited += waited
                    return waited
                pause = self.period - (now - self._calls[0])
            self._sleep(pause)
            waited += pause


_LIMITERS: dict[tuple, RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def rate_limiter(source: str, host: str, max_calls: int, period: float) -> RateLimiter:
    """The process-wide limiter of ``source`` on ``host`` (created on first use)."""
    key = (source, host, int(max_calls), float(period))
    with _LIMITERS_LOCK:
        if key not in _LIMITERS:
            _LIMITERS[key] = RateLimiter(max_calls, period)
        return _LIMITERS[key]


# --------------------------------------------------------------------------- progress

def progress_disabled() -> bool:
    """True when ``TQDM_DISABLE`` is set to a true value (cron logs)."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in {"1", "true", "yes", "on"}


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "req") -> tqdm:
    """A tqdm bar for a multi-request collection; silent for one item or with ``TQDM_DISABLE``."""
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    disable = progress_disabled() or (total is not None and total <= 1)
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, mininterval=1.0,
                dynamic_ncols=True)


def map_with_progress(func: Callable[[Any], Any], items: list, *, workers: int = 1, desc: str = "",
                      unit: str = "item") -> Iterator[tuple[Any, Any, BaseException | None]]:
    """Apply ``func`` to every item, ``workers`` at a time, with a progress bar.

    Yields ``(item, result, error)`` in completion order; an exception in one item
    is yielded, never raised, so one failure cannot abort the others.
    """
    with progress(total=len(items), desc=desc, unit=unit) as bar:
        if workers <= 1 or len(items) <= 1:
            for item in items:
                try:
                    yield item, func(item), None
                except Exception as exc:  # noqa: BLE001 - yielded to the caller, who records it
                    yield item, None, exc
                bar.update(1)
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(func, item): item for item in items}
            for future in as_completed(futures):
                item = futures[future]
                error = future.exception()
                yield item, (None if error else future.result()), error
                bar.update(1)


# --------------------------------------------------------------------------- responses

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def describe_body(body: bytes, limit: int = 160) -> str:
    """A short, safe description of a response body for an error message."""
    head = body[:4096]
    if b"<html" in head.lower() or b"<!doctype" in head.lower():
        match = _TITLE.search(head)
        title = match.group(1).decode("utf-8", "replace").strip() if match else ""
        return f"an HTML page{f' titled {title!r}' if title else ''}"
    text = body[:limit].decode("utf-8", "replace").replace("\n", " ").strip()
    return repr(text + ("..." if len(body) > limit else "")) if text else "an empty body"


def api_error_message(body: bytes) -> str | None:
    """The message of a JSON error body (``{"error": {"message"}}``, ``{"message"}``, ...)."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if isinstance(error, dict):
        parts = [str(error[k]) for k in ("message", "code") if error.get(k) not in (None, "")]
        return " (code ".join(parts) + (")" if len(parts) == 2 else "") if parts else None
    for key in ("message", "error", "detail", "errors"):
        value = payload.get(key)
        if value not in (None, "", [], {}):
            return value if isinstance(value, str) else json.dumps(value)[:200]
    return None


@dataclass
class FetchedResponse:
    """A final response that was stored in the raw archive."""

    name: str
    url: str
    status: int
    body: bytes
    headers: dict[str, str]
    attempts: int
    seconds: float

    def json(self) -> Any:
        """The parsed body.

        Raises:
            BadResponseError: the body is an HTML page or malformed JSON.
        """
        return decode_json(self.body, url=self.url, attempts=self.attempts)


def decode_json(body: bytes, *, url: str, attempts: int = 1) -> Any:
    """Parse a JSON body or raise :class:`BadResponseError` saying what came instead."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        what = describe_body(body)
        if what.startswith("an HTML page"):
            raise BadResponseError(f"GET {url} answered {what} instead of JSON (an error or maintenance "
                                   "page); the response is kept in the raw archive", url=url,
                                   attempts=attempts) from None
        raise BadResponseError(f"GET {url} answered malformed JSON ({exc}); body starts {what}; the "
                               "response is kept in the raw archive", url=url, attempts=attempts) from None


# --------------------------------------------------------------------------- client

class HttpClient:
    """GET with timeouts, retries, a rate limit and secret redaction, for one source.

    Args:
        source: the source name (labels logs and keys the shared rate limiter).
        base_url: prefix for relative paths given to :meth:`get` and :meth:`fetch`.
        settings: timeouts and retry budget (default: :meth:`HttpSettings.resolve`).
        rate: ``(max_calls, period_seconds)`` for the client-side rate limit, or None.
        headers: extra request headers (credentials go here, never in URLs).
        secrets: credential values to scrub from everything written or logged.
        session: a :class:`requests.Session` to reuse (tests may inject one).
        sleep: the sleep function (tests may inject one).
    """

    def __init__(self, source: str, base_url: str = "", *, settings: HttpSettings | None = None,
                 rate: tuple[int, float] | None = None, headers: Mapping[str, str] | None = None,
                 secrets: Iterable[str | None] = (), session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.source = source
        self.base_url = base_url.rstrip("/") + "/" if base_url else ""
        self.settings = settings or HttpSettings.resolve()
        for secret in secrets:
            register_secret(secret)
        self.headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
        self.session = session or requests.Session()
        self._sleep = sleep
        host = requests.utils.urlparse(self.base_url).netloc if self.base_url else "*"
        self.limiter = rate_limiter(source, host, *rate) if rate else None
        self.requests_made = 0

    def url_for(self, path_or_url: str) -> str:
        if re.match(r"(?i)^https?://", path_or_url):
            return path_or_url
        return urljoin(self.base_url, path_or_url.lstrip("/"))

    def get(self, path_or_url: str, params: Mapping[str, Any] | None = None, *,
            stream: bool = False) -> tuple[requests.Response, int, list[dict]]:
        """GET with retries. Returns the final response (any status), attempts and history.

        Statuses in :data:`RETRY_STATUSES` (and every 5xx) and connection errors are
        retried with backoff; a ``Retry-After`` header sets the wait instead. Retrying
        stops at ``settings.retries`` or when the next wait would exceed
        ``settings.max_wait`` in total.

        Raises:
            HttpError: no response at all (connection refused, timeouts) after retries.
        """
        url = self.url_for(path_or_url)
        settings = self.settings
        started = time.monotonic()
        deadline = started + settings.max_wait
        history: list[dict] = []
        last_error = ""
        attempt = 0
        while True:
            if self.limiter:
                self.limiter.acquire()
            self.requests_made += 1
            response = None
            try:
                response = self.session.get(url, params=params, headers=self.headers, stream=stream,
                                            timeout=(settings.timeout, settings.timeout))
                shown_url = redact_url(response.url)
            except requests.Timeout as exc:
                shown_url = redact_url(requests.Request("GET", url, params=params).prepare().url or url)
                last_error = f"no answer within the {settings.timeout:g}s timeout ({type(exc).__name__})"
            except requests.RequestException as exc:
                shown_url = redact_url(requests.Request("GET", url, params=params).prepare().url or url)
                last_error = f"connection failed ({type(exc).__name__}: {redact_text(str(exc))[:300]})"
            status = response.status_code if response is not None else None
            retryable = response is None or status in RETRY_STATUSES or status >= 500
            if status == 429 and not settings.retry_429:
                retryable = False
            if not retryable:
                return response, attempt + 1, history
            retry_after = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
            if attempt >= settings.retries:
                stop = f"gave up after {attempt + 1} attempt(s)"
            else:
                wait = retry_after if retry_after is not None else settings.delay(attempt)
                if time.monotonic() + wait > deadline:
                    stop = (f"gave up after {attempt + 1} attempt(s): waiting {wait:.1f}s more "
                            f"{'(Retry-After) ' if retry_after is not None else ''}would exceed the "
                            f"{settings.max_wait:g}s retry budget")
                else:
                    history.append({"status": status, "error": last_error or None, "waited": round(wait, 3)})
                    logger.warning("%s: GET %s %s; retry %d/%d in %.1fs%s", self.source, shown_url,
                                   f"answered {status}" if status else last_error, attempt + 1,
                                   settings.retries, wait, " (Retry-After)" if retry_after is not None else "")
                    if response is not None:
                        response.close()
                    self._sleep(wait)
                    attempt += 1
                    last_error = ""
                    continue
            if response is not None:
                history.append({"status": status, "stopped": stop})
                return response, attempt + 1, history
            raise HttpError(f"{self.source}: GET {shown_url} failed: {last_error}; {stop}",
                            url=shown_url, attempts=attempt + 1)

    def fetch(self, raw: RawArchive, name: str, path_or_url: str, params: Mapping[str, Any] | None = None,
              *, expect_json: bool = True, meta: Mapping[str, Any] | None = None) -> FetchedResponse:
        """GET, store the final response in ``raw`` under ``name``, then check it.

        The body is written before any check, so even an error page is kept. The index
        entry records the redacted URL, status, content type, attempts, timings, the
        redacted request headers, ``meta`` and ``ok`` (2xx and, with ``expect_json``,
        valid JSON).

        Raises:
            RateLimitedError: HTTP 429 after retries (or at once with ``retry_429=False``).
            HttpError: any other non-2xx final status, or no response at all.
            BadResponseError: a 2xx answer that is not valid JSON (with ``expect_json``).
        """
        started = time.monotonic()
        response, attempts, history = self.get(path_or_url, params)
        body = _scrub_bytes(response.content)
        url = redact_url(response.url)
        seconds = time.monotonic() - started
        ok = 200 <= response.status_code < 300
        decode_error: BadResponseError | None = None
        if ok and expect_json:
            try:
                decode_json(body, url=url, attempts=attempts)
            except BadResponseError as exc:
                ok, decode_error = False, exc
        content_type = response.headers.get("Content-Type", "")
        raw.put(name, body, url=url, status=response.status_code, ok=ok, content_type=content_type,
                fetched_at=datetime.now(UTC).isoformat(timespec="seconds"),
                seconds=round(seconds, 3), attempts=attempts, retries=history,
                request_headers=redact_headers(self.headers), **dict(meta or {}))
        result = FetchedResponse(name, url, response.status_code, body, dict(response.headers), attempts, seconds)
        if decode_error is not None:
            raise decode_error
        if not ok:
            raise self._status_error(result, history)
        return result

    def download(self, path_or_url: str, dest: str | os.PathLike, *, chunk_size: int = 1 << 20) -> Path:
        """Stream a binary file to ``dest`` atomically, with the same retries.

        Raises:
            HttpError: a non-2xx final status (``status`` tells which) or no response.
        """
        response, attempts, history = self.get(path_or_url, stream=True)
        url = redact_url(response.url)
        if not 200 <= response.status_code < 300:
            body = response.content[:4096]
            result = FetchedResponse("", url, response.status_code, body, dict(response.headers), attempts, 0.0)
            raise self._status_error(result, history)
        try:
            with atomic.atomic_path(dest) as tmp, tmp.open("wb") as fh:
                for chunk in response.iter_content(chunk_size):
                    fh.write(chunk)
        except requests.RequestException as exc:
            raise HttpError(f"{self.source}: download of {url} broke off ({type(exc).__name__}: "
                            f"{redact_text(str(exc))[:300]}); run again to retry", url=url,
                            attempts=attempts) from None
        return Path(dest)

    def _status_error(self, result: FetchedResponse, history: list[dict]) -> HttpError:
        message = api_error_message(result.body)
        what = f"the API said {message!r}" if message else f"body: {describe_body(result.body)}"
        stopped = next((h["stopped"] for h in history if "stopped" in h), None)
        tail = f"; {stopped}" if stopped else ""
        if result.status == 429:
            retry_after = result.headers.get("Retry-After")
            hint = f" (Retry-After: {retry_after})" if retry_after else ""
            return RateLimitedError(
                f"{self.source}: GET {result.url} answered HTTP 429 Too Many Requests{hint}; {what}{tail}. "
                "The rate limit or the day's quota is used up; try again later.",
                url=result.url, status=429, attempts=result.attempts, api_message=message)
        return HttpError(f"{self.source}: GET {result.url} answered HTTP {result.status}; {what}{tail}",
                         url=result.url, status=result.status, attempts=result.attempts, api_message=message)


def safe_name(*parts: Any, max_length: int = 120) -> str:
    """A raw-archive entry name from ``parts``: path-safe, readable, unique enough."""
    text = "-".join(str(p) for p in parts if p not in (None, ""))
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "response"
    if len(cleaned) > max_length:
        digest = hashlib.sha1(text.encode()).hexdigest()[:10]
        cleaned = f"{cleaned[: max_length - 11]}-{digest}"
    return cleaned
