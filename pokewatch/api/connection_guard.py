"""A guard on every HTTP connection: request headers of bounded size, and a deadline to send a request.

Why this exists: uvicorn picks httptools when it is installed (it is one of our
dependencies, for speed), and with httptools it accepts request headers of any size
(an attack sent 8 headers of 25 MB and each got 200), because
``h11_max_incomplete_event_size`` applies to h11 only. And uvicorn has no header-read
timeout at all: ``timeout_keep_alive`` starts only after a response, so a client that
opens a connection and sends a request one byte at a time, or nothing, holds it for
ever (300 slowloris connections were all still open after 40 s).

:class:`GuardedHttpToolsProtocol` is uvicorn's httptools protocol with two checks
added, per request on a connection:

* **header size**: when the request line and headers are larger than
  ``max_header_bytes`` (checked as they arrive, and again once they are complete),
  the server answers 431 and hangs up. At most that plus one socket read (256 KiB)
  is ever buffered per connection.
* **read deadline**: a request must have arrived whole (line, headers and body)
  ``read_timeout_seconds`` after its first byte, or after the connection opened for
  the first request; otherwise the server answers 408 (when it can still answer) and
  hangs up. Handling time does not count: the deadline is met once the request is in.

Each refusal writes one access line (:func:`pokewatch.api.logs.log_request`) with the
status and the peer's address, and never the partial request: its URL may hold a key.
:func:`uvicorn_options` gives ``pokewatch serve`` and the tests the same server
settings, so what is tested is what runs.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import time

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from pokewatch.api import logs
from pokewatch.api.middleware import SECURITY_HEADERS, problem_body
from pokewatch.api.settings import ServerLimits

logger = logging.getLogger(__name__)

#: Import string of the guarded protocol, for uvicorn (works in worker processes too).
PROTOCOL = "pokewatch.api.connection_guard:GuardedHttpToolsProtocol"


@functools.lru_cache(maxsize=1)
def _limits_from_env() -> ServerLimits:
    return ServerLimits.from_env()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing oversized headers (431) and slow requests (408).

    ``limits`` is read from the environment (:meth:`ServerLimits.from_env`) unless a
    subclass made by :func:`guarded_protocol` sets it.
    """

    limits: ServerLimits | None = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        limits = type(self).limits or _limits_from_env()
        self.max_header_bytes = limits.max_header_bytes
        self.read_timeout = limits.read_timeout_seconds
        self._in_head = True           # the next bytes are a request line or headers
        self._head_bytes = 0           # bytes of the current request's head seen so far
        self._completed_in_feed = False
        self._request_started: float | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False          # answered and hung up: ignore whatever the parser still sees

    # -- the read deadline -----------------------------------------------------------------
    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()   # a connection that never sends a byte is closed too

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    # -- httptools parser callbacks ----------------------------------------------------------
    def on_message_begin(self) -> None:
        if self._refused:
            return
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0
        self._request_started = time.perf_counter()
        self._arm()

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._in_head = False
        # The whole head may have come in one read: measure it now that it is parsed (the
        # request line's method and version add a few bytes more, which we leave out).
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_header_bytes:
            self._refuse_oversized()
            return   # no request cycle: the app never sees it
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._disarm()
        self._in_head, self._head_bytes, self._completed_in_feed = True, 0, True
        self._request_started = None
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if not self._refused:   # after our own answer, never a second one
            super().send_400_response(msg)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._completed_in_feed = False
        super().data_received(data)
        # A chunk that finished a request may hold the start of the next (pipelining):
        # its head bytes are then not counted, which errs towards accepting, by one chunk.
        if self._in_head and not self._completed_in_feed and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes:
                self._refuse_oversized()

    def _refuse_oversized(self) -> None:
        self._refuse(431, "headers_too_large", f"the request line and headers are larger than "
                     f"{self.max_header_bytes} bytes; send fewer or shorter headers")

    # -- refusing -----------------------------------------------------------------------------
    def _read_timed_out(self) -> None:
        self._deadline = None
        if self.transport is None or self.transport.is_closing():
            return
        detail = (f"the request did not arrive whole within {self.read_timeout:g} s; "
                  "send the request line, headers and body without pausing")
        cycle = self.cycle
        if not self._in_head and cycle is not None and not cycle.response_complete:
            # Headers were in and the app is waiting for the body: tell it the client is
            # gone (it gets http.disconnect) and answer 408 in its place if it has not begun.
            cycle.scope.setdefault("pokewatch", {})["read_timed_out"] = True
            started = cycle.response_started
            cycle.disconnected = True
            cycle.message_event.set()
            if started:
                self.transport.close()
            else:
                self._write_problem(408, "request_timeout", detail)
            return
        if self._request_started is None and self._head_bytes == 0:
            self.transport.close()   # an idle connection that never began a request: no answer owed
            return
        if cycle is not None and not cycle.response_complete:
            self.transport.close()   # a pipelined answer is still being written: do not interleave
            return
        self._refuse(408, "request_timeout", detail)

    def _refuse(self, status: int, error: str, detail: str) -> None:
        """Answer ``status`` to a request the app never saw, log it, and hang up."""
        self._refused = True
        request_id = os.urandom(16).hex()
        self._write_problem(status, error, detail, request_id)
        started = self._request_started
        logs.log_request({
            "request_id": request_id, "method": None, "path": None, "query": None, "route": "<refused>",
            "status": status, "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else 0.0,
            "client": self.client[0] if self.client else None, "key_id": None,
        })

    def _write_problem(self, status: int, error: str, detail: str, request_id: str | None = None) -> None:
        self._refused = True
        body = problem_body(status, error, detail, request_id)
        head = [STATUS_LINE[status]]
        for name, value in [*self.server_state.default_headers, *SECURITY_HEADERS,
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), (b"connection", b"close")]:
            head += [name, b": ", value, b"\r\n"]
        self._disarm()
        self.transport.write(b"".join([*head, b"\r\n", body]))
        self.transport.close()


def guarded_protocol(limits: ServerLimits) -> type[GuardedHttpToolsProtocol]:
    """A :class:`GuardedHttpToolsProtocol` with ``limits`` fixed, for servers run in this process."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})


def uvicorn_options(limits: ServerLimits, in_process: bool = False) -> dict:
    """The uvicorn settings every PokeWatch server runs with (``uvicorn.run``/``uvicorn.Config``).

    * the guarded protocol above (httptools plus header-size and read-deadline checks);
    * ``timeout_keep_alive``: idle keep-alive connections are closed after that long;
    * ``h11_max_incomplete_event_size`` set to the same header limit, should h11 ever be used;
    * no uvicorn proxy handling (``proxy_headers=False``): its default believes
      ``X-Forwarded-For`` from any loopback peer; the app applies
      ``POKEWATCH_TRUSTED_PROXIES`` itself (:mod:`pokewatch.api.app`);
    * no uvicorn access log, no ``Server`` banner, no websockets, no logging config of its own.

    Args:
        limits: the server limits (:meth:`ServerLimits.from_env` in ``pokewatch serve``).
        in_process: pass the protocol as a class with ``limits`` built in (a server
            started in this process, as the tests do) instead of an import string that
            each worker process resolves, reading the same limits from its environment.
    """
    return {
        "http": guarded_protocol(limits) if in_process else PROTOCOL,
        "ws": "none",
        "timeout_keep_alive": limits.keep_alive_seconds,
        "h11_max_incomplete_event_size": limits.max_header_bytes,
        "proxy_headers": False,
        "server_header": False,
        "access_log": False,
        "log_config": None,
    }
