"""The API attacks of issue 11, rerun against a real ``pokewatch serve``: attack, trials, held.

Each ``attack_*`` function starts its own ``python -m pokewatch serve`` on 127.0.0.1
(default settings unless the attack is about one), attacks it the way the issue
describes, and returns ``(attack name, trials, held)``: how many attempts were made
and how many the server withstood. :data:`ATTACKS` lists them for the project's
attack table (``scripts/attack.py``); run this file to print the API's part::

    .venv/bin/python tests/attack_api.py            # the issue's counts, about 50 s
    .venv/bin/python tests/attack_api.py --quick    # smaller counts (deadline cases still wait 10 s)

The raw-socket probes (:func:`slowloris`, :func:`oversized_headers`, ...) are
plain functions of a server URL, so ``tests/test_api_hardening.py`` runs the same
probes, smaller, in the test suite.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))   # api_fixtures, when run as a script

from api_fixtures import ADMIN_KEY, KEY, OTHER_KEY, ServeProcess, publish_run, some_card  # noqa: E402

from pokewatch.api.settings import ServerLimits  # noqa: E402
from pokewatch.run.folder import RunFolder

Outcome = tuple[str, int, int]
DEFAULT_LIMITS = ServerLimits()
#: Slack on top of the read deadline for "closed within the bound": scheduling on a busy 2-core machine.
CLOSE_SLACK_SECONDS = 2.0


def _address(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname, parts.port


# -- raw-socket probes ------------------------------------------------------------------------
async def _slow_client(host: str, port: int, start: bytes, drip: bytes, every: float, give_up: float,
                       gate: asyncio.Semaphore) -> float | None:
    """Send ``start``, then ``drip`` every ``every`` s; seconds until the server hung up (None: never)."""
    loop = asyncio.get_running_loop()
    async with gate:
        reader, writer = await asyncio.open_connection(host, port)
    began = loop.time()
    try:
        if start:
            writer.write(start)
            await writer.drain()
        while loop.time() - began < give_up:
            try:
                data = await asyncio.wait_for(reader.read(65536), every)
            except TimeoutError:
                if drip:
                    writer.write(drip)
                    await writer.drain()
                continue
            if not data:
                return loop.time() - began
        return None
    except (ConnectionError, OSError):
        return loop.time() - began
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


def _run_slow_clients(url: str, connections: int, start: bytes, drip: bytes, every: float,
                      give_up: float) -> list[float | None]:
    host, port = _address(url)

    async def main() -> list[float | None]:
        gate = asyncio.Semaphore(100)   # open connections 100 at a time; all stay open together
        return await asyncio.gather(*(_slow_client(host, port, start, drip, every, give_up, gate)
                                      for _ in range(connections)))

    return asyncio.run(main())


def slowloris(url: str, connections: int = 300, every: float = 0.5, give_up: float = 40.0) -> list[float | None]:
    """Slowloris: each connection sends a request line and then one header line every ``every`` s.

    Returns:
        Per connection, seconds until the server closed it, or None if still open at ``give_up``.
    """
    return _run_slow_clients(url, connections, b"GET /health HTTP/1.1\r\nHost: pokewatch\r\n",
                             b"X-Slow: 1\r\n", every, give_up)


def idle_connections(url: str, connections: int = 50, give_up: float = 40.0) -> list[float | None]:
    """Connections that never send a byte; seconds until the server closed each (None: never)."""
    return _run_slow_clients(url, connections, b"", b"", 0.5, give_up)


def slow_bodies(url: str, key: str, connections: int = 20, every: float = 0.5,
                give_up: float = 40.0) -> list[float | None]:
    """Complete headers announcing a 1,000-byte body, which then arrives one byte every ``every`` s."""
    head = (f"POST /fair_price HTTP/1.1\r\nHost: pokewatch\r\nX-API-Key: {key}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n").encode()
    return _run_slow_clients(url, connections, head, b" ", every, give_up)


async def _oversized_one(host: str, port: int, header_bytes: int) -> tuple[int | None, int]:
    reader, writer = await asyncio.open_connection(host, port)
    sent, status = 0, None
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: pokewatch\r\nX-Big: ")
        chunk = b"a" * 65536
        while sent < header_bytes:
            piece = chunk[:header_bytes - sent]
            writer.write(piece)
            await asyncio.wait_for(writer.drain(), 10)
            sent += len(piece)
        writer.write(b"\r\n\r\n")
        await writer.drain()
    except (ConnectionError, OSError, TimeoutError):
        pass
    try:
        line = await asyncio.wait_for(reader.readline(), 10)
        status = int(line.split()[1]) if line else None
    except (ConnectionError, OSError, TimeoutError, IndexError, ValueError):
        status = None
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
    return status, sent


def oversized_headers(url: str, header_bytes: int = 25 * 2**20, count: int = 8) -> list[tuple[int | None, int]]:
    """``count`` requests, one after the other, each with one header of ``header_bytes``.

    Returns:
        Per request, (the HTTP status answered, or None when the server hung up without
        one reaching us; the bytes of the header the server let us send).
    """
    host, port = _address(url)

    async def main():
        return [await _oversized_one(host, port, header_bytes) for _ in range(count)]

    return asyncio.run(main())


# -- HTTP probes -------------------------------------------------------------------------------
def key_in_url_requests(card_id: str) -> list[tuple[str, str]]:
    """``(label, path with query)`` of every way the attack put a key into a URL."""
    quoted = urllib.parse.quote(KEY, safe="")
    return [
        ("api_key on /cards", f"/cards?api_key={KEY}"),
        ("key on /fair_price", f"/fair_price?card_id={card_id}&key={KEY}"),
        ("token on /signals", f"/signals?token={KEY}"),
        ("apikey, percent-encoded", f"/cards?apikey={quoted}"),
        ("encoded parameter name", f"/cards?%61pi_key={KEY}"),
        ("key under an innocent name", f"/cards?page_size={KEY}"),
        ("key as a bare parameter", f"/cards?{KEY}"),
        ("other client's key", f"/cards?api_key={OTHER_KEY}"),
        ("admin key on /reload", f"/reload?api_key={ADMIN_KEY}"),
        ("key on public /health", f"/health?api_key={KEY}"),
        ("key on /metrics", f"/metrics?x={KEY}"),
        ("key in the path", f"/cards/{KEY}"),
        ("unknown key-shaped value", "/cards?api_key=pwk_" + "z" * 43),
    ]


# -- the attacks -------------------------------------------------------------------------------
@contextlib.contextmanager
def _server(**env: str):
    """A served demo run and its ``pokewatch serve``, in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="pokewatch-attack-") as folder:
        root = Path(folder) / "runs"
        publish_run(root)
        with ServeProcess(root, Path(folder) / "server.log", **env) as server:
            yield server


