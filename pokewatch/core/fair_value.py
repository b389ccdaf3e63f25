"""Fair value of every series on every day, computed for all series at once.

Why "prior" windows by default: judging today's price against a mean that
includes today's price drags the fair value towards the price being judged.
With the seed project's 3-day mean including today, BUY (10% below fair) only
fires once the price is 14.3% or more under the prior two days' mean. The seed's
rule survives as ``seed_mean3`` so the two can be compared in a backtest.

The methods, their windows and their kernels are listed once, in
:mod:`pokewatch.core.methods`.

All work on a :class:`PriceFrame`: the long table sorted by series and date with an
integer series code, held as plain arrays (series code, day number, price and the
offsets where each series starts), so windows never cross from one series into the
next. No Python loop over series anywhere: one compiled pass per method walks every
series (:mod:`pokewatch.core.kernels`), with the same arithmetic as pandas' rolling and
EWM windows, so the numbers are the ones pandas would give.
"""
from __future__ import annotations

import logging

import numpy as np

from pokewatch.core import checks, kernels, methods
from pokewatch.core.frame import PriceFrame
from pokewatch.errors import ParameterError

logger = logging.getLogger(__name__)


def kernel_arguments(method: str, window: int) -> tuple[int, int, float]:
    """(kernel code, window, EWM centre of mass) of a method, as the kernels take them.

    ``window`` 0 means the method's own default (:attr:`~pokewatch.core.methods.Method.default_window`).

    Raises:
        ParameterError: unknown method (or ``auto``), a bad window, or a window the method is not defined with.
    """
    window = resolved_window(method, window)
    com = (window - 1) / 2  # pandas' span -> centre of mass
    return methods.get(method).kernel, window, float(com)


def resolved_window(method: str, window: int) -> int:
    """The window a method really uses: ``window``, or the method's default when it is 0.

    Raises:
        ParameterError: unknown method, a negative or non-integer window, or one the method is not defined with.
    """
    spec = methods.get(method)
    if window in (0, "0", None):
        return spec.default_window
    window = checks.positive_int("window", window, maximum=365)
    problem = spec.window_problem(window)
    if problem:
        raise ParameterError(problem)
    return window


def fair_value(pf: PriceFrame, method: str = "rolling_mean", window: int = 7) -> np.ndarray:
    """Fair value per row of ``pf`` using only what the method may see.

    Returns:
        float64 array aligned with ``pf.frame``; NaN where a series has no prior
        observation yet (its first day).

    Raises:
        ParameterError: unknown method or a window below 1.
    """
    code, window, com = kernel_arguments(method, window)
    return kernels.fair_values(pf.prices, pf.bounds, code, window, com)
