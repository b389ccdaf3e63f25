"""The pure core: prices in, fair values, flags and scores out, with no files and no environment.

What lives here, in the order data flows through it:

* :mod:`~pokewatch.core.schema`: the one long price format, and its validation.
* :mod:`~pokewatch.core.frame`: :class:`~pokewatch.core.frame.PriceFrame`, the series-sorted arrays every pass reads.
* :mod:`~pokewatch.core.columnar`: the store layout's helpers (dictionary codes, sort check, day numbers), numpy only.
* :mod:`~pokewatch.core.methods`: the one registry of fair-value methods (name, kernel, windows, description).
* :mod:`~pokewatch.core.fair_value`: fair values of every row, by a method of that registry.
* :mod:`~pokewatch.core.rules`: the one BUY/SELL/HOLD rule and its tolerance.
* :mod:`~pokewatch.core.kernels`: the compiled single passes (numba) behind fair values, signals and scores.
* :mod:`~pokewatch.core.signals`: flags of every row under one rule.
* :mod:`~pokewatch.core.backtest`, :mod:`~pokewatch.core.training`, :mod:`~pokewatch.core.walkforward`:
  scoring flags against what prices did next, choosing the rule, and the out-of-sample track record.
* :mod:`~pokewatch.core.model`: the chosen rule plus a fast lookup, as served by the API.
* :mod:`~pokewatch.core.parallel`: the same passes sharded over joblib backends (in-process, loky, threads, Dask).
* :mod:`~pokewatch.core.checks`: plain checks of single values, importable by anything.

Nothing here imports :mod:`pokewatch.data`, :mod:`pokewatch.run` or :mod:`pokewatch.analysis`.
"""
from __future__ import annotations

import importlib
import sys

_KERNELS = f"{__name__}.kernels"


class _LazyKernels:
    """Stands in for :mod:`pokewatch.core.kernels` until one of its names is used.

    Why: importing the kernels costs about 0.9 s (numba, and loading the cached
    machine code of every eager signature), and a notebook whose step is a cache hit
    never calls one: a re-run's train kernel spent that second on nothing. Each
    attribute is looked up in the real module, imported on first use (importlib's
    module lock makes that safe from the worker threads too).
    """

    __slots__ = ()

    def __getattr__(self, name: str):
        return getattr(importlib.import_module(_KERNELS), name)

    def __setattr__(self, name: str, value) -> None:  # monkeypatching the stand-in patches the module
        setattr(importlib.import_module(_KERNELS), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(importlib.import_module(_KERNELS), name)

    def __dir__(self) -> list[str]:
        return dir(importlib.import_module(_KERNELS))

    def __repr__(self) -> str:
        return f"<lazy module {_KERNELS!r}>"


def __getattr__(name: str):
    """``from pokewatch.core import kernels`` before the kernels are imported gives the stand-in."""
    if name == "kernels":
        return sys.modules.get(_KERNELS) or _LazyKernels()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
