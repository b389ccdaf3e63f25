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
