"""Fair value of every series on every day, computed for all series at once.

Why "prior" windows by default: judging today's price against a mean that
includes today's price drags the fair value towards the price being judged.
With the seed project's 3-day mean including today, BUY (10% below fair) only
fires once the price is 14.3% or more under the prior two days' mean. The seed's
rule survives as ``seed_mean3`` so the two can be compared in a backtest.

Methods (``window`` = N):

* ``rolling_mean``   mean of the prior N observations of the series
* ``ewm``            exponentially weighted mean of prior observations (span N)
* ``rolling_median`` median of the prior N observations (robust to spikes)
* ``seed_mean3``     the seed's rule: mean of the last 3 observations *including today*

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

from pokewatch.core import kernels, checks
from pokewatch.errors import ParameterError
from pokewatch.core.frame import PriceFrame

logger = logging.getLogger(__name__)

_METHOD_CODES = {"rolling_mean": kernels.MEAN_PRIOR, "seed_mean3": kernels.MEAN_INCLUDING_TODAY,
                 "ewm": kernels.EWM_PRIOR, "rolling_median": kernels.MEDIAN_PRIOR}
#: The window each method uses when none is given (``window=0``).
DEFAULT_WINDOWS = {"rolling_mean": 7, "ewm": 7, "rolling_median": 7, "seed_mean3": 3}
def kernel_arguments(method: str, window: int) -> tuple[int, int, float]:
    """(method code, window, EWM centre of mass) as the kernels take them.

    ``window`` 0 means the method's own default (:data:`DEFAULT_WINDOWS`). The seed's
    rule is defined with three observations, so ``seed_mean3`` with another window is
    refused rather than silently computed with 3.

    Raises:
        ParameterError: unknown method, a negative window, or seed_mean3 with a window other than 3.
    """
    checks.method("method", method)
    if method not in _METHOD_CODES:
        raise ParameterError(f"method {method!r} chooses a method by backtest; fair values need one of "
                             f"{', '.join(_METHOD_CODES)}")
    window = resolved_window(method, window)
    com = (window - 1) / 2  # pandas' span -> centre of mass
    return _METHOD_CODES[method], window, float(com)


def resolved_window(method: str, window: int) -> int:
    """The window a method really uses: ``window``, or the method's default when it is 0.

    Raises:
        ParameterError: a negative or non-integer window, or seed_mean3 with a window other than 3.
    """
    if window in (0, "0", None):
        return DEFAULT_WINDOWS.get(method, 7)
    window = checks.positive_int("window", window, maximum=365)
    if method == "seed_mean3" and window != 3:
        raise ParameterError(f"seed_mean3 is the seed project's 3-observation mean including today; its window is "
                             f"fixed at 3, got window={window}. Use window=0 (or 3), or method=rolling_mean for "
                             f"a mean of {window} prior observations")
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
