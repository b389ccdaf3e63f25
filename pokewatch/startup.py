"""What a PokeWatch process leaves out of its imports: two optional modules nothing here uses.

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

import sys

#: Modules no PokeWatch process needs (see the module docstring).
SKIPPED_IMPORTS = ("rfc3987_syntax",)
#: What a papermill process skips besides: it never reads Parquet, so it needs no pyarrow.
SKIPPED_BY_PAPERMILL = (*SKIPPED_IMPORTS, "pyarrow.fs")


def skip_unused_imports(names: tuple[str, ...] = SKIPPED_IMPORTS) -> None:
    """Make ``import name`` raise ImportError for each of ``names`` not imported yet."""
    for name in names:
        sys.modules.setdefault(name, None)
