"""One HTTP client for every network price source, so they all fail the same way.

Why a shared client: each public source has the same failure modes (slow answers,
5xx and HTML error pages from a proxy, 429 when a quota runs out, dropped
connections), and a run must survive them identically. This module gives every
source:

* **timeouts** on connect and read, so a hung server cannot hang the cron job;
* **wall-clock budgets**: a request (retries, waits and the whole body included)
  ends within ``max_wait`` seconds, and all requests of one collect within
  ``collect_budget`` seconds. The body is streamed and the deadline checked while
  reading, so a server that drips one byte a second cannot outlast either budget
  (a per-read timeout alone never fires on a slow drip);
* a **response size cap** (``max_bytes``, 50 MB; ``max_download_bytes`` for
  archives): reading stops at the cap with an error saying how to raise it, so a
  huge or endless answer cannot fill memory (the cap counts decoded bytes, so a
  gzip bomb is stopped too);
* **retries** with exponential backoff and jitter on 5xx, 408, 429 and connection
  errors, honouring ``Retry-After`` (seconds or HTTP date), within those budgets;
  a 429 can be made final (``retry_429=False``) for APIs whose 429 means "today's
  credits are spent". The policy is :mod:`pokewatch.data.retry`'s, shared with the alerts;
* a **client-side rate limit** per source and host, shared by every client and
  thread of the process (a sliding window of ``max_calls`` per ``period``);
* **progress**: a tqdm bar for interactive use (silenced by ``TQDM_DISABLE=1`` and
  for single requests) and, for cron logs, one INFO line every few items on the
  ``pokewatch.progress`` logger (:class:`Progress`);
* **no secrets on disk or in logs**: keys are registered with
  :func:`pokewatch.redaction.register_secret` and scrubbed from every URL, header, error
  message and stored body (:mod:`pokewatch.redaction`); the raw index records URLs with
  ``api_key=...``-style parameters and ``Authorization`` / ``X-Api-Key`` headers replaced
  by ``***``. Creating a client puts the redacting filter on urllib3's loggers.

Every final response is written to the run's :class:`~pokewatch.data.raw_archive.RawArchive`
*before* anything parses it (:meth:`HttpClient.fetch`), with its metadata and an
``ok`` flag that parsers use to skip error pages without losing them.

Settings come from, in increasing priority: the defaults of :class:`HttpSettings`,
environment variables and collect options (:data:`HTTP_OPTIONS`; tests use the
variables to keep failures fast):

=========================== =============================== ==============================
option                      environment variable            default
=========================== =============================== ==============================
``http_timeout``            ``POKEWATCH_HTTP_TIMEOUT``      30 s to connect, and per read
``http_retries``            ``POKEWATCH_HTTP_RETRIES``      4 further attempts
``http_backoff``            ``POKEWATCH_HTTP_BACKOFF``      1 s base delay
``http_max_wait``           ``POKEWATCH_HTTP_MAX_WAIT``     300 s per request, all included
``http_collect_budget``     ``POKEWATCH_HTTP_COLLECT_BUDGET`` 7200 s for a collect's requests
``http_max_bytes``          ``POKEWATCH_HTTP_MAX_BYTES``    50 MB per response
``http_max_download_bytes`` ``POKEWATCH_HTTP_MAX_DOWNLOAD_BYTES`` 1 GB per downloaded file
=========================== =============================== ==============================
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests
import urllib3
from tqdm.auto import tqdm

from pokewatch import __version__, atomic
from pokewatch.errors import ParameterError, SourceError
from pokewatch.data.raw_archive import RawArchive
from pokewatch.redaction import install_log_filter, redact_bytes, redact_headers, redact_text, register_secret
from pokewatch.data.retry import Attempt, RetryPolicy, parse_retry_after
from pokewatch.data.sources.options import Option

logger = logging.getLogger(__name__)
#: Progress of long collects, one line every few items; the pipeline routes it to the terminal and cron log.
progress_logger = logging.getLogger("pokewatch.progress")

USER_AGENT = f"pokewatch/{__version__} (Pokemon card price tracker)"
#: Bytes asked of the socket per read while streaming an answer.
_CHUNK = 64 * 1024
#: How much of an error page a download keeps for its message.
_ERROR_BODY_BYTES = 64 * 1024

#: A URL as this client logs and stores it: the free-text redactor of :mod:`pokewatch.redaction`, which
#: also masks registered secrets anywhere in it and drops a user-info part whole.
redact_url = redact_text


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


class ResponseTooLargeError(HttpError):
    """An answer larger than the size cap (``http_max_bytes`` / ``http_max_download_bytes``)."""


class BudgetExceededError(HttpError):
    """A request ran out of its wall-clock budget (``http_max_wait`` or ``http_collect_budget``)."""


# --------------------------------------------------------------------------- settings

#: The collect options of every network source that tune this client (see the module docstring).
HTTP_OPTIONS: tuple[Option, ...] = (
    Option("http_timeout", "float", None, "seconds to connect and between bytes of an answer",
           minimum=0.01, maximum=3600),
    Option("http_retries", "int", None, "further attempts after a failed request", minimum=0, maximum=50),
    Option("http_backoff", "float", None, "base delay in seconds between attempts", minimum=0, maximum=600),
    Option("http_max_wait", "float", None, "wall-clock seconds one request may take, retries and body included",
           minimum=0.01, maximum=86_400),
    Option("http_collect_budget", "float", None, "wall-clock seconds all requests of one collect may take",
           minimum=0.01, maximum=7 * 86_400),
    Option("http_max_bytes", "int", None, "largest answer accepted, in bytes", minimum=1024, maximum=1 << 40),
    Option("http_max_download_bytes", "int", None, "largest downloaded file (archives), in bytes",
           minimum=1024, maximum=1 << 42),
)
_SETTING_OF_OPTION = {"http_timeout": "timeout", "http_retries": "retries", "http_backoff": "backoff",
                      "http_max_wait": "max_wait", "http_collect_budget": "collect_budget",
                      "http_max_bytes": "max_bytes", "http_max_download_bytes": "max_download_bytes"}


@dataclass(frozen=True)
class HttpSettings:
    """Timeouts, budgets, size caps and retries of a client.

    Attributes:
        timeout: seconds to connect and, separately, between bytes of the answer.
        retries: further attempts after the first one.
        backoff: base delay; attempt n waits about ``backoff * 2**n`` (with jitter).
        backoff_max: cap of one computed delay (a ``Retry-After`` may ask for more).
        max_wait: wall-clock seconds one request may take: attempts, waits between
            them and reading the whole body.
        collect_budget: wall-clock seconds all requests made with these settings may
            take, counted from :attr:`started` (a collect resolves its settings once).
        max_bytes: the largest answer read into memory, in (decoded) bytes.
        max_download_bytes: the largest file :meth:`HttpClient.download` writes.
        retry_429: retry HTTP 429 (honouring ``Retry-After``); ``False`` stops at once.
        started: ``time.monotonic()`` when the collect's budget started.
    """

    timeout: float = 30.0
    retries: int = 4
    backoff: float = 1.0
    backoff_max: float = 60.0
    max_wait: float = 300.0
    collect_budget: float = 7200.0
    max_bytes: int = 50 * 1024 * 1024
    max_download_bytes: int = 1 << 30
    retry_429: bool = True
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def resolve(cls, options: Mapping[str, Any] | None = None, **overrides) -> HttpSettings:
        """Defaults, then ``POKEWATCH_HTTP_*`` variables, then ``http_*`` options, then overrides.

        The collect budget starts now: resolve once per collect and share the result.

        Raises:
            ParameterError: a value of the wrong type or out of range, naming the
                option or the environment variable.
        """
        options = options or {}
        values: dict[str, Any] = {}
        for spec in HTTP_OPTIONS:
            setting = _SETTING_OF_OPTION[spec.name]
            given = options.get(spec.name)
            env_name = f"POKEWATCH_{spec.name.upper()}"
            env_value = os.environ.get(env_name)
            if given not in (None, ""):
                values[setting] = spec.check(given)
            elif env_value not in (None, ""):
                try:
                    values[setting] = spec.check(env_value)
                except ParameterError as exc:
                    raise ParameterError(f"environment variable {env_name}={env_value!r} is not usable: {exc}; "
                                         f"fix or unset it") from None
        return replace(cls(**values), **overrides)

    @property
    def collect_deadline(self) -> float:
        """``time.monotonic()`` value at which the collect's budget is spent."""
        return self.started + self.collect_budget

    @property
    def policy(self) -> RetryPolicy:
        """The retry policy of these settings (:mod:`pokewatch.data.retry`)."""
        return RetryPolicy(retries=self.retries, backoff=self.backoff, backoff_max=self.backoff_max,
                           retry_429=self.retry_429)

    def delay(self, attempt: int) -> float:
        """Backoff before retry ``attempt`` (0-based): exponential, capped, half jittered."""
        return self.policy.delay(attempt)


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

    def acquire(self, max_wait: float | None = None) -> float | None:
        """Block until a call is allowed; return the seconds waited.

        With ``max_wait``, give up instead of waiting longer than that in total, and
        return None (the call is not counted).
        """
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
            if max_wait is not None and waited + pause > max_wait:
                return None
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


