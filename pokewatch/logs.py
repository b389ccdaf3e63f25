"""The one logging set-up: every entry point calls :func:`configure` with its mode.

Why one: the CLI, the pipeline's helper commands, the notebooks' kernels and the API
server each print log records for a different reader, but they should agree on
everything else: at most one handler of ours on the root logger (calling again
replaces it, never adds a second), and the redacting filter of
:mod:`pokewatch.redaction` on the loggers that print URLs, so a key in a request
URL is masked whoever logs it.
Nothing happens at import; only :func:`configure` changes the logging state.

Whose handlers win: ``terminal`` and ``pipeline`` defer, like :func:`logging.basicConfig`,
to handlers another program put on the root logger (pytest, an application calling
:func:`pokewatch.cli.main.main`), and then change nothing but the redacting filter;
``kernel`` adds its handler beside any others; ``json`` is the server's and replaces them all.

The modes (:data:`MODES`), and who uses them:

* ``terminal``: ``<local time> LEVEL logger: message`` on stderr; every ``pokewatch`` command.
* ``pipeline``: ``<UTC time> pipeline: LEVEL logger: message`` on stderr, stamped like the
  lines of ``scripts/run_pipeline.sh`` so they read as one cron log; ``pokewatch pipeline``.
* ``kernel``: ``HH:MM:SS LEVEL logger: message`` on the running cell's stdout, so records
  show as plain text rather than red stderr boxes; :class:`pokewatch.run.context.RunContext`.
  Under the pipeline (:data:`STEP_ENV` is set), records of :data:`PROGRESS_LOGGER` also go
  to the kernel's real stderr as ``<UTC time> <step>: message``, which the script passes
  on to the cron log while the rest stays in the step's log.
* ``json``: one JSON object per line on stderr (:class:`JsonFormatter`), uvicorn's own
  records included; the API server (``pokewatch serve`` and its workers).

The stream is looked up when a record is written, not when the handler is made, so a
handler survives ``sys.stdout``/``sys.stderr`` being swapped (a kernel's cells, a test's
capture). Only the standard library is imported: the lean helper commands call this too.
"""
from __future__ import annotations

import io
import json
import logging
import os
import sys
import time

from pokewatch import config

#: Long-running work reports its progress through this logger (one line per day or N groups).
PROGRESS_LOGGER = "pokewatch.progress"
#: Set by the pipeline to the step a kernel runs (collect, train, evaluate).
STEP_ENV = "POKEWATCH_STEP"
#: What each mode prints: (format, time format or None for logging's default, UTC?).
MODES = {
    "terminal": ("%(asctime)s %(levelname)s %(name)s: %(message)s", None, False),
    "pipeline": ("%(asctime)s pipeline: %(levelname)s %(name)s: %(message)s", config.LOG_TIME_FORMAT, True),
    "kernel": ("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S", False),
    "json": (None, None, True),
}
#: Loggers whose own handlers would print past ours (uvicorn's); in ``json`` mode they propagate to it.
SERVER_LOGGERS = ("uvicorn", "uvicorn.error")


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object: time, level, logger, message and any ``extra`` fields.

    A JSON line can be searched and aggregated (``jq``, Loki, CloudWatch) without a parser
    per message, and JSON escaping means a hostile path or header can never forge a second line.
    """

    #: LogRecord attributes that are not "extra" fields (uvicorn adds an ANSI-coloured copy of its messages).
    RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "color_message"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in self.RESERVED})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _CurrentStream(logging.StreamHandler):
    """A handler writing to whatever ``sys.<name>`` is when a record is emitted (the running cell, a capture)."""

    def __init__(self, name: str) -> None:
        self._stream_name = name
        super().__init__(getattr(sys, name))

    @property
    def stream(self):  # noqa: D401 - logging.StreamHandler reads and sets this attribute
        return getattr(sys, self._stream_name)

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _formatter(mode: str, prefix: str | None = None) -> logging.Formatter:
    fmt, datefmt, utc = MODES[mode]
    if fmt is None:
        return JsonFormatter()
    formatter = logging.Formatter(prefix or fmt, datefmt)
    if utc:
        formatter.converter = time.gmtime
    return formatter


def _real_stderr() -> io.TextIOBase:
    """The process's real stderr, bypassing a kernel's capture into the notebook.

    ipykernel replaces ``sys.stderr`` with a stream into the notebook; its
    ``fileno()`` is a copy of the original fd 2, the terminal papermill runs in.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        fd = 2
    return open(fd, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115


def _install(logger: logging.Logger, handler: logging.Handler, mark: str) -> None:
    """Put ``handler`` on ``logger`` in place of the one an earlier call marked ``mark``."""
    setattr(handler, mark, True)
    logger.handlers[:] = [h for h in logger.handlers if not getattr(h, mark, False)] + [handler]


def configure(mode: str = "terminal", level: int | str = logging.INFO) -> None:
    """Set up logging for this process in ``mode`` (see the module docstring); calling again re-configures.

    Args:
        mode: ``terminal``, ``pipeline``, ``kernel`` or ``json``.
        level: the lowest level shown (a number or a name such as ``"warning"``). In
            ``kernel`` mode it applies to the ``pokewatch`` loggers only, so a library's
            chatter stays out of the notebook.

    Raises:
        ValueError: an unknown mode or level name.
    """
    from pokewatch.redaction import install_log_filter  # noqa: PLC0415 - standard library only

    if mode not in MODES:
        raise ValueError(f"unknown logging mode {mode!r}; known: {', '.join(MODES)}")
    if isinstance(level, str):
        name = level.upper()
        level = logging.getLevelName(name)
        if not isinstance(level, int):
            raise ValueError(f"unknown log level {name!r}")
    install_log_filter()
    root = logging.getLogger()
    if mode in ("terminal", "pipeline") and any(not getattr(h, "_pokewatch", False) for h in root.handlers):
        return   # another program (pytest, an application calling main()) owns the output
    handler = _CurrentStream("stdout" if mode == "kernel" and "ipykernel" in sys.modules else "stderr")
    handler.setFormatter(_formatter(mode))
    _install(root, handler, "_pokewatch")
    if mode == "kernel":
        logging.getLogger("pokewatch").setLevel(level)
        _progress_to_the_pipeline()
        return
    root.setLevel(level)
    if mode == "json":
        root.handlers[:] = [handler]
        for name in SERVER_LOGGERS:
            logging.getLogger(name).handlers[:] = []
            logging.getLogger(name).propagate = True
        # The logging docs' "Optimization" advice: skip what these lines never show (the
        # caller's file and line, thread and process names): a few microseconds per request.
        logging._srcfile = None
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


def _progress_to_the_pipeline() -> None:
    """In a kernel the pipeline runs, send :data:`PROGRESS_LOGGER` records to the real stderr too."""
    step = os.environ.get(STEP_ENV, "").strip()
    progress = logging.getLogger(PROGRESS_LOGGER)
    if step and not any(getattr(h, "_pokewatch_progress", False) for h in progress.handlers):
        handler = logging.StreamHandler(_real_stderr())
        handler.setFormatter(_formatter("pipeline", f"%(asctime)s {step}: %(message)s"))
        handler.setLevel(logging.INFO)
        _install(progress, handler, "_pokewatch_progress")