def attack_key_in_url(quick: bool = False) -> Outcome:
    """Keys in URLs: each request must be refused (400, or 404 for a path) and leave no key in the log,
    with exactly one access line written by PokeWatch (none by uvicorn)."""
    card = some_card()["card_id"]
    probes = key_in_url_requests(card)
    secrets = (KEY, OTHER_KEY, ADMIN_KEY, urllib.parse.quote(KEY, safe=""), "pwk_" + "z" * 43)
    # A burst big enough that the keyless probes get their 400, not a 429 of the per-address limit.
    with _server(POKEWATCH_RATE_LIMIT_BURST="1000") as server, httpx.Client(base_url=server.url, timeout=10) as http:
        answers = []
        for number, (label, target) in enumerate(probes):
            method = "POST" if target.startswith("/reload") else "GET"
            request_id = f"attack-key-in-url-{number}"
            answer = http.request(method, target, headers={"X-Request-ID": request_id})
            answers.append((label, request_id, answer.status_code, answer.text))
        time.sleep(0.3)   # let the last lines reach the log
        entries = server.log_entries()
        text = server.log_text()
    held = 0
    for label, request_id, status, body in answers:
        lines = [e for e in entries if e.get("request_id") == request_id]
        access = [e for e in lines if e.get("logger") == "pokewatch.api.access"]
        # A key in the path is no parameter: it gets the 401 of a keyless request (it is only redacted).
        refused = status in (401, 404) if "path" in label else status == 400 and "X-API-Key header" in body
        if refused and len(access) == 1 and not any(s in str(lines) for s in secrets):
            held += 1
    uvicorn_access = [e for e in entries if e.get("logger") == "uvicorn.access"]
    if uvicorn_access or any(s in text for s in secrets):
        held = 0   # a key anywhere in the log, or any uvicorn access line, fails every trial
    return "API key in a URL reaches the log", len(answers), held


