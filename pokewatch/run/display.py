"""How a Jupyter kernel shows what the package returns: a matplotlib Figure as a PNG.

Figures are built without pyplot (:mod:`pokewatch.analysis.plots`), so they never
activate the inline backend: a cell ending in ``fig`` would show ``<Figure size ...>``,
and executed notebooks (and the HTML reports rendered from them) would carry no image.
:func:`show_figures_inline` registers a PNG formatter for Figure with the running
kernel. Opening a run for a notebook calls it (:class:`pokewatch.run.context.RunContext`,
:func:`pokewatch.analysis.explore.open_run`); importing a module never does. The
formatter is registered by the class's name, so neither matplotlib nor the plots are
imported until a cell actually returns a Figure, and a notebook that never plots
(collect) pays nothing.
"""
from __future__ import annotations

import io
import sys

#: The class a cell's result must be for :func:`show_figures_inline` to draw it.
FIGURE = ("matplotlib.figure", "Figure")
#: The one resolution of every PNG: in notebooks, reports and the run folder's plots/.
DPI = 100


def to_png(fig, dpi: int = DPI) -> bytes:
    """A matplotlib Figure as PNG bytes (for notebook outputs, and pages embedding them)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def show_figures_inline() -> bool:
    """In a running IPython kernel, display a returned Figure as PNG; returns whether there was one.

    Calling it again changes nothing. Outside IPython (the CLI, cron, tests) it does nothing.
    """
    ipython = sys.modules.get("IPython")  # a kernel has imported it already; never import it here
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    shell.display_formatter.formatters["image/png"].for_type_by_name(*FIGURE, to_png)
    return True
