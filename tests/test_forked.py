"""Work handed to a forked child comes back, or the caller is told there is none and goes on."""
from __future__ import annotations

import os
import time

import pytest

from pokewatch.run import forked

pytestmark = pytest.mark.skipif(not forked.available(), reason="this platform cannot fork")


def _pid_and(value):
    return os.getpid(), value


def _fails():
    raise ValueError("no figure today")


def test_the_result_is_computed_in_another_process_and_comes_back():
    pid, value = forked.Forked(_pid_and, [1, 2, 3]).result(30, default=None)
    assert value == [1, 2, 3] and pid != os.getpid()


@pytest.mark.parametrize("fn, why", [(_fails, "failed (ValueError: no figure today)"),
                                     (lambda: (lambda: None), "failed (the result could not be sent back"),
                                     (lambda: os._exit(3), "ended without a result")])
def test_without_a_result_the_default_comes_back_and_the_log_says_why(fn, why, caplog):
    assert forked.Forked(fn, name="the test child").result(30, default="drawn here") == "drawn here"
    assert f"the test child {why}" in caplog.text


def test_a_silent_child_is_not_waited_for_past_the_timeout_and_does_not_outlive_the_wait(caplog):
    child = forked.Forked(time.sleep, 30)
    started = time.perf_counter()
    assert child.result(0.2, default="late") == "late"
    assert time.perf_counter() - started < 10 and "sent nothing in 0 s" in caplog.text
    assert not child._process.is_alive()


def test_where_fork_is_missing_nothing_starts_and_the_default_comes_back(monkeypatch):
    monkeypatch.setattr(forked, "available", lambda: False)
    child = forked.Forked(_pid_and, 1)
    assert not child.started and child.result(30, default="here") == "here"
