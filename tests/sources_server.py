"""A real HTTP server on 127.0.0.1 that plays recorded API responses, for source tests.

Why a real server instead of mocking ``requests``: the client's timeouts, retries,
``Retry-After`` handling, streaming downloads and redaction only prove themselves
against real sockets. Tests (and the pipeline test, through the ``POKEWATCH_*_URL``
variables) point a source at :attr:`RecordedServer.url`.

Usage::

    with RecordedServer() as server:
        server.route("/tcgplayer/3/groups", Reply(500), Reply(500), Reply(200, fixture("tcgcsv/groups.json")))
        server.route("/v2/cards", Reply(429, {"error": {"message": "slow down", "code": 429}},
                                        headers={"Retry-After": "1"}), Reply(200, ...))
        server.route("/slow", Reply(200, b"{}", delay=2.0))   # longer than the client timeout
        server.route("/drip", Reply(200, b"x" * 100, drip=0.1))  # one byte every 0.1 s
        server.route("/big", Reply(200, b"x" * 3_000_000, content_length=False))  # no Content-Length
        ... server.url ...
        server.requests   # what the client sent: path, query, headers

A route plays its replies in order and repeats the last one. ``query`` restricts a
route to requests whose query string contains those parameters. Unknown paths get
a JSON 404.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sources"


def fixture(relative: str) -> bytes:
    """The bytes of ``tests/fixtures/sources/<relative>``."""
    return (FIXTURES / relative).read_bytes()


@dataclass
class Reply:
    """One scripted response: status, body (bytes, text or JSON-able), headers, delay.

    ``drip`` sends the body ``drip_bytes`` at a time with ``drip`` seconds between
    writes (a slow-drip server); ``content_length=False`` omits the header and ends
    the body by closing the connection (so only the bytes tell the size).
    """

    status: int = 200
    body: bytes | str | dict | list | None = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drip: float = 0.0
    drip_bytes: int = 1
    content_length: bool = True

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode(), "application/json"
        if isinstance(self.body, str):
            text = self.body
            kind = "text/html; charset=utf-8" if text.lstrip().lower().startswith(("<!doctype", "<html")) \
                else "text/plain; charset=utf-8"
            return text.encode(), kind
        body = self.body or b""
        head = body.lstrip()[:1]
        return body, "application/json" if head in (b"{", b"[") else "application/octet-stream"


@dataclass
class SeenRequest:
    """A request the server received."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class _Route:
    path: str
    query: dict[str, str]
    replies: list[Reply]
    served: int = 0

    def matches(self, path: str, query: dict[str, list[str]]) -> bool:
        return path == self.path and all(query.get(k, [None])[0] == str(v) for k, v in self.query.items())

    def next_reply(self) -> Reply:
        reply = self.replies[min(self.served, len(self.replies) - 1)]
        self.served += 1
        return reply


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-answer (a budget or size-cap test) is expected, not an error."""

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class RecordedServer:
    """A threaded HTTP server on a free port of 127.0.0.1 (use as a context manager)."""

    def __init__(self) -> None:
        self._routes: list[_Route] = []
        self._lock = threading.Lock()
        self.requests: list[SeenRequest] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query, keep_blank_values=True)
                reply = server._dispatch(parts.path, query, dict(self.headers.items()))
                if reply.delay:
                    time.sleep(reply.delay)
                body, content_type = reply.encoded()
                try:
                    self.send_response(reply.status)
                    headers = {"Content-Type": content_type, **reply.headers}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    if reply.content_length:
                        self.send_header("Content-Length", str(len(body)))
                    else:
                        self.send_header("Connection", "close")
                        self.close_connection = True
                    self.end_headers()
                    if reply.drip:
                        for start in range(0, len(body), reply.drip_bytes):
                            self.wfile.write(body[start:start + reply.drip_bytes])
                            self.wfile.flush()
                            time.sleep(reply.drip)
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test); nothing to do

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="recorded-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, path: str, *replies: Reply, query: dict[str, str] | None = None) -> RecordedServer:
        """Serve ``replies`` (in order, the last repeating) for GET ``path`` [with ``query``]."""
        if not replies:
            raise ValueError("a route needs at least one Reply")
        with self._lock:
            # later, more specific routes win over earlier ones
            self._routes.insert(0, _Route(path, dict(query or {}), list(replies)))
        return self

    def requests_to(self, path: str) -> list[SeenRequest]:
        return [r for r in self.requests if r.path == path]

    def _dispatch(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(SeenRequest(path, query, headers))
            for route in sorted(self._routes, key=lambda r: -len(r.query)):
                if route.matches(path, query):
                    return route.next_reply()
        return Reply(404, {"error": {"message": f"no recorded response for {path}", "code": 404}})

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def fast_http(monkeypatch, timeout: float = 1.0, retries: int = 2, backoff: float = 0.01,
              max_wait: float = 10.0) -> None:
    """Make every HttpClient in the test fail fast (short timeout, tiny backoff)."""
    monkeypatch.setenv("POKEWATCH_HTTP_TIMEOUT", str(timeout))
    monkeypatch.setenv("POKEWATCH_HTTP_RETRIES", str(retries))
    monkeypatch.setenv("POKEWATCH_HTTP_BACKOFF", str(backoff))
    monkeypatch.setenv("POKEWATCH_HTTP_MAX_WAIT", str(max_wait))
    monkeypatch.setenv("TQDM_DISABLE", "1")


def isolate_data(monkeypatch, tmp_path: Path) -> Path:
    """Point the store, caches and runs at ``tmp_path``; return the data folder."""
    data = tmp_path / "data"
    monkeypatch.setenv("POKEWATCH_DATA_DIR", str(data))
    monkeypatch.setenv("POKEWATCH_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("POKEWATCH_CACHE_DIR", str(tmp_path / "cache"))
    return data


def tcgcsv_routes(server: RecordedServer, category: int = 3) -> RecordedServer:
    """The recorded tcgcsv category: groups 23237 (151) and 604 (Base Set) with products and prices,
    and 24380, a new set with none yet (tests script its failures with later routes)."""
    empty = {"success": True, "errors": [], "results": []}
    server.route(f"/tcgplayer/{category}/groups", Reply(200, fixture("tcgcsv/groups.json")))
    for group in ("23237", "604"):
        server.route(f"/tcgplayer/{category}/{group}/products", Reply(200, fixture(f"tcgcsv/products-{group}.json")))
        server.route(f"/tcgplayer/{category}/{group}/prices", Reply(200, fixture(f"tcgcsv/prices-{group}.json")))
    server.route(f"/tcgplayer/{category}/24380/products", Reply(200, empty))
    server.route(f"/tcgplayer/{category}/24380/prices", Reply(200, empty))
    server.route("/last-updated.txt", Reply(200, fixture("tcgcsv/last-updated.txt")))
    return server


def write_archive(folder: Path, day: str, groups: dict[int, dict[str, list[dict]]]) -> Path:
    """Write ``prices-{day}.ppmd.7z`` (PPMd, layout ``{day}/{category}/{groupId}/prices``).

    ``groups`` maps category -> groupId -> price results; a value that is ``bytes``
    is written as-is (to plant a malformed file).
    """
    import py7zr

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"prices-{day}.ppmd.7z"
    with py7zr.SevenZipFile(path, "w", filters=[{"id": py7zr.FILTER_PPMD, "order": 6, "mem": 24}]) as archive:
        for category, by_group in groups.items():
            for group_id, results in by_group.items():
                data = results if isinstance(results, bytes) else json.dumps(
                    {"success": True, "errors": [], "results": results}).encode()
                archive.writestr(data, f"{day}/{category}/{group_id}/prices")
    return path
