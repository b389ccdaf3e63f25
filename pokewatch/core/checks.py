"""Plain checks of single values (dates, fractions, counts), importable by anything.

Why a module apart from :mod:`pokewatch.run.parameters`: these checks are cheap and import
nothing heavy (no pandas, no pydantic), so lean helper commands and the core
functions (``FairValueModel``, ``backtest``, ``signals``) can call them. The *rules*
of each notebook parameter (its type, default, range and help) live in
:mod:`pokewatch.run.parameters`, which builds on the date rules defined here.
"""
from __future__ import annotations

import datetime as dt
import math
import os
import re

from pokewatch.core import methods
from pokewatch.errors import ParameterError

#: The whole days pandas can hold as nanosecond timestamps (``pd.Timestamp.min`` is
#: 1677-09-21 00:12:43, ``pd.Timestamp.max`` 2262-04-11 23:47:16): every date a run
#: computes with must lie in between, or pandas raises OutOfBounds deep inside a step.
FIRST_DAY = dt.date(1677, 9, 22)
LAST_DAY = dt.date(2262, 4, 11)
#: How many days after today a run date may be (a run for tomorrow is fine across
#: time zones; a fabricated future run is not).
MAX_FUTURE_DAYS_ENV = "POKEWATCH_MAX_FUTURE_DAYS"
DEFAULT_MAX_FUTURE_DAYS = 1
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


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


#: The longest horizon a flag may be judged over, in days (the parameter model uses it too).
MAX_HORIZON_DAYS = 365


def horizon_days(value) -> int:
    """The days after a flag at which its price is judged: the one rule, wherever a horizon is taken."""
    return positive_int("horizon_days", value, maximum=MAX_HORIZON_DAYS)


def method(name: str, value) -> str:
    """A fair-value method of :mod:`pokewatch.core.methods`, or ``auto``."""
    if value not in (*methods.NAMES, "auto"):
        raise ParameterError(f"parameter {name} must be one of {', '.join(methods.NAMES)} or auto, got {value!r}")
    return str(value)


# -- dates -----------------------------------------------------------------------------------
def today() -> dt.date:
    """The local calendar day, the one ``run_date="today"`` means."""
    return dt.date.today()


def max_future_days() -> int:
    """Days after today a run date may be: ``POKEWATCH_MAX_FUTURE_DAYS``, default 1.

    Raises:
        ParameterError: the variable is not a whole number of zero or more.
    """
    text = os.environ.get(MAX_FUTURE_DAYS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_FUTURE_DAYS
    if not text.isdigit():
        raise ParameterError(f"{MAX_FUTURE_DAYS_ENV} must be a whole number of days (0 or more), got {text!r}")
    return int(text)


def day_problem(value) -> str | None:
    """Why ``value`` is not a usable YYYY-MM-DD day, as a predicate ("must be ..."), or None."""
    if not isinstance(value, str) or not _ISO_DAY.fullmatch(value):
        return "must be YYYY-MM-DD"
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return "is not a real date"
    if not FIRST_DAY <= day <= LAST_DAY:
        return f"must lie between {FIRST_DAY} and {LAST_DAY}, the days pandas can hold"
    return None


def future_problem(day: str) -> str | None:
    """Why the run date ``day`` (YYYY-MM-DD) is too far in the future, or None."""
    limit = max_future_days()
    ahead = (dt.date.fromisoformat(day) - today()).days
    if ahead > limit:
        return (f"is {ahead} days after today ({today()}); a run date may be at most {limit} day(s) ahead "
                f"(set {MAX_FUTURE_DAYS_ENV} to change that)")
    return None


def run_date(name: str, value) -> str:
    """``today`` (or empty) or a real ISO date pandas can hold; returns YYYY-MM-DD.

    For looking runs up; a run's own date is checked by :mod:`pokewatch.run.parameters`,
    which also refuses dates too far in the future.

    Raises:
        ParameterError: not a date, naming ``name``.
    """
    if value in (None, "", "today"):
        return f"{today():%Y-%m-%d}"
    problem = day_problem(value)
    if problem:
        hint = " or 'today'" if problem == "must be YYYY-MM-DD" else ""
        raise ParameterError(f"parameter {name} {problem}{hint}, got {value!r}")
    return value
