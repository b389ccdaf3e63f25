"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Everything a run leaves behind (prices, models, manifests, reports) goes through
here, so a crash or a full disk mid-write cannot corrupt the last good copy.

Every CSV is also made spreadsheet-safe here (:func:`spreadsheet_safe`): card names
and other text come from outside sources, and a cell such as ``=cmd|' /C calc'!A0``
or ``@SUM(...)`` would run as a formula when an analyst opens ``signals.csv``,
``portfolio.csv``, ``rejected_rows.csv`` or a track record in Excel, LibreOffice or
Google Sheets. Such text cells are written with a leading ``'`` (the OWASP advice
against CSV injection), which spreadsheets show as text. Numbers, negative ones
included, are never touched.

A writer killed mid-write leaves its temporary file (``.<name>.<random>.tmp``) behind;
:func:`remove_stale_temp_files` clears old ones. pandas and numpy are imported only
by the writers that need them, so lean commands can write JSON without them.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

logger = logging.getLogger(__name__)

#: Temporary files are named ``<TEMP_PREFIX><name>.<random><TEMP_SUFFIX>`` beside their target.
TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"


@functools.cache
def _umask() -> int:
    """The process's umask, read once, when the first file is written.

    The only way to read it is to set it, and a file another thread creates between
    the two calls gets the temporary mask: so read it once, never at import time.
    """
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The permissions a plain ``open()`` would give a new file: 0666 less the umask.

    A temporary file from :func:`tempfile.mkstemp` is 0600; it gets these before it
    replaces its target, so run files stay readable by whoever could read the old ones.
    """
    return 0o666 & ~_umask()


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    os.close(fd)
    os.chmod(tmp, file_mode())  # mkstemp's 0600 would hide run files from other readers
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def keep_cache_entry(path: str | os.PathLike, write: Callable[[Path], None], older: str) -> bool:
    """Write a cache entry at ``path`` atomically (``write(tmp)``), then remove its older versions.

    ``older`` is a glob, in the entry's folder, of the versions it replaces. A cache is an
    optimisation: a failure to write it is a warning, never an error. Returns whether it was kept.
    """
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            write(tmp)
        for old in path.parent.glob(older):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as exc:
        logger.warning("could not keep the cache entry %s: %s", path.name, exc)
        return False
    return True


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_parquet(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(path)


#: A text cell starting with one of these is read as a formula by spreadsheets.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: What :func:`spreadsheet_safe` puts in front of such a cell.
TEXT_MARK = "'"


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell a spreadsheet would run as a formula prefixed with ``'``.

    A text cell (in a string, object or categorical column) that starts with ``=``,
    ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``; numbers in
    numeric columns, negative ones included, and non-text values in object columns
    are left alone. Reading the CSV back gives the prefixed text: ``"'=SUM(A1)"`` is
    the documented, expected form of a name that started with ``=``.

    Returns:
        ``frame`` itself when nothing needs a prefix, else a copy.
    """
    import pandas as pd  # noqa: PLC0415 - only CSV writers need it

    out = frame
    for position in range(frame.shape[1]):
        values = frame.iloc[:, position]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(object)
        elif pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_datetime64_any_dtype(values.dtype) \
                or pd.api.types.is_bool_dtype(values.dtype):
            continue
        if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "mixed", "mixed-integer"):
            continue
        risky = values.str[:1].isin(FORMULA_PREFIXES).fillna(False).astype(bool)
        if not risky.any():
            continue
        if out is frame:
            out = frame.copy()
        safe = values.astype(object).copy()
        safe[risky] = TEXT_MARK + values[risky].astype(str)
        out.isetitem(position, safe)
    return out


def write_csv(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    """Write ``frame`` as CSV (RFC 4180: CRLF line ends), atomically and spreadsheet-safe.

    See :func:`spreadsheet_safe` for what is prefixed.
    """
    with atomic_path(path) as tmp:
        # CRLF line ends (RFC 4180) make the writer quote a cell holding a carriage return, which would
        # otherwise split its row.
        formatted_floats(spreadsheet_safe(frame)).to_csv(tmp, index=False, float_format=FLOAT_FORMAT,
                                                         lineterminator="\r\n")
    return Path(path)


#: How a float cell is written: ten significant digits, exact for cents and free of float noise
#: like 0.18333333331005.
FLOAT_FORMAT = "%.10g"


def formatted_floats(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each float column as its CSV text: :data:`FLOAT_FORMAT`, and empty where null.

    Why: the same text ``to_csv(float_format=FLOAT_FORMAT)`` writes, but pandas calls a
    Python formatter, a null check and a lambda per cell (0.4 s for the 45,000 signals
    and 21,000 scored flags of a whole-catalogue run); one ``%`` per cell here costs a
    quarter of that. Other columns (nullable ``Float64`` ones too) are left to pandas,
    which formats them with the same format.

    Returns:
        A shallow copy when there is a float column, else ``frame`` itself.
    """
    import numpy as np  # noqa: PLC0415 - only CSV writers need it

    out = frame
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        if not (isinstance(column.dtype, np.dtype) and column.dtype.kind == "f"):
            continue
        values = column.to_numpy()
        text = np.array([FLOAT_FORMAT % v for v in values.tolist()], dtype=object)
        text[np.isnan(values)] = ""
        if out is frame:
            out = frame.copy(deep=False)
        out.isetitem(position, text)
    return out


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], *,
              members: Mapping[str, bytes] | None = None, compresslevel: int | None = 1) -> Path:
    """Write ``arrays`` as a numpy ``.npz`` archive that ``np.load(..., allow_pickle=False)`` reads.

    Unlike ``np.savez_compressed``: ``members`` (such as a JSON document) sit beside the
    arrays as plain files, which ``np.load`` returns as bytes; ``compresslevel`` trades
    size for speed (deflate level 1 packs a model's price grids about four times at a
    quarter of level 6's cost; None stores them uncompressed); and object arrays are
    refused, so the archive never holds a pickle.

    Raises:
        ValueError: an array holds Python objects.
    """
    import zipfile  # noqa: PLC0415 - only model writers need it

    import numpy as np  # noqa: PLC0415

    compression = zipfile.ZIP_STORED if compresslevel is None else zipfile.ZIP_DEFLATED
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression, compresslevel=compresslevel) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
        for name, data in (members or {}).items():
            archive.writestr(name, data)
    return Path(path)


def remove_stale_temp_files(folder: str | os.PathLike, *, older_than: float, recursive: bool = True) -> list[Path]:
    """Delete this module's temporary files in ``folder`` not modified for ``older_than`` seconds.

    A live writer keeps touching its file, so an old one belongs to a writer that was
    killed. Symlinks named like temporary files (a killed link swap) count too.

    Returns:
        The files removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    cutoff = time.time() - older_than
    removed = []
    pattern = f"{TEMP_PREFIX}*{TEMP_SUFFIX}"
    for path in folder.rglob(pattern) if recursive else folder.glob(pattern):
        try:
            if path.lstat().st_mtime <= cutoff and (path.is_symlink() or path.is_file()):
                path.unlink()
                removed.append(path)
        except OSError:  # gone already, or not ours to remove
            continue
    return removed
