"""Structured logs: one JSON object per line, and one line per request.

A JSON line can be searched and aggregated (``jq``, Loki, CloudWatch) without a
parser per message, and JSON escaping means a hostile path or header can never
forge a second log line. Each request's line carries its request id (also sent back
as ``X-Request-ID``), method, path, query string, route template, status, duration,
the client address and the caller's :func:`pokewatch.api.security.key_id`.

An API key itself is never logged. The access line is built from an explicit list of
fields, request headers are never among them, and the path and query string are
redacted first (:mod:`pokewatch.data.redaction`). That line is the *only* access line:
uvicorn's own access logger (which prints the raw URL, query string and all) is
switched off here, because a logger that propagates to ours counts as "having
handlers" and uvicorn would log every request a second time, key included.
"""
from __future__ import annotations

import json
import logging
import time

access_logger = logging.getLogger("pokewatch.api.access")

#: LogRecord attributes that are not "extra" fields (uvicorn adds an ANSI-coloured copy of its messages).
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object: time, level, logger, message and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure(level: int = logging.INFO) -> None:
    """Send every log record of this process to stderr as JSON lines (used by ``pokewatch serve``)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    silence_uvicorn_access()
    # The logging docs' "Optimization" advice: skip what these lines never show (the
    # caller's file and line, thread and process names): a few microseconds per request.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


def silence_uvicorn_access() -> None:
    """Switch off uvicorn's access log, which would print raw URLs (query strings with keys).

    uvicorn decides per connection with ``logging.getLogger("uvicorn.access").hasHandlers()``,
    which follows ``propagate`` up to the root: so the logger needs no handlers *and* no
    propagation, not just ``access_log=False`` at start-up.
    """
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    access.disabled = True


def log_request(fields: dict) -> None:
    """Write one access line; ``fields`` holds only non-secret values (see the module docstring)."""
    status = fields.get("status", 0)
    level = logging.ERROR if status >= 500 else logging.INFO
    access_logger.log(level, "%s %s %s %.1fms", fields.get("method"), fields.get("path"), status,
                      fields.get("duration_ms", 0.0), extra=fields)
