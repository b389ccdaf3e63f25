"""Small memory pages for numpy's arrays: fresh memory costs less on the VMs we run on.

Why: numpy asks Linux for transparent huge pages (``madvise(MADV_HUGEPAGE)``) on
every large array. On the 2-core Firecracker VM of our CI and benchmarks the host backs
guest memory lazily, and the first write to fresh memory is what costs: 0.3 to 2.5 ms
per MB depending on how recently the guest had that memory in use. Small pages come
from that recently used memory first; huge pages need whole 2 MB blocks, which the
guest has most often given back. ``python -m benchmarks.first_touch --gb 0.5 --waits 4``
timed half a gigabyte, 4 s after freeing it, at 0.33 ms per MB on small pages in three
runs of four (2.46 ms in the fourth) and 1.3 to 1.9 ms on huge pages; past about half a
gigabyte both cost about 2.1 ms per MB. The evaluate kernel of a 45,000-series daily
run takes about 1 GB of fresh memory: its cells took 5.19 s on small pages against
5.69 s on huge ones (medians of six runs each, alternated, every small-page run the
faster of its pair). A pass over a 32-million-row column reads it in order, where huge
pages' fewer TLB misses matter least, so a machine without this cost loses little.

Numpy reads ``NUMPY_MADVISE_HUGEPAGE`` when it is imported (its documented switch);
:func:`prefer_small_pages` sets it to 0 unless the user set it, so child processes
(kernels, workers) inherit the choice, and turns huge pages off in numpy when it was
imported first. ``NUMPY_MADVISE_HUGEPAGE=1`` keeps numpy's default.
"""
from __future__ import annotations

import os
import sys

#: numpy's environment switch for ``madvise(MADV_HUGEPAGE)`` on large arrays.
SWITCH = "NUMPY_MADVISE_HUGEPAGE"


def prefer_small_pages() -> bool:
    """Make numpy leave large arrays on small pages, unless ``NUMPY_MADVISE_HUGEPAGE`` says otherwise.

    Returns:
        Whether numpy uses small pages from now on (False when the user asked for huge ones).
    """
    if os.environ.get(SWITCH, "0").strip() not in ("", "0"):
        return False
    os.environ[SWITCH] = "0"
    numpy = sys.modules.get("numpy")
    if numpy is not None:  # imported before PokeWatch: it has read the switch already
        core = getattr(numpy, "_core", None) or getattr(numpy, "core", None)
        setter = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
        if setter is not None:
            setter(False)
    return True
