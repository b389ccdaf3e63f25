"""Importing pokewatch does no work: no umask flip, no logging set-up, no IPython formatter.

Work at import time runs in every process that merely imports a module (a lean CLI
command, a test, a notebook that never plots) and in an order nobody chose. So the
umask is read when the first file is written (:func:`pokewatch.atomic.file_mode`),
logging is set up by :func:`pokewatch.logs.configure`, and figures are shown inline by
:func:`pokewatch.run.display.show_figures_inline`, each only when called. One
fresh interpreter imports every module and reports what changed.
"""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

PROBE = """
import importlib, json, logging, os, pkgutil, sys

umask_calls = []
real_umask = os.umask
os.umask = lambda mask: umask_calls.append(mask) or real_umask(mask)

import papermill  # first: papermill loads pokewatch's engine through its entry point when imported
from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance()   # a kernel's shell, where a module could register a formatter


def logging_state():
    root = logging.getLogger()
    loggers = {name: value for name, value in logging.Logger.manager.loggerDict.items()
               if isinstance(value, logging.Logger)}
    return {
        "root": [repr(h) for h in root.handlers] + [repr(f) for f in root.filters] + [root.level],
        "filters": {name: len(lg.filters) for name, lg in loggers.items() if lg.filters},
        "pokewatch handlers": {name: len(lg.handlers) for name, lg in loggers.items()
                               if name.startswith("pokewatch") and lg.handlers},
    }


def formatter_state():
    return {mime: sorted(map(str, [*f.type_printers, *f.deferred_printers]))
            for mime, f in shell.display_formatter.formatters.items()}


before = (logging_state(), formatter_state())
import pokewatch

names = [m.name for m in pkgutil.walk_packages(pokewatch.__path__, "pokewatch.") if m.name != "pokewatch.__main__"]
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "umask_calls": umask_calls,
                  "logging": [before[0], logging_state()], "formatters": [before[1], formatter_state()]}))
"""


def test_importing_every_module_changes_no_umask_logging_or_ipython_state():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])
    assert {"pokewatch.atomic", "pokewatch.data.store", "pokewatch.analysis.plots", "pokewatch.logs",
            "pokewatch.api.app", "pokewatch.cli.commands.pipeline"} <= set(seen["modules"])
    assert seen["umask_calls"] == [], "the umask is read when the first file is written, not at import"
    before, after = seen["logging"]
    assert after == before, "no handler, filter or level is set at import; pokewatch.logs.configure does that"
    before, after = seen["formatters"]
    assert after == before, "figures are shown inline only when display.show_figures_inline() is called"


def test_the_umask_is_read_once_when_a_file_is_first_written(tmp_path):
    code = ("import os, sys\nos.umask(0o027)\ncalls = []\nreal = os.umask\n"
            "os.umask = lambda m: calls.append(m) or real(m)\n"
            "from pokewatch import atomic\nassert calls == []\n"
            "for name in 'ab': atomic.write_text(sys.argv[1] + '/' + name, 'x')\n"
            "print(len(calls), oct(os.stat(sys.argv[1] + '/a').st_mode & 0o777), oct(real(0o022)))\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=REPO,
                            check=True)
    assert result.stdout.split() == ["2", "0o640", "0o27"], "read (set and restored) once, obeyed, left as it was"
