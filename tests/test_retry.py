"""The shared retry policy on its own: what is retried, how long it waits, and when it gives up."""
from __future__ import annotations

import time

import pytest

from pokewatch.data.retry import Attempt, RetryPolicy, parse_retry_after


def scripted(*attempts: Attempt):
    """An attempt function that returns ``attempts`` in turn and records the try numbers it got."""
    numbers: list[int] = []

    def attempt(number: int) -> Attempt:
        numbers.append(number)
        return attempts[min(number, len(attempts) - 1)]

    return attempt, numbers


def test_a_retryable_failure_is_tried_again_until_a_final_answer():
    attempt, numbers = scripted(Attempt(True, status=503), Attempt(True, error="reset"), Attempt(False, status=200))
    waits: list[float] = []
    outcome = RetryPolicy(retries=4, backoff=0.5).run(attempt, sleep=waits.append)
    assert outcome.last.status == 200 and outcome.attempts == 3 and outcome.gave_up is None
    assert numbers == [0, 1, 2] and len(waits) == 2 and 0.25 <= waits[0] <= 0.5 and 0.5 <= waits[1] <= 1.0


def test_running_out_of_retries_returns_the_last_failure():
    attempt, _ = scripted(Attempt(True, status=502))
    waits: list[float] = []
    outcome = RetryPolicy(retries=2, backoff=0.01).run(attempt, sleep=waits.append)
    assert outcome.gave_up == "attempts" and outcome.attempts == 3 and outcome.last.status == 502
    assert len(waits) == 2


def test_a_wait_that_would_pass_the_deadline_is_never_slept():
    attempt, _ = scripted(Attempt(True, status=429, retry_after=30.0))
    waits: list[float] = []
    outcome = RetryPolicy(retries=5).run(attempt, deadline=time.monotonic() + 10, sleep=waits.append)
    assert outcome.gave_up == "deadline" and outcome.refused_wait == 30.0 and outcome.attempts == 1
    assert waits == []


def test_retry_after_replaces_the_backoff_and_is_capped_when_asked():
    attempt, _ = scripted(Attempt(True, status=503, retry_after=120.0), Attempt(False, status=200))
    waits: list[float] = []
    RetryPolicy(retries=1, max_retry_after=10.0).run(attempt, sleep=waits.append)
    assert waits == [10.0]


def test_an_exception_is_not_retried_and_reaches_the_caller():
    calls = []

    def attempt(number: int) -> Attempt:
        calls.append(number)
        raise OverflowError("over the size cap")

    with pytest.raises(OverflowError, match="size cap"):
        RetryPolicy(retries=3).run(attempt, sleep=lambda s: None)
    assert calls == [0]


def test_on_retry_hears_each_failure_with_its_number_and_wait():
    attempt, _ = scripted(Attempt(True, status=500, retry_after=2.0), Attempt(False, status=204))
    heard = []
    RetryPolicy(retries=2).run(attempt, sleep=lambda s: None, on_retry=lambda a, n, w: heard.append((a.status, n, w)))
    assert heard == [(500, 1, 2.0)]


@pytest.mark.parametrize(("status", "retry_429", "retryable"), [
    (500, True, True), (503, True, True), (599, True, True), (408, True, True), (429, True, True),
    (429, False, False), (404, True, False), (400, True, False), (200, True, False)])
def test_which_statuses_are_worth_another_try(status, retry_429, retryable):
    assert RetryPolicy(retry_429=retry_429).retryable_status(status) is retryable


def test_retry_after_reads_both_forms_and_nothing_else():
    assert parse_retry_after(" 7 ") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0  # a date already past
    assert parse_retry_after("inf") is None and parse_retry_after("tomorrow") is None and parse_retry_after("") is None
