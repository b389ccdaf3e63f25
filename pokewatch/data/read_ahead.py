"""Ask Linux to read a source's compacted history into the page cache before a step maps it.

Why: train and evaluate read every row of two columns of the history (days and prices,
about 350 MB at 45,000 series x 730 days) through memory maps, a page fault at a time.
On the VMs of our CI and benchmarks the page cache keeps a file for only a few seconds
(a read 219 MB file was down to 164 MB after 8 s, 20 MB left after a minute, with 22 GB
free), so in a daily run the base collect did not touch comes from disk. The pipeline
starts evaluate's kernel ahead of its turn (:mod:`pokewatch.run.head_start`); asking
for the reads then lets them run beside collect instead of inside evaluate's merge.

Only asks (``posix_fadvise(WILLNEED)``, 8 MB at a time: Linux reads at most that much
per call): nothing is read into this process, nothing waits for the disk, and a
missing or half-written history is simply skipped. It imports nothing heavy, so it can
run before the notebook's own imports.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

#: The files a scoring pass reads from end to end; the other columns are read a few rows at a time.
SCANNED = ("date.npy", "market_price.npy", "bounds.npy", "keys.npy")
#: The most Linux reads ahead for one ``posix_fadvise`` call.
CHUNK = 8 << 20
#: Where :func:`pokewatch.data.compaction.folder` keeps a source's parts and states.
FOLDER = ".compact"


def read_ahead(store_root: str | Path, source: str) -> int:
    """Ask for the newest compacted state of ``source``'s scanned files to be read; returns the bytes asked for.

    The newest state file is the one the next load is most likely to open; if it is
    not (a day collected meanwhile adds a segment, the base stays), the reads are
    only wasted page cache.
    """
    advise = getattr(os, "posix_fadvise", None)
    folder = Path(store_root) / FOLDER / source
    try:
        states = sorted(folder.glob("state-*.json"), key=lambda p: p.stat().st_mtime_ns)
        if advise is None or not states:
            return 0
        parts = json.loads(states[-1].read_text(encoding="utf-8")).get("parts", [])
    except (OSError, ValueError):
        return 0
    asked = 0
    for part in parts:
        for name in SCANNED:
            try:
                fd = os.open(folder / str(part) / name, os.O_RDONLY)
            except OSError:
                continue
            try:
                size = os.fstat(fd).st_size
                for offset in range(0, size, CHUNK):
                    advise(fd, offset, CHUNK, os.POSIX_FADV_WILLNEED)
                asked += size
            except OSError:
                pass
            finally:
                os.close(fd)
    return asked
