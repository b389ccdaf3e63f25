"""How a PokeWatch process starts and ends: two optional imports left out, and no teardown.

Why: a papermill process spent about 1.8 s of its start-up, and the ``finish`` command
(which renders the report with nbformat) 1.3 s, in two optional imports a run of ours
never exercises:

* ``jsonschema`` imports ``rfc3987_syntax`` when it is installed, and that module
  builds about 35 Lark grammars at import time (1.3 s here). It only serves the
  ``iri`` / ``iri-reference`` format checks, which no notebook schema uses and nbformat
  never asks for (python-jsonschema/jsonschema#1428). jupyterlab's ``jupyter-events``
  pulls it in through ``jsonschema[format-nongpl]``, so the venv cannot go without it.
* ``papermill.iorw`` imports ``pyarrow.fs`` (0.3 s) for ``hdfs://`` notebook paths; the
  pipeline reads and writes local files only. Only the papermill process may skip it:
  ``pyarrow.parquet`` imports it, so every process that reads the store needs it.

Marking a module absent in ``sys.modules`` makes importing it raise ``ImportError``,
which both libraries already handle as "optional dependency not installed". It is done
only where a process starts: the papermill launcher
(:mod:`pokewatch.run.papermill_cli`) and the ``pokewatch`` command line. The kernels are
separate interpreters with a normal import system, and it is a kernel that uses pyarrow.
"""
from __future__ import annotations

import atexit
import os
import sys
import threading

#: Modules no PokeWatch process needs (see the module docstring).
SKIPPED_IMPORTS = ("rfc3987_syntax",)
#: What a papermill process skips besides: it never reads Parquet, so it needs no pyarrow.
SKIPPED_BY_PAPERMILL = (*SKIPPED_IMPORTS, "pyarrow.fs")


def skip_unused_imports(names: tuple[str, ...] = SKIPPED_IMPORTS) -> None:
    """Make ``import name`` raise ImportError for each of ``names`` not imported yet."""
    for name in names:
        sys.modules.setdefault(name, None)


def exit_now(status: int | str | None) -> None:
    """End the process with ``status`` once its work is done, without tearing down every module.

    Why: after ``main`` returns, CPython's finalization frees every imported module and
    object one by one; with pandas, pyarrow, numba and matplotlib loaded that is
    0.1–0.5 s per process, spent on memory the operating system reclaims anyway, and
    a run starts a dozen such processes. What a clean exit does that matters still
    happens: the atexit handlers run (logging's flush, temporary folders), and stdout
    and stderr are flushed. Every file PokeWatch writes is closed (and renamed into
    place) before its function returns. With another thread still running, the normal
    exit is kept, since it waits for that thread (a daemon thread is not waited for by
    either exit).
    """
    if status is None or isinstance(status, int):
        code = status or 0
    else:  # SystemExit("message"): say it, as the interpreter would
        print(status, file=sys.stderr)
        code = 1
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.current_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # a closed pipe: nothing left to say
            pass
    os._exit(code)
