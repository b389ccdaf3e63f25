"""Validation of run parameters, shared by the package, the notebooks and the pipeline.

The pipeline validates every ``--param NAME=VALUE`` here before any notebook runs,
so a bad value fails in a second with a message naming the parameter instead of
deep inside a notebook after collection already touched the store.
"""
from __future__ import annotations

import math
import re

import pandas as pd

from pokewatch.errors import ParameterError

FAIR_VALUE_METHODS = ("rolling_mean", "ewm", "rolling_median", "seed_mean3")


def _number(name: str, value) -> float:
    if isinstance(value, bool):
        raise ParameterError(f"parameter {name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"parameter {name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ParameterError(f"parameter {name} must be finite, got {value!r}")
    return number


def fraction(name: str, value, *, low: float = 0.0, high: float = 1.0) -> float:
    """A number strictly between ``low`` and ``high`` (thresholds, returns)."""
    number = _number(name, value)
    if not low < number < high:
        raise ParameterError(f"parameter {name} must be between {low} and {high} (exclusive), got {value!r}")
    return number


def non_negative(name: str, value) -> float:
    number = _number(name, value)
    if number < 0:
        raise ParameterError(f"parameter {name} must be zero or more, got {value!r}")
    return number


def positive_int(name: str, value, *, maximum: int | None = None) -> int:
    number = _number(name, value)
    if number != int(number) or number < 1 or (maximum is not None and number > maximum):
        bound = f" and at most {maximum}" if maximum is not None else ""
        raise ParameterError(f"parameter {name} must be a whole number of at least 1{bound}, got {value!r}")
    return int(number)


def non_negative_int(name: str, value, *, maximum: int | None = None) -> int:
    """A whole number of at least 0 (day counts where 0 is meaningful)."""
    number = _number(name, value)
    if number != int(number) or number < 0 or (maximum is not None and number > maximum):
        bound = f" and at most {maximum}" if maximum is not None else ""
        raise ParameterError(f"parameter {name} must be a whole number of at least 0{bound}, got {value!r}")
    return int(number)


def method(name: str, value) -> str:
    if value not in (*FAIR_VALUE_METHODS, "auto"):
        raise ParameterError(
            f"parameter {name} must be one of {', '.join(FAIR_VALUE_METHODS)} or auto, got {value!r}")
    return str(value)


def _choice(name: str, value, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ParameterError(f"parameter {name} must be one of {', '.join(options)}, got {value!r}")
    return str(value)


def run_date(name: str, value) -> str:
    """``today`` or an ISO date; returns YYYY-MM-DD."""
    if value in (None, "", "today"):
        return f"{pd.Timestamp.now().normalize():%Y-%m-%d}"
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ParameterError(f"parameter {name} must be YYYY-MM-DD or 'today', got {value!r}")
    try:
        return f"{pd.Timestamp(value):%Y-%m-%d}"
    except ValueError:
        raise ParameterError(f"parameter {name} is not a real date: {value!r}") from None


#: Per-parameter checks; parameters not listed are only type-checked by the pipeline.
CHECKS = {
    "run_date": run_date,
    "buy_threshold": fraction,
    "sell_threshold": lambda n, v: fraction(n, v, high=10.0),
    "min_price": non_negative,
    "target_return": fraction,
    "horizon_days": lambda n, v: positive_int(n, v, maximum=365),
    "window": lambda n, v: non_negative_int(n, v, maximum=365),
    "min_flags": lambda n, v: positive_int(n, v, maximum=1_000_000),
    "stale_days": lambda n, v: non_negative_int(n, v, maximum=3650),
    "eval_days": lambda n, v: positive_int(n, v, maximum=3650),
    "train_days": lambda n, v: positive_int(n, v, maximum=3650),
    "history_days": lambda n, v: positive_int(n, v, maximum=3650),
    "n_series": lambda n, v: positive_int(n, v, maximum=200_000),
    "keep_days": lambda n, v: positive_int(n, v, maximum=3650),
    "workers": lambda n, v: positive_int(n, v, maximum=1024),
    "method": method,
    "engine": lambda n, v: _choice(n, v, ("loky", "threading", "dask")),
    "min_completeness": lambda n, v: non_negative(n, v) if _number(n, v) <= 1 else fraction(n, v),
}


def check(name: str, value):
    """Validate one parameter by name; unknown names pass through unchanged."""
    checker = CHECKS.get(name)
    return checker(name, value) if checker else value
