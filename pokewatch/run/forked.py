"""One function computed in a forked copy of this process while this one goes on.

Why a process and not a thread: the work handed off here (drawing figures, the runs
index's trend plot) is Python and matplotlib holding the GIL, and what the notebook
does meanwhile (its CSV tables) holds it too, so a thread would only take turns. A
forked child starts with everything already in memory, computes on the other core and
sends back only its (picklable) result through a pipe. The child never logs or writes
to the kernel's streams: it hands back the result or the error's text and exits.

Whoever waits decides what happens when there is no result (fork unavailable, the
child failed, crashed or said nothing in time): :meth:`Forked.result` returns the
default it was given, and the caller does the work itself or lets a later step do it.
"""
from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable

logger = logging.getLogger(__name__)


def available() -> bool:
    """Whether this platform can fork (Linux and macOS; not Windows)."""
    return "fork" in multiprocessing.get_all_start_methods()


class Forked:
    """``fn(*args)`` running in a forked child from construction; :meth:`result` collects it."""

    def __init__(self, fn: Callable, *args, name: str = "pokewatch-forked"):
        self.name = name
        self._receive = self._process = None
        if available():
            context = multiprocessing.get_context("fork")
            self._receive, send = context.Pipe(duplex=False)
            self._process = context.Process(target=_run, args=(send, fn, args), daemon=True, name=name)
            self._process.start()
            send.close()

    @property
    def started(self) -> bool:
        return self._process is not None

    def result(self, timeout: float, default=None):
        """The child's result, or ``default`` (logged) when there is none within ``timeout`` seconds."""
        if self._receive is None:
            return default
        try:
            if not self._receive.poll(timeout):
                logger.warning("%s sent nothing in %.0f s; going on without it", self.name, timeout)
                return default
            status, value = self._receive.recv()
            if status == "ok":
                return value
            logger.warning("%s failed (%s); going on without it", self.name, value)
            return default
        except (EOFError, OSError):
            logger.warning("%s ended without a result; going on without it", self.name)
            return default
        finally:
            self._receive.close()
            self._receive = None
            self._process.join(1.0)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(1.0)


def _run(send, fn: Callable, args: tuple) -> None:
    try:
        outcome = ("ok", fn(*args))
    except Exception as exc:  # noqa: BLE001 - the parent decides what to do without a result
        outcome = ("error", f"{type(exc).__name__}: {exc}")
    try:
        send.send(outcome)
    except Exception as exc:  # noqa: BLE001 - e.g. a result that does not pickle
        send.send(("error", f"the result could not be sent back ({type(exc).__name__}: {exc})"))
    finally:
        send.close()
