"""Printing for the ``pokewatch`` commands: tables aligned to the terminal, prose wrapped to it, JSON for scripts.

Why a module: every command prints the same three kinds of thing, and they must look
alike and behave alike when piped. Tables are :mod:`rich` tables built by
:func:`pokewatch.analysis.tables.to_rich`; paragraphs wrap at word boundaries to the
terminal's width (``$COLUMNS``, else the terminal, else 100 columns when piped);
``--json`` output is one JSON document with ``null`` for missing values and ISO dates,
never ``NaN``. Colour is used only on a terminal.

Nothing heavy is imported here at start-up: ``rich`` and ``pandas`` load when something
is printed, so ``pokewatch --help`` stays fast.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import sys
from functools import lru_cache

#: Width used when stdout is not a terminal and $COLUMNS is unset.
PIPE_WIDTH = 100


@lru_cache(maxsize=1)
def _width() -> int:
    return shutil.get_terminal_size((PIPE_WIDTH, 24)).columns


def console():
    """A :class:`rich.console.Console` on the current ``sys.stdout``, as wide as the terminal."""
    from rich.console import Console

    return Console(file=sys.stdout, width=_width(), highlight=False, soft_wrap=False)


def print_table(frame, columns=None, title: str | None = None, optional=()) -> None:
    """Print ``frame`` as an aligned table: human headers, ``$`` and ``%`` formats, no index.

    ``optional`` columns are left out, last first, when the table would not fit the terminal.
    """
    from pokewatch.analysis import tables

    console().print(tables.to_rich(frame, columns, title, width=_width(), optional=optional))


def print_text(text: str = "") -> None:
    """Print a paragraph wrapped at word boundaries to the terminal's width (no markup is interpreted)."""
    console().print(text, markup=False, highlight=False)


def _plain(value):
    """A JSON-ready copy of ``value``: NaN and NA to None, numpy scalars to Python, dates to ISO text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()[:10] if getattr(value, "hour", 0) == 0 and getattr(value, "minute", 0) == 0 \
            else value.isoformat()
    module = type(value).__module__
    if module.startswith("pandas") and str(value) in ("<NA>", "NaT", "nan"):
        return None
    if hasattr(value, "item"):  # numpy scalar
        return _plain(value.item())
    if hasattr(value, "isoformat"):
        return _plain(value.to_pydatetime() if hasattr(value, "to_pydatetime") else value.isoformat())
    return str(value)


def records(frame) -> list[dict]:
    """The rows of a DataFrame as JSON-ready dicts (see :func:`print_json`)."""
    return [_plain(r) for r in frame.to_dict(orient="records")]


def print_json(document) -> None:
    """Print ``document`` as indented JSON (``null`` for missing values, ISO dates)."""
    sys.stdout.write(json.dumps(_plain(document), indent=2, ensure_ascii=False) + "\n")
