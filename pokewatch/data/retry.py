"""One retry policy for every request PokeWatch sends: what is worth another attempt, how long to
wait before it, and when to give up.

Why one module: the price sources (:mod:`pokewatch.data.http_client`) and the run alerts
(:mod:`pokewatch.analysis.alerts`) meet the same passing failures (an overloaded server's 5xx,
a proxy's 502, a 429 with ``Retry-After``, a dropped connection) and must treat them
alike. They used to have a loop each, and the alerts' read ``Retry-After`` only as
seconds: an HTTP date was ignored and the default backoff used instead.

The loop is tenacity's (:class:`tenacity.Retrying`); the policy tells it:

* **retry** an attempt that ended in an :class:`Attempt` marked ``retryable``: a
  connection error, a timeout, or a status :meth:`RetryPolicy.retryable_status`
  accepts (408, 429 unless ``retry_429`` is off, and every 5xx). An *exception*
  escapes at once: a spent budget or an answer over the size cap is no reason to try
  again;
* **wait** what the server asked for in ``Retry-After`` (delta seconds or an HTTP
  date, see :func:`parse_retry_after`; capped by ``max_retry_after`` when set), else
  exponential backoff, capped and half jittered (:meth:`RetryPolicy.delay`);
* **stop** after ``1 + retries`` attempts, or as soon as the next wait would end past
  the caller's wall-clock ``deadline`` (a ``time.monotonic()`` value). Nothing ever
  sleeps into a deadline, so a budget is never outlasted by waiting.

The caller keeps what is its own: sending, reading within its budgets, its messages
and logs (through ``on_retry``).
"""
from __future__ import annotations

import email.utils
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Literal

import tenacity

logger = logging.getLogger(__name__)

#: Statuses worth another attempt besides every 5xx: the server or a proxy is overloaded or restarting.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta seconds or an HTTP date), or None.

    Args:
        value: the header's value (``"120"`` or ``"Wed, 21 Oct 2015 07:28:00 GMT"``).
        now: the current ``time.time()`` (for tests); a date in the past means 0.

    Returns:
        The seconds to wait, never negative; None for no header or one that is neither form.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


@dataclass
class Attempt:
    """How one try ended, as the policy needs to see it; ``value`` carries the caller's own result.

    Attributes:
        retryable: another try could succeed (a connection error, a retryable status).
        status: the HTTP status, or None when no answer came.
        error: what went wrong, fit to show (already redacted); None on success.
        retry_after: seconds the server asked to wait (:func:`parse_retry_after`), if it did.
        value: whatever the caller wants back from this try (a response, say).
    """

    retryable: bool
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    value: Any = None


@dataclass(frozen=True)
class Outcome:
    """The end of a retried call.

    Attributes:
        last: the last :class:`Attempt`.
        attempts: how many tries were made.
        gave_up: None when the last try was final (it succeeded, or failed in a way not
            worth retrying); ``"attempts"`` when the retries ran out; ``"deadline"`` when
            the next wait would have ended past the deadline.
        refused_wait: with ``gave_up="deadline"``, the wait that would have passed it.
    """

    last: Attempt
    attempts: int
    gave_up: Literal["attempts", "deadline"] | None = None
    refused_wait: float | None = None


class _WaitRetryAfter(tenacity.wait.wait_base):
    """The server's ``Retry-After`` when the attempt carried one (capped), else ``fallback``."""

    def __init__(self, fallback: tenacity.wait.wait_base, cap: float | None) -> None:
        self.fallback, self.cap = fallback, cap

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        asked = None if outcome is None or outcome.failed else outcome.result().retry_after
        if asked is None:
            return self.fallback(retry_state)
        return asked if self.cap is None else min(asked, self.cap)


class _StopBeforeDeadline(tenacity.stop.stop_base):
    """Stop when the next wait would end past ``deadline`` (a ``time.monotonic()`` value)."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return time.monotonic() + retry_state.upcoming_sleep > self.deadline


@dataclass(frozen=True)
class RetryPolicy:
    """Which failures are retried, how long to wait between tries, and how many tries at most.

    Attributes:
        retries: further tries after the first one.
        backoff: base delay in seconds; retry n (0-based) waits about ``backoff * 2**n``.
        backoff_max: cap of one computed delay (a ``Retry-After`` may ask for more).
        retry_429: retry HTTP 429; ``False`` makes it final (an API whose 429 means
            "today's credits are spent").
        max_retry_after: cap on the wait a ``Retry-After`` may ask for; None trusts it
            (the deadline still bounds it).
    """

    retries: int = 4
    backoff: float = 1.0
    backoff_max: float = 60.0
    retry_429: bool = True
    max_retry_after: float | None = None

    def retryable_status(self, status: int) -> bool:
        """Whether an answer with this HTTP status is worth another try."""
        if status == 429:
            return self.retry_429
        return status in RETRY_STATUSES or status >= 500

    def _backoff(self) -> tenacity.wait.wait_base:
        # base/2 + uniform(0, base/2) with base = min(backoff_max, backoff * 2**n): half jitter, so
        # clients that failed together do not all come back at once, and no wait is near zero.
        half, cap = self.backoff / 2, self.backoff_max / 2
        return tenacity.wait_exponential(multiplier=half, max=cap) + tenacity.wait_random_exponential(
            multiplier=half, max=cap)

    def delay(self, retry: int) -> float:
        """The backoff before retry ``retry`` (0-based) when the server asked for no wait.

        Returns:
            Seconds between ``base / 2`` and ``base``, where ``base = min(backoff_max,
            backoff * 2**retry)``.
        """
        state = tenacity.RetryCallState(None, None, (), {})  # the waits read only attempt_number
        state.attempt_number = retry + 1
        return self._backoff()(state)

    def run(self, attempt: Callable[[int], Attempt], *, deadline: float = math.inf,
            sleep: Callable[[float], None] = time.sleep,
            on_retry: Callable[[Attempt, int, float], None] | None = None) -> Outcome:
        """Call ``attempt`` until it is final, the retries run out or the next wait would pass ``deadline``.

        Args:
            attempt: one try; gets the 0-based try number and returns an :class:`Attempt`.
                An exception it raises is not retried: it propagates at once.
            deadline: ``time.monotonic()`` value no wait may end after.
            sleep: the sleep function (tests inject one that records the waits).
            on_retry: called before each wait with the failed :class:`Attempt`, its
                1-based number and the seconds about to be waited (for logs and histories).

        Returns:
            The :class:`Outcome`.

        Raises:
            Whatever ``attempt`` raises.
        """
        tries = 0

        def once() -> Attempt:
            nonlocal tries
            tries += 1
            return attempt(tries - 1)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            if on_retry is not None:
                on_retry(state.outcome.result(), state.attempt_number, state.upcoming_sleep)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda done: done.retryable),
            wait=_WaitRetryAfter(self._backoff(), self.max_retry_after),
            stop=tenacity.stop_after_attempt(self.retries + 1) | _StopBeforeDeadline(deadline),
            sleep=lambda seconds: sleep(float(seconds)),
            before_sleep=before_sleep,
            retry_error_callback=lambda state: state,
        )
        ended = retrying(once)
        if isinstance(ended, tenacity.RetryCallState):
            gave_up = "attempts" if ended.attempt_number > self.retries else "deadline"
            return Outcome(ended.outcome.result(), tries, gave_up,
                           ended.upcoming_sleep if gave_up == "deadline" else None)
        return Outcome(ended, tries)