def attack_oversized_headers(quick: bool = False) -> Outcome:
    """8 requests with a 25 MB header: each must be refused (431, or the connection closed) early."""
    size = 2 * 2**20 if quick else 25 * 2**20
    with _server() as server:
        results = oversized_headers(server.url, size, count=8)
        healthy = httpx.get(f"{server.url}/health", timeout=10).status_code == 200
    bound = DEFAULT_LIMITS.max_header_bytes + 8 * 2**20   # what socket buffers may take before a refusal
    held = sum(1 for status, sent in results if status != 200 and (status == 431 or sent < min(size, bound)))
    return f"{size // 2**20} MB request header accepted", len(results), held if healthy else 0


def attack_slowloris(quick: bool = False) -> Outcome:
    """300 slowloris connections must all be closed within the read deadline (+ slack)."""
    connections = 60 if quick else 300
    bound = DEFAULT_LIMITS.read_timeout_seconds + CLOSE_SLACK_SECONDS
    with _server() as server:
        closed = slowloris(server.url, connections, every=0.5, give_up=bound + 5)
    held = sum(1 for seconds in closed if seconds is not None and seconds <= bound)
    return f"slowloris connection open after {bound:g} s", len(closed), held


def attack_slow_body(quick: bool = False) -> Outcome:
    """A body dripped one byte per 0.5 s must be cut off by the read deadline (408, then closed)."""
    connections = 10 if quick else 50
    bound = DEFAULT_LIMITS.read_timeout_seconds + CLOSE_SLACK_SECONDS
    with _server() as server:
        closed = slow_bodies(server.url, KEY, connections, every=0.5, give_up=bound + 5)
    held = sum(1 for seconds in closed if seconds is not None and seconds <= bound)
    return f"slow request body open after {bound:g} s", len(closed), held


def attack_idle_connections(quick: bool = False) -> Outcome:
    """Connections that never send a byte must be closed by the read deadline too."""
    connections = 20 if quick else 100
    bound = DEFAULT_LIMITS.read_timeout_seconds + CLOSE_SLACK_SECONDS
    with _server() as server:
        closed = idle_connections(server.url, connections, give_up=bound + 5)
    held = sum(1 for seconds in closed if seconds is not None and seconds <= bound)
    return f"idle connection open after {bound:g} s", len(closed), held


def attack_spoofed_forwarded_for(quick: bool = False) -> Outcome:
    """Key guesses from loopback, each with a new X-Forwarded-For: the per-address limit must still bite.

    With no trusted proxy configured (the default) every guess draws from one bucket: the
    first ``burst`` get 401, every later one 429. Trials are the guesses after the burst.
    """
    burst, extra = 10, 20 if quick else 90
    with _server(POKEWATCH_RATE_LIMIT_PER_MINUTE="1", POKEWATCH_RATE_LIMIT_BURST=str(burst)) as server, \
            httpx.Client(base_url=server.url, timeout=10) as http:
        statuses = [http.get("/cards", headers={"X-API-Key": f"pwk_guess-{n:040d}",
                                                "X-Forwarded-For": f"203.0.{n // 250}.{n % 250 + 1}"}).status_code
                    for n in range(burst + extra)]
    return "spoofed X-Forwarded-For escapes the key-guessing limit", extra, statuses[burst:].count(429)


