"""Numpy leaves large arrays on small pages in a PokeWatch process, unless the user asked for huge ones."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pokewatch import memory_pages as pages

PROBE = ("import {first}, numpy, os\n"
         "core = getattr(numpy, '_core', None) or numpy.core\n"
         "print(os.environ.get('NUMPY_MADVISE_HUGEPAGE'), core.multiarray._set_madvise_hugepage(False))\n")


@pytest.mark.parametrize("first", ["pokewatch", "numpy"])
def test_numpy_uses_small_pages_whether_it_or_pokewatch_is_imported_first(first):
    code = PROBE.format(first=first if first == "pokewatch" else "numpy, pokewatch")
    env = {k: v for k, v in os.environ.items() if k != pages.SWITCH}

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout

    # _set_madvise_hugepage returns the setting it replaces: False means small pages were already chosen.
    assert out.split() == ["0", "False"]


def test_a_users_own_choice_of_huge_pages_is_kept():
    env = {**os.environ, pages.SWITCH: "1"}

    out = subprocess.run([sys.executable, "-c", PROBE.format(first="pokewatch")], capture_output=True, text=True,
                         env=env, check=True).stdout

    assert out.split() == ["1", "True"]
