"""The fair-value methods: the one registry every other module reads them from.

Why a registry of its own, importing nothing heavy: parameter checks (:mod:`pokewatch.core.checks`,
:mod:`pokewatch.run.parameters`), the compiled kernels, the fair-value computation and
training's candidate grid all need the list of methods. Each used to keep its own
copy, so adding a method meant editing five of them. Now a method is one
:class:`Method` row in :data:`METHODS`; everything else derives from it:

* the names a ``method`` parameter accepts (:data:`NAMES`, plus ``auto``);
* the kernel branch that computes it (:attr:`Method.kernel`, one of the codes below,
  which :func:`pokewatch.core.kernels._series_fair` branches on);
* the window used when none is given (``window=0``) and whether any other is refused;
* the (method, window) candidates training chooses from (:data:`CANDIDATES`), in this order,
  which is also the tie-break order.

A method that needs a computation the kernels do not have yet also needs that
computation in :mod:`pokewatch.core.kernels` (a new code below and one branch there).
"""
from __future__ import annotations

from dataclasses import dataclass

from pokewatch.errors import ParameterError

#: The computations the kernels know, by code (see :mod:`pokewatch.core.kernels`).
MEAN_PRIOR, MEAN_INCLUDING_TODAY, EWM_PRIOR, MEDIAN_PRIOR = 0, 1, 2, 3


@dataclass(frozen=True)
class Method:
    """One fair-value method.

    Attributes:
        name: what the ``method`` parameter says.
        kernel: the kernels' computation code (:data:`MEAN_PRIOR`, ...).
        default_window: the window ``window=0`` means.
        candidate_windows: the windows training tries for it.
        description: one line, for help texts and reports.
        fixed_window: True when ``default_window`` is the only window the method is defined with.
    """

    name: str
    kernel: int
    default_window: int
    candidate_windows: tuple[int, ...]
    description: str
    fixed_window: bool = False

    def window_problem(self, window: int) -> str | None:
        """Why ``window`` (already a whole number; 0 means the default) does not fit this method, or None."""
        if self.fixed_window and window not in (0, self.default_window):
            return (f"{self.name} is {self.description}; its window is fixed at {self.default_window}, got "
                    f"window={window}. Use window=0 (or {self.default_window}), or method=rolling_mean for a "
                    f"mean of {window} prior observations")
        return None


METHODS: tuple[Method, ...] = (
    Method("rolling_mean", MEAN_PRIOR, 7, (3, 7, 14, 28), "the mean of the prior N observations"),
    Method("ewm", EWM_PRIOR, 7, (3, 7, 14), "the exponentially weighted mean of the prior observations (span N)"),
    Method("rolling_median", MEDIAN_PRIOR, 7, (3, 7, 14), "the median of the prior N observations (robust to spikes)"),
    Method("seed_mean3", MEAN_INCLUDING_TODAY, 3, (3,),
           "the seed project's 3-observation mean including today", fixed_window=True),
)
#: Method names, in registry order.
NAMES: tuple[str, ...] = tuple(m.name for m in METHODS)
BY_NAME: dict[str, Method] = {m.name: m for m in METHODS}
#: Every (method, window) training chooses from, in tie-break order.
CANDIDATES: tuple[tuple[str, int], ...] = tuple((m.name, w) for m in METHODS for w in m.candidate_windows)
#: The seed project's rule, which every report compares with.
ORIGIN = ("seed_mean3", 3)
#: The fair value used while there is nothing to choose from yet.
DEFAULT = ("rolling_mean", 7)


def get(name: str) -> Method:
    """The method called ``name``.

    Raises:
        ParameterError: ``name`` is ``auto`` (a choice, not a method) or unknown.
    """
    try:
        return BY_NAME[name]
    except (KeyError, TypeError):
        pass
    if name == "auto":
        raise ParameterError(f"method 'auto' chooses a method by backtest; fair values need one of {', '.join(NAMES)}")
    raise ParameterError(f"parameter method must be one of {', '.join(NAMES)} or auto, got {name!r}")


def help_text() -> str:
    """The ``method`` parameter's help: ``auto`` and every method name."""
    return f"auto chooses by backtest; or {', '.join(NAMES)}"
