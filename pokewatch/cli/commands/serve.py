"""``pokewatch serve``: run the HTTP API on the model of ``runs/latest`` under uvicorn.

Settings come from the environment (see :mod:`pokewatch.api.settings`) and are
checked before uvicorn starts, so a bad key file or CORS setting stops here with
one line. Logs are JSON lines on stderr (:mod:`pokewatch.logs`), one per request.
uvicorn runs with the limits of :func:`pokewatch.api.connection_guard.uvicorn_options`:
bounded request headers, a deadline to send a request, keep-alive timeout, and no
proxy headers believed except from ``POKEWATCH_TRUSTED_PROXIES``.
"""
from __future__ import annotations

import argparse
import atexit
import logging
import os
import shutil
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve runs/latest over HTTP (FastAPI under uvicorn)",
        description="Serve fair prices and signals of runs/latest over HTTP. Client keys come "
                    "from POKEWATCH_API_KEYS or POKEWATCH_API_KEY_FILE ('pokewatch keys new' makes "
                    "one); REDIS_URL shares rate limits between workers. See docs/deployment_guide.md.")
    parser.add_argument("--host", default=os.environ.get("POKEWATCH_API_HOST", "127.0.0.1"),
                        help="address to bind (default 127.0.0.1; 0.0.0.0 only behind a proxy "
                             "or in a container)")
    parser.add_argument("--port", type=int, default=None,
                        help="port (default: POKEWATCH_API_PORT or 8000)")
    parser.add_argument("--workers", type=int, default=1,
                        help="uvicorn worker processes (default 1; with more, set REDIS_URL so they "
                             "share one rate limit)")
    parser.add_argument("--runs-dir", type=Path, default=None,
                        help="runs folder to serve (default: POKEWATCH_RUNS_DIR or runs/)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                        help="log level (default info)")
    parser.set_defaults(handler=serve, log_mode="json")  # the CLI sets JSON logging up at --log-level


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from pokewatch.api import logs
    from pokewatch.api.connection_guard import uvicorn_options
    from pokewatch.api.settings import ApiConfigError, ApiSettings

    port = args.port
    if port is None:
        raw = os.environ.get("POKEWATCH_API_PORT", "8000")
        if not raw.strip().isdigit():
            raise ApiConfigError(f"POKEWATCH_API_PORT={raw!r} is not a port number")
        port = int(raw)
    if not 0 < port < 65536:
        raise ApiConfigError(f"port {port} is not a TCP port (1-65535)")
    if args.workers < 1:
        raise ApiConfigError(f"--workers {args.workers} must be at least 1")
    if args.runs_dir is not None:
        os.environ["POKEWATCH_RUNS_DIR"] = str(args.runs_dir.expanduser().resolve())
    settings = ApiSettings.from_env()   # fail now, in one line, on a bad setting
    os.environ["POKEWATCH_API_JSON_LOGS"] = "1"
    os.environ["POKEWATCH_API_LOG_LEVEL"] = args.log_level
    logs.silence_uvicorn_access()
    if not settings.runs_dir.exists():
        logger.warning("runs folder %s does not exist yet; /health answers 503 until a run is published",
                       settings.runs_dir)
    if args.workers > 1:
        if not settings.redis_url:
            logger.warning("%d workers without REDIS_URL: each worker keeps its own rate-limit buckets, "
                           "so a key may make up to %d times its limit", args.workers, args.workers)
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            metrics_dir = tempfile.mkdtemp(prefix="pokewatch-metrics-")
            atexit.register(shutil.rmtree, metrics_dir, True)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    limits = settings.limits
    logger.info("serving %s on http://%s:%d with %d worker(s); headers up to %d bytes, requests must "
                "arrive within %g s, idle connections closed after %g s", settings.runs_dir, args.host, port,
                args.workers, limits.max_header_bytes, limits.read_timeout_seconds, limits.keep_alive_seconds)
    uvicorn.run("pokewatch.api.app:create_app", factory=True, host=args.host, port=port,
                workers=args.workers, timeout_graceful_shutdown=10, **uvicorn_options(limits))
    return 0
