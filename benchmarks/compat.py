"""Import a PokeWatch module by its name in this checkout's layout, from either layout.

The benchmark runs its own code against two checkouts (``--ref`` runs with that
checkout's ``PYTHONPATH``). Since the package was grouped by stage, a module has a
new home (``pokewatch.data.store``) where the reference may still have the flat one
(``pokewatch.store``); a few were renamed on the way.
"""
from __future__ import annotations

import importlib
from types import ModuleType

#: New names whose flat ancestor was called something else.
RENAMED = {"core.checks": "params", "run.helpers": "pipeline", "run.context": "notebook_run",
           "cli.main": "cli", "cli.terminal": "terminal"}


def pokewatch_module(name: str) -> ModuleType:
    """``pokewatch.<name>`` (``name`` like ``"data.store"``), or its flat-layout ancestor in an older checkout."""
    try:
        return importlib.import_module(f"pokewatch.{name}")
    except ModuleNotFoundError as exc:
        if exc.name is None or not f"pokewatch.{name}".startswith(exc.name):
            raise                       # a module the new one imports is missing: not a layout question
        return importlib.import_module(f"pokewatch.{RENAMED.get(name, name.rpartition('.')[2])}")
