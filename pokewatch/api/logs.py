"""The API's access log: one line per request, as JSON like every server log line.

The server's records are JSON lines (:mod:`pokewatch.logs`, mode ``json``, set up by
``pokewatch serve`` and by :func:`pokewatch.api.app.create_app` in each worker). Each
request's line carries its request id (also sent back as ``X-Request-ID``), method,
path, query string, route template, status, duration, the client address and the
caller's :func:`pokewatch.api.security.key_id`.

An API key itself is never logged. The access line is built from an explicit list of
fields, request headers are never among them, and the path and query string are
redacted first (:mod:`pokewatch.redaction`). That line is the *only* access line:
uvicorn's own access logger (which prints the raw URL, query string and all) is
switched off here, because a logger that propagates to ours counts as "having
handlers" and uvicorn would log every request a second time, key included.
"""
from __future__ import annotations

import logging

access_logger = logging.getLogger("pokewatch.api.access")


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