def attack_reader_reload(quick: bool = False) -> Outcome:
    """Every reader key's POST /reload must get 403 (and an admin key's 200)."""
    tries = 5 if quick else 20
    # A burst big enough that every try is answered on its role, not with the limit's 429.
    with _server(POKEWATCH_RATE_LIMIT_BURST="1000") as server, httpx.Client(base_url=server.url, timeout=10) as http:
        statuses = [http.post("/reload", headers={"X-API-Key": key}).status_code
                    for key in (KEY, OTHER_KEY) for _ in range(tries)]
        admin_ok = http.post("/reload", headers={"X-API-Key": ADMIN_KEY}).status_code == 200
    return "reader key may POST /reload", len(statuses), statuses.count(403) if admin_ok else 0


GARBAGE: dict[str, Callable[[Path], None]] = {
    "random bytes": lambda p: p.write_bytes(os.urandom(4096)),
    "empty file": lambda p: p.write_bytes(b""),
    "truncated model": lambda p: p.write_bytes(p.read_bytes()[:2000]),
    "text": lambda p: p.write_text("not a pickle\n"),
    "wrong object": lambda p: __import__("joblib").dump({"not": "a model"}, p),
    "a folder": lambda p: (p.unlink(), p.mkdir()),
}


def attack_garbage_newest_model(quick: bool = False) -> Outcome:
    """A garbage newest model.joblib, in every shape: the older good run must be served, /health
    must say "degraded" (not "no run"), at start-up and on POST /reload."""
    held = trials = 0
    with tempfile.TemporaryDirectory(prefix="pokewatch-attack-") as folder:
        root = Path(folder) / "runs"
        publish_run(root, "2026-11-28")
        newest = publish_run(root, "2026-11-29")
        good = RunFolder(newest).model.read_bytes()
        kinds = list(GARBAGE.items())
        kinds[0][1](RunFolder(newest).model)
        card = some_card()["card_id"]

        def served_old(http: httpx.Client) -> bool:
            health = http.get("/health")
            body = health.json()
            return (health.status_code == 200 and body["status"] == "degraded" and body["run_date"] == "2026-11-28"
                    and body["newest_run_unreadable"]["run_date"] == "2026-11-29"
                    and http.get("/fair_price", params={"card_id": card},
                                 headers={"X-API-Key": KEY}).status_code == 200)

        with ServeProcess(root, Path(folder) / "server.log") as server, \
                httpx.Client(base_url=server.url, timeout=10) as http:
            trials, held = 1, int(served_old(http))   # start-up with a garbage newest model
            for _, damage in kinds:
                model = RunFolder(newest).model
                if model.is_dir():
                    model.rmdir()
                model.write_bytes(good)
                damage(model)
                reload = http.post("/reload", headers={"X-API-Key": ADMIN_KEY})
                trials += 1
                held += int(reload.status_code == 200 and reload.json()["newest_run_unreadable"] is not None
                            and served_old(http))
    return "garbage newest model.joblib hides the older good run", trials, held


ATTACKS: list[Callable[..., Outcome]] = [
    attack_key_in_url, attack_oversized_headers, attack_slowloris, attack_slow_body, attack_idle_connections,
    attack_spoofed_forwarded_for, attack_reader_reload, attack_garbage_newest_model,
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rerun issue 11's API attacks; print attack, trials, held.")
    parser.add_argument("--quick", action="store_true", help="smaller counts (deadline cases still wait 10 s)")
    args = parser.parse_args(argv)
    rows = []
    for attack in ATTACKS:
        started = time.monotonic()
        name, trials, held = attack(quick=args.quick)
        rows.append((name, trials, held, time.monotonic() - started))
        print(f"{name}: {held}/{trials} held ({rows[-1][3]:.1f} s)", file=sys.stderr)
    width = max(len(r[0]) for r in rows)
    print(f"| {'attack':<{width}} | trials | held |")
    print(f"|{'-' * (width + 2)}|--------|------|")
    for name, trials, held, _ in rows:
        print(f"| {name:<{width}} | {trials:>6} | {held:>4} |")
    return 0 if all(trials == held for _, trials, held, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