class Progress:
    """A tqdm bar for people and, every ``every`` items, an INFO line for logs.

    The line goes to the ``pokewatch.progress`` logger (the pipeline sends it to the
    terminal and the cron log with a timestamp), e.g.
    ``tcgcsv archives: 3/18 days (17%), 5s elapsed, about 25s left; 2025-09-23: 42,611 prices``.
    The last item is always logged.

    Args:
        desc: what is being collected.
        total: how many items (it may grow: set :attr:`total`).
        unit: the item's name, singular (``day``, ``group``, ``page``).
        every: log every this many items; default about every 10% (at least 1).
    """

    def __init__(self, desc: str, total: int, *, unit: str = "item", every: int | None = None) -> None:
        self.desc, self.unit = desc, unit
        self.bar = progress(total=total, desc=desc, unit=unit)
        self._total = int(total)
        self.every = every
        self.done = 0
        self._logged = 0
        self._started = time.monotonic()

    @property
    def total(self) -> int:
        return self._total

    @total.setter
    def total(self, value: int) -> None:
        self._total = int(value)
        self.bar.total = self._total
        self.bar.refresh()

    def update(self, n: int = 1, detail: str = "") -> None:
        """Count ``n`` more items done; log when a step of ``every`` items is complete."""
        self.done += n
        self.bar.update(n)
        every = self.every or max(1, self._total // 10)
        if self.done - self._logged >= every or (self._total and self.done >= self._total):
            self._logged = self.done
            elapsed = time.monotonic() - self._started
            share = f" ({self.done / self._total:.0%})" if self._total else ""
            left = ""
            if self._total and self.done < self._total and self.done:
                left = f", about {elapsed / self.done * (self._total - self.done):.0f}s left"
            units = self.unit if self._total == 1 else f"{self.unit}s"
            progress_logger.info("%s: %d/%d %s%s, %.0fs elapsed%s%s", self.desc, self.done, self._total, units,
                                 share, elapsed, left, f"; {detail}" if detail else "")

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def map_with_progress(func: Callable[[Any], Any], items: list, *, workers: int = 1, desc: str = "",
                      unit: str = "item", every: int | None = None) -> Iterator[tuple[Any, Any, BaseException | None]]:
    """Apply ``func`` to every item, ``workers`` at a time, with a :class:`Progress`.

    Yields ``(item, result, error)`` in completion order; an exception in one item
    is yielded, never raised, so one failure cannot abort the others.
    """
    with Progress(desc, len(items), unit=unit, every=every) as bar:
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
    """A final response (any status) with its whole body, as read within the budgets and the size cap."""

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
        install_log_filter()  # urllib3 logs each request's URL: keys in it are masked from the first one
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

    # ----------------------------------------------------------------- budgets
    def _limit(self, request_deadline: float) -> tuple[float, str]:
        """The nearer of the request's and the collect's deadline, and how to describe it."""
        collect_deadline = self.settings.collect_deadline
        if collect_deadline < request_deadline:
            return collect_deadline, (f"the collect's {self.settings.collect_budget:g}s total HTTP budget "
                                      "(http_collect_budget) is spent; raise it or collect fewer items")
        return request_deadline, (f"it did not finish within the {self.settings.max_wait:g}s per-request budget "
                                  "(http_max_wait), retries and the whole answer included; raise http_max_wait "
                                  "if the server is only slow")

    def _read_body(self, response: requests.Response, url: str, limit_at: float, why: str, cap: int, *,
                   sink=None, truncate: bool = False) -> bytes:
        """Stream the body, checking the deadline and the size cap while reading.

        Returns the body (``b""`` when written to ``sink``). With ``truncate`` a body
        over ``cap`` is cut there instead of failing (error pages).

        Raises:
            BudgetExceededError: the deadline passed while reading (a slow drip).
            ResponseTooLargeError: more than ``cap`` bytes.
        """
        length = response.headers.get("Content-Length", "")
        if not truncate and length.isdigit() and int(length) > cap:
            response.close()
            raise self._too_large(url, cap, int(length), sink is not None)
        raw = response.raw
        read = getattr(raw, "read1", None)
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = limit_at - time.monotonic()
            if remaining <= 0:
                response.close()
                raise BudgetExceededError(f"{self.source}: GET {url} stopped after {size:,} bytes: {why}",
                                          url=url)
            _set_read_timeout(response, min(self.settings.timeout, remaining))
            try:
                chunk = read(_CHUNK, decode_content=True) if read is not None else raw.read(_CHUNK,
                                                                                            decode_content=True)
            except (urllib3.exceptions.HTTPError, OSError):
                if time.monotonic() < limit_at - 0.001:
                    raise  # a broken connection or a read timeout: worth a retry
                response.close()
                raise BudgetExceededError(f"{self.source}: GET {url} stopped after {size:,} bytes: {why}",
                                          url=url) from None
            if not chunk:
                break
            size += len(chunk)
            if size > cap:
                if truncate:
                    chunks.append(chunk[: len(chunk) - (size - cap)])
                    break
                response.close()
                raise self._too_large(url, cap, None, sink is not None)
            if sink is not None:
                sink.write(chunk)
            else:
                chunks.append(chunk)
        response.close()
        return b"".join(chunks)

    def _too_large(self, url: str, cap: int, announced: int | None, download: bool) -> ResponseTooLargeError:
        setting = "http_max_download_bytes" if download else "http_max_bytes"
        told = f" (Content-Length {announced:,})" if announced else ""
        return ResponseTooLargeError(
            f"{self.source}: GET {url} answered more than {cap:,} bytes ({cap / 1e6:.0f} MB, the {setting} cap)"
            f"{told}; reading stopped. If so large an answer is expected, raise the cap with "
            f"--param source_options={setting}:BYTES (or POKEWATCH_{setting.upper()}); otherwise ask for "
            "less (a watchlist, a smaller page)", url=url)

    # ----------------------------------------------------------------- requests
    def _exchange(self, path_or_url: str, params: Mapping[str, Any] | None = None, *,
                  sink=None) -> tuple[FetchedResponse, list[dict]]:
        """GET with retries, budgets and the size cap; the final answer with its body.

        Retries follow the settings' :class:`~pokewatch.data.retry.RetryPolicy`: retryable
        statuses, connection errors and answers broken off mid-body are tried again after
        the backoff or the ``Retry-After`` the server asked for; retrying stops at
        ``settings.retries`` or when the next wait would pass the request's or the
        collect's deadline.

        Args:
            sink: a binary file to stream a 2xx body into (downloads); it is emptied
                before each attempt. Error bodies are read into memory (64 KB at most).

        Returns:
            The final response (any status) and the history of retried attempts.

        Raises:
            HttpError: no response at all (connection refused, timeouts) after retries.
            BudgetExceededError: a deadline passed, waiting or reading.
            ResponseTooLargeError: a 2xx answer over the size cap.
        """
        url = self.url_for(path_or_url)
        settings = self.settings
        policy = settings.policy
        started = time.monotonic()
        limit_at, why = self._limit(started + settings.max_wait)
        prepared = requests.Request("GET", url, params=params).prepare().url or url
        shown_url = redact_url(prepared)
        history: list[dict] = []

        def attempt(number: int) -> Attempt:
            """One GET within the deadline: an Attempt carrying the FetchedResponse, or the error."""
            nonlocal shown_url
            if time.monotonic() >= limit_at or (self.limiter and self.limiter.acquire(
                    max_wait=max(0.0, limit_at - time.monotonic())) is None):
                raise BudgetExceededError(f"{self.source}: GET {shown_url} not sent: {why}", url=shown_url,
                                          attempts=number)
            self.requests_made += 1
            response = None
            body = b""
            if sink is not None:
                sink.seek(0)
                sink.truncate()
            try:
                wait_for = max(0.001, min(settings.timeout, limit_at - time.monotonic()))
                response = self.session.get(url, params=params, headers=self.headers, stream=True,
                                            timeout=(wait_for, wait_for))
                shown_url = redact_url(response.url)
                good = 200 <= response.status_code < 300
                if sink is not None and good:
                    self._read_body(response, shown_url, limit_at, why, settings.max_download_bytes, sink=sink)
                elif sink is not None:
                    body = self._read_body(response, shown_url, limit_at, why, _ERROR_BODY_BYTES, truncate=True)
                else:
                    body = self._read_body(response, shown_url, limit_at, why, settings.max_bytes)
            except (BudgetExceededError, ResponseTooLargeError) as exc:
                exc.attempts = number + 1
                raise
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                if response is not None:
                    response.close()
                if time.monotonic() >= limit_at - 0.001:
                    raise BudgetExceededError(f"{self.source}: GET {shown_url} stopped: {why}", url=shown_url,
                                              attempts=number + 1) from None
                timed_out = isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError))
                if timed_out:
                    error = f"no answer within the {settings.timeout:g}s timeout ({type(exc).__name__})"
                else:
                    error = f"connection failed ({type(exc).__name__}: {redact_text(str(exc))[:300]})"
                if response is not None:
                    error += " while reading the answer"
                return Attempt(retryable=True, error=error)
            status = response.status_code
            result = FetchedResponse("", shown_url, status, redact_bytes(body), dict(response.headers),
                                     number + 1, time.monotonic() - started)
            return Attempt(retryable=policy.retryable_status(status), status=status, value=result,
                           retry_after=parse_retry_after(response.headers.get("Retry-After")))

        def on_retry(failed: Attempt, number: int, wait: float) -> None:
            history.append({"status": failed.status, "error": failed.error, "waited": round(wait, 3)})
            asked = " (Retry-After)" if failed.retry_after is not None else ""
            logger.warning("%s: GET %s %s; retry %d/%d in %.1fs%s", self.source, shown_url,
                           f"answered {failed.status}" if failed.status else failed.error, number,
                           settings.retries, wait, asked)

        outcome = policy.run(attempt, deadline=limit_at, sleep=self._sleep, on_retry=on_retry)
        last = outcome.last
        if outcome.gave_up is None:
            return last.value, history
        stop = f"gave up after {outcome.attempts} attempt(s)"
        if outcome.gave_up == "deadline":
            budget = "retry budget" if limit_at < settings.collect_deadline else "collect's HTTP budget"
            limit = settings.max_wait if budget == "retry budget" else settings.collect_budget
            stop += (f": waiting {outcome.refused_wait:.1f}s more "
                     f"{'(Retry-After) ' if last.retry_after is not None else ''}would exceed the "
                     f"{limit:g}s {budget}")
        if last.value is not None:
            history.append({"status": last.status, "stopped": stop})
            return last.value, history
        raise HttpError(f"{self.source}: GET {shown_url} failed: {last.error}; {stop}",
                        url=shown_url, attempts=outcome.attempts)

    def fetch(self, raw: RawArchive, name: str, path_or_url: str, params: Mapping[str, Any] | None = None,
              *, expect_json: bool = True, meta: Mapping[str, Any] | None = None) -> FetchedResponse:
        """GET, store the final response in ``raw`` under ``name``, then check it.

        The body is written before any check, so even an error page is kept. The index
        entry records the redacted URL, status, content type, attempts, timings, the
        redacted request headers, ``meta`` and ``ok`` (2xx and, with ``expect_json``,
        valid JSON). An answer over the size cap or past a deadline is not stored
        (there is no whole answer to store); its error says so.

        Raises:
            RateLimitedError: HTTP 429 after retries (or at once with ``retry_429=False``).
            HttpError: any other non-2xx final status, or no response at all.
            BadResponseError: a 2xx answer that is not valid JSON (with ``expect_json``).
            BudgetExceededError: the request's or the collect's time budget ran out.
            ResponseTooLargeError: the answer is larger than ``http_max_bytes``.
        """
        result, history = self._exchange(path_or_url, params)
        result.name = name
        ok = 200 <= result.status < 300
        decode_error: BadResponseError | None = None
        if ok and expect_json:
            try:
                decode_json(result.body, url=result.url, attempts=result.attempts)
            except BadResponseError as exc:
                ok, decode_error = False, exc
        content_type = result.headers.get("Content-Type", "")
        raw.put(name, result.body, url=result.url, status=result.status, ok=ok, content_type=content_type,
                fetched_at=datetime.now(UTC).isoformat(timespec="seconds"),
                seconds=round(result.seconds, 3), attempts=result.attempts, retries=history,
                request_headers=redact_headers(self.headers), **dict(meta or {}))
        if decode_error is not None:
            raise decode_error
        if not ok:
            raise self._status_error(result, history)
        return result

    def download(self, path_or_url: str, dest: str | os.PathLike) -> Path:
        """Stream a binary file to ``dest`` atomically, with the same retries, budgets and a size cap.

        Raises:
            HttpError: a non-2xx final status (``status`` tells which) or no response.
            BudgetExceededError: the download outlasted ``http_max_wait`` or the collect's budget.
            ResponseTooLargeError: the file is larger than ``http_max_download_bytes``.
        """
        with atomic.atomic_path(dest) as tmp, tmp.open("w+b") as fh:
            result, history = self._exchange(path_or_url, sink=fh)
            if not 200 <= result.status < 300:
                raise self._status_error(result, history)
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


def _set_read_timeout(response: requests.Response, seconds: float) -> None:
    """Bound the next socket read by ``seconds`` (best effort: urllib3 2 exposes the socket)."""
    connection = getattr(response.raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:
            sock.settimeout(max(0.001, seconds))
        except OSError:
            pass


def safe_name(*parts: Any, max_length: int = 120) -> str:
    """A raw-archive entry name from ``parts``: path-safe, readable, unique enough."""
    text = "-".join(str(p) for p in parts if p not in (None, ""))
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "response"
    if len(cleaned) > max_length:
        digest = hashlib.sha1(text.encode()).hexdigest()[:10]
        cleaned = f"{cleaned[: max_length - 11]}-{digest}"
    return cleaned
