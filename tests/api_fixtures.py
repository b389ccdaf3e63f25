"""Builders shared by the API tests: a small fitted model, run folders, keys and settings.

The model is fitted once per test process (about a second) and reused; each test
gets its own runs folder under ``tmp_path``, so tests never touch ``runs/``.
"""
from __future__ import annotations

import functools
import threading
import time
import warnings
from pathlib import Path
from typing import Self

from pokewatch.run import model_file, runs
from pokewatch.run.folder import RunFolder
from pokewatch.api.connection_guard import uvicorn_options
from pokewatch.api.settings import ApiSettings, ServerLimits
from pokewatch.data.demo_market import demo_prices
from pokewatch.core.model import FairValueModel

KEY = "pwk_test-key-number-one-0123456789abcdef"
OTHER_KEY = "pwk_test-key-number-two-0123456789abcdef"
ADMIN_KEY = "pwk_test-key-admin-role-0123456789abcdef"
RUN_DATE = "2026-11-28"


@functools.lru_cache(maxsize=4)
def demo_model(end: str = RUN_DATE, n_series: int = 200) -> FairValueModel:
    """A model fitted on the demo market from 2026-08-01 to ``end`` (cached per process)."""
    model = FairValueModel().fit(demo_prices("2026-08-01", end, n_series=n_series))
    model.trained_on = end
    return model


def publish_run(runs_root: Path, run_date: str = RUN_DATE, model: FairValueModel | None = None) -> Path:
    """Write and publish a good run folder for ``run_date``; returns the attempt folder."""
    model = model or demo_model()
    run_dir = runs.start_run(run_date, {}, runs_root=runs_root)
    model_file.write(model_file.path_in(run_dir), model)
    model.predict_all().to_csv(RunFolder(run_dir).signals)
    runs.update_manifest(run_dir, model={"trained_on": model.trained_on or run_date})
    runs.publish(run_dir, runs_root=runs_root)
    return run_dir


def settings(runs_root: Path, **overrides) -> ApiSettings:
    """Test settings: two reader keys and one admin key, the default limits, no background polling."""
    values = {"api_keys": (KEY, OTHER_KEY), "admin_keys": (ADMIN_KEY,), "runs_dir": Path(runs_root),
              "reload_check_seconds": 0}
    values.update(overrides)
    return ApiSettings(**values)


def some_card(model: FairValueModel | None = None) -> dict:
    """A card of the model with a fair value on its latest day, as predict returns it."""
    model = model or demo_model()
    frame = model.predict_all()
    row = frame[frame["fair_value"].notna()].iloc[0]
    return model.predict(row["card_id"], variant=row["variant"], currency=row["currency"])


def make_client(app):
    """Starlette's TestClient (runs the app's lifespan when used in a ``with`` block).

    Imported here with its deprecation notice silenced: Starlette 1.x announces a
    move to ``httpx2`` when the module is imported, which is noise for these tests.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient(app)


class LiveServer:
    """The app under a real uvicorn server in a background thread, on a free 127.0.0.1 port.

    It runs with the uvicorn options of ``pokewatch serve``
    (:func:`pokewatch.api.connection_guard.uvicorn_options`), with ``limits`` (default:
    the defaults) built into the connection guard.
    """

    def __init__(self, app, limits: ServerLimits | None = None) -> None:
        import uvicorn
        from redis_server import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, lifespan="on",
                                **uvicorn_options(limits or ServerLimits(), in_process=True))
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class ServeProcess:
    """``python -m pokewatch serve`` in a subprocess on a free 127.0.0.1 port, its stderr in ``log``.

    This is the server exactly as operators run it (JSON logs, the uvicorn options of
    ``serve``), for the checks that depend on how the process is set up: what reaches
    the log, header limits, deadlines.

    Args:
        runs_root: the runs folder to serve.
        log: file that receives the server's stdout and stderr.
        env: extra environment variables (keys default to KEY, OTHER_KEY readers and ADMIN_KEY).
    """

    def __init__(self, runs_root: Path, log: Path, **env: str) -> None:
        import os

        from redis_server import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(log)
        self.env = {**os.environ, "POKEWATCH_API_KEYS": f"{KEY},{OTHER_KEY}",
                    "POKEWATCH_API_ADMIN_KEYS": ADMIN_KEY, "POKEWATCH_RELOAD_CHECK_SECONDS": "0", **env}
        for name in ("REDIS_URL", "POKEWATCH_API_KEY_FILE", "POKEWATCH_TRUSTED_PROXIES", "FORWARDED_ALLOW_IPS"):
            if name not in env:
                self.env.pop(name, None)
        self.runs_root = Path(runs_root)
        self.process = None

    def __enter__(self) -> Self:
        import subprocess
        import sys
        import urllib.error
        import urllib.request

        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pokewatch", "serve", "--port", str(self.port), "--runs-dir",
                 str(self.runs_root)], env=self.env, stdout=sink, stderr=sink)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                    return self
            except urllib.error.HTTPError:   # answering (503 before a run is served): up
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError(f"pokewatch serve did not start:\n{self.log.read_text()}") from None
                time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def log_entries(self) -> list[dict]:
        """Every JSON line the server wrote so far (other lines are skipped)."""
        import json

        entries = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    continue
        return entries
